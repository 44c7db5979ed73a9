//! Money is integer cents of one currency, so no rounding ever happens outside pricing rules.

use std::fmt;

/// The only currency the shop sells in; the contract fixes it.
pub const CURRENCY: &str = "EUR";

/// An amount in euro cents. Arithmetic is checked by the pricing module; this type only
/// carries and formats the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_cents(cents: i64) -> Self {
        Money(cents)
    }

    pub const fn cents(self) -> i64 {
        self.0
    }

    /// The decimal form clients display, e.g. `12.50` (never a float: `0.1 + 0.2` stays exact).
    pub fn amount(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {CURRENCY}", self.amount())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_always_has_two_decimals() {
        assert_eq!(Money::from_cents(1250).amount(), "12.50");
        assert_eq!(Money::from_cents(5).amount(), "0.05");
        assert_eq!(Money::from_cents(0).amount(), "0.00");
        assert_eq!(Money::from_cents(100).amount(), "1.00");
        assert_eq!(Money::from_cents(-1999).amount(), "-19.99");
        assert_eq!(Money::from_cents(123_456_789).amount(), "1234567.89");
    }

    #[test]
    fn display_names_the_currency() {
        assert_eq!(Money::from_cents(1495).to_string(), "14.95 EUR");
    }
}
