//! Batch loaders, so that a page of orders costs a handful of queries, not one per field.
//! (The catalog needs none: it is served from memory, see [`crate::services::catalog`].)
//! They live in the schema without a cache: batching within a request, never stale data
//! across requests.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::domain::StatusEvent;
use crate::domain::{AppliedDiscount, PricedLine};
use crate::error::AppError;
use crate::services::accounts::{self, Account};
use crate::services::order_details;

/// Loader errors must be `Clone`, and one failed batch answers every field that waited on
/// it: the cause is logged once, when the batch fails, not once per field.
#[derive(Clone)]
pub struct LoadError(Arc<AppError>);

impl From<AppError> for LoadError {
    fn from(err: AppError) -> Self {
        err.log_if_internal();
        LoadError(Arc::new(err))
    }
}

impl From<LoadError> for async_graphql::Error {
    fn from(err: LoadError) -> Self {
        super::errors::client_error(&err.0)
    }
}

macro_rules! loader {
    ($(#[$doc:meta])* $name:ident, $value:ty, $load:path) => {
        $(#[$doc])*
        pub struct $name(pub DatabaseConnection);

        impl Loader<Uuid> for $name {
            type Value = $value;
            type Error = LoadError;

            async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
                Ok($load(&self.0, keys).await?)
            }
        }
    };
}

loader!(/// Accounts by id.
    UserLoader, Account, accounts::find_many);
loader!(/// An order's lines by order id.
    LinesLoader, Vec<PricedLine>, order_details::lines_of);
loader!(/// An order's applied discounts by order id.
    DiscountsLoader, Vec<AppliedDiscount>, order_details::discounts_of);
loader!(/// An order's history by order id.
    HistoryLoader, Vec<StatusEvent>, order_details::history_of);
