//! Account inputs, parsed once at the edge. The limits are the contract's (section 4).

use std::fmt;

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;
pub const ADDRESS_MAX: usize = 200;
/// RFC 5321 caps a forward path at 254 octets and a local part at 64.
pub const EMAIL_MAX: usize = 254;
pub const EMAIL_LOCAL_MAX: usize = 64;

/// 3-32 characters of `[A-Za-z0-9_.-]`, compared ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UsernameError {
    #[error("must be {USERNAME_MIN} to {USERNAME_MAX} characters long")]
    Length,
    #[error("may contain only letters, digits, '_', '.' and '-'")]
    Character,
}

impl Username {
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        if !(USERNAME_MIN..=USERNAME_MAX).contains(&raw.chars().count()) {
            return Err(UsernameError::Length);
        }
        if !raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
            return Err(UsernameError::Character);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A syntactically valid address, lowercased so that uniqueness ignores case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("must be a valid email address, like ada@example.com")]
pub struct EmailError;

impl Email {
    /// A pragmatic subset of RFC 5322 that every mail system delivers to: a dot-atom local
    /// part and a domain of at least two DNS labels whose last one is alphabetic.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let email = raw.trim().to_ascii_lowercase();
        if email.len() > EMAIL_MAX {
            return Err(EmailError);
        }
        let (local, domain) = email.split_once('@').ok_or(EmailError)?;
        let local_ok = !local.is_empty()
            && local.len() <= EMAIL_LOCAL_MAX
            && local.split('.').all(|atom| {
                !atom.is_empty() && atom.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c))
            });
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                (1..=63).contains(&label.len())
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            && labels.last().is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
        if local_ok && domain_ok { Ok(Self(email)) } else { Err(EmailError) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that meets the contract's rules. Never printed: `Debug` is redacted.
#[derive(Clone)]
pub struct Password(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long")]
    Length,
    #[error("must contain at least one lower-case letter, one upper-case letter, one digit and one symbol")]
    Composition,
}

impl Password {
    pub fn parse(raw: &str) -> Result<Self, PasswordError> {
        if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&raw.chars().count()) {
            return Err(PasswordError::Length);
        }
        let has = |pred: fn(char) -> bool| raw.chars().any(pred);
        let symbol = |c: char| !c.is_alphanumeric() && !c.is_whitespace() && !c.is_control();
        if has(char::is_lowercase) && has(char::is_uppercase) && has(|c| c.is_ascii_digit()) && has(symbol) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(PasswordError::Composition)
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// A postal address: 1-200 characters once trimmed; line breaks allowed, other control
/// characters not (they break labels and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {ADDRESS_MAX} characters long")]
    TooLong,
    #[error("must not contain control characters other than line breaks")]
    ControlCharacter,
}

impl Address {
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        let address = raw.trim();
        if address.is_empty() {
            return Err(AddressError::Empty);
        }
        if address.chars().count() > ADDRESS_MAX {
            return Err(AddressError::TooLong);
        }
        if address.chars().any(|c| c.is_control() && c != '\n' && c != '\r') {
            return Err(AddressError::ControlCharacter);
        }
        Ok(Self(address.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_length_and_charset_rules() {
        for ok in ["abc", "Ada_Lovelace", "a.b-c_d", &"x".repeat(32)] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(Username::parse("ab"), Err(UsernameError::Length));
        assert_eq!(Username::parse(&"x".repeat(33)), Err(UsernameError::Length));
        for bad in ["has space", "émile", "semi;colon", "at@sign"] {
            assert_eq!(Username::parse(bad), Err(UsernameError::Character), "{bad}");
        }
    }

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(Email::parse(" Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
        for ok in ["a@b.co", "first.last+tag@mail.example.org", "x_y@sub-domain.example.io"] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a@@b.com",
            "a..b@example.com",
            ".a@example.com",
            "a@-example.com",
            "a@example.c0m",
            "a b@example.com",
            "a@exa mple.com",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError), "{bad}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert_eq!(Email::parse(&long_local), Err(EmailError));
    }

    #[test]
    fn passwords_need_length_and_all_four_classes() {
        assert!(Password::parse("TestTest123@").is_ok());
        assert!(Password::parse("aB3$efgh").is_ok());
        assert!(Password::parse(&format!("aB3$ {}", "x".repeat(123))).is_ok());
        assert_eq!(Password::parse("aB3$efg").unwrap_err(), PasswordError::Length);
        assert_eq!(Password::parse(&format!("aB3${}", "x".repeat(125))).unwrap_err(), PasswordError::Length);
        for bad in ["testtest123@", "TESTTEST123@", "TestTestabc@", "TestTest1234"] {
            assert_eq!(Password::parse(bad).unwrap_err(), PasswordError::Composition, "{bad}");
        }
    }

    #[test]
    fn password_debug_never_shows_the_secret() {
        let password = Password::parse("TestTest123@").unwrap();
        assert!(!format!("{password:?}").contains("TestTest"));
    }

    #[test]
    fn addresses_are_trimmed_and_bounded() {
        assert_eq!(Address::parse("  1 Main St\nSpringfield ").unwrap().as_str(), "1 Main St\nSpringfield");
        assert!(Address::parse(&"a".repeat(200)).is_ok());
        assert_eq!(Address::parse("   "), Err(AddressError::Empty));
        assert_eq!(Address::parse(&"a".repeat(201)), Err(AddressError::TooLong));
        assert_eq!(Address::parse("a\u{0}b"), Err(AddressError::ControlCharacter));
    }
}
