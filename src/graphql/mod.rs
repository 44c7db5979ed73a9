//! The GraphQL API: a thin layer that parses inputs into domain types, calls services and
//! wraps their results. Roots are split by domain and merged.

pub mod account;
pub mod catalog;
pub mod context;
pub mod engine;
pub mod errors;
pub mod inputs;
pub mod loaders;
pub mod orders;
pub mod scalars;
pub mod subscriptions;
pub mod types;

use async_graphql::dataloader::DataLoader;
use async_graphql::{MergedObject, MergedSubscription, Schema, SchemaBuilder};

pub use engine::Engine;
use loaders::{DiscountsLoader, HistoryLoader, LinesLoader, UserLoader};

use crate::state::AppState;

/// Deepest selection accepted. Our own types need about 7
/// (`myOrders.edges.node.lines.package.items.figurine`), but the introspection query that
/// GraphiQL and code generators send nests `ofType` nine times, reaching 15.
pub const MAX_DEPTH: usize = 16;
/// Complexity budget: a full page of 100 orders with their lines and history fits.
pub const MAX_COMPLEXITY: usize = 5_000;
/// Most directives one field may carry.
pub const MAX_DIRECTIVES: usize = 8;

#[derive(MergedObject, Default)]
pub struct Query(account::AccountQuery, catalog::CatalogQuery, orders::OrderQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(account::AccountMutation, orders::OrderMutation);

#[derive(MergedSubscription, Default)]
pub struct Subscription(subscriptions::OrderSubscription);

pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// The schema with its limits and error codes, without any state: enough to print the SDL.
pub fn schema_builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query::default(), Mutation::default(), Subscription::default())
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_directives(MAX_DIRECTIVES)
}

/// The schema that serves requests, wired to the state, as the transports run it.
pub fn build_schema(state: &AppState) -> Engine {
    let spawner = tokio::spawn;
    let mut builder = schema_builder()
        .data(state.clone())
        .data(DataLoader::new(UserLoader(state.db.clone()), spawner))
        .data(DataLoader::new(LinesLoader(state.db.clone()), spawner))
        .data(DataLoader::new(DiscountsLoader(state.db.clone()), spawner))
        .data(DataLoader::new(HistoryLoader(state.db.clone()), spawner));
    let introspection = state.settings.introspection_enabled();
    if !introspection {
        builder = builder.disable_introspection();
    }
    Engine::new(builder.finish(), !introspection)
}

/// The SDL that `schema.graphql` holds.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}
