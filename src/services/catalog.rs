//! The catalog (figurines and special packages) and pricing against it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use entity::{figurine, package, package_item};
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, QueryOrder, Statement};
use uuid::Uuid;

use crate::domain::pricing::{self, PriceList, PricingError};
use crate::domain::{Cart, Money, Quote};
use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figurine {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub unit_price: Money,
}

impl From<figurine::Model> for Figurine {
    fn from(m: figurine::Model) -> Self {
        Figurine {
            id: m.id,
            sku: m.sku,
            name: m.name,
            description: m.description,
            unit_price: Money::from_cents(m.unit_price_cents),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageItem {
    pub figurine_id: Uuid,
    pub quantity: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub description: String,
    /// The special price of the whole package.
    pub price: Money,
    /// What its items cost at their unit prices.
    pub regular_price: Money,
    pub items: Vec<PackageItem>,
}

/// How often an instance re-reads the catalog even when it heard of no change: a safety
/// net under the change notifications.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// The catalog as this instance serves it, from memory: `figurines`, `packages`, `quote` and
/// the pricing of `placeOrder` read no table on the request path. The API has no catalog
/// writes; the catalog changes through migrations or an operator's SQL, and the instance
/// hears of it: on PostgreSQL through the `NOTIFY` the catalog tables' triggers send (see
/// the migration `catalog_notify`), on SQLite through `PRAGMA data_version`, which tells
/// this process's one connection that another one wrote. Readers take an `Arc` of the
/// current snapshot, so one quote always prices against one consistent catalog.
pub struct Catalog {
    current: RwLock<Arc<Snapshot>>,
    /// SQLite's `data_version` when the snapshot was read; `None` on PostgreSQL.
    sqlite_version: Option<AtomicI64>,
}

/// One consistent reading of the catalog.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    figurines: Vec<Arc<Figurine>>,
    packages: Vec<Arc<Package>>,
    figurine_index: HashMap<Uuid, usize>,
    package_index: HashMap<Uuid, usize>,
    prices: PriceList,
}

impl Catalog {
    /// Reads the catalog; fails when the database cannot be read.
    pub async fn load(db: &DatabaseConnection) -> Result<Arc<Self>, AppError> {
        let sqlite_version = match db.get_database_backend() {
            DatabaseBackend::Sqlite => Some(AtomicI64::new(data_version(db).await?)),
            _ => None,
        };
        Ok(Arc::new(Catalog { current: RwLock::new(Arc::new(Snapshot::read(db).await?)), sqlite_version }))
    }

    /// The catalog as it is now. On SQLite this first asks whether another connection
    /// wrote to the database (a pragma, no table read) and re-reads the catalog if so.
    pub async fn current(&self, db: &DatabaseConnection) -> Result<Arc<Snapshot>, AppError> {
        if let Some(seen) = &self.sqlite_version {
            let version = data_version(db).await?;
            if seen.load(Ordering::Acquire) != version {
                // Recorded only once re-read, so a failed re-read is tried again next time.
                self.refresh(db).await?;
                seen.store(version, Ordering::Release);
            }
        }
        Ok(self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone())
    }

    /// Re-reads the catalog; returns whether it changed.
    pub async fn refresh(&self, db: &impl ConnectionTrait) -> Result<bool, AppError> {
        let fresh = Snapshot::read(db).await?;
        let mut current = self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if **current == fresh {
            return Ok(false);
        }
        *current = Arc::new(fresh);
        Ok(true)
    }

    /// Keeps the snapshot fresh for as long as the process runs: at every change notice
    /// (PostgreSQL), after the notices may have been missed (the listening connection was
    /// lost), and every [`REFRESH_INTERVAL`].
    pub async fn keep_fresh(self: Arc<Self>, db: DatabaseConnection) {
        let mut listener = None;
        let mut ticks = tokio::time::interval(REFRESH_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if listener.is_none()
                && let Some(pool) = postgres_pool(&db)
            {
                listener = listen(pool).await;
                // Anything committed before the listener was in place is read now.
                self.refresh_logged(&db).await;
            }
            let notice = async {
                match listener.as_mut() {
                    Some(listener) => listener.try_recv().await.map(drop),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                notice = notice => match notice {
                    // A notice, or no notice because the connection was lost and is
                    // reconnected (notices may have been missed): re-read either way.
                    Ok(()) => self.refresh_logged(&db).await,
                    Err(err) => {
                        tracing::warn!(error = %err, "lost the catalog change notices; listening again");
                        listener = None;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                _ = ticks.tick() => self.refresh_logged(&db).await,
            }
        }
    }

    async fn refresh_logged(&self, db: &DatabaseConnection) {
        match self.refresh(db).await {
            Ok(true) => tracing::info!("the catalog changed; serving the new one"),
            Ok(false) => {}
            Err(err) => tracing::warn!(error = ?err, "could not re-read the catalog; serving the last one"),
        }
    }
}

fn postgres_pool(db: &DatabaseConnection) -> Option<&sea_orm::sqlx::PgPool> {
    match db.get_database_backend() {
        DatabaseBackend::Postgres => Some(db.get_postgres_connection_pool()),
        _ => None,
    }
}

async fn listen(pool: &sea_orm::sqlx::PgPool) -> Option<PgListener> {
    let listening = async {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(migration::CATALOG_CHANNEL).await?;
        Ok::<_, sea_orm::sqlx::Error>(listener)
    };
    match listening.await {
        Ok(listener) => Some(listener),
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for catalog changes; re-reading it every minute");
            None
        }
    }
}

async fn data_version(db: &DatabaseConnection) -> Result<i64, AppError> {
    let row = db
        .query_one_raw(Statement::from_string(DatabaseBackend::Sqlite, "PRAGMA data_version"))
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("PRAGMA data_version returned nothing")))?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

impl Snapshot {
    async fn read(db: &impl ConnectionTrait) -> Result<Snapshot, AppError> {
        let figurines: Vec<Arc<Figurine>> = figurine::Entity::find()
            .order_by_asc(figurine::Column::Name)
            .all(db)
            .await?
            .into_iter()
            .map(|m| Arc::new(Figurine::from(m)))
            .collect();
        let package_models = package::Entity::find().order_by_asc(package::Column::Name).all(db).await?;
        let items = package_item::Entity::find().order_by_asc(package_item::Column::PackageId).all(db).await?;
        let figurine_index: HashMap<Uuid, usize> = figurines.iter().enumerate().map(|(i, f)| (f.id, i)).collect();
        let by_id = |id: &Uuid| figurine_index.get(id).map(|&i| &*figurines[i]);
        let mut items_of: HashMap<Uuid, Vec<package_item::Model>> = HashMap::new();
        for item in items {
            items_of.entry(item.package_id).or_default().push(item);
        }
        let mut packages = Vec::with_capacity(package_models.len());
        for model in package_models {
            let items = items_of.remove(&model.id).unwrap_or_default();
            let mut regular = 0i64;
            for item in &items {
                let figurine = by_id(&item.figurine_id).ok_or_else(|| {
                    AppError::Internal(anyhow::anyhow!(
                        "package {} names a missing figurine {}",
                        model.code,
                        item.figurine_id
                    ))
                })?;
                regular += figurine.unit_price.cents() * i64::from(item.quantity);
            }
            let mut items: Vec<PackageItem> =
                items.iter().map(|i| PackageItem { figurine_id: i.figurine_id, quantity: i.quantity }).collect();
            items.sort_by_key(|item| by_id(&item.figurine_id).map(|f| f.name.clone()));
            packages.push(Arc::new(Package {
                id: model.id,
                code: model.code,
                name: model.name,
                description: model.description,
                price: Money::from_cents(model.price_cents),
                regular_price: Money::from_cents(regular),
                items,
            }));
        }
        let package_index = packages.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
        let prices = PriceList {
            figurines: figurines.iter().map(|f| (f.id, f.unit_price)).collect(),
            packages: packages.iter().map(|p| (p.id, p.price)).collect(),
        };
        Ok(Snapshot { figurines, packages, figurine_index, package_index, prices })
    }

    /// Every figurine, by name.
    pub fn figurines(&self) -> &[Arc<Figurine>] {
        &self.figurines
    }

    /// Every package, by name, with its items.
    pub fn packages(&self) -> &[Arc<Package>] {
        &self.packages
    }

    pub fn figurine(&self, id: Uuid) -> Option<&Arc<Figurine>> {
        self.figurine_index.get(&id).map(|&i| &self.figurines[i])
    }

    pub fn package(&self, id: Uuid) -> Option<&Arc<Package>> {
        self.package_index.get(&id).map(|&i| &self.packages[i])
    }

    /// Prices a cart at this catalog's prices: the same function `quote` and `placeOrder` use.
    pub fn quote(&self, cart: &Cart) -> Result<Quote, AppError> {
        pricing::price(cart, &self.prices).map_err(|err| match err {
            PricingError::UnknownItem { .. } => AppError::bad_input(err.field(), &err),
            PricingError::TooLarge => AppError::bad_input_message(err.field(), err.to_string()),
        })
    }
}
