//! In-process tests of the GraphQL layer's own rules: guards, error codes, field mapping.
//! They run the schema as the transports do ([`Engine::execute`]) on a migrated SQLite
//! file, without a server, a network, PostgreSQL or Redis. What the transports add
//! (authentication, status codes) is the black-box tests' business (`tests/api/`).

mod error_codes;
mod guards;
mod mapping;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use async_graphql::{Request, Variables};
use serde_json::Value;
use uuid::Uuid;

use super::{Engine, build_schema, schema_builder};
use crate::auth::login_throttle::LoginThrottle;
use crate::auth::passwords::PasswordHasher;
use crate::auth::tokens::TokenKeys;
use crate::auth::{Caller, ClientAddress, Principal};
use crate::bus::in_process::InProcessBus;
use crate::bus::outbox::Relay;
use crate::bus::{Bus, EventHub};
use crate::config::Settings;
use crate::db;
use crate::domain::Role;
use crate::services::catalog::Catalog;
use crate::services::feed_reads::FeedReads;
use crate::state::AppState;
use secrecy::SecretString;

/// A migrated database and the state over it, as `startup` builds them.
struct Harness {
    state: AppState,
    engine: Engine,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
        let db = db::connect(&url).await.expect("SQLite opens");
        db::migrate(&db).await.expect("migrations apply");
        let catalog = Catalog::load(&db).await.expect("the seeded catalog loads");
        let hub = EventHub::new();
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(hub.clone()));
        // The relay is not run: nothing here reads what an order publishes.
        let (_relay, outbox) = Relay::new(db.clone(), bus.clone());
        let state = AppState {
            feed_reads: FeedReads::start(db.clone()),
            db,
            catalog,
            tokens: TokenKeys::new(&SecretString::from("k".repeat(32)), 3600),
            hasher: PasswordHasher::new(1).expect("a hasher"),
            throttle: LoginThrottle::local(),
            bus,
            outbox,
            hub,
            settings: Arc::new(settings(&url)),
        };
        let engine = build_schema(&state);
        Harness { state, engine, _dir: dir }
    }

    /// The same state behind a schema that lacks the batch loaders: every field that
    /// needs one then fails inside async-graphql, with an error that has no code.
    fn engine_without_loaders(&self) -> Engine {
        Engine::new(schema_builder().data(self.state.clone()).finish(), false)
    }

    async fn run(&self, caller: Caller, query: &str) -> Value {
        run(&self.engine, Some(caller), query, Variables::default()).await
    }
}

fn settings(database_url: &str) -> Settings {
    #[derive(clap::Parser)]
    struct Args {
        #[command(flatten)]
        settings: Settings,
    }
    <Args as clap::Parser>::try_parse_from(["minifig", "--database-url", database_url]).expect("settings").settings
}

/// Runs `query` as a transport would: with the caller (unless `None`) and a client address.
async fn run(engine: &Engine, caller: Option<Caller>, query: &str, variables: Variables) -> Value {
    let mut request = Request::new(query).variables(variables).data(ClientAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    if let Some(caller) = caller {
        request = request.data(caller);
    }
    serde_json::to_value(engine.execute(request).await).expect("a response serializes")
}

fn caller(role: Role) -> Caller {
    Caller::Authenticated(Principal { user_id: Uuid::now_v7(), role })
}

/// The codes of the response's errors, in order.
fn codes(response: &Value) -> Vec<&str> {
    response["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["extensions"]["code"].as_str()).collect())
        .unwrap_or_default()
}

fn first_message(response: &Value) -> &str {
    response["errors"][0]["message"].as_str().unwrap_or_default()
}
