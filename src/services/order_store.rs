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

use chrono::{DateTime, Utc};
use entity::{order, order_discount, order_event, order_line};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, Statement, TransactionTrait, Value,
};
use serde::Serialize;
use uuid::Uuid;

use crate::bus::StatusEvent;
use crate::bus::outbox::{self, OutboxMessage, TOPIC_ORDERS, TOPIC_STATUS, Written};
use crate::domain::{LineKind, OrderStatus, Quote};
use crate::services::accounts;

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
    pub at: DateTime<Utc>,
}

/// What [`insert`] stored beyond what the caller knew.
pub struct Stored {
    pub shipping_address: String,
    /// To hand to [`outbox::Outbox::committed`].
    pub written: Vec<Written>,
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
    let pending = StatusEvent {
        order_id: new.id,
        user_id: new.customer_id,
        status: OrderStatus::Pending,
        version: 1,
        at: new.at,
        note: None,
    };
    let messages = [OutboxMessage::Order(new.id), OutboxMessage::Status(pending)];
    match db.get_database_backend() {
        DatabaseBackend::Postgres => insert_in_one_statement(db, new, messages).await,
        _ => insert_in_transaction(db, new, messages).await,
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

/// The whole order in one statement (`'|A:'` is [`FINGERPRINT_ADDRESS`]; the idempotency
/// tests replay orders stored this way against the fingerprint computed in Rust). Lines and discounts travel as JSON arrays, so the
/// statement's text is the same for every cart and stays prepared on each connection.
const INSERT_ORDER_SQL: &str = r#"
WITH o AS (
    INSERT INTO orders (id, customer_id, status, version, subtotal_cents, discount_cents, total_cents,
                        shipping_address, idempotency_key, request_fingerprint, created_at, updated_at, dispatched_at)
    SELECT $1, u.id, 'PENDING', 1, $3, $4, $5, COALESCE($6::text, u.address), $7::text,
           CASE WHEN $7::text IS NULL THEN NULL ELSE $8::text || '|A:' || COALESCE($6::text, u.address) END,
           $9, $9, $9
    FROM users u WHERE u.id = $2
    RETURNING id, shipping_address
), lines AS (
    INSERT INTO order_lines (order_id, position, kind, figurine_id, package_id, quantity,
                             unit_price_cents, subtotal_cents, discount_cents, total_cents)
    SELECT o.id, l.position, l.kind, l.figurine_id, l.package_id, l.quantity,
           l.unit_price_cents, l.subtotal_cents, l.discount_cents, l.total_cents
    FROM o, json_to_recordset($10::json) AS l(position int, kind text, figurine_id uuid, package_id uuid,
        quantity int, unit_price_cents bigint, subtotal_cents bigint, discount_cents bigint, total_cents bigint)
), discounts AS (
    INSERT INTO order_discounts (order_id, code, description, amount_cents)
    SELECT o.id, d.code, d.description, d.amount_cents
    FROM o, json_to_recordset($11::json) AS d(code text, description text, amount_cents bigint)
), event AS (
    INSERT INTO order_events (order_id, version, status, note, at)
    SELECT o.id, 1, 'PENDING', NULL, $9 FROM o
), messages AS (
    INSERT INTO outbox (topic, payload, created_at)
    SELECT m.topic, m.payload, $9
    FROM o, (VALUES (1, $12::text, $13::text), (2, $14::text, $15::text)) AS m(n, topic, payload)
    ORDER BY m.n
    RETURNING id, topic
)
SELECT o.shipping_address, messages.id, messages.topic FROM o, messages ORDER BY messages.id
"#;

async fn insert_in_one_statement(
    db: &DatabaseConnection,
    new: &NewOrder,
    messages: [OutboxMessage; 2],
) -> Result<Option<Stored>, DbErr> {
    let lines = json(&line_rows(&new.quote))?;
    let discounts: Vec<DiscountRow<'_>> = new
        .quote
        .applied_discounts
        .iter()
        .map(|d| DiscountRow { code: &d.code, description: &d.description, amount_cents: d.amount.cents() })
        .collect();
    let discounts = json(&discounts)?;
    let (order_topic, order_payload) = messages[0].encode()?;
    let (status_topic, status_payload) = messages[1].encode()?;
    let values: Vec<Value> = vec![
        new.id.into(),
        new.customer_id.into(),
        new.quote.subtotal.cents().into(),
        new.quote.discount.cents().into(),
        new.quote.total.cents().into(),
        new.shipping_address.clone().into(),
        new.idempotency_key.clone().into(),
        new.cart_fingerprint.clone().into(),
        new.at.into(),
        lines.into(),
        discounts.into(),
        order_topic.into(),
        order_payload.into(),
        status_topic.into(),
        status_payload.into(),
    ];
    let rows =
        db.query_all_raw(Statement::from_sql_and_values(DatabaseBackend::Postgres, INSERT_ORDER_SQL, values)).await?;
    let Some(first) = rows.first() else { return Ok(None) };
    let shipping_address: String = first.try_get("", "shipping_address")?;
    let mut written = Vec::with_capacity(2);
    let [order_message, status_message] = messages;
    let mut by_topic = [(TOPIC_ORDERS, Some(order_message)), (TOPIC_STATUS, Some(status_message))];
    for row in &rows {
        let id: i64 = row.try_get("", "id")?;
        let topic: String = row.try_get("", "topic")?;
        if let Some((_, message)) = by_topic.iter_mut().find(|(t, _)| *t == topic)
            && let Some(message) = message.take()
        {
            written.push(Written { id, message });
        }
    }
    Ok(Some(Stored { shipping_address, written }))
}

async fn insert_in_transaction(
    db: &DatabaseConnection,
    new: &NewOrder,
    messages: [OutboxMessage; 2],
) -> Result<Option<Stored>, DbErr> {
    // Read before the transaction begins: on SQLite a transaction that reads and then
    // writes cannot wait for another process's writer, and fails with "database is locked".
    let Some(account) = accounts::find_address(db, new.customer_id).await? else {
        return Ok(None);
    };
    let shipping_address = new.shipping_address.clone().unwrap_or(account);
    let txn = db.begin().await?;
    order::ActiveModel {
        id: Set(new.id),
        customer_id: Set(new.customer_id),
        status: Set(OrderStatus::Pending.as_str().to_owned()),
        version: Set(1),
        subtotal_cents: Set(new.quote.subtotal.cents()),
        discount_cents: Set(new.quote.discount.cents()),
        total_cents: Set(new.quote.total.cents()),
        shipping_address: Set(shipping_address.clone()),
        idempotency_key: Set(new.idempotency_key.clone()),
        request_fingerprint: Set(new
            .idempotency_key
            .as_ref()
            .map(|_| fingerprint(&new.cart_fingerprint, &shipping_address))),
        created_at: Set(new.at),
        updated_at: Set(new.at),
        dispatched_at: Set(Some(new.at)),
    }
    .insert(&txn)
    .await?;
    let lines = line_rows(&new.quote).into_iter().map(|line| order_line::ActiveModel {
        order_id: Set(new.id),
        position: Set(line.position),
        kind: Set(line.kind.to_owned()),
        figurine_id: Set(line.figurine_id),
        package_id: Set(line.package_id),
        quantity: Set(line.quantity),
        unit_price_cents: Set(line.unit_price_cents),
        subtotal_cents: Set(line.subtotal_cents),
        discount_cents: Set(line.discount_cents),
        total_cents: Set(line.total_cents),
        ..Default::default()
    });
    order_line::Entity::insert_many(lines).exec(&txn).await?;
    if !new.quote.applied_discounts.is_empty() {
        let discounts = new.quote.applied_discounts.iter().map(|d| order_discount::ActiveModel {
            order_id: Set(new.id),
            code: Set(d.code.clone()),
            description: Set(d.description.clone()),
            amount_cents: Set(d.amount.cents()),
            ..Default::default()
        });
        order_discount::Entity::insert_many(discounts).exec(&txn).await?;
    }
    insert_event(&txn, new.id, OrderStatus::Pending, 1, new.at, None).await?;
    let mut written = Vec::with_capacity(messages.len());
    for message in messages {
        written.push(outbox::write(&txn, message).await?);
    }
    txn.commit().await?;
    Ok(Some(Stored { shipping_address, written }))
}

/// Moves an order from `expected_version` to `event` (its status, version and time) and
/// appends the event with its outbox message, atomically. `None` when the order is no
/// longer at `expected_version`: another writer moved it first.
pub async fn advance(
    db: &DatabaseConnection,
    expected_version: i32,
    event: &StatusEvent,
) -> Result<Option<Vec<Written>>, DbErr> {
    let message = OutboxMessage::Status(event.clone());
    match db.get_database_backend() {
        DatabaseBackend::Postgres => advance_in_one_statement(db, expected_version, event, message).await,
        _ => advance_in_transaction(db, expected_version, event, message).await,
    }
}

const ADVANCE_SQL: &str = r#"
WITH moved AS (
    UPDATE orders SET status = $3, version = $4, updated_at = $5
    WHERE id = $1 AND version = $2
    RETURNING id
), event AS (
    INSERT INTO order_events (order_id, version, status, note, at)
    SELECT moved.id, $4, $3, $6::text, $5 FROM moved
), message AS (
    INSERT INTO outbox (topic, payload, created_at)
    SELECT $7, $8, $5 FROM moved
    RETURNING id
)
SELECT id FROM message
"#;

async fn advance_in_one_statement(
    db: &DatabaseConnection,
    expected_version: i32,
    event: &StatusEvent,
    message: OutboxMessage,
) -> Result<Option<Vec<Written>>, DbErr> {
    let (topic, payload) = message.encode()?;
    let values: Vec<Value> = vec![
        event.order_id.into(),
        expected_version.into(),
        event.status.as_str().into(),
        event.version.into(),
        event.at.into(),
        event.note.clone().into(),
        topic.into(),
        payload.into(),
    ];
    let row = db.query_one_raw(Statement::from_sql_and_values(DatabaseBackend::Postgres, ADVANCE_SQL, values)).await?;
    match row {
        Some(row) => Ok(Some(vec![Written { id: row.try_get("", "id")?, message }])),
        None => Ok(None),
    }
}

async fn advance_in_transaction(
    db: &DatabaseConnection,
    expected_version: i32,
    event: &StatusEvent,
    message: OutboxMessage,
) -> Result<Option<Vec<Written>>, DbErr> {
    let txn = db.begin().await?;
    let updated = order::Entity::update_many()
        .col_expr(order::Column::Status, Expr::value(event.status.as_str()))
        .col_expr(order::Column::Version, Expr::value(event.version))
        .col_expr(order::Column::UpdatedAt, Expr::value(event.at))
        .filter(order::Column::Id.eq(event.order_id))
        .filter(order::Column::Version.eq(expected_version))
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        txn.rollback().await?;
        return Ok(None);
    }
    insert_event(&txn, event.order_id, event.status, event.version, event.at, event.note.clone()).await?;
    let written = outbox::write(&txn, message).await?;
    txn.commit().await?;
    Ok(Some(vec![written]))
}

async fn insert_event(
    txn: &impl ConnectionTrait,
    order_id: Uuid,
    status: OrderStatus,
    version: i32,
    at: DateTime<Utc>,
    note: Option<String>,
) -> Result<(), DbErr> {
    order_event::ActiveModel {
        order_id: Set(order_id),
        version: Set(version),
        status: Set(status.as_str().to_owned()),
        note: Set(note),
        at: Set(at),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok(())
}
