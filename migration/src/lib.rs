//! Schema migrations of MiniFigurine.
//!
//! The same code runs on SQLite and PostgreSQL: tables, constraints and indexes are built with
//! sea-query's backend-agnostic schema builders, and the catalog seed is plain `INSERT`s.
//! The server applies pending migrations at start (`Migrator::up(&db, None)`).

pub use sea_orm_migration::prelude::*;
use uuid::Uuid;

mod m20261124_000001_initial;
mod m20261124_000002_outbox;
mod m20261201_000003_catalog_notify;
mod m20261202_000004_event_sequence;
mod m20261202_000005_outbox_claim;
mod m20261202_000006_outbox_traceparent;

pub use m20261201_000003_catalog_notify::CATALOG_CHANNEL;

/// Namespace of the deterministic (UUID v5) ids of the seeded catalog: a figurine's id is
/// `Uuid::new_v5(&CATALOG_NAMESPACE, sku.as_bytes())`, a package's id is
/// `Uuid::new_v5(&CATALOG_NAMESPACE, code.as_bytes())`. Never change it: ids of seeded items
/// are referenced by stored orders and by clients.
pub const CATALOG_NAMESPACE: Uuid = Uuid::from_u128(0x9bee_fb1c_c280_4fab_99f9_0cc5_19e5_fab1);

/// The id the seed gives to the catalog item (figurine or package) with this SKU or code.
pub fn catalog_id(sku_or_code: &str) -> Uuid {
    Uuid::new_v5(&CATALOG_NAMESPACE, sku_or_code.as_bytes())
}

/// All migrations of MiniFigurine, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_initial::Migration),
            Box::new(m20261124_000002_outbox::Migration),
            Box::new(m20261201_000003_catalog_notify::Migration),
            Box::new(m20261202_000004_event_sequence::Migration),
            Box::new(m20261202_000005_outbox_claim::Migration),
            Box::new(m20261202_000006_outbox_traceparent::Migration),
        ]
    }
}
