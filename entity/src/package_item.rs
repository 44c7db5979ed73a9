//! Table `package_items`: how many of which figurine a package holds.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "package_items")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub package_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub figurine_id: Uuid,
    pub quantity: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::package::Entity",
        from = "Column::PackageId",
        to = "super::package::Column::Id",
        on_delete = "Cascade"
    )]
    Package,
    #[sea_orm(
        belongs_to = "super::figurine::Entity",
        from = "Column::FigurineId",
        to = "super::figurine::Column::Id",
        on_delete = "Restrict"
    )]
    Figurine,
}

impl Related<super::package::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Package.def()
    }
}

impl Related<super::figurine::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Figurine.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
