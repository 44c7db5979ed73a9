//! SQL statements on the request path, counted from sqlx's own statement log against the
//! real database, so that the number per operation cannot creep back up. The issue's
//! budget for `placeOrder` is five statements, `BEGIN` and `COMMIT` included.
//!
//! The server logs every statement as a `sqlx::query` event at TRACE; a layer installed for
//! this test binary attributes each one to the `request` span it ran in, by the request id
//! the test sends in `x-request-id`. Work done outside the request (the outbox relay's
//! publish and delete) is the relay's, not the request's, and is not counted here.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry, filter};
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app, uses_sqlite};

/// `placeOrder`'s budget (the issue's): statements on its request path.
const PLACE_ORDER_BUDGET: usize = 5;

/// Statements seen per request id.
fn statements() -> &'static Mutex<HashMap<String, Vec<String>>> {
    static STATEMENTS: OnceLock<Mutex<HashMap<String, Vec<String>>>> = OnceLock::new();
    STATEMENTS.get_or_init(Default::default)
}

struct RequestId(String);

#[derive(Default)]
struct Fields {
    request_id: Option<String>,
    summary: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "request_id" => self.request_id = Some(value.to_owned()),
            "summary" => self.summary = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" {
            self.summary = Some(format!("{value:?}"));
        }
    }
}

struct StatementCounter;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for StatementCounter {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(request_id), Some(span)) = (fields.request_id, ctx.span(id)) {
            span.extensions_mut().insert(RequestId(request_id));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else { return };
        for span in scope {
            if let Some(RequestId(request_id)) = span.extensions().get::<RequestId>() {
                let mut fields = Fields::default();
                event.record(&mut fields);
                let mut seen = statements().lock().unwrap_or_else(|p| p.into_inner());
                seen.entry(request_id.clone()).or_default().push(fields.summary.unwrap_or_default());
                return;
            }
        }
    }
}

fn install_counter() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let only = filter::filter_fn(|meta| meta.name() == "request" || meta.target() == "sqlx::query");
        let subscriber = Registry::default().with(StatementCounter.with_filter(only));
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber in the tests");
    });
}

/// Runs one GraphQL operation under a fresh request id; returns its body and statements.
async fn counted(app: &TestApp, token: &str, query: &str, variables: Value) -> (Value, Vec<String>) {
    let request_id = format!("count-{}", Uuid::new_v4().simple());
    let body: Value = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(token)
        .header("x-request-id", &request_id)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let seen = statements().lock().unwrap_or_else(|p| p.into_inner()).remove(&request_id).unwrap_or_default();
    (body, seen)
}

const PLACE_ORDER: &str =
    "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id status total { cents } } }";

#[tokio::test]
async fn place_order_runs_at_most_five_statements_on_postgres() {
    if uses_sqlite() {
        // The budget is PostgreSQL's, where every statement is a network round trip.
        return;
    }
    install_counter();
    let app = spawn_app().await;
    let customer = app.register("stmts").await;
    let catalog = app.catalog().await;
    let input = json!({
        "items": [{"figurineId": catalog.figurine("FIG-KNIGHT"), "quantity": 30}, {"figurineId": catalog.figurine("FIG-WIZARD"), "quantity": 2}],
        "packages": [{"packageId": catalog.package("PKG-PARTY"), "quantity": 1}],
        "idempotencyKey": "stmt-count-1",
    });
    // The first order also prepares the statement on its connection; count a later one too.
    for key in ["stmt-count-1", "stmt-count-2"] {
        let mut input = input.clone();
        input["idempotencyKey"] = json!(key);
        let (body, seen) = counted(&app, &customer.token, PLACE_ORDER, json!({"input": input})).await;
        assert_eq!(body["data"]["placeOrder"]["status"], "PENDING", "{body}");
        assert!(!seen.is_empty(), "no statement was attributed to the request: is statement logging on?");
        assert!(seen.len() <= PLACE_ORDER_BUDGET, "placeOrder ran {} statements: {seen:#?}", seen.len());
    }
}

#[tokio::test]
async fn a_status_change_runs_two_statements_on_postgres() {
    if uses_sqlite() {
        return;
    }
    install_counter();
    let app = spawn_app().await;
    let customer = app.register("stmts").await;
    let order = app.place_simple_order(&customer.token, 1).await;
    let factory = app.factory_token().await;
    let (body, seen) = counted(
        &app,
        &factory,
        "mutation($id: ID!) { updateOrderStatus(input: {orderId: $id, status: ACCEPTED}) { status version } }",
        json!({"id": order["id"]}),
    )
    .await;
    assert_eq!(body["data"]["updateOrderStatus"], json!({"status": "ACCEPTED", "version": 2}), "{body}");
    // Read the order, then move it with its event and outbox row in one statement.
    assert_eq!(seen.len(), 2, "{seen:#?}");
}
