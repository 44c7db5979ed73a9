//! Table `users`: accounts of customers, the factory and administrators.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Unique ignoring case (index `users_username_lower_key` on `lower(username)`).
    pub username: String,
    /// Stored lower-cased; unique (index `users_email_key`).
    #[sea_orm(unique)]
    pub email: String,
    /// argon2id PHC string; never leaves the server.
    pub password_hash: String,
    pub address: String,
    /// `CUSTOMER`, `FACTORY` or `ADMIN`.
    pub role: String,
    pub created_at: DateTimeUtc,
    /// How many status events this customer's orders have had; the `seq` of the latest.
    pub event_seq: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::order::Entity")]
    Order,
}

impl Related<super::order::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Order.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
