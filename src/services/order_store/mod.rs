//! The two writes of an order's life, each atomic and each with its outbox messages: storing
//! a new order ([`insert`]) and moving it to its next status ([`advance`]). The only writer
//! of `orders`, `order_lines`, `order_discounts` and `order_events`.
//!
//! On PostgreSQL each write is one statement: data-modifying common table expressions
//! insert the order, its lines, discounts, first event and outbox rows together, so
//! `placeOrder` costs a single round trip and no `BEGIN`/`COMMIT` (a statement is atomic on
//! its own). SQLite has no data-modifying CTEs; there the same rows are written by several
//! statements in one transaction, which costs no network round trips on an embedded
//! database. The black-box tests run against both, so the two stay equivalent.
//!
//! Every event takes the next number of its customer's sequence (`users.event_seq`, see
//! migration `m20261202_000004_event_sequence`), and on PostgreSQL every time written here
//! is the database's `now()`: instances whose clocks disagree cannot reorder a history or
//! hide an order from redelivery.

mod postgres;
mod transaction;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseBackend, DatabaseConnection, DbErr};
use serde::Serialize;
use uuid::Uuid;

use crate::bus::outbox::Written;
use crate::domain::{LineKind, OrderStatus, Quote, StatusEvent};

/// A priced order about to be stored.
pub struct NewOrder {
    pub id: Uuid,
    pub customer_id: Uuid,
    /// `None`: the customer's own address.
    pub shipping_address: Option<String>,
    pub idempotency_key: Option<String>,
    /// The cart's [`crate::domain::Cart::fingerprint`]; with the resolved shipping address it
    /// tells a repeat of a request from a different one under the same idempotency key.
    pub cart_fingerprint: String,
    pub quote: Quote,
}

/// What [`insert`] stored beyond what the caller knew.
pub struct Stored {
    pub shipping_address: String,
    pub created_at: DateTime<Utc>,
    /// To hand to [`outbox::Outbox::committed`].
    pub written: Vec<Written>,
}

/// A status change about to be stored: the order moves from `version - 1` to `version`.
pub struct NewEvent {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub status: OrderStatus,
    pub version: i32,
    pub note: Option<String>,
    /// The previous event's time: a history never goes back in time, even when the clock
    /// that stamps it steps back.
    pub not_before: DateTime<Utc>,
}

/// The stored request fingerprint of an order placed with an idempotency key.
pub fn fingerprint(cart_fingerprint: &str, shipping_address: &str) -> String {
    format!("{cart_fingerprint}{FINGERPRINT_ADDRESS}{shipping_address}")
}

/// Between the cart's fingerprint and the address in [`fingerprint`] (also spelled in SQL).
const FINGERPRINT_ADDRESS: &str = "|A:";

/// Stores `new` with its lines, discounts, PENDING event and outbox messages, atomically.
/// `None` when the customer's account no longer exists. A unique violation means an order
/// with the same idempotency key exists.
pub async fn insert(db: &DatabaseConnection, new: &NewOrder) -> Result<Option<Stored>, DbErr> {
    match db.get_database_backend() {
        DatabaseBackend::Postgres => postgres::insert_in_one_statement(db, new).await,
        _ => transaction::insert_in_transaction(db, new).await,
    }
}

#[derive(Serialize)]
struct LineRow {
    position: i32,
    kind: &'static str,
    figurine_id: Option<Uuid>,
    package_id: Option<Uuid>,
    quantity: i32,
    unit_price_cents: i64,
    subtotal_cents: i64,
    discount_cents: i64,
    total_cents: i64,
}

#[derive(Serialize)]
struct DiscountRow<'a> {
    code: &'a str,
    description: &'a str,
    amount_cents: i64,
}

fn line_rows(quote: &Quote) -> Vec<LineRow> {
    quote
        .lines
        .iter()
        .enumerate()
        .map(|(position, line)| LineRow {
            position: position as i32,
            kind: line.kind.as_str(),
            figurine_id: (line.kind == LineKind::Figurine).then_some(line.item_id),
            package_id: (line.kind == LineKind::Package).then_some(line.item_id),
            quantity: line.quantity as i32,
            unit_price_cents: line.unit_price.cents(),
            subtotal_cents: line.subtotal.cents(),
            discount_cents: line.discount.cents(),
            total_cents: line.total.cents(),
        })
        .collect()
}

fn json(rows: &impl Serialize) -> Result<String, DbErr> {
    serde_json::to_string(rows).map_err(|err| DbErr::Custom(format!("order rows: {err}")))
}

/// The first event of `new`, as stored.
fn pending(new: &NewOrder, seq: i64, at: DateTime<Utc>) -> StatusEvent {
    StatusEvent {
        order_id: new.id,
        user_id: new.customer_id,
        status: OrderStatus::Pending,
        version: 1,
        at,
        note: None,
        seq,
    }
}

/// Moves an order from `new.version - 1` to `new`, and appends the event with its outbox
/// message, atomically. `None` when the order is no longer at that version: another writer
/// moved it first.
pub async fn advance(db: &DatabaseConnection, new: &NewEvent) -> Result<Option<(StatusEvent, Written)>, DbErr> {
    match db.get_database_backend() {
        DatabaseBackend::Postgres => postgres::advance_in_one_statement(db, new).await,
        _ => transaction::advance_in_transaction(db, new).await,
    }
}

fn stored_event(new: &NewEvent, seq: i64, at: DateTime<Utc>) -> StatusEvent {
    StatusEvent {
        order_id: new.order_id,
        user_id: new.customer_id,
        status: new.status,
        version: new.version,
        at,
        note: new.note.clone(),
        seq,
    }
}
