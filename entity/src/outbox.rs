//! Table `outbox`: messages for Redis, written with the change they announce, published and
//! deleted by the relay.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `orders` (an order for the factories) or `order-status` (a status event).
    pub topic: String,
    /// The message, JSON.
    pub payload: String,
    pub created_at: DateTimeUtc,
    /// Set while a relay other than the writer publishes the row (PostgreSQL): other relays
    /// leave it alone until then.
    pub claimed_until: Option<DateTimeUtc>,
    /// The W3C `traceparent` of the span that wrote the row (migration
    /// `m20261202_000006_outbox_traceparent`): the relay continues that trace, and an
    /// order's is sent to the factory beside `order_id`. Null when traces are off.
    #[sea_orm(column_type = "Text", nullable)]
    pub traceparent: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
