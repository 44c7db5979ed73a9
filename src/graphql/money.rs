//! `Money`, shared by the catalog's prices and the orders' totals.

use async_graphql::{Object, Result};

use crate::domain::{self, money::CURRENCY};
use crate::error::AppError;

pub struct Money(pub domain::Money);

/// An amount of money. Compute with `cents`; show `amount` and `currency`.
#[Object]
impl Money {
    /// The amount in cents (integer, exact).
    async fn cents(&self) -> Result<i32> {
        i32::try_from(self.0.cents())
            .map_err(|_| AppError::Internal(anyhow::anyhow!("amount exceeds Int: {}", self.0.cents())).into())
    }

    /// The amount as a decimal string with two digits after the point, e.g. "12.50".
    async fn amount(&self) -> String {
        self.0.amount()
    }

    /// ISO 4217 currency code; always "EUR".
    async fn currency(&self) -> &'static str {
        CURRENCY
    }
}
