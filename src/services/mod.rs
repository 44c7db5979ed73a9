//! Services: the use cases, as functions over a database connection and domain types. They
//! know nothing of GraphQL or HTTP, so the REST endpoints, the GraphQL resolvers and the
//! command line share them.

pub mod accounts;
pub mod catalog;
pub mod feed_reads;
pub mod order_details;
pub mod order_feed;
pub mod order_store;
pub mod orders;
