//! Every other backend (SQLite): the same rows, written by several statements in one
//! transaction, which costs no round trips on an embedded database.

use entity::{order, order_discount, order_event, order_line};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, Statement, TransactionTrait,
};
use uuid::Uuid;

use super::{NewEvent, NewOrder, Stored, fingerprint, line_rows, pending, stored_event};
use crate::bus::outbox::{self, OutboxMessage, Written};
use crate::db;
use crate::domain::{OrderStatus, StatusEvent};

pub(super) async fn insert_in_transaction(db: &DatabaseConnection, new: &NewOrder) -> Result<Option<Stored>, DbErr> {
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
    for message in [OutboxMessage::order(new.id), OutboxMessage::status(event)?] {
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

pub(super) async fn advance_in_transaction(
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
