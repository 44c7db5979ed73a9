//! Secrets read from the command line or the environment are `secrecy::SecretString`s:
//! their `Debug` is redacted, so a settings struct can be logged whole, and reading the
//! value takes a visible `expose_secret()`.

use std::convert::Infallible;

use secrecy::SecretString;

/// clap's value parser for a secret (`#[arg(value_parser = secret::parse)]`): secrecy has
/// no `FromStr` of its own, so that a secret is never parsed by accident.
pub fn parse(value: &str) -> Result<SecretString, Infallible> {
    Ok(SecretString::from(value))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn a_parsed_secret_keeps_its_value_and_never_prints_it() {
        let Ok(secret) = parse("hunter2");
        assert_eq!(secret.expose_secret(), "hunter2");
        let shown = format!("{secret:?}");
        assert!(!shown.contains("hunter2") && shown.contains("REDACTED"), "{shown}");
    }
}
