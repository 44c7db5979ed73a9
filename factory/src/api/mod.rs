//! The factory's view of the MiniFigurine API: three typed operations generated from the
//! project's `schema.graphql` (documents in `factory/graphql/`), sent with reqwest, and the
//! FACTORY account's token, renewed before it expires.
//!
//! Errors are sorted by `extensions.code` and the HTTP status into what the worker does
//! about them ([`ApiError`]): an answer about the order, a transient failure worth trying
//! again, or a refusal no retry changes. `UNAUTHENTICATED` is handled here (log in again,
//! retry once).

mod errors;
pub mod operations;

use std::time::Duration;

use chrono::{DateTime, Utc};
use graphql_client::GraphQLQuery;
use minifig_common::error_code;
use minifig_common::telemetry::propagation;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::Instrument;

use self::errors::unusable;
pub use self::errors::{ApiError, classify};
use self::operations::{Login, OrderState, UpdateOrderStatus, login, order_state, update_order_status};
use crate::config::WorkerSettings;
use crate::metrics;
use crate::status::{OrderStatus, Status};

/// How long one HTTP request may take before the API counts as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where an order is, as the API last said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSnapshot {
    pub status: Status,
    pub version: i64,
}

/// A FACTORY token and when to stop using it. Deliberately not `Debug`.
struct Token {
    value: String,
    refresh_at: Instant,
}

/// The API client. Cheap to share behind an `Arc`; the token is renewed by whichever call
/// first finds it due (one login at a time).
pub struct ApiClient {
    http: reqwest::Client,
    url: String,
    username: String,
    password: SecretString,
    token: Mutex<Option<Token>>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient").field("url", &self.url).field("username", &self.username).finish_non_exhaustive()
    }
}

impl ApiClient {
    pub fn new(settings: &WorkerSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("minifig-factory/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| anyhow::Error::new(err).context("building the HTTP client"))?;
        Ok(ApiClient {
            http,
            url: settings.api_url.clone(),
            username: settings.username.clone(),
            password: settings.password.clone(),
            token: Mutex::new(None),
        })
    }

    /// Logs in now, replacing any token. Also the factory's probe of whether the API is up.
    #[tracing::instrument(skip(self), fields(username = %self.username))]
    pub async fn login(&self) -> Result<(), ApiError> {
        let mut slot = self.token.lock().await;
        *slot = Some(self.fetch_token().await?);
        Ok(())
    }

    /// The order's current status and version.
    #[tracing::instrument(skip(self))]
    pub async fn order_state(&self, order_id: &str) -> Result<OrderSnapshot, ApiError> {
        let variables = order_state::Variables { id: order_id.to_owned() };
        let data = self.authorized::<OrderState>(variables).await?;
        let order = data.order.ok_or_else(|| ApiError::NotFound(format!("order {order_id}")))?;
        Ok(OrderSnapshot { status: order.status, version: order.version })
    }

    /// Moves the order to `to`; the API answers with where the order now is.
    #[tracing::instrument(skip(self))]
    pub async fn update_status(&self, order_id: &str, to: &OrderStatus) -> Result<OrderSnapshot, ApiError> {
        let status = Status::Known(*to);
        let variables = update_order_status::Variables {
            input: update_order_status::UpdateOrderStatusInput { order_id: order_id.to_owned(), status, note: None },
        };
        let order = self.authorized::<UpdateOrderStatus>(variables).await?.update_order_status;
        Ok(OrderSnapshot { status: order.status, version: order.version })
    }

    /// Runs `Q` with the current token, logging in first when it is due, and once more
    /// when the API says it is no longer good (the server may have restarted with
    /// another key).
    async fn authorized<Q: GraphQLQuery>(&self, variables: Q::Variables) -> Result<Q::ResponseData, ApiError>
    where
        Q::Variables: Clone,
    {
        let token = self.current_token().await?;
        match self.execute::<Q>(variables.clone(), Some(&token)).await {
            Err(ApiError::Unauthenticated(reason)) => {
                tracing::info!(%reason, "the API refused the token; logging in again");
                let token = self.renew_token(&token).await?;
                self.execute::<Q>(variables, Some(&token)).await
            }
            other => other,
        }
    }

    /// A token that is not due for renewal, logging in when there is none or it is due.
    async fn current_token(&self) -> Result<String, ApiError> {
        let mut slot = self.token.lock().await;
        if let Some(token) = slot.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.value.clone());
        }
        let token = self.fetch_token().await?;
        let value = token.value.clone();
        *slot = Some(token);
        Ok(value)
    }

    /// Replaces `refused` with a fresh token, unless another call already did.
    async fn renew_token(&self, refused: &str) -> Result<String, ApiError> {
        let mut slot = self.token.lock().await;
        if let Some(token) = slot.as_ref()
            && token.value != refused
        {
            return Ok(token.value.clone());
        }
        let token = self.fetch_token().await?;
        let value = token.value.clone();
        *slot = Some(token);
        Ok(value)
    }

    async fn fetch_token(&self) -> Result<Token, ApiError> {
        let variables = login::Variables {
            input: login::LoginInput {
                username: self.username.clone(),
                password: self.password.expose_secret().to_owned(),
            },
        };
        let payload = match self.execute::<Login>(variables, None).await {
            Ok(data) => data.login,
            // A refused login is not cured by logging in again: it is a configuration
            // problem (or throttling) that only time or an operator fixes.
            Err(ApiError::Unauthenticated(reason)) => {
                return Err(ApiError::Unavailable(format!(
                    "login as {} refused ({reason}); check FACTORY_USERNAME and FACTORY_PASSWORD",
                    self.username
                )));
            }
            Err(err) => return Err(err),
        };
        let expires_at = DateTime::parse_from_rfc3339(&payload.expires_at)
            .map_err(|err| ApiError::Unavailable(format!("login answered an unreadable expiresAt: {err}")))?
            .with_timezone(&Utc);
        let refresh_in = refresh_after(Utc::now(), expires_at);
        tracing::info!(%expires_at, refresh_in_secs = refresh_in.as_secs(), "logged in");
        Ok(Token { value: payload.token, refresh_at: Instant::now() + refresh_in })
    }

    /// Sends one operation and sorts its errors.
    async fn execute<Q: GraphQLQuery>(
        &self,
        variables: Q::Variables,
        token: Option<&str>,
    ) -> Result<Q::ResponseData, ApiError> {
        let body = Q::build_query(variables);
        let started = std::time::Instant::now();
        let result = self.send::<Q>(&body, token).await;
        metrics::api_call(body.operation_name, result.as_ref().err().map(|(_, code)| *code), started.elapsed());
        result.map_err(|(err, _)| err)
    }

    async fn send<Q: GraphQLQuery>(
        &self,
        body: &graphql_client::QueryBody<Q::Variables>,
        token: Option<&str>,
    ) -> Result<Q::ResponseData, (ApiError, &'static str)> {
        /// The `code` label of a call that got no GraphQL answer.
        const UNREACHABLE: &str = "unreachable";
        const UNUSABLE: &str = "unusable";
        // The operation's name only: its variables are the order's business, and the
        // login's carry the password.
        let span =
            tracing::info_span!("api.request", operation = body.operation_name, http_status = tracing::field::Empty);
        let mut request = self.http.post(&self.url).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        // The W3C trace context, so that the API's spans of this call join the order's trace.
        for (name, value) in propagation::headers_of(&span) {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .instrument(span.clone())
            .await
            .map_err(|err| (ApiError::Transient(describe(&err)), UNREACHABLE))?;
        let status = response.status();
        span.record("http_status", status.as_u16());
        let bytes = response.bytes().await.map_err(|err| (ApiError::Transient(describe(&err)), UNREACHABLE))?;
        let parsed: graphql_client::Response<Q::ResponseData> = parse_json(&bytes).map_err(|err| {
            (unusable(status, format!("HTTP {status} with a body that is not a GraphQL response ({err})")), UNUSABLE)
        })?;
        if let Some(error) = parsed.errors.as_ref().and_then(|errors| errors.first()) {
            let code = error.extensions.as_ref().and_then(|ext| ext.get("code")).and_then(|code| code.as_str());
            return Err((classify(code, &error.message), code.map_or(UNUSABLE, error_code::label)));
        }
        parsed.data.ok_or_else(|| (unusable(status, format!("HTTP {status} with neither data nor errors")), UNUSABLE))
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// A reqwest error in a few words (the URL it names is the API's, which holds no secret).
fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    format!("{kind}: {err}")
}

/// How long after a login to log in again: before `expires_at`, by a margin of a tenth of
/// the token's life, at least 5 s and at most 5 min, and never more than half its life.
/// With the default one-hour tokens that is after 55 minutes; with 30 s tokens, after 25 s.
pub fn refresh_after(now: DateTime<Utc>, expires_at: DateTime<Utc>) -> Duration {
    let life = (expires_at - now).to_std().unwrap_or(Duration::ZERO);
    let margin = (life / 10).clamp(Duration::from_secs(5), Duration::from_secs(300)).min(life / 2);
    life - margin
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn an_hour_long_token_is_renewed_five_minutes_early() {
        assert_eq!(refresh_after(at(0), at(3600)), Duration::from_secs(3300));
    }

    #[test]
    fn a_short_token_is_renewed_at_least_five_seconds_early() {
        assert_eq!(refresh_after(at(0), at(30)), Duration::from_secs(25));
        assert_eq!(refresh_after(at(0), at(120)), Duration::from_secs(108));
    }

    #[test]
    fn a_tiny_token_is_renewed_half_way() {
        assert_eq!(refresh_after(at(0), at(6)), Duration::from_secs(3));
    }

    #[test]
    fn an_expired_token_or_a_clock_ahead_of_the_server_renews_at_once() {
        assert_eq!(refresh_after(at(10), at(0)), Duration::ZERO);
        assert_eq!(refresh_after(at(0), at(0)), Duration::ZERO);
    }

    #[test]
    fn renewal_always_comes_before_expiry() {
        for life in [1, 2, 7, 30, 59, 600, 3600, 86_400, 2_592_000] {
            let renew = refresh_after(at(0), at(0) + TimeDelta::seconds(life));
            assert!(renew < Duration::from_secs(life as u64), "{life}");
        }
    }
}
