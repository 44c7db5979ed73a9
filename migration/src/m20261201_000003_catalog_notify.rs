//! Tells every API instance when the catalog changes. Instances serve the catalog from
//! memory; on PostgreSQL a statement trigger on each catalog table sends a `NOTIFY` on
//! [`CATALOG_CHANNEL`] at commit, and every instance listening re-reads the catalog. SQLite
//! has no notifications and needs none: its one server process notices another writer by
//! `PRAGMA data_version`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

/// The PostgreSQL notification channel (per database, like every channel).
pub const CATALOG_CHANNEL: &str = "minifig_catalog_changed";

const TABLES: [&str; 3] = ["figurines", "packages", "package_items"];

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "CREATE OR REPLACE FUNCTION minifig_catalog_changed() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN PERFORM pg_notify('{CATALOG_CHANNEL}', TG_TABLE_NAME); RETURN NULL; END $$"
        ))
        .await?;
        for table in TABLES {
            db.execute_unprepared(&format!(
                "CREATE TRIGGER {table}_catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} \
                 FOR EACH STATEMENT EXECUTE FUNCTION minifig_catalog_changed()"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for table in TABLES {
            db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {table}_catalog_changed ON {table}")).await?;
        }
        db.execute_unprepared("DROP FUNCTION IF EXISTS minifig_catalog_changed()").await?;
        Ok(())
    }
}
