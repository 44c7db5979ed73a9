//! Input objects, and their parsing into domain types. Every failure names its field.

use async_graphql::{ID, InputObject};

use crate::domain::cart::RawCartLine;
use crate::domain::{Address, Cart, Email, IdempotencyKey, Password, Username};
use crate::error::AppError;
use crate::services::accounts::NewAccount;
use crate::services::orders::PlaceOrder;

/// A new customer account.
#[derive(InputObject)]
pub struct RegisterInput {
    /// 3-32 characters of letters, digits, `_`, `.` and `-`; unique ignoring case.
    pub username: String,
    /// A valid address; stored lowercased; unique.
    pub email: String,
    /// 8-128 characters with a lower-case letter, an upper-case letter, a digit and a symbol.
    pub password: String,
    /// Postal address, 1-200 characters; the default shipping address.
    pub address: String,
}

impl RegisterInput {
    pub fn parse(self) -> Result<NewAccount, AppError> {
        Ok(NewAccount {
            username: Username::parse(&self.username).map_err(|e| AppError::bad_input("username", e))?,
            email: Email::parse(&self.email).map_err(|e| AppError::bad_input("email", e))?,
            password: Password::parse(&self.password).map_err(|e| AppError::bad_input("password", e))?,
            address: Address::parse(&self.address).map_err(|e| AppError::bad_input("address", e))?,
        })
    }
}

#[derive(InputObject)]
pub struct LoginInput {
    /// The username (any letter case) or the email address.
    pub username: String,
    pub password: String,
}

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

/// What to order.
#[derive(InputObject)]
pub struct PlaceOrderInput {
    #[graphql(default)]
    pub items: Vec<OrderItemInput>,
    #[graphql(default)]
    pub packages: Vec<OrderPackageInput>,
    /// Where to ship; defaults to the customer's address.
    pub shipping_address: Option<String>,
    /// 1-64 characters. Sending the same key again returns the order the first request
    /// created instead of placing a second one; reusing it for a different order is CONFLICT.
    pub idempotency_key: Option<String>,
}

/// A status change, for the factory and administrators.
#[derive(InputObject)]
pub struct UpdateOrderStatusInput {
    pub order_id: ID,
    pub status: super::types::OrderStatus,
    /// Why; required for FAILED; at most 500 characters.
    pub note: Option<String>,
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

impl PlaceOrderInput {
    pub fn parse(self) -> Result<PlaceOrder, AppError> {
        Ok(PlaceOrder {
            cart: parse_cart(&self.items, &self.packages)?,
            shipping_address: self
                .shipping_address
                .as_deref()
                .map(Address::parse)
                .transpose()
                .map_err(|e| AppError::bad_input("shippingAddress", e))?,
            idempotency_key: self
                .idempotency_key
                .as_deref()
                .map(IdempotencyKey::parse)
                .transpose()
                .map_err(|e| AppError::bad_input("idempotencyKey", e))?,
        })
    }
}

/// An id argument that must name an existing record: one that cannot even be parsed names
/// none, so it is `NOT_FOUND` like any other unknown id.
pub fn parse_record_id(id: &ID, what: &'static str) -> Result<uuid::Uuid, AppError> {
    uuid::Uuid::parse_str(id.0.trim()).map_err(|_| AppError::NotFound(what))
}
