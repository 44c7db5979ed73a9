//! The factory's view of the MiniFigurine API: three typed operations generated from the
//! project's `schema.graphql` (documents in `factory/graphql/`), sent with reqwest, and the
//! FACTORY account's token, renewed before it expires.
//!
//! Errors are sorted by `extensions.code` and the HTTP status into what the worker does
//! about them ([`ApiError`]): an answer about the order, a transient failure worth trying
//! again, or a refusal no retry changes. `UNAUTHENTICATED` is handled here (log in again,
//! retry once).

use std::time::Duration;

use chrono::{DateTime, Utc};
use graphql_client::GraphQLQuery;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::WorkerSettings;
use crate::status::{OrderStatus, Status};

/// Operations generated from `schema.graphql`. `DateTime` and `ID` are strings on the wire.
pub mod operations {
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
}

use operations::{Login, OrderState, UpdateOrderStatus, login, order_state, update_order_status};

/// How long one HTTP request may take before the API counts as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why an API call did not do what was asked, sorted by what the worker does about it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `UNAUTHENTICATED`: the token was refused (the client has already logged in again
    /// and retried once when the worker sees this).
    #[error("the API refused the factory's credentials: {0}")]
    Unauthenticated(String),
    /// `INVALID_TRANSITION`: the order is not where we thought (someone else moved it,
    /// possibly past the status asked for); re-read it.
    #[error("the API refused the status change: {0}")]
    InvalidTransition(String),
    /// `CONFLICT`: someone else was changing the order at the same moment and nothing was
    /// written; re-read it and go on from there.
    #[error("the order was being changed by someone else: {0}")]
    Conflict(String),
    /// `NOT_FOUND`: no such order; acknowledge and skip.
    #[error("no such order: {0}")]
    NotFound(String),
    /// No usable answer this time, and the next try may well get one: the request did not
    /// get through or timed out, an HTTP 5xx (a proxy's 502 or 503 while an instance
    /// restarts), 408 or 429, or `INTERNAL_SERVER_ERROR`.
    #[error("the API did not answer: {0}")]
    Transient(String),
    /// An answer that trying again does not change: an unexpected code (`FORBIDDEN`,
    /// `BAD_USER_INPUT`), a body that is not a GraphQL response, the login refused.
    #[error("the API is unusable: {0}")]
    Unavailable(String),
}

impl ApiError {
    /// Worth trying the same call again in a moment.
    pub fn is_transient(&self) -> bool {
        matches!(self, ApiError::Transient(_))
    }

    /// The API worked and said something about the order itself.
    pub fn is_answer(&self) -> bool {
        matches!(self, ApiError::InvalidTransition(_) | ApiError::Conflict(_) | ApiError::NotFound(_))
    }
}

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
            .map_err(|err| anyhow::anyhow!("building the HTTP client: {err}"))?;
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
        let mut request = self.http.post(&self.url).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|err| ApiError::Transient(describe(&err)))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|err| ApiError::Transient(describe(&err)))?;
        let parsed: graphql_client::Response<Q::ResponseData> = parse_json(&bytes).map_err(|err| {
            unusable(status, format!("HTTP {status} with a body that is not a GraphQL response ({err})"))
        })?;
        if let Some(error) = parsed.errors.as_ref().and_then(|errors| errors.first()) {
            let code = error.extensions.as_ref().and_then(|ext| ext.get("code")).and_then(|code| code.as_str());
            return Err(classify(code, &error.message));
        }
        parsed.data.ok_or_else(|| unusable(status, format!("HTTP {status} with neither data nor errors")))
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

/// A response the factory cannot use: transient when the HTTP status says the server (or
/// a proxy in front of it) could not serve the request right now.
fn unusable(status: reqwest::StatusCode, description: String) -> ApiError {
    let transient = status.is_server_error()
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
    if transient { ApiError::Transient(description) } else { ApiError::Unavailable(description) }
}

/// What an error `code` (the contract's `extensions.code`) means to the factory.
pub fn classify(code: Option<&str>, message: &str) -> ApiError {
    let message = message.to_owned();
    match code {
        Some("UNAUTHENTICATED") => ApiError::Unauthenticated(message),
        Some("INVALID_TRANSITION") => ApiError::InvalidTransition(message),
        Some("CONFLICT") => ApiError::Conflict(message),
        Some("NOT_FOUND") => ApiError::NotFound(message),
        // The contract's "anything unexpected", and throttling: both pass.
        Some(code @ ("INTERNAL_SERVER_ERROR" | "RATE_LIMITED")) => ApiError::Transient(format!("{code}: {message}")),
        Some(code) => ApiError::Unavailable(format!("{code}: {message}")),
        None => ApiError::Unavailable(message),
    }
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

    #[test]
    fn error_codes_map_to_what_the_factory_does() {
        assert!(matches!(classify(Some("UNAUTHENTICATED"), "x"), ApiError::Unauthenticated(_)));
        assert!(matches!(classify(Some("INVALID_TRANSITION"), "x"), ApiError::InvalidTransition(_)));
        assert!(matches!(classify(Some("CONFLICT"), "x"), ApiError::Conflict(_)));
        assert!(matches!(classify(Some("NOT_FOUND"), "x"), ApiError::NotFound(_)));
        for transient in ["INTERNAL_SERVER_ERROR", "RATE_LIMITED"] {
            assert!(classify(Some(transient), "x").is_transient(), "{transient}");
        }
        for other in [Some("FORBIDDEN"), Some("BAD_USER_INPUT"), Some("SOMETHING_NEW"), None] {
            assert!(matches!(classify(other, "x"), ApiError::Unavailable(_)), "{other:?}");
        }
    }

    #[test]
    fn answers_about_the_order_are_told_apart_from_failures() {
        for answer in ["INVALID_TRANSITION", "CONFLICT", "NOT_FOUND"] {
            let error = classify(Some(answer), "x");
            assert!(error.is_answer() && !error.is_transient(), "{answer}");
        }
        for failure in [Some("INTERNAL_SERVER_ERROR"), Some("FORBIDDEN"), Some("UNAUTHENTICATED"), None] {
            assert!(!classify(failure, "x").is_answer(), "{failure:?}");
        }
    }

    #[test]
    fn a_server_or_proxy_that_cannot_serve_right_now_is_transient() {
        use reqwest::StatusCode;
        for status in [502, 503, 504, 500, 408, 429] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(unusable(status, String::new()).is_transient(), "{status}");
        }
        for status in [200, 400, 404, 405] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(matches!(unusable(status, String::new()), ApiError::Unavailable(_)), "{status}");
        }
    }
}
