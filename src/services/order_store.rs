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

use chrono::{DateTime, Utc};
use entity::{order, order_discount, order_event, order_line};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, Statement, TransactionTrait, Value,
};
use serde::Serialize;
use uuid::Uuid;

use crate::bus::outbox::{self, OutboxMessage, TOPIC_ORDERS, TOPIC_STATUS, Written};
use crate::db;
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
        DatabaseBackend::Postgres => insert_in_one_statement(db, new).await,
        _ => insert_in_transaction(db, new).await,
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

/// The outbox payload of the event in CTE `event`, built in SQL because its number and
/// time are only known there: the fields of [`StatusEvent`]'s serde form (which SQLite
/// writes), and what Redis carries, verbatim (the pipeline tests read such rows and the
/// messages on Redis, and compare them with the contract and the history). A macro, so
/// that both statements below are constants with it in place.
macro_rules! status_payload_sql {
    () => {
        "json_build_object('orderId', event.order_id, 'userId', event.customer_id, \
         'status', event.status, 'version', event.version, 'at', event.at, 'note', event.note, 'seq', event.seq)::text"
    };
}

/// The whole order in one statement (`'|A:'` is [`FINGERPRINT_ADDRESS`]; the idempotency
/// tests replay orders stored this way against the fingerprint computed in Rust). Lines and
/// discounts travel as JSON arrays, so the statement's text is the same for every cart and
/// stays prepared on each connection. The first CTE takes the customer's next event number
/// and, with it, the row lock that orders this customer's events by commit.
const INSERT_ORDER_SQL: &str = concat!(
    r#"
WITH u AS (
    UPDATE users SET event_seq = event_seq + 1 WHERE id = $2
    RETURNING id, address, event_seq
), o AS (
    INSERT INTO orders (id, customer_id, status, version, subtotal_cents, discount_cents, total_cents,
                        shipping_address, idempotency_key, request_fingerprint, created_at, updated_at, dispatched_at)
    SELECT $1, u.id, 'PENDING', 1, $3, $4, $5, COALESCE($6::text, u.address), $7::text,
           CASE WHEN $7::text IS NULL THEN NULL ELSE $8::text || '|A:' || COALESCE($6::text, u.address) END,
           now(), now(), now()
    FROM u
    RETURNING id, customer_id, shipping_address, created_at
), lines AS (
    INSERT INTO order_lines (order_id, position, kind, figurine_id, package_id, quantity,
                             unit_price_cents, subtotal_cents, discount_cents, total_cents)
    SELECT o.id, l.position, l.kind, l.figurine_id, l.package_id, l.quantity,
           l.unit_price_cents, l.subtotal_cents, l.discount_cents, l.total_cents
    FROM o, json_to_recordset($9::json) AS l(position int, kind text, figurine_id uuid, package_id uuid,
        quantity int, unit_price_cents bigint, subtotal_cents bigint, discount_cents bigint, total_cents bigint)
), discounts AS (
    INSERT INTO order_discounts (order_id, code, description, amount_cents)
    SELECT o.id, d.code, d.description, d.amount_cents
    FROM o, json_to_recordset($10::json) AS d(code text, description text, amount_cents bigint)
), event AS (
    INSERT INTO order_events (order_id, customer_id, seq, version, status, note, at)
    SELECT o.id, o.customer_id, u.event_seq, 1, 'PENDING', NULL, o.created_at FROM o, u
    RETURNING order_id, customer_id, seq, version, status, note, at
), messages AS (
    INSERT INTO outbox (topic, payload, created_at)
    SELECT m.topic, m.payload, now()
    FROM event, LATERAL (VALUES (1, $11::text, $12::text), (2, $13::text, "#,
    status_payload_sql!(),
    r#")) AS m(n, topic, payload)
    ORDER BY m.n
    RETURNING id, topic, payload
)
SELECT o.shipping_address, o.created_at, event.seq, messages.id, messages.topic, messages.payload
FROM o, event, messages ORDER BY messages.id
"#
);

async fn insert_in_one_statement(db: &DatabaseConnection, new: &NewOrder) -> Result<Option<Stored>, DbErr> {
    let lines = json(&line_rows(&new.quote))?;
    let discounts: Vec<DiscountRow<'_>> = new
        .quote
        .applied_discounts
        .iter()
        .map(|d| DiscountRow { code: &d.code, description: &d.description, amount_cents: d.amount.cents() })
        .collect();
    let discounts = json(&discounts)?;
    let (order_topic, order_payload) = OutboxMessage::Order(new.id).encode()?;
    let values: Vec<Value> = vec![
        new.id.into(),
        new.customer_id.into(),
        new.quote.subtotal.cents().into(),
        new.quote.discount.cents().into(),
        new.quote.total.cents().into(),
        new.shipping_address.clone().into(),
        new.idempotency_key.clone().into(),
        new.cart_fingerprint.clone().into(),
        lines.into(),
        discounts.into(),
        order_topic.into(),
        order_payload.into(),
        TOPIC_STATUS.into(),
    ];
    let rows =
        db.query_all_raw(Statement::from_sql_and_values(DatabaseBackend::Postgres, INSERT_ORDER_SQL, values)).await?;
    let Some(first) = rows.first() else { return Ok(None) };
    let shipping_address: String = first.try_get("", "shipping_address")?;
    let created_at: DateTime<Utc> = first.try_get("", "created_at")?;
    let seq: i64 = first.try_get("", "seq")?;
    let (mut order, mut event) = (Some(OutboxMessage::Order(new.id)), Some(pending(new, seq, created_at)));
    let mut written = Vec::with_capacity(2);
    for row in &rows {
        let id: i64 = row.try_get("", "id")?;
        let topic: String = row.try_get("", "topic")?;
        let message = match topic.as_str() {
            TOPIC_ORDERS => order.take(),
            // The payload as the statement wrote it: what Redis carries.
            _ => event
                .take()
                .map(|event| row.try_get("", "payload").map(|json| OutboxMessage::Status { event, json }))
                .transpose()?,
        };
        if let Some(message) = message {
            written.push(Written { id, message });
        }
    }
    Ok(Some(Stored { shipping_address, created_at, written }))
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

async fn insert_in_transaction(db: &DatabaseConnection, new: &NewOrder) -> Result<Option<Stored>, DbErr> {
    // The transaction writes first: on SQLite one that reads and then writes cannot wait
    // for another process's writer, and fails with "database is locked".
    let txn = db.begin().await?;
    let Some((seq, account_address)) = next_seq(&txn, new.customer_id).await? else {
        txn.rollback().await?;
        return Ok(None);
    };
    let shipping_address = new.shipping_address.clone().unwrap_or(account_address);
    let at = db::now();
    order::ActiveModel {
        id: Set(new.id),
        customer_id: Set(new.customer_id),
        status: Set(OrderStatus::Pending),
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
        created_at: Set(at),
        updated_at: Set(at),
        dispatched_at: Set(Some(at)),
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
    let event = pending(new, seq, at);
    insert_event(&txn, &event).await?;
    let mut written = Vec::with_capacity(2);
    for message in [OutboxMessage::Order(new.id), OutboxMessage::status(event)?] {
        written.push(outbox::write(&txn, message).await?);
    }
    txn.commit().await?;
    Ok(Some(Stored { shipping_address, created_at: at, written }))
}

/// Takes the customer's next event number (and with it the customer's row lock, held
/// until commit); also answers the account's address. `None`: no such account.
async fn next_seq(txn: &impl ConnectionTrait, customer_id: Uuid) -> Result<Option<(i64, String)>, DbErr> {
    let backend = txn.get_database_backend();
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE users SET event_seq = event_seq + 1 WHERE id = ? RETURNING event_seq, address",
            [customer_id.into()],
        ))
        .await?;
    row.map(|row| Ok((row.try_get("", "event_seq")?, row.try_get("", "address")?))).transpose()
}

/// Moves an order from `new.version - 1` to `new`, and appends the event with its outbox
/// message, atomically. `None` when the order is no longer at that version: another writer
/// moved it first.
pub async fn advance(db: &DatabaseConnection, new: &NewEvent) -> Result<Option<(StatusEvent, Written)>, DbErr> {
    match db.get_database_backend() {
        DatabaseBackend::Postgres => advance_in_one_statement(db, new).await,
        _ => advance_in_transaction(db, new).await,
    }
}

/// Locks the order by its compare-and-set, then the customer's row by taking the next
/// event number: always in that order, so two changes cannot deadlock.
const ADVANCE_SQL: &str = concat!(
    r#"
WITH moved AS (
    UPDATE orders SET status = $3, version = $4, updated_at = GREATEST(now(), updated_at)
    WHERE id = $1 AND version = $2
    RETURNING id, customer_id, updated_at
), u AS (
    UPDATE users SET event_seq = event_seq + 1 FROM moved WHERE users.id = moved.customer_id
    RETURNING users.event_seq
), event AS (
    INSERT INTO order_events (order_id, customer_id, seq, version, status, note, at)
    SELECT moved.id, moved.customer_id, u.event_seq, $4, $3, $5::text, moved.updated_at FROM moved, u
    RETURNING order_id, customer_id, seq, version, status, note, at
), message AS (
    INSERT INTO outbox (topic, payload, created_at)
    SELECT $6, "#,
    status_payload_sql!(),
    r#", now() FROM event
    RETURNING id, payload
)
SELECT message.id, message.payload, event.seq, event.at FROM message, event
"#
);

async fn advance_in_one_statement(
    db: &DatabaseConnection,
    new: &NewEvent,
) -> Result<Option<(StatusEvent, Written)>, DbErr> {
    let values: Vec<Value> = vec![
        new.order_id.into(),
        (new.version - 1).into(),
        new.status.into(),
        new.version.into(),
        new.note.clone().into(),
        TOPIC_STATUS.into(),
    ];
    let row = db.query_one_raw(Statement::from_sql_and_values(DatabaseBackend::Postgres, ADVANCE_SQL, values)).await?;
    let Some(row) = row else { return Ok(None) };
    let event = stored_event(new, row.try_get("", "seq")?, row.try_get("", "at")?);
    let message = OutboxMessage::Status { event: event.clone(), json: row.try_get("", "payload")? };
    let written = Written { id: row.try_get("", "id")?, message };
    Ok(Some((event, written)))
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

async fn advance_in_transaction(
    db: &DatabaseConnection,
    new: &NewEvent,
) -> Result<Option<(StatusEvent, Written)>, DbErr> {
    let at = db::now().max(new.not_before);
    let txn = db.begin().await?;
    let updated = order::Entity::update_many()
        .col_expr(order::Column::Status, Expr::value(new.status))
        .col_expr(order::Column::Version, Expr::value(new.version))
        .col_expr(order::Column::UpdatedAt, Expr::value(at))
        .filter(order::Column::Id.eq(new.order_id))
        .filter(order::Column::Version.eq(new.version - 1))
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        txn.rollback().await?;
        return Ok(None);
    }
    let Some((seq, _)) = next_seq(&txn, new.customer_id).await? else {
        // The order's customer always exists (foreign key); this is a broken database.
        txn.rollback().await?;
        return Err(DbErr::Custom(format!("order {} has no customer", new.order_id)));
    };
    let event = stored_event(new, seq, at);
    insert_event(&txn, &event).await?;
    let written = outbox::write(&txn, OutboxMessage::status(event.clone())?).await?;
    txn.commit().await?;
    Ok(Some((event, written)))
}

async fn insert_event(txn: &impl ConnectionTrait, event: &StatusEvent) -> Result<(), DbErr> {
    order_event::ActiveModel {
        order_id: Set(event.order_id),
        customer_id: Set(event.user_id),
        seq: Set(event.seq),
        version: Set(event.version),
        status: Set(event.status),
        note: Set(event.note.clone()),
        at: Set(event.at),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok(())
}
