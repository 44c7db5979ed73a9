//! The cart's input objects, shared by `quote` and `placeOrder`, and their parsing.

use async_graphql::{ID, InputObject};

use crate::domain::Cart;
use crate::domain::cart::RawCartLine;
use crate::error::AppError;

/// Some number of one figurine.
#[derive(InputObject)]
pub struct OrderItemInput {
    pub figurine_id: ID,
    /// 1-1000.
    pub quantity: i32,
}

/// Some number of one special package.
#[derive(InputObject)]
pub struct OrderPackageInput {
    pub package_id: ID,
    /// 1-1000.
    pub quantity: i32,
}

/// What to price. Lines naming the same figurine or package are merged.
#[derive(InputObject)]
pub struct OrderInput {
    #[graphql(default)]
    pub items: Vec<OrderItemInput>,
    #[graphql(default)]
    pub packages: Vec<OrderPackageInput>,
}

pub fn parse_cart(items: &[OrderItemInput], packages: &[OrderPackageInput]) -> Result<Cart, AppError> {
    let items: Vec<RawCartLine> =
        items.iter().map(|i| RawCartLine { id: i.figurine_id.0.clone(), quantity: i.quantity }).collect();
    let packages: Vec<RawCartLine> =
        packages.iter().map(|p| RawCartLine { id: p.package_id.0.clone(), quantity: p.quantity }).collect();
    Cart::parse(&items, &packages).map_err(|err| AppError::bad_input_message(err.field(), describe_cart_error(&err)))
}

fn describe_cart_error(err: &crate::domain::CartError) -> String {
    use crate::domain::CartError::*;
    match err {
        Empty | TooManyLines => err.to_string(),
        MalformedId { .. } | Quantity { .. } | MergedQuantity { .. } => format!("{} {err}", err.field()),
    }
}
