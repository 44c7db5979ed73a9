//! Operations generated from `schema.graphql`. `DateTime` and `ID` are strings on the wire.

use graphql_client::GraphQLQuery;

/// RFC 3339 (UTC), as the schema's `DateTime` scalar says.
pub type DateTime = String;
/// The API's statuses, with room for one this factory does not know yet.
pub type OrderStatus = crate::status::Status;

/// `login` as the FACTORY account. No `Debug`: the response holds the token.
#[derive(GraphQLQuery)]
#[graphql(schema_path = "../schema.graphql", query_path = "graphql/login.graphql")]
pub struct Login;

/// One order's `status` and `version`.
#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "graphql/order_state.graphql",
    extern_enums("OrderStatus"),
    variables_derives = "Clone",
    response_derives = "Debug"
)]
pub struct OrderState;

/// One production step.
#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "graphql/update_order_status.graphql",
    extern_enums("OrderStatus"),
    variables_derives = "Clone",
    response_derives = "Debug"
)]
pub struct UpdateOrderStatus;
