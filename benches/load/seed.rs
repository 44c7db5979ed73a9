//! Seed data: the catalog, customers (`register`), the FACTORY token, and orders, through
//! the API or, for large numbers, straight into PostgreSQL.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use hyper::header::HeaderValue;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement, TransactionTrait};
use serde_json::{Value, json};

use crate::http::{Client, bearer};
use crate::server::{FACTORY_PASSWORD, FACTORY_USERNAME};

pub const PASSWORD: &str = "TestTest123@";

/// The seeded catalog: figurines as (sku, id, unit price in cents), packages as (code, id).
pub struct Catalog {
    pub figurines: Vec<(String, String, i64)>,
    pub packages: Vec<(String, String)>,
}

impl Catalog {
    pub fn figurine(&self, index: usize) -> &str {
        &self.figurines[index % self.figurines.len()].1
    }

    pub fn package(&self, index: usize) -> &str {
        &self.packages[index % self.packages.len()].1
    }
}

pub async fn catalog(addr: SocketAddr) -> anyhow::Result<Catalog> {
    let mut client = Client::connected(addr).await?;
    let body =
        client.graphql(None, "{ figurines { id sku unitPrice { cents } } packages { id code } }", json!({})).await?;
    let list = |key: &str| body["data"][key].as_array().cloned().with_context(|| format!("no {key} in {body}"));
    let figurines = list("figurines")?
        .iter()
        .map(|f| {
            (
                f["sku"].as_str().unwrap_or_default().to_owned(),
                f["id"].as_str().unwrap_or_default().to_owned(),
                f["unitPrice"]["cents"].as_i64().unwrap_or_default(),
            )
        })
        .collect::<Vec<_>>();
    let packages = list("packages")?
        .iter()
        .map(|p| (p["code"].as_str().unwrap_or_default().to_owned(), p["id"].as_str().unwrap_or_default().to_owned()))
        .collect::<Vec<_>>();
    if figurines.len() < 3 || packages.is_empty() {
        bail!("the catalog is too small: {body}");
    }
    Ok(Catalog { figurines, packages })
}

/// A registered customer.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: String,
    pub username: String,
    pub token: String,
}

impl Account {
    pub fn bearer(&self) -> HeaderValue {
        bearer(&self.token)
    }
}

/// Registers `count` customers named `<tag>_<n>`, a few at a time (argon2 is slow, and a
/// full hashing queue answers RATE_LIMITED: those are retried).
pub async fn register(addr: SocketAddr, tag: &str, count: usize) -> anyhow::Result<Vec<Account>> {
    const CONCURRENCY: usize = 8;
    let results = futures::stream::iter(0..count)
        .map(|n| async move {
            let username = format!("{tag}_{n}");
            let mut client = Client::new(addr);
            let query = "mutation($input: RegisterInput!) { register(input: $input) { token user { id } } }";
            let input = json!({"input": {"username": username, "email": format!("{username}@load.example.com"), "password": PASSWORD, "address": format!("{n} Load Street")}});
            for _ in 0..100 {
                let body = client.graphql(None, query, input.clone()).await?;
                if let Some(token) = body["data"]["register"]["token"].as_str() {
                    let id = body["data"]["register"]["user"]["id"].as_str().unwrap_or_default().to_owned();
                    return Ok(Account { id, username, token: token.to_owned() });
                }
                if body["errors"][0]["extensions"]["code"] != "RATE_LIMITED" {
                    bail!("register {username}: {body}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            bail!("register {username}: still RATE_LIMITED after 100 tries")
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<anyhow::Result<Account>>>()
        .await;
    let mut accounts: Vec<Account> = results.into_iter().collect::<anyhow::Result<_>>()?;
    accounts.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(accounts)
}

pub const LOGIN: &str = "mutation($input: LoginInput!) { login(input: $input) { token expiresAt } }";

pub async fn login(addr: SocketAddr, username: &str, password: &str) -> anyhow::Result<String> {
    let mut client = Client::connected(addr).await?;
    let body = client.graphql(None, LOGIN, json!({"input": {"username": username, "password": password}})).await?;
    body["data"]["login"]["token"].as_str().map(str::to_owned).with_context(|| format!("login {username}: {body}"))
}

pub async fn factory_token(addr: SocketAddr) -> anyhow::Result<String> {
    login(addr, FACTORY_USERNAME, FACTORY_PASSWORD).await
}

/// Places `count` orders of one figurine through `connections` keep-alive connections,
/// round-robin over the customers. Returns the order ids in order.
pub async fn place_orders(
    addr: SocketAddr,
    customers: &[Account],
    figurine: &str,
    count: usize,
    connections: usize,
) -> anyhow::Result<Vec<String>> {
    let query = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }";
    let mut workers = Vec::new();
    for worker in 0..connections.min(count.max(1)) {
        let tokens: Vec<HeaderValue> = customers.iter().map(Account::bearer).collect();
        let figurine = figurine.to_owned();
        workers.push(tokio::task::spawn_local(async move {
            let mut client = Client::connected(addr).await?;
            let mut placed = Vec::new();
            for index in (worker..count).step_by(connections) {
                let input = json!({"input": {"items": [{"figurineId": figurine, "quantity": 1}]}});
                let body: Value = client.graphql(Some(&tokens[index % tokens.len()]), query, input).await?;
                let id = body["data"]["placeOrder"]["id"].as_str().with_context(|| format!("placeOrder: {body}"))?;
                placed.push((index, id.to_owned()));
            }
            anyhow::Ok(placed)
        }));
    }
    let mut orders = Vec::with_capacity(count);
    for worker in workers {
        orders.extend(worker.await.context("a seeding worker panicked")??);
    }
    orders.sort();
    Ok(orders.into_iter().map(|(_, id)| id).collect())
}

/// Inserts `count` PENDING orders (version 1, one line of one figurine, their PENDING
/// event) for `customer` straight into PostgreSQL, as `placeOrder` would have stored them,
/// marked as handed to the factories now. Returns their ids.
pub async fn sql_orders(
    database_url: &str,
    customer: &str,
    figurine: &str,
    cents: i64,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    // Both come from the server; parsing them keeps the SQL below free of anything else.
    let customer = uuid::Uuid::parse_str(customer).context("customer id")?;
    let figurine = uuid::Uuid::parse_str(figurine).context("figurine id")?;
    let db = Database::connect(database_url).await.context("connect to the run's database")?;
    let txn = db.begin().await?;
    txn.execute_unprepared(&format!(
        "INSERT INTO orders (id, customer_id, status, version, subtotal_cents, discount_cents, total_cents, \
         shipping_address, created_at, updated_at, dispatched_at) \
         SELECT gen_random_uuid(), '{customer}', 'PENDING', 1, {cents}, 0, {cents}, '1 Load Street', now(), now(), now() \
         FROM generate_series(1, {count})"
    ))
    .await
    .context("insert orders")?;
    txn.execute_unprepared(&format!(
        "INSERT INTO order_lines (order_id, position, kind, figurine_id, quantity, unit_price_cents, subtotal_cents, \
         discount_cents, total_cents) \
         SELECT id, 0, 'FIGURINE', '{figurine}', 1, {cents}, {cents}, 0, {cents} FROM orders WHERE customer_id = '{customer}'"
    ))
    .await
    .context("insert order lines")?;
    // Since migration 000004 every event has its place in its customer's sequence; a
    // baseline binary from before it has no such columns.
    let numbered = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM information_schema.columns \
             WHERE table_name = 'order_events' AND column_name = 'seq'",
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0)
        > 0;
    let events = if numbered {
        format!(
            "INSERT INTO order_events (order_id, customer_id, seq, version, status, at) \
             SELECT id, customer_id, (SELECT event_seq FROM users WHERE id = '{customer}') \
                 + row_number() OVER (ORDER BY id), 1, 'PENDING', created_at \
             FROM orders WHERE customer_id = '{customer}'; \
             UPDATE users SET event_seq = (SELECT max(seq) FROM order_events WHERE customer_id = '{customer}') \
             WHERE id = '{customer}'"
        )
    } else {
        format!(
            "INSERT INTO order_events (order_id, version, status, at) \
             SELECT id, 1, 'PENDING', created_at FROM orders WHERE customer_id = '{customer}'"
        )
    };
    txn.execute_unprepared(&events).await.context("insert order events")?;
    txn.commit().await?;
    analyze(&db).await;
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT id::text AS id FROM orders WHERE customer_id = '{customer}' ORDER BY id"),
        ))
        .await?;
    let ids = rows.iter().map(|row| row.try_get::<String>("", "id")).collect::<Result<Vec<_>, _>>()?;
    let _ = db.close().await;
    if ids.len() != count {
        bail!("inserted {} orders, wanted {count}", ids.len());
    }
    Ok(ids)
}

/// Fresh statistics after a bulk insert, as autovacuum would gather them soon anyway.
async fn analyze(db: &sea_orm::DatabaseConnection) {
    let _ = db.execute_unprepared("ANALYZE orders, order_lines, order_events").await;
}
