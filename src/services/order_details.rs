//! What is shown beside an order: its lines, discounts and history, each read for many
//! orders in one query (the GraphQL loaders batch them; the subscription feed reads
//! history the same way).

use std::collections::HashMap;

use entity::{order_discount, order_event, order_line};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::domain::{AppliedDiscount, LineKind, Money, PricedLine, StatusEvent};
use crate::error::AppError;

/// An order's history is its status events, read from `order_events`.
impl From<order_event::Model> for StatusEvent {
    fn from(row: order_event::Model) -> Self {
        StatusEvent {
            order_id: row.order_id,
            user_id: row.customer_id,
            status: row.status,
            version: row.version,
            at: row.at,
            note: row.note,
            seq: row.seq,
        }
    }
}

/// The priced lines of each order, in their stored order.
pub async fn lines_of(db: &impl ConnectionTrait, ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<PricedLine>>, AppError> {
    let rows = order_line::Entity::find()
        .filter(order_line::Column::OrderId.is_in(ids.iter().copied()))
        .order_by_asc(order_line::Column::OrderId)
        .order_by_asc(order_line::Column::Position)
        .all(db)
        .await?;
    let mut by_order: HashMap<Uuid, Vec<PricedLine>> = HashMap::new();
    for row in rows {
        let kind = LineKind::parse(&row.kind)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("stored line kind {:?}", row.kind)))?;
        let item_id = row
            .figurine_id
            .or(row.package_id)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("order line {} names no item", row.id)))?;
        by_order.entry(row.order_id).or_default().push(PricedLine {
            kind,
            item_id,
            quantity: row.quantity.unsigned_abs(),
            unit_price: Money::from_cents(row.unit_price_cents),
            subtotal: Money::from_cents(row.subtotal_cents),
            discount: Money::from_cents(row.discount_cents),
            total: Money::from_cents(row.total_cents),
        });
    }
    Ok(by_order)
}

/// The discounts frozen on each order.
pub async fn discounts_of(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<AppliedDiscount>>, AppError> {
    let rows = order_discount::Entity::find()
        .filter(order_discount::Column::OrderId.is_in(ids.iter().copied()))
        .order_by_asc(order_discount::Column::Id)
        .all(db)
        .await?;
    let mut by_order: HashMap<Uuid, Vec<AppliedDiscount>> = HashMap::new();
    for row in rows {
        by_order.entry(row.order_id).or_default().push(AppliedDiscount {
            code: row.code,
            description: row.description,
            amount: Money::from_cents(row.amount_cents),
        });
    }
    Ok(by_order)
}

/// The history of each order, version ascending.
pub async fn history_of(db: &impl ConnectionTrait, ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<StatusEvent>>, AppError> {
    let rows = order_event::Entity::find()
        .filter(order_event::Column::OrderId.is_in(ids.iter().copied()))
        .order_by_asc(order_event::Column::OrderId)
        .order_by_asc(order_event::Column::Version)
        .all(db)
        .await?;
    let mut by_order: HashMap<Uuid, Vec<StatusEvent>> = HashMap::new();
    for row in rows {
        by_order.entry(row.order_id).or_default().push(StatusEvent::from(row));
    }
    Ok(by_order)
}
