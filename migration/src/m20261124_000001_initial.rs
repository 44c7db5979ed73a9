//! The initial schema of MiniFigurine and the seeded catalog.
//!
//! Longer than a module should be, and left so: a released migration is history, frozen as
//! it ran (changes go in new migrations), so it is not split after the fact.
//!
//! Everything here must run unchanged on SQLite and PostgreSQL, so foreign keys and CHECK
//! constraints are declared inside `CREATE TABLE` (SQLite cannot add them later) and the only
//! expression index (`lower(username)`) is one both backends accept.
//!
//! Constraint and index names are part of the contract with the server, which maps unique
//! violations to `CONFLICT` errors by index name (PostgreSQL, SQLite expression indexes) or by
//! column (SQLite column indexes).

use sea_orm_migration::prelude::*;
use uuid::Uuid;

use crate::catalog_id;

#[derive(DeriveMigrationName)]
pub struct Migration;

const ROLES: [&str; 3] = ["CUSTOMER", "FACTORY", "ADMIN"];
const STATUSES: [&str; 6] = ["PENDING", "ACCEPTED", "IN_PRODUCTION", "SHIPPED", "CANCELLED", "FAILED"];
const LINE_KINDS: [&str; 2] = ["FIGURINE", "PACKAGE"];

/// Seeded figurines: (sku, name, description, unit price in cents).
const FIGURINES: [(&str, &str, &str, i64); 10] = [
    (
        "FIG-KNIGHT",
        "Ironhold Knight",
        "A stalwart knight in full plate, tower shield raised and longsword at the ready. \
         Sculpted with crisp rivets and a cloak that catches a wash beautifully.",
        1250,
    ),
    (
        "FIG-WIZARD",
        "Ember Wizard",
        "A robed battle mage conjuring a flame from an outstretched palm. \
         The swirling fire is cast as a separate piece for easy painting.",
        1495,
    ),
    (
        "FIG-DRAGON",
        "Obsidian Dragon",
        "A massive black dragon coiled over a rocky outcrop, wings unfurled across a 120 mm span. \
         The centrepiece of any table, supplied in five parts with a scenic base.",
        4900,
    ),
    (
        "FIG-ARCHER",
        "Sylvan Archer",
        "A woodland elf drawing a longbow to full tension, poised on a mossy stump. \
         Fine detail on the fletching and leaf-pattern leather armour.",
        1150,
    ),
    (
        "FIG-DWARF",
        "Dwarven Forgemaster",
        "A broad-shouldered dwarf smith with a rune-etched hammer and a braided beard tucked into his belt. \
         Comes with a small anvil for the base.",
        1350,
    ),
    (
        "FIG-ROGUE",
        "Shadowstep Rogue",
        "A hooded cutpurse mid-stride, twin daggers drawn and cloak flowing. \
         A dynamic pose for ambushes and rooftop chases.",
        1195,
    ),
    (
        "FIG-CLERIC",
        "Dawnlight Cleric",
        "A serene priestess holding a sun-crowned mace aloft, her vestments embroidered with holy sigils. \
         The perfect healer for any party.",
        1295,
    ),
    (
        "FIG-GOLEM",
        "Moss Golem",
        "A hulking construct of stone and root, overgrown with moss and tiny mushrooms. \
         Large-base model with deep textures made for drybrushing.",
        2450,
    ),
    (
        "FIG-SKELETON",
        "Crypt Skeleton Warrior",
        "A risen warrior in rusted mail, notched blade in hand and jaw agape. \
         Ideal in numbers for a shambling undead horde.",
        895,
    ),
    (
        "FIG-MERCHANT",
        "Travelling Merchant",
        "A cheerful peddler bent under an overloaded backpack of pots, scrolls and trinkets. \
         A characterful townsfolk model for roadside encounters.",
        995,
    ),
];

/// A seeded package: (code, name, description, price in cents, items as (figurine sku, quantity)).
type PackageSeed = (&'static str, &'static str, &'static str, i64, &'static [(&'static str, i32)]);

/// Seeded packages.
const PACKAGES: [PackageSeed; 3] = [
    (
        "PKG-PARTY",
        "Adventuring Party",
        "A ready-made band of heroes: knight, wizard, archer, cleric and rogue. \
         Everything you need to start a campaign, at a friendly price.",
        5490,
        &[("FIG-KNIGHT", 1), ("FIG-WIZARD", 1), ("FIG-ARCHER", 1), ("FIG-CLERIC", 1), ("FIG-ROGUE", 1)],
    ),
    (
        "PKG-DRAGON-HUNT",
        "Dragon Hunt",
        "The Obsidian Dragon with two knights and two archers sworn to bring it down. \
         An epic boss encounter in a single box.",
        7990,
        &[("FIG-DRAGON", 1), ("FIG-KNIGHT", 2), ("FIG-ARCHER", 2)],
    ),
    (
        "PKG-CRYPT",
        "Crypt Horde",
        "Ten Crypt Skeleton Warriors to flood the dungeon. \
         Build a whole undead warband in one go.",
        6990,
        &[("FIG-SKELETON", 10)],
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_users(manager).await?;
        create_catalog(manager).await?;
        create_orders(manager).await?;
        seed_catalog(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children before parents; indexes go with their tables.
        for table in [
            OrderEvents::Table.into_iden(),
            OrderDiscounts::Table.into_iden(),
            OrderLines::Table.into_iden(),
            Orders::Table.into_iden(),
            PackageItems::Table.into_iden(),
            Packages::Table.into_iden(),
            Figurines::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }

    /// Schema and seed are all or nothing, on SQLite as well as on PostgreSQL.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

async fn create_users(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Users::Table)
                .col(ColumnDef::new(Users::Id).uuid().not_null().primary_key())
                .col(ColumnDef::new(Users::Username).string().not_null())
                .col(ColumnDef::new(Users::Email).string().not_null())
                .col(ColumnDef::new(Users::PasswordHash).string().not_null())
                .col(ColumnDef::new(Users::Address).text().not_null())
                .col(ColumnDef::new(Users::Role).string().not_null())
                .col(ColumnDef::new(Users::CreatedAt).timestamp_with_time_zone().not_null())
                .check(one_of("users_role_check", Users::Role, &ROLES))
                .to_owned(),
        )
        .await?;
    // Usernames are unique ignoring case. sea-query cannot render expression indexes for
    // SQLite, so this one is raw SQL, written to be valid on both backends.
    manager
        .get_connection()
        .execute_unprepared("CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username))")
        .await?;
    manager
        .create_index(Index::create().name("users_email_key").table(Users::Table).col(Users::Email).unique().to_owned())
        .await
}

async fn create_catalog(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Figurines::Table)
                .col(ColumnDef::new(Figurines::Id).uuid().not_null().primary_key())
                .col(ColumnDef::new(Figurines::Sku).string().not_null())
                .col(ColumnDef::new(Figurines::Name).string().not_null())
                .col(ColumnDef::new(Figurines::Description).text().not_null())
                .col(ColumnDef::new(Figurines::UnitPriceCents).big_integer().not_null())
                .check(non_negative("figurines_unit_price_cents_check", Figurines::UnitPriceCents))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create().name("figurines_sku_key").table(Figurines::Table).col(Figurines::Sku).unique().to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(Packages::Table)
                .col(ColumnDef::new(Packages::Id).uuid().not_null().primary_key())
                .col(ColumnDef::new(Packages::Code).string().not_null())
                .col(ColumnDef::new(Packages::Name).string().not_null())
                .col(ColumnDef::new(Packages::Description).text().not_null())
                .col(ColumnDef::new(Packages::PriceCents).big_integer().not_null())
                .check(non_negative("packages_price_cents_check", Packages::PriceCents))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create().name("packages_code_key").table(Packages::Table).col(Packages::Code).unique().to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(PackageItems::Table)
                .col(ColumnDef::new(PackageItems::PackageId).uuid().not_null())
                .col(ColumnDef::new(PackageItems::FigurineId).uuid().not_null())
                .col(ColumnDef::new(PackageItems::Quantity).integer().not_null())
                .primary_key(
                    Index::create()
                        .name("package_items_pkey")
                        .col(PackageItems::PackageId)
                        .col(PackageItems::FigurineId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("package_items_package_id_fkey")
                        .from(PackageItems::Table, PackageItems::PackageId)
                        .to(Packages::Table, Packages::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("package_items_figurine_id_fkey")
                        .from(PackageItems::Table, PackageItems::FigurineId)
                        .to(Figurines::Table, Figurines::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .check(positive("package_items_quantity_check", PackageItems::Quantity))
                .to_owned(),
        )
        .await
}

async fn create_orders(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Orders::Table)
                .col(ColumnDef::new(Orders::Id).uuid().not_null().primary_key())
                .col(ColumnDef::new(Orders::CustomerId).uuid().not_null())
                .col(ColumnDef::new(Orders::Status).string().not_null())
                .col(ColumnDef::new(Orders::Version).integer().not_null())
                .col(ColumnDef::new(Orders::SubtotalCents).big_integer().not_null())
                .col(ColumnDef::new(Orders::DiscountCents).big_integer().not_null())
                .col(ColumnDef::new(Orders::TotalCents).big_integer().not_null())
                .col(ColumnDef::new(Orders::ShippingAddress).text().not_null())
                .col(ColumnDef::new(Orders::IdempotencyKey).string().null())
                .col(ColumnDef::new(Orders::RequestFingerprint).string().null())
                .col(ColumnDef::new(Orders::CreatedAt).timestamp_with_time_zone().not_null())
                .col(ColumnDef::new(Orders::UpdatedAt).timestamp_with_time_zone().not_null())
                .foreign_key(
                    ForeignKey::create()
                        .name("orders_customer_id_fkey")
                        .from(Orders::Table, Orders::CustomerId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .check(one_of("orders_status_check", Orders::Status, &STATUSES))
                .check(at_least_one("orders_version_check", Orders::Version))
                .check(non_negative("orders_subtotal_cents_check", Orders::SubtotalCents))
                .check(non_negative("orders_discount_cents_check", Orders::DiscountCents))
                .check(non_negative("orders_total_cents_check", Orders::TotalCents))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("orders_customer_idempotency_key")
                .table(Orders::Table)
                .col(Orders::CustomerId)
                .col(Orders::IdempotencyKey)
                .unique()
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("orders_customer_created_idx")
                .table(Orders::Table)
                .col(Orders::CustomerId)
                .col(Orders::CreatedAt)
                .col(Orders::Id)
                .to_owned(),
        )
        .await?;

    let figurine_line = Expr::col(OrderLines::Kind)
        .eq("FIGURINE")
        .and(Expr::col(OrderLines::FigurineId).is_not_null())
        .and(Expr::col(OrderLines::PackageId).is_null());
    let package_line = Expr::col(OrderLines::Kind)
        .eq("PACKAGE")
        .and(Expr::col(OrderLines::PackageId).is_not_null())
        .and(Expr::col(OrderLines::FigurineId).is_null());
    manager
        .create_table(
            Table::create()
                .table(OrderLines::Table)
                .col(ColumnDef::new(OrderLines::Id).big_integer().not_null().auto_increment().primary_key())
                .col(ColumnDef::new(OrderLines::OrderId).uuid().not_null())
                .col(ColumnDef::new(OrderLines::Position).integer().not_null())
                .col(ColumnDef::new(OrderLines::Kind).string().not_null())
                .col(ColumnDef::new(OrderLines::FigurineId).uuid().null())
                .col(ColumnDef::new(OrderLines::PackageId).uuid().null())
                .col(ColumnDef::new(OrderLines::Quantity).integer().not_null())
                .col(ColumnDef::new(OrderLines::UnitPriceCents).big_integer().not_null())
                .col(ColumnDef::new(OrderLines::SubtotalCents).big_integer().not_null())
                .col(ColumnDef::new(OrderLines::DiscountCents).big_integer().not_null())
                .col(ColumnDef::new(OrderLines::TotalCents).big_integer().not_null())
                .foreign_key(
                    ForeignKey::create()
                        .name("order_lines_order_id_fkey")
                        .from(OrderLines::Table, OrderLines::OrderId)
                        .to(Orders::Table, Orders::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("order_lines_figurine_id_fkey")
                        .from(OrderLines::Table, OrderLines::FigurineId)
                        .to(Figurines::Table, Figurines::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("order_lines_package_id_fkey")
                        .from(OrderLines::Table, OrderLines::PackageId)
                        .to(Packages::Table, Packages::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .check(one_of("order_lines_kind_check", OrderLines::Kind, &LINE_KINDS))
                .check((Alias::new("order_lines_target_check"), figurine_line.or(package_line)))
                .check(non_negative("order_lines_position_check", OrderLines::Position))
                .check(positive("order_lines_quantity_check", OrderLines::Quantity))
                .check(non_negative("order_lines_unit_price_cents_check", OrderLines::UnitPriceCents))
                .check(non_negative("order_lines_subtotal_cents_check", OrderLines::SubtotalCents))
                .check(non_negative("order_lines_discount_cents_check", OrderLines::DiscountCents))
                .check(non_negative("order_lines_total_cents_check", OrderLines::TotalCents))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("order_lines_order_idx")
                .table(OrderLines::Table)
                .col(OrderLines::OrderId)
                .col(OrderLines::Position)
                .to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(OrderDiscounts::Table)
                .col(ColumnDef::new(OrderDiscounts::Id).big_integer().not_null().auto_increment().primary_key())
                .col(ColumnDef::new(OrderDiscounts::OrderId).uuid().not_null())
                .col(ColumnDef::new(OrderDiscounts::Code).string().not_null())
                .col(ColumnDef::new(OrderDiscounts::Description).text().not_null())
                .col(ColumnDef::new(OrderDiscounts::AmountCents).big_integer().not_null())
                .foreign_key(
                    ForeignKey::create()
                        .name("order_discounts_order_id_fkey")
                        .from(OrderDiscounts::Table, OrderDiscounts::OrderId)
                        .to(Orders::Table, Orders::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .check(non_negative("order_discounts_amount_cents_check", OrderDiscounts::AmountCents))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("order_discounts_order_idx")
                .table(OrderDiscounts::Table)
                .col(OrderDiscounts::OrderId)
                .to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(OrderEvents::Table)
                .col(ColumnDef::new(OrderEvents::Id).big_integer().not_null().auto_increment().primary_key())
                .col(ColumnDef::new(OrderEvents::OrderId).uuid().not_null())
                .col(ColumnDef::new(OrderEvents::Version).integer().not_null())
                .col(ColumnDef::new(OrderEvents::Status).string().not_null())
                .col(ColumnDef::new(OrderEvents::Note).text().null())
                .col(ColumnDef::new(OrderEvents::At).timestamp_with_time_zone().not_null())
                .foreign_key(
                    ForeignKey::create()
                        .name("order_events_order_id_fkey")
                        .from(OrderEvents::Table, OrderEvents::OrderId)
                        .to(Orders::Table, Orders::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .check(one_of("order_events_status_check", OrderEvents::Status, &STATUSES))
                .check(at_least_one("order_events_version_check", OrderEvents::Version))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("order_events_order_version_key")
                .table(OrderEvents::Table)
                .col(OrderEvents::OrderId)
                .col(OrderEvents::Version)
                .unique()
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("order_events_order_idx")
                .table(OrderEvents::Table)
                .col(OrderEvents::OrderId)
                .to_owned(),
        )
        .await
}

async fn seed_catalog(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let mut figurines = Query::insert();
    figurines.into_table(Figurines::Table).columns([
        Figurines::Id,
        Figurines::Sku,
        Figurines::Name,
        Figurines::Description,
        Figurines::UnitPriceCents,
    ]);
    for (sku, name, description, cents) in FIGURINES {
        figurines.values_panic([catalog_id(sku).into(), sku.into(), name.into(), description.into(), cents.into()]);
    }
    manager.execute(figurines).await?;

    let mut packages = Query::insert();
    packages.into_table(Packages::Table).columns([
        Packages::Id,
        Packages::Code,
        Packages::Name,
        Packages::Description,
        Packages::PriceCents,
    ]);
    let mut items = Query::insert();
    items.into_table(PackageItems::Table).columns([
        PackageItems::PackageId,
        PackageItems::FigurineId,
        PackageItems::Quantity,
    ]);
    for (code, name, description, cents, contents) in PACKAGES {
        let package_id: Uuid = catalog_id(code);
        packages.values_panic([package_id.into(), code.into(), name.into(), description.into(), cents.into()]);
        for &(sku, quantity) in contents {
            items.values_panic([package_id.into(), catalog_id(sku).into(), quantity.into()]);
        }
    }
    manager.execute(packages).await?;
    manager.execute(items).await
}

/// `CONSTRAINT <name> CHECK (<column> >= 0)`
fn non_negative(name: &str, column: impl IntoIden) -> Check {
    Check::named(Alias::new(name), Expr::col(column).gte(0))
}

/// `CONSTRAINT <name> CHECK (<column> > 0)`
fn positive(name: &str, column: impl IntoIden) -> Check {
    Check::named(Alias::new(name), Expr::col(column).gt(0))
}

/// `CONSTRAINT <name> CHECK (<column> >= 1)`
fn at_least_one(name: &str, column: impl IntoIden) -> Check {
    Check::named(Alias::new(name), Expr::col(column).gte(1))
}

/// `CONSTRAINT <name> CHECK (<column> IN ('A', 'B', …))`
fn one_of(name: &str, column: impl IntoIden, values: &[&str]) -> Check {
    Check::named(Alias::new(name), Expr::col(column).is_in(values.iter().copied()))
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    Email,
    PasswordHash,
    Address,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Figurines {
    Table,
    Id,
    Sku,
    Name,
    Description,
    UnitPriceCents,
}

#[derive(DeriveIden)]
enum Packages {
    Table,
    Id,
    Code,
    Name,
    Description,
    PriceCents,
}

#[derive(DeriveIden)]
enum PackageItems {
    Table,
    PackageId,
    FigurineId,
    Quantity,
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
    CustomerId,
    Status,
    Version,
    SubtotalCents,
    DiscountCents,
    TotalCents,
    ShippingAddress,
    IdempotencyKey,
    RequestFingerprint,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OrderLines {
    Table,
    Id,
    OrderId,
    Position,
    Kind,
    FigurineId,
    PackageId,
    Quantity,
    UnitPriceCents,
    SubtotalCents,
    DiscountCents,
    TotalCents,
}

#[derive(DeriveIden)]
enum OrderDiscounts {
    Table,
    Id,
    OrderId,
    Code,
    Description,
    AmountCents,
}

#[derive(DeriveIden)]
enum OrderEvents {
    Table,
    Id,
    OrderId,
    Version,
    Status,
    Note,
    At,
}
