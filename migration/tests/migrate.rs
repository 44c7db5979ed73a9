//! The initial migration applies, rolls back and re-applies cleanly, seeds the catalog, and its
//! constraints and index names behave as the server expects.
//!
//! Runs against an in-memory SQLite database and against a fresh PostgreSQL database.

use chrono::Utc;
use entity::{figurine, order, order_discount, order_event, order_line, package, package_item, user};
use migration::sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, Database, DatabaseConnection, DbErr, EntityTrait, ModelTrait,
    PaginatorTrait, SqlErr,
};
use migration::{CATALOG_NAMESPACE, Migrator, MigratorTrait, SchemaManager, catalog_id};
use minifig_common::OrderStatus;
use uuid::Uuid;

const TABLES: [&str; 9] = [
    "users",
    "figurines",
    "packages",
    "package_items",
    "orders",
    "order_lines",
    "order_discounts",
    "order_events",
    "outbox",
];

#[tokio::test]
async fn sqlite_up_down_up() {
    let db = Database::connect("sqlite::memory:").await.unwrap();
    round_trip(&db).await;
}

/// Runs against a database of its own on the PostgreSQL server at `TEST_POSTGRES_URL`
/// (default: the local server `scripts/test` makes sure of), dropped afterwards.
#[tokio::test]
async fn postgres_up_down_up() {
    let admin_url =
        std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin = Database::connect(admin_url.as_str()).await.unwrap_or_else(|err| {
        panic!("PostgreSQL is not reachable at {admin_url} ({err}); run scripts/test or set TEST_POSTGRES_URL")
    });
    let name = format!("minifig_migration_{}", Uuid::new_v4().simple());
    admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.unwrap();
    let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
    let db = Database::connect(format!("{base}/{name}")).await.unwrap();
    round_trip(&db).await;
    db.close().await.unwrap();
    admin.execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)")).await.unwrap();
}

async fn round_trip(db: &DatabaseConnection) {
    Migrator::up(db, None).await.unwrap();
    assert_tables(db, true).await;
    assert_catalog(db).await;
    assert_constraints(db).await;
    the_status_checks_list_exactly_the_enum(db).await;

    Migrator::down(db, None).await.unwrap();
    assert_tables(db, false).await;

    events_stored_before_the_sequence_are_numbered_by_time(db).await;
    assert_tables(db, true).await;
    assert_catalog(db).await;
    assert!(Migrator::get_pending_migrations(db).await.unwrap().is_empty());
}

/// Applies the migrations before the event sequence, stores two orders' events the way the
/// server did then, and applies the rest: each customer's events are numbered 1, 2, 3… by
/// time, and the customer's counter continues from there.
async fn events_stored_before_the_sequence_are_numbered_by_time(db: &DatabaseConnection) {
    use migration::{Alias, Query};
    Migrator::up(db, Some(3)).await.unwrap();
    let run = async |statement: migration::InsertStatement| {
        db.execute(&statement).await.unwrap();
    };
    let alice = Uuid::new_v4();
    let mut users = Query::insert();
    users
        .into_table(Alias::new("users"))
        .columns(["id", "username", "email", "password_hash", "address", "role", "created_at"].map(Alias::new))
        .values_panic([
            alice.into(),
            "alice".into(),
            "alice@example.com".into(),
            "x".into(),
            "1 Main St".into(),
            "CUSTOMER".into(),
            Utc::now().into(),
        ]);
    run(users).await;
    let start = Utc::now();
    let orders = [Uuid::new_v4(), Uuid::new_v4()];
    for order_id in orders {
        let mut order = Query::insert();
        order
            .into_table(Alias::new("orders"))
            .columns(
                ["id", "customer_id", "status", "version", "subtotal_cents", "discount_cents", "total_cents"]
                    .into_iter()
                    .chain(["shipping_address", "created_at", "updated_at"])
                    .map(Alias::new),
            )
            .values_panic([
                order_id.into(),
                alice.into(),
                "ACCEPTED".into(),
                2.into(),
                100.into(),
                0.into(),
                100.into(),
                "1 Main St".into(),
                start.into(),
                start.into(),
            ]);
        run(order).await;
    }
    // Interleaved in time: first order v1, second v1, first v2, second v2.
    for (n, (order_id, version)) in
        [(orders[0], 1), (orders[1], 1), (orders[0], 2), (orders[1], 2)].into_iter().enumerate()
    {
        let mut event = Query::insert();
        event
            .into_table(Alias::new("order_events"))
            .columns(["order_id", "version", "status", "at"].map(Alias::new))
            .values_panic([
                order_id.into(),
                version.into(),
                if version == 1 { "PENDING" } else { "ACCEPTED" }.into(),
                (start + chrono::Duration::seconds(n as i64)).into(),
            ]);
        run(event).await;
    }

    Migrator::up(db, None).await.unwrap();
    use migration::sea_orm::QueryOrder;
    let events = order_event::Entity::find().order_by_asc(order_event::Column::At).all(db).await.unwrap();
    let numbered: Vec<(Uuid, i32, Uuid, i64)> =
        events.iter().map(|e| (e.order_id, e.version, e.customer_id, e.seq)).collect();
    assert_eq!(
        numbered,
        vec![(orders[0], 1, alice, 1), (orders[1], 1, alice, 2), (orders[0], 2, alice, 3), (orders[1], 2, alice, 4)]
    );
    let stored = user::Entity::find_by_id(alice).one(db).await.unwrap().unwrap();
    assert_eq!(stored.event_seq, 4, "the counter continues after the numbered events");
    db.execute_unprepared("DELETE FROM orders").await.unwrap();
    db.execute_unprepared("DELETE FROM users").await.unwrap();
}

async fn assert_tables(db: &DatabaseConnection, present: bool) {
    let manager = SchemaManager::new(db);
    for table in TABLES {
        assert_eq!(manager.has_table(table).await.unwrap(), present, "table {table}");
    }
}

async fn assert_catalog(db: &DatabaseConnection) {
    let figurines = figurine::Entity::find().all(db).await.unwrap();
    assert_eq!(figurines.len(), 10);
    for f in &figurines {
        assert_eq!(f.id, Uuid::new_v5(&CATALOG_NAMESPACE, f.sku.as_bytes()));
        assert!(f.unit_price_cents > 0 && !f.description.is_empty());
    }
    let knight = figurine::Entity::find_by_id(catalog_id("FIG-KNIGHT")).one(db).await.unwrap().unwrap();
    assert_eq!((knight.name.as_str(), knight.unit_price_cents), ("Ironhold Knight", 1250));

    let packages = package::Entity::find().all(db).await.unwrap();
    assert_eq!(packages.len(), 3);
    for p in &packages {
        assert_eq!(p.id, Uuid::new_v5(&CATALOG_NAMESPACE, p.code.as_bytes()));
        // Every package is a real bargain: cheaper than its items bought one by one.
        let items = p.find_related(package_item::Entity).find_also_related(figurine::Entity).all(db).await.unwrap();
        assert!(!items.is_empty());
        let regular: i64 =
            items.iter().map(|(item, f)| i64::from(item.quantity) * f.as_ref().unwrap().unit_price_cents).sum();
        assert!(p.price_cents < regular, "{}: {} >= {}", p.code, p.price_cents, regular);
    }
    let hunt = package::Entity::find_by_id(catalog_id("PKG-DRAGON-HUNT")).one(db).await.unwrap().unwrap();
    assert_eq!(hunt.price_cents, 7990);
    let hunt_figurines = hunt.find_related(figurine::Entity).count(db).await.unwrap();
    assert_eq!(hunt_figurines, 3);
    assert_eq!(package_item::Entity::find().count(db).await.unwrap(), 9);
}

async fn assert_constraints(db: &DatabaseConnection) {
    let now = Utc::now();
    let alice = new_user("Alice", "alice@example.com", "CUSTOMER").insert(db).await.unwrap();

    // Usernames are unique ignoring case; the violation names the index.
    let err = new_user("ALICE", "other@example.com", "CUSTOMER").insert(db).await.unwrap_err();
    assert_unique(&err, &["users_username_lower_key"]);
    // Emails are unique.
    let err = new_user("bob", "alice@example.com", "CUSTOMER").insert(db).await.unwrap_err();
    assert_unique(&err, &["users_email_key", "users.email"]);
    // Roles are one of three.
    let err = new_user("carol", "carol@example.com", "ROOT").insert(db).await.unwrap_err();
    assert_check(&err);

    let order_id = Uuid::new_v4();
    let order = order::ActiveModel {
        id: Set(order_id),
        customer_id: Set(alice.id),
        status: Set(OrderStatus::Pending),
        version: Set(1),
        subtotal_cents: Set(1250),
        discount_cents: Set(0),
        total_cents: Set(1250),
        shipping_address: Set("1 Main St".into()),
        idempotency_key: Set(Some("key-1".into())),
        request_fingerprint: Set(Some("fp".into())),
        created_at: Set(now),
        updated_at: Set(now),
        dispatched_at: Set(None),
    };
    order.clone().insert(db).await.unwrap();

    // The same idempotency key for the same customer is refused.
    let mut dup = order.clone();
    dup.id = Set(Uuid::new_v4());
    let err = dup.insert(db).await.unwrap_err();
    assert_unique(&err, &["orders_customer_idempotency_key", "orders.customer_id, orders.idempotency_key"]);
    // Orders without a key never collide.
    for _ in 0..2 {
        let mut keyless = order.clone();
        keyless.id = Set(Uuid::new_v4());
        keyless.idempotency_key = Set(None);
        keyless.insert(db).await.unwrap();
    }
    // Unknown status (written as raw text: the entity only speaks `OrderStatus`), version 0
    // and negative money are refused.
    let lost = format!(
        "INSERT INTO orders (id, customer_id, status, version, subtotal_cents, discount_cents, total_cents, \
         shipping_address, created_at, updated_at) VALUES ('{}', '{}', 'LOST', 1, 0, 0, 0, 'x', '{now}', '{now}')",
        Uuid::new_v4(),
        alice.id,
        now = now.format("%Y-%m-%d %H:%M:%S%:z"),
    );
    assert_check(&db.execute_unprepared(&lost).await.unwrap_err());
    for broken in [
        order::ActiveModel { version: Set(0), ..order.clone() },
        order::ActiveModel { total_cents: Set(-1), ..order.clone() },
    ] {
        let mut broken = broken;
        broken.id = Set(Uuid::new_v4());
        broken.idempotency_key = Set(None);
        assert_check(&broken.insert(db).await.unwrap_err());
    }
    // Every order belongs to an existing user.
    let mut orphan = order.clone();
    orphan.id = Set(Uuid::new_v4());
    orphan.customer_id = Set(Uuid::new_v4());
    let err = orphan.insert(db).await.unwrap_err();
    assert!(matches!(err.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_))), "{err}");

    let line = order_line::ActiveModel {
        order_id: Set(order_id),
        position: Set(0),
        kind: Set("FIGURINE".into()),
        figurine_id: Set(Some(catalog_id("FIG-KNIGHT"))),
        package_id: Set(None),
        quantity: Set(1),
        unit_price_cents: Set(1250),
        subtotal_cents: Set(1250),
        discount_cents: Set(0),
        total_cents: Set(1250),
        ..Default::default()
    };
    let first = line.clone().insert(db).await.unwrap();
    let second = order_line::ActiveModel {
        position: Set(1),
        kind: Set("PACKAGE".into()),
        figurine_id: Set(None),
        package_id: Set(Some(catalog_id("PKG-CRYPT"))),
        ..line.clone()
    }
    .insert(db)
    .await
    .unwrap();
    assert!(second.id > first.id);
    // A line names exactly the target its kind says, with a positive quantity.
    for broken in [
        order_line::ActiveModel { package_id: Set(Some(catalog_id("PKG-CRYPT"))), ..line.clone() },
        order_line::ActiveModel { figurine_id: Set(None), ..line.clone() },
        order_line::ActiveModel { kind: Set("PACKAGE".into()), ..line.clone() },
        order_line::ActiveModel { kind: Set("GIFT".into()), ..line.clone() },
        order_line::ActiveModel { quantity: Set(0), ..line.clone() },
        order_line::ActiveModel { discount_cents: Set(-5), ..line.clone() },
    ] {
        assert_check(&broken.insert(db).await.unwrap_err());
    }
    // Catalog items that were ordered cannot be deleted. (SQLite reports ON DELETE RESTRICT
    // with extended code 1811, which `DbErr::sql_err` does not classify, hence the message.)
    for err in [
        figurine::Entity::delete_by_id(catalog_id("FIG-KNIGHT")).exec(db).await.unwrap_err(),
        package::Entity::delete_by_id(catalog_id("PKG-CRYPT")).exec(db).await.unwrap_err(),
    ] {
        let message = err.to_string();
        assert!(
            message.contains("FOREIGN KEY constraint failed") || message.contains("violates foreign key constraint"),
            "{message}"
        );
    }

    order_discount::ActiveModel {
        order_id: Set(order_id),
        code: Set("BULK_5".into()),
        description: Set("5% off".into()),
        amount_cents: Set(62),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();

    let event = order_event::ActiveModel {
        order_id: Set(order_id),
        customer_id: Set(alice.id),
        seq: Set(1),
        version: Set(1),
        status: Set(OrderStatus::Pending),
        note: Set(None),
        at: Set(now),
        ..Default::default()
    };
    let stored = event.clone().insert(db).await.unwrap();
    assert_eq!(stored.at.timestamp_micros(), now.timestamp_micros());
    // One event per version of an order.
    let err = order_event::ActiveModel { seq: Set(9), ..event.clone() }.insert(db).await.unwrap_err();
    assert_unique(&err, &["order_events_order_version_key", "order_events.order_id, order_events.version"]);
    // One event per place in its customer's sequence.
    let err = order_event::ActiveModel { version: Set(2), ..event.clone() }.insert(db).await.unwrap_err();
    assert_unique(&err, &["order_events_customer_seq_key", "order_events.customer_id, order_events.seq"]);
    order_event::ActiveModel { version: Set(2), seq: Set(2), status: Set(OrderStatus::Accepted), ..event.clone() }
        .insert(db)
        .await
        .unwrap();

    // Deleting an order takes its lines, discounts and events with it.
    order::Entity::delete_by_id(order_id).exec(db).await.unwrap();
    assert_eq!(order_line::Entity::find().count(db).await.unwrap(), 0);
    assert_eq!(order_discount::Entity::find().count(db).await.unwrap(), 0);
    assert_eq!(order_event::Entity::find().count(db).await.unwrap(), 0);

    // Leave the tables as the seed left them, so `down` is tested on a realistic database.
    db.execute_unprepared("DELETE FROM orders").await.unwrap();
    db.execute_unprepared("DELETE FROM users").await.unwrap();
}

/// The CHECK constraints on `orders.status` and `order_events.status` allow exactly the
/// statuses of [`OrderStatus`]: a status added to the enum without a migration (or to a
/// migration without the enum) fails here, not in production.
async fn the_status_checks_list_exactly_the_enum(db: &DatabaseConnection) {
    let mut expected: Vec<String> = OrderStatus::ALL.iter().map(|s| s.as_str().to_owned()).collect();
    expected.sort();
    for (table, constraint) in [("orders", "orders_status_check"), ("order_events", "order_events_status_check")] {
        let definition = check_definition(db, table, constraint).await;
        let mut allowed = quoted_words(&definition);
        allowed.sort();
        allowed.dedup();
        assert_eq!(allowed, expected, "{constraint}: {definition}");
    }
}

/// The text of a named CHECK constraint: PostgreSQL's catalog has it on its own; SQLite
/// keeps the whole `CREATE TABLE`, cut here from the constraint's name to the next one.
async fn check_definition(db: &DatabaseConnection, table: &str, constraint: &str) -> String {
    use migration::sea_orm::{DatabaseBackend, Statement};
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => {
            format!("SELECT pg_get_constraintdef(oid) AS definition FROM pg_constraint WHERE conname = '{constraint}'")
        }
        _ => format!("SELECT sql AS definition FROM sqlite_master WHERE type = 'table' AND name = '{table}'"),
    };
    let row = db.query_one_raw(Statement::from_string(backend, sql)).await.unwrap().expect(constraint);
    let text: String = row.try_get("", "definition").unwrap();
    match text.find(constraint) {
        Some(start) => {
            let rest = &text[start + constraint.len()..];
            rest[..rest.find("CONSTRAINT").unwrap_or(rest.len())].to_owned()
        }
        None => text,
    }
}

/// The single-quoted literals of an SQL fragment.
fn quoted_words(sql: &str) -> Vec<String> {
    sql.split('\'').skip(1).step_by(2).map(str::to_owned).collect()
}

fn new_user(username: &str, email: &str, role: &str) -> user::ActiveModel {
    user::ActiveModel {
        id: Set(Uuid::new_v4()),
        username: Set(username.into()),
        email: Set(email.into()),
        password_hash: Set("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        address: Set("1 Main St".into()),
        role: Set(role.into()),
        created_at: Set(Utc::now()),
        event_seq: Set(0),
    }
}

/// A unique violation whose message names one of `names`: PostgreSQL names the index, SQLite
/// the index for expression indexes and the `table.column`s otherwise.
fn assert_unique(err: &DbErr, names: &[&str]) {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) => {
            assert!(names.iter().any(|name| message.contains(name)), "expected one of {names:?} in: {message}")
        }
        other => panic!("expected a unique violation naming {names:?}, got {other:?}: {err}"),
    }
}

fn assert_check(err: &DbErr) {
    let message = err.to_string();
    assert!(
        message.contains("CHECK constraint failed") || message.contains("violates check constraint"),
        "expected a CHECK violation, got: {message}"
    );
}
