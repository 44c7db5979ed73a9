//! The one cloneable state every handler and resolver shares.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::auth::login_throttle::LoginThrottle;
use crate::auth::passwords::PasswordHasher;
use crate::auth::tokens::TokenKeys;
use crate::bus::outbox::Outbox;
use crate::bus::{Bus, EventHub};
use crate::config::Settings;
use crate::services::catalog::Catalog;
use crate::services::feed_reads::FeedReads;

#[derive(Clone)]
pub struct AppState {
    /// The database pool (SQLite or PostgreSQL): the record of every account and order.
    pub db: DatabaseConnection,
    /// The catalog, served from memory and re-read in the background.
    pub catalog: Arc<Catalog>,
    /// Signs and verifies access tokens.
    pub tokens: TokenKeys,
    /// argon2id hashing, bounded and off the executor.
    pub hasher: PasswordHasher,
    /// Failed-login counts per username.
    pub throttle: LoginThrottle,
    /// Redis or the in-process bus: where the outbox relay publishes.
    pub bus: Arc<dyn Bus>,
    /// Hands committed outbox messages to the relay, which publishes them at once.
    pub outbox: Outbox,
    /// This instance's fan-out of status events to its subscriptions.
    pub hub: Arc<EventHub>,
    /// The batched, bounded reads that subscriptions make of the record.
    pub feed_reads: FeedReads,
    /// What the process was started with.
    pub settings: Arc<Settings>,
}
