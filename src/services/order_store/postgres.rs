//! PostgreSQL: each write is one statement of data-modifying common table expressions.

use chrono::{DateTime, Utc};
use minifig_common::telemetry::propagation;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, Statement, Value};

use super::{DiscountRow, NewEvent, NewOrder, Stored, json, line_rows, pending, stored_event};
use crate::bus::outbox::{OutboxMessage, TOPIC_ORDERS, TOPIC_STATUS, Written};
use crate::domain::StatusEvent;

/// The outbox payload of the event in CTE `event`, built in SQL because its number and
/// time are only known there: the fields of [`StatusEvent`]'s serde form (which SQLite
/// writes), and what Redis carries, verbatim (the pipeline tests read such rows and the
/// messages on Redis, and compare them with the contract and the history). A macro, so
/// that both statements below are constants with it in place. `$traceparent` is the
/// statement's parameter with the writer's trace context: when it is not null it is the
/// last key, `traceparent`, as serde writes it on SQLite; when it is null there is no such
/// key at all, so that the message is what it was before traces.
macro_rules! status_payload_sql {
    ($traceparent:literal) => {
        concat!(
            "(CASE WHEN ",
            $traceparent,
            "::text IS NULL THEN json_build_object(",
            status_fields_sql!(),
            ") ELSE json_build_object(",
            status_fields_sql!(),
            ", 'traceparent', ",
            $traceparent,
            "::text) END)::text"
        )
    };
}
macro_rules! status_fields_sql {
    () => {
        "'orderId', event.order_id, 'userId', event.customer_id, \
         'status', event.status, 'version', event.version, 'at', event.at, 'note', event.note, 'seq', event.seq"
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
    INSERT INTO outbox (topic, payload, created_at, traceparent)
    SELECT m.topic, m.payload, now(), $14::text
    FROM event, LATERAL (VALUES (1, $11::text, $12::text), (2, $13::text, "#,
    status_payload_sql!("$14"),
    r#")) AS m(n, topic, payload)
    ORDER BY m.n
    RETURNING id, topic, payload
)
SELECT o.shipping_address, o.created_at, event.seq, messages.id, messages.topic, messages.payload
FROM o, event, messages ORDER BY messages.id
"#
);

pub(super) async fn insert_in_one_statement(db: &DatabaseConnection, new: &NewOrder) -> Result<Option<Stored>, DbErr> {
    let lines = json(&line_rows(&new.quote))?;
    let discounts: Vec<DiscountRow<'_>> = new
        .quote
        .applied_discounts
        .iter()
        .map(|d| DiscountRow { code: &d.code, description: &d.description, amount_cents: d.amount.cents() })
        .collect();
    let discounts = json(&discounts)?;
    // The trace of the current span (`placeOrder`'s), for both rows.
    let order_message = OutboxMessage::order(new.id);
    let traceparent = order_message.traceparent().map(str::to_owned);
    let (order_topic, order_payload) = order_message.encode()?;
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
        traceparent.clone().into(),
    ];
    let rows =
        db.query_all_raw(Statement::from_sql_and_values(DatabaseBackend::Postgres, INSERT_ORDER_SQL, values)).await?;
    let Some(first) = rows.first() else { return Ok(None) };
    let shipping_address: String = first.try_get("", "shipping_address")?;
    let created_at: DateTime<Utc> = first.try_get("", "created_at")?;
    let seq: i64 = first.try_get("", "seq")?;
    let (mut order, mut event) = (Some(order_message), Some(pending(new, seq, created_at)));
    let mut written = Vec::with_capacity(2);
    for row in &rows {
        let id: i64 = row.try_get("", "id")?;
        let topic: String = row.try_get("", "topic")?;
        let message = match topic.as_str() {
            TOPIC_ORDERS => order.take(),
            // The payload as the statement wrote it: what Redis carries.
            _ => event
                .take()
                .map(|event| {
                    row.try_get("", "payload").map(|json| OutboxMessage::Status {
                        event,
                        json,
                        traceparent: traceparent.clone(),
                    })
                })
                .transpose()?,
        };
        if let Some(message) = message {
            written.push(Written { id, message });
        }
    }
    Ok(Some(Stored { shipping_address, created_at, written }))
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
    INSERT INTO outbox (topic, payload, created_at, traceparent)
    SELECT $6, "#,
    status_payload_sql!("$7"),
    r#", now(), $7::text FROM event
    RETURNING id, payload
)
SELECT message.id, message.payload, event.seq, event.at FROM message, event
"#
);

pub(super) async fn advance_in_one_statement(
    db: &DatabaseConnection,
    new: &NewEvent,
) -> Result<Option<(StatusEvent, Written)>, DbErr> {
    // The trace of the current span (the status change's), for the row and its message.
    let traceparent = propagation::current_traceparent();
    let values: Vec<Value> = vec![
        new.order_id.into(),
        (new.version - 1).into(),
        new.status.into(),
        new.version.into(),
        new.note.clone().into(),
        TOPIC_STATUS.into(),
        traceparent.clone().into(),
    ];
    let row = db.query_one_raw(Statement::from_sql_and_values(DatabaseBackend::Postgres, ADVANCE_SQL, values)).await?;
    let Some(row) = row else { return Ok(None) };
    let event = stored_event(new, row.try_get("", "seq")?, row.try_get("", "at")?);
    let message = OutboxMessage::Status { event: event.clone(), json: row.try_get("", "payload")?, traceparent };
    let written = Written { id: row.try_get("", "id")?, message };
    Ok(Some((event, written)))
}
