//! Table `orders`: a customer's order with its frozen totals.

pub use minifig_common::OrderStatus;
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub customer_id: Uuid,
    /// Stored as its text; a CHECK constraint keeps other text out.
    pub status: OrderStatus,
    /// 1 when placed (PENDING), bumped by one on every transition.
    pub version: i32,
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    pub total_cents: i64,
    pub shipping_address: String,
    /// Unique per customer (index `orders_customer_idempotency_key`).
    pub idempotency_key: Option<String>,
    /// Fingerprint of the request lines, to tell a retry from a different order reusing a key.
    pub request_fingerprint: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// When the order was last handed to the factories (placement or redelivery).
    pub dispatched_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::CustomerId",
        to = "super::user::Column::Id",
        on_delete = "Restrict"
    )]
    Customer,
    #[sea_orm(has_many = "super::order_line::Entity")]
    OrderLine,
    #[sea_orm(has_many = "super::order_discount::Entity")]
    OrderDiscount,
    #[sea_orm(has_many = "super::order_event::Entity")]
    OrderEvent,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Customer.def()
    }
}

impl Related<super::order_line::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::OrderLine.def()
    }
}

impl Related<super::order_discount::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::OrderDiscount.def()
    }
}

impl Related<super::order_event::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::OrderEvent.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
