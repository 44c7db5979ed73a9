//! Table `order_lines`: one priced line of an order, naming a figurine or a package.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "order_lines")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub order_id: Uuid,
    /// Display order of the line within its order (ascending; never negative).
    pub position: i32,
    /// `FIGURINE` (then `figurine_id` is set) or `PACKAGE` (then `package_id` is set).
    pub kind: String,
    pub figurine_id: Option<Uuid>,
    pub package_id: Option<Uuid>,
    pub quantity: i32,
    pub unit_price_cents: i64,
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    pub total_cents: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::order::Entity",
        from = "Column::OrderId",
        to = "super::order::Column::Id",
        on_delete = "Cascade"
    )]
    Order,
    #[sea_orm(
        belongs_to = "super::figurine::Entity",
        from = "Column::FigurineId",
        to = "super::figurine::Column::Id",
        on_delete = "Restrict"
    )]
    Figurine,
    #[sea_orm(
        belongs_to = "super::package::Entity",
        from = "Column::PackageId",
        to = "super::package::Column::Id",
        on_delete = "Restrict"
    )]
    Package,
}

impl Related<super::order::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Order.def()
    }
}

impl Related<super::figurine::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Figurine.def()
    }
}

impl Related<super::package::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Package.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
