//! The seed-compatible REST endpoints (contract section 6): `POST /register`, `POST /login`.
//! They share validation and services with GraphQL; only the envelope differs.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::HttpState;
use super::content_type::is_json;
use crate::auth::ClientAddress;
use crate::domain::Role;
use crate::error::AppError;
use crate::services::accounts::{self, NewAccount};

#[derive(Deserialize)]
struct RegisterBody {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
    address: Option<String>,
}

#[derive(Deserialize)]
struct LoginBody {
    username: Option<String>,
    password: Option<String>,
}

pub async fn register(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let body: RegisterBody = json_body(&headers, &body)?;
        let new = NewAccount::parse(
            &required("username", body.username)?,
            &required("email", body.email)?,
            &required("password", body.password)?,
            &required("address", body.address)?,
        )?;
        let app = &state.app;
        accounts::register(&app.db, &app.hasher, new, Role::Customer).await
    }
    .await;
    match result {
        // The seed API answers registration with the account alone, so no session is opened.
        Ok(account) => (
            StatusCode::CREATED,
            Json(json!({
                "id": account.id.to_string(),
                "username": account.username,
                "email": account.email,
                "address": account.address,
            })),
        )
            .into_response(),
        Err(err) => app_error_response(err),
    }
}

pub async fn login(
    State(state): State<HttpState>,
    Extension(client): Extension<ClientAddress>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let body: LoginBody = json_body(&headers, &body)?;
        let username = required("username", body.username)?;
        let password = required("password", body.password)?;
        let app = &state.app;
        accounts::log_in(&app.db, &app.hasher, &app.throttle, &app.tokens, &username, &password, client.group()).await
    }
    .await;
    match result {
        Ok(session) => (StatusCode::OK, Json(json!({"token": session.token}))).into_response(),
        Err(err) => app_error_response(err),
    }
}

fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, AppError> {
    if !is_json(headers) {
        return Err(AppError::bad_input_message("body", "send a JSON body with Content-Type: application/json"));
    }
    serde_json::from_slice(body)
        .map_err(|_| AppError::bad_input_message("body", "the body is not a JSON object of the expected shape"))
}

/// A field every request must have. U+0000 is refused here as on GraphQL (see
/// `graphql::nul_input`): no field means one, and the database cannot store it.
fn required(field: &'static str, value: Option<String>) -> Result<String, AppError> {
    match value {
        None => Err(AppError::bad_input(field, "is required")),
        Some(text) if text.contains('\0') => Err(AppError::bad_input(field, "must not contain the NUL character")),
        Some(text) => Ok(text),
    }
}

/// The status each contract code answers with on REST.
fn status_of(err: &AppError) -> StatusCode {
    match err {
        AppError::BadInput { .. } => StatusCode::BAD_REQUEST,
        AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::Conflict { .. } | AppError::InvalidTransition(_) => StatusCode::CONFLICT,
        AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `{"error": {"code", "message", "field"?}}` with the matching status (and `Retry-After`).
pub fn app_error_response(err: AppError) -> Response {
    err.log_if_internal();
    let mut error = json!({"code": err.code(), "message": err.message()});
    match &err {
        AppError::BadInput { field, .. } | AppError::Conflict { field: Some(field), .. } => {
            error["field"] = json!(field)
        }
        AppError::RateLimited { retry_after_secs } => error["retryAfter"] = json!(retry_after_secs),
        _ => {}
    }
    let mut response = (status_of(&err), Json(json!({ "error": error }))).into_response();
    if let AppError::RateLimited { retry_after_secs } = err
        && let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string())
    {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

/// A JSON error body for failures outside any service (unknown route, panic).
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": {"code": code, "message": message}}))).into_response()
}
