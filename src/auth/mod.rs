//! Who is calling, and how they prove it. The HTTP and WebSocket layers authenticate (turn
//! a bearer token into a [`Caller`]); the GraphQL layer authorizes (its guards ask the
//! caller for what a field needs); the account service checks passwords and issues tokens.
//!
//! The modules depend on each other in one direction only: [`principal`] on nothing here,
//! [`tokens`] on [`principal`], [`caller`] on both. [`passwords`] and [`login_throttle`]
//! stand alone.

pub mod caller;
pub mod client_address;
pub mod login_throttle;
pub mod passwords;
pub mod principal;
pub mod tokens;

pub use caller::Caller;
pub use client_address::ClientAddress;
pub use principal::Principal;
pub use tokens::bearer_token;
