//! The order's input objects, and their parsing into domain types. Every failure names its
//! field.

use async_graphql::{ID, InputObject};

use crate::domain::OrderStatus;
use crate::domain::{Address, IdempotencyKey};
use crate::error::AppError;
use crate::graphql::catalog::inputs::{OrderItemInput, OrderPackageInput, parse_cart};
use crate::services::orders::PlaceOrder;

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
    pub status: OrderStatus,
    /// Why; required for FAILED; at most 500 characters.
    pub note: Option<String>,
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
