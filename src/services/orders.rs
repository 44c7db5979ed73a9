//! Orders: placing them, reading them, and moving them through the state machine.
//!
//! Every write goes through [`order_store`], which changes an order, appends to its history
//! and writes the outbox messages that announce it atomically, so the history can never
//! disagree with the order and Redis hears of exactly what was committed (see
//! [`crate::bus::outbox`]).

use base64::Engine;
use chrono::{DateTime, Utc};
use entity::order;
use sea_orm::sea_query::Condition;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::auth::Principal;
use crate::bus::outbox::Outbox;
use crate::db;
use crate::domain::order_status::{self, StatusChange};
use crate::domain::{Actor, Address, Cart, IdempotencyKey, Money, OrderStatus};
use crate::error::AppError;
use crate::services::accounts;
use crate::services::catalog::Snapshot;
use crate::services::order_store::{self, NewEvent, NewOrder};

/// The most orders one page of `myOrders` returns.
pub const MAX_PAGE: u64 = 100;
/// How often a status change is retried when another writer changed the order meanwhile.
const CAS_ATTEMPTS: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub status: OrderStatus,
    pub version: i32,
    pub subtotal: Money,
    pub discount: Money,
    pub total: Money,
    pub shipping_address: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<order::Model> for Order {
    fn from(m: order::Model) -> Self {
        Order {
            id: m.id,
            customer_id: m.customer_id,
            status: m.status,
            version: m.version,
            subtotal: Money::from_cents(m.subtotal_cents),
            discount: Money::from_cents(m.discount_cents),
            total: Money::from_cents(m.total_cents),
            shipping_address: m.shipping_address,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// A validated `placeOrder` request.
#[derive(Debug, Clone)]
pub struct PlaceOrder {
    pub cart: Cart,
    pub shipping_address: Option<Address>,
    pub idempotency_key: Option<IdempotencyKey>,
}

/// Where a page of orders starts: after this order in newest-first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    created_at: DateTime<Utc>,
    id: Uuid,
}

impl Cursor {
    const VERSION: &'static str = "o1";

    pub fn of(order: &Order) -> Self {
        Cursor { created_at: order.created_at, id: order.id }
    }

    pub fn encode(self) -> String {
        let raw = format!("{}|{}|{}", Self::VERSION, self.created_at.timestamp_micros(), self.id);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let mut parts = raw.split('|');
        let (Some(Self::VERSION), Some(micros), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        Some(Cursor {
            created_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: Uuid::parse_str(id).ok()?,
        })
    }
}

pub struct OrderPage {
    pub orders: Vec<Order>,
    pub has_next_page: bool,
}

/// Places an order for `customer`: prices it against `catalog`, then stores the order, its
/// lines, its discounts, its first event and its outbox messages atomically (see
/// [`order_store`]), and hands the messages to the relay. With an idempotency key, a
/// repeat of the same request returns the order the first one created, even when both
/// race: the unique index on the key decides, and the loser replays the winner's order.
#[tracing::instrument(skip_all, fields(customer = %customer.user_id))]
pub async fn place(
    db: &DatabaseConnection,
    catalog: &Snapshot,
    outbox: &Outbox,
    customer: Principal,
    request: PlaceOrder,
) -> Result<Order, AppError> {
    let quote = catalog.quote(&request.cart)?;
    let new = NewOrder {
        id: Uuid::now_v7(),
        customer_id: customer.user_id,
        shipping_address: request.shipping_address.as_ref().map(|a| a.as_str().to_owned()),
        idempotency_key: request.idempotency_key.as_ref().map(|k| k.as_str().to_owned()),
        cart_fingerprint: request.cart.fingerprint(),
        quote,
    };
    match order_store::insert(db, &new).await {
        Ok(Some(stored)) => {
            outbox.committed(stored.written);
            tracing::info!(order = %new.id, total = %new.quote.total, "order placed");
            Ok(Order {
                id: new.id,
                customer_id: new.customer_id,
                status: OrderStatus::Pending,
                version: 1,
                subtotal: new.quote.subtotal,
                discount: new.quote.discount,
                total: new.quote.total,
                shipping_address: stored.shipping_address,
                created_at: stored.created_at,
                updated_at: stored.created_at,
            })
        }
        Ok(None) => Err(AppError::Unauthenticated("your account no longer exists")),
        Err(err) => match (&request.idempotency_key, db::unique_violation(&err)) {
            // Lost a race with (or repeated) an earlier request: its order is the answer.
            (Some(key), Some(_)) => {
                let account_address = accounts::find_address(db, customer.user_id)
                    .await?
                    .ok_or(AppError::Unauthenticated("your account no longer exists"))?;
                let address = new.shipping_address.unwrap_or(account_address);
                let fingerprint = order_store::fingerprint(&new.cart_fingerprint, &address);
                replay(db, customer.user_id, key, &fingerprint).await?.ok_or_else(|| {
                    AppError::Internal(anyhow::anyhow!("idempotency key collided but no order holds it"))
                })
            }
            _ => Err(err.into()),
        },
    }
}

/// The order an earlier request with `key` created, if any; `CONFLICT` when that request
/// asked for something else.
async fn replay(
    db: &impl ConnectionTrait,
    customer_id: Uuid,
    key: &IdempotencyKey,
    fingerprint: &str,
) -> Result<Option<Order>, AppError> {
    let existing = order::Entity::find()
        .filter(order::Column::CustomerId.eq(customer_id))
        .filter(order::Column::IdempotencyKey.eq(key.as_str()))
        .one(db)
        .await?;
    match existing {
        None => Ok(None),
        Some(model) if model.request_fingerprint.as_deref() == Some(fingerprint) => Ok(Some(Order::from(model))),
        Some(_) => Err(AppError::Conflict {
            field: Some("idempotencyKey".into()),
            message: "this idempotency key was already used for a different order".into(),
        }),
    }
}

/// An order the caller may see: their own, or any for staff. Anything else is `NOT_FOUND`,
/// so that customers cannot probe which order ids exist.
pub async fn find_visible(db: &impl ConnectionTrait, caller: Principal, id: Uuid) -> Result<Order, AppError> {
    let model = order::Entity::find_by_id(id).one(db).await?.ok_or(AppError::NotFound("order"))?;
    let order = Order::from(model);
    if !is_visible(caller, &order) {
        return Err(AppError::NotFound("order"));
    }
    Ok(order)
}

/// Whether `caller` may see `order`: its owner, or staff.
pub fn is_visible(caller: Principal, order: &Order) -> bool {
    caller.role.is_staff() || order.customer_id == caller.user_id
}

/// A page of a customer's orders, newest first.
pub async fn list_for_customer(
    db: &impl ConnectionTrait,
    customer_id: Uuid,
    first: u64,
    after: Option<Cursor>,
    status: Option<OrderStatus>,
) -> Result<OrderPage, AppError> {
    let mut query = order::Entity::find().filter(order::Column::CustomerId.eq(customer_id));
    if let Some(status) = status {
        query = query.filter(order::Column::Status.eq(status));
    }
    if let Some(cursor) = after {
        query = query.filter(Condition::any().add(order::Column::CreatedAt.lt(cursor.created_at)).add(
            Condition::all().add(order::Column::CreatedAt.eq(cursor.created_at)).add(order::Column::Id.lt(cursor.id)),
        ));
    }
    let first = first.min(MAX_PAGE);
    let mut models =
        query.order_by_desc(order::Column::CreatedAt).order_by_desc(order::Column::Id).limit(first + 1).all(db).await?;
    let has_next_page = models.len() as u64 > first;
    models.truncate(first as usize);
    Ok(OrderPage { orders: models.into_iter().map(Order::from).collect(), has_next_page })
}

/// Moves an order to `to` on behalf of `caller`, following the state machine. The same
/// status again is a no-op. A compare-and-set on `version` makes concurrent writers take
/// turns: the loser re-reads and re-plans (and usually finds a no-op).
#[tracing::instrument(skip_all, fields(order = %id, to = %to))]
pub async fn change_status(
    db: &DatabaseConnection,
    outbox: &Outbox,
    caller: Principal,
    id: Uuid,
    to: OrderStatus,
    note: Option<String>,
) -> Result<Order, AppError> {
    let actor = if caller.role.is_staff() { Actor::Staff } else { Actor::Owner };
    for _ in 0..CAS_ATTEMPTS {
        let order = find_visible(db, caller, id).await?;
        let (from, to) = match order_status::plan(order.status, to, actor, note.is_some())? {
            StatusChange::Unchanged => return Ok(order),
            StatusChange::Move { from, to } => (from, to),
        };
        let new = NewEvent {
            order_id: id,
            customer_id: order.customer_id,
            status: to,
            version: order.version + 1,
            note: note.clone(),
            not_before: order.updated_at,
        };
        let Some((event, written)) = order_store::advance(db, &new).await? else {
            continue;
        };
        outbox.committed([written]);
        tracing::info!(%from, version = event.version, "order status changed");
        return Ok(Order { status: to, version: event.version, updated_at: event.at, ..order });
    }
    Err(AppError::Conflict { field: None, message: "the order is being changed by someone else; try again".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor { created_at: db::now(), id: Uuid::now_v7() };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for bad in [
            "",
            "!!",
            "bzE",
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("o1|x|y"),
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o2|1|{}", Uuid::nil())),
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }
}
