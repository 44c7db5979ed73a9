//! The one cloneable state every handler and resolver shares.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::bus::outbox::OutboxSignal;
use crate::bus::{Bus, EventHub};
use crate::config::Settings;
use crate::services::login_throttle::LoginThrottle;
use crate::services::passwords::PasswordHasher;
use crate::services::tokens::TokenKeys;

#[derive(Clone)]
pub struct AppState {
    /// The database pool (SQLite or PostgreSQL): the record of every account and order.
    pub db: DatabaseConnection,
    /// Signs and verifies access tokens.
    pub tokens: TokenKeys,
    /// argon2id hashing, bounded and off the executor.
    pub hasher: PasswordHasher,
    /// Failed-login counts per username.
    pub throttle: LoginThrottle,
    /// Redis or the in-process bus: where the outbox relay publishes.
    pub bus: Arc<dyn Bus>,
    /// Wakes the outbox relay after a commit that wrote messages.
    pub outbox: OutboxSignal,
    /// This instance's fan-out of status events to its subscriptions.
    pub hub: Arc<EventHub>,
    /// What the process was started with.
    pub settings: Arc<Settings>,
}
