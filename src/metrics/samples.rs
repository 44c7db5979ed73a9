//! Gauges read when Prometheus scrapes, for what changes without a step the code could
//! count: the connection pool, the outbox table, readiness.

use metrics::{Unit, describe_gauge, gauge};
use sea_orm::{DatabaseBackend, DatabaseConnection};

use crate::bus::outbox::Backlog;

const POOL_CONNECTIONS: &str = "minifig_db_pool_connections";
const POOL_MAX: &str = "minifig_db_pool_max_connections";
const OUTBOX_WAITING: &str = "minifig_outbox_rows_waiting";
const OUTBOX_OLDEST: &str = "minifig_outbox_oldest_age_seconds";
const READY: &str = "minifig_ready";

pub(super) fn describe() {
    describe_gauge!(POOL_CONNECTIONS, "Database connections open, by state (`in_use` or `idle`)");
    describe_gauge!(POOL_MAX, "Most database connections the pool opens");
    describe_gauge!(OUTBOX_WAITING, "Outbox rows not yet published (in the table, across every instance)");
    describe_gauge!(OUTBOX_OLDEST, Unit::Seconds, "Age of the oldest outbox row not yet published (0 when none waits)");
    describe_gauge!(READY, "1 when this instance answers /readyz with 200, 0 otherwise");
}

/// Sets the scrape-time gauges. `backlog` is `None` when the database did not answer: the
/// outbox gauges then keep their last value, as Prometheus expects of a failed read.
pub fn sample(db: &DatabaseConnection, backlog: Option<&Backlog>, ready: bool) {
    let (size, idle, max) = match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle(), pool.options().get_max_connections())
        }
        DatabaseBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle(), pool.options().get_max_connections())
        }
        _ => (0, 0, 0),
    };
    let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(size);
    gauge!(POOL_CONNECTIONS, "state" => "in_use").set(f64::from(size - idle));
    gauge!(POOL_CONNECTIONS, "state" => "idle").set(f64::from(idle));
    gauge!(POOL_MAX).set(f64::from(max));
    if let Some(backlog) = backlog {
        gauge!(OUTBOX_WAITING).set(backlog.waiting as f64);
        gauge!(OUTBOX_OLDEST).set(backlog.oldest_age.map_or(0.0, |age| age.as_secs_f64()));
    }
    gauge!(READY).set(if ready { 1.0 } else { 0.0 });
}
