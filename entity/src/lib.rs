//! sea-orm entities of MiniFigurine: one module per table, no logic.
//!
//! Conventions: money is `i64` cents (EUR), timestamps are UTC (`DateTimeUtc`), ids of users,
//! catalog items and orders are `Uuid`; child rows of an order use an `i64` auto-increment id.
//! Enumerations (roles, statuses, line kinds) are stored as upper-case strings and guarded by
//! CHECK constraints in the migration.

pub mod figurine;
pub mod order;
pub mod order_discount;
pub mod order_event;
pub mod order_line;
pub mod outbox;
pub mod package;
pub mod package_item;
pub mod user;

pub mod prelude;
