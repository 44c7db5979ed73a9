//! Connecting to the database (SQLite or PostgreSQL by URL), migrating it, and reading the
//! few database errors that mean something to a client.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, SubsecRound, Utc};
use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sea_orm::{ConnectOptions, Database, DatabaseBackend, DatabaseConnection, DbErr, SqlErr};

/// Opens a pool. SQLite gets one connection: SQLite has one writer at a time anyway, and a
/// single connection removes the "database is locked" failures of concurrent upgrades from
/// read to write transactions. WAL keeps readers of the file (backups, the CLI) unblocked.
pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    // Every statement is logged at TRACE (`RUST_LOG=sqlx::query=trace`): free while that
    // level is off, and what the tests count statements per request with.
    options
        .sqlx_logging(true)
        .sqlx_logging_level(log::LevelFilter::Trace)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10));
    if url.starts_with("sqlite:") {
        options.max_connections(1).map_sqlx_sqlite_opts(|opts: SqliteConnectOptions| {
            opts.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
        });
    } else {
        options.max_connections(20).min_connections(1);
    }
    Database::connect(options).await.context("failed to connect to the database")
}

/// Applies every pending migration; safe to run from several instances at once on
/// PostgreSQL (sea-orm-migration takes a lock) and idempotent.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None).await.context("failed to apply database migrations")
}

/// The message of a unique-constraint violation, if that is what `err` is. Callers match on
/// the index or column name in it, which works for both PostgreSQL (`… constraint
/// "users_email_key"`) and SQLite (`UNIQUE constraint failed: users.email`).
pub fn unique_violation(err: &DbErr) -> Option<String> {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) => Some(message),
        _ => None,
    }
}

/// The current time at the precision both databases store (microseconds), so that a value
/// read back equals the value written and time comparisons never flip. Only for SQLite's
/// writes and for what no other instance compares: on PostgreSQL stored times come from
/// the database ([`now_in`], [`ago_in`]), so instances whose clocks disagree agree on them.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// "Now" for a statement on `backend`: PostgreSQL's `now()`; on SQLite, which is embedded
/// and so shares this process's clock, this process's time.
pub fn now_in(backend: DatabaseBackend) -> SimpleExpr {
    match backend {
        DatabaseBackend::Postgres => Expr::cust("now()"),
        _ => Expr::value(now()),
    }
}

/// The time `ahead` after [`now_in`].
pub fn from_now_in(backend: DatabaseBackend, ahead: Duration) -> SimpleExpr {
    match backend {
        DatabaseBackend::Postgres => Expr::cust(format!("now() + interval '{} milliseconds'", ahead.as_millis())),
        _ => Expr::value(
            chrono::TimeDelta::from_std(ahead)
                .ok()
                .and_then(|ahead| now().checked_add_signed(ahead))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        ),
    }
}

/// The time `age` before [`now_in`].
pub fn ago_in(backend: DatabaseBackend, age: Duration) -> SimpleExpr {
    match backend {
        DatabaseBackend::Postgres => Expr::cust(format!("now() - interval '{} milliseconds'", age.as_millis())),
        _ => Expr::value(now() - chrono::TimeDelta::from_std(age).unwrap_or(chrono::TimeDelta::MAX)),
    }
}
