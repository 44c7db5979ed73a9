//! Table `packages`: bundles of figurines sold at a special price.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "packages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub code: String,
    pub name: String,
    pub description: String,
    /// The special price of the whole package.
    pub price_cents: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::package_item::Entity")]
    PackageItem,
    #[sea_orm(has_many = "super::order_line::Entity")]
    OrderLine,
}

impl Related<super::package_item::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PackageItem.def()
    }
}

impl Related<super::order_line::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::OrderLine.def()
    }
}

/// The figurines in this package, through `package_items`.
impl Related<super::figurine::Entity> for Entity {
    fn to() -> RelationDef {
        super::package_item::Relation::Figurine.def()
    }

    fn via() -> Option<RelationDef> {
        Some(super::package_item::Relation::Package.def().rev())
    }
}

impl ActiveModelBehavior for ActiveModel {}
