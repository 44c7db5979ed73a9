//! Domain types: what the service knows about accounts, money, carts, prices and order
//! statuses, with no I/O. Inputs from clients become these types at the edge ("parse, don't
//! validate"), so nothing past a resolver handles a raw `String`.

pub mod account;
pub mod cart;
pub mod idempotency_key;
pub mod money;
pub mod order_status;
pub mod pricing;
pub mod role;
pub mod status_event;

pub use account::{Address, Email, Password, Username};
pub use cart::{Cart, CartError, CartLine, LineList, RawCartLine};
pub use idempotency_key::IdempotencyKey;
pub use money::Money;
pub use order_status::{Actor, OrderStatus, StatusChange, TransitionError};
pub use pricing::{AppliedDiscount, LineKind, PriceList, PricedLine, PricingError, Quote};
pub use role::Role;
pub use status_event::StatusEvent;
