//! Table `order_events`: the status history of an order, one row per version.

use minifig_common::OrderStatus;
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "order_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub order_id: Uuid,
    /// The order's customer, so that one customer's events are read without a join.
    pub customer_id: Uuid,
    /// The customer's event count after this event: 1, 2, 3… in commit order, with no gaps
    /// (index `order_events_customer_seq_key`). Taken from `users.event_seq`.
    pub seq: i64,
    /// The order's version after this transition; unique per order
    /// (index `order_events_order_version_key`).
    pub version: i32,
    /// The status entered by this transition.
    pub status: OrderStatus,
    pub note: Option<String>,
    /// Stamped by the database's clock (PostgreSQL), never an instance's.
    pub at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::order::Entity",
        from = "Column::OrderId",
        to = "super::order::Column::Id",
        on_delete = "Cascade"
    )]
    Order,
}

impl Related<super::order::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Order.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
