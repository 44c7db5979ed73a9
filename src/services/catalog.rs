//! The catalog (figurines and special packages) and pricing against it.

use std::collections::HashMap;

use entity::{figurine, package, package_item};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
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

pub async fn figurines(db: &impl ConnectionTrait) -> Result<Vec<Figurine>, AppError> {
    let models = figurine::Entity::find().order_by_asc(figurine::Column::Name).all(db).await?;
    Ok(models.into_iter().map(Figurine::from).collect())
}

pub async fn figurines_by_id(db: &impl ConnectionTrait, ids: &[Uuid]) -> Result<HashMap<Uuid, Figurine>, AppError> {
    let models = figurine::Entity::find().filter(figurine::Column::Id.is_in(ids.iter().copied())).all(db).await?;
    Ok(models.into_iter().map(|m| (m.id, Figurine::from(m))).collect())
}

pub async fn packages(db: &impl ConnectionTrait) -> Result<Vec<Package>, AppError> {
    let models = package::Entity::find().order_by_asc(package::Column::Name).all(db).await?;
    with_items(db, models).await
}

pub async fn packages_by_id(db: &impl ConnectionTrait, ids: &[Uuid]) -> Result<HashMap<Uuid, Package>, AppError> {
    let models = package::Entity::find().filter(package::Column::Id.is_in(ids.iter().copied())).all(db).await?;
    Ok(with_items(db, models).await?.into_iter().map(|p| (p.id, p)).collect())
}

/// Loads the items of `models` and prices them at the figurines' unit prices (three queries
/// whatever the number of packages).
async fn with_items(db: &impl ConnectionTrait, models: Vec<package::Model>) -> Result<Vec<Package>, AppError> {
    let ids: Vec<Uuid> = models.iter().map(|m| m.id).collect();
    let items = package_item::Entity::find()
        .filter(package_item::Column::PackageId.is_in(ids))
        .order_by_asc(package_item::Column::PackageId)
        .all(db)
        .await?;
    let figurine_ids: Vec<Uuid> = items.iter().map(|i| i.figurine_id).collect();
    let figurines = figurines_by_id(db, &figurine_ids).await?;
    let mut by_package: HashMap<Uuid, Vec<package_item::Model>> = HashMap::new();
    for item in items {
        by_package.entry(item.package_id).or_default().push(item);
    }
    let mut packages = Vec::with_capacity(models.len());
    for model in models {
        let items = by_package.remove(&model.id).unwrap_or_default();
        let mut regular = 0i64;
        for item in &items {
            let figurine = figurines.get(&item.figurine_id).ok_or_else(|| {
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
        items.sort_by_key(|item| figurines.get(&item.figurine_id).map(|f| f.name.clone()));
        packages.push(Package {
            id: model.id,
            code: model.code,
            name: model.name,
            description: model.description,
            price: Money::from_cents(model.price_cents),
            regular_price: Money::from_cents(regular),
            items,
        });
    }
    Ok(packages)
}

/// Prices a cart at today's catalog prices: the same function `quote` and `placeOrder` use.
pub async fn quote(db: &impl ConnectionTrait, cart: &Cart) -> Result<Quote, AppError> {
    let figurine_ids: Vec<Uuid> = cart.figurines.iter().map(|l| l.id).collect();
    let package_ids: Vec<Uuid> = cart.packages.iter().map(|l| l.id).collect();
    let mut prices = PriceList::default();
    if !figurine_ids.is_empty() {
        let rows = figurine::Entity::find().filter(figurine::Column::Id.is_in(figurine_ids)).all(db).await?;
        prices.figurines = rows.into_iter().map(|m| (m.id, Money::from_cents(m.unit_price_cents))).collect();
    }
    if !package_ids.is_empty() {
        let rows = package::Entity::find().filter(package::Column::Id.is_in(package_ids)).all(db).await?;
        prices.packages = rows.into_iter().map(|m| (m.id, Money::from_cents(m.price_cents))).collect();
    }
    pricing::price(cart, &prices).map_err(|err| match err {
        PricingError::UnknownItem { .. } => AppError::bad_input(err.field(), &err),
        PricingError::TooLarge => AppError::bad_input_message(err.field(), err.to_string()),
    })
}
