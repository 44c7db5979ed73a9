//! GraphQL over HTTP, following the GraphQL-over-HTTP specification:
//!
//! - `POST` with `Content-Type: application/json`: one request, or a batch (a JSON array) of
//!   at most [`MAX_BATCH`]; `GET` with `?query=…` for queries only (mutations: 405).
//! - The response media type follows `Accept`: `application/graphql-response+json` when the
//!   client accepts it, with 4xx for requests that never executed (syntax, validation,
//!   variables); `application/json` otherwise (and when `Accept` is absent), always 200
//!   for a well-formed request. A request that never executed has no `data` entry.

use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{BatchRequest, Request as GqlRequest, Response as GqlResponse};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::header::{ACCEPT, ALLOW, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::content_type::is_json;
use super::{HttpState, caller_from_headers};
use crate::auth::ClientAddress;

/// Most operations in one batch (contract section 1).
pub const MAX_BATCH: usize = 10;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaType {
    Json,
    GraphqlResponseJson,
}

impl MediaType {
    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            MediaType::Json => "application/json; charset=utf-8",
            MediaType::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
        })
    }
}

/// The URL parameters of a GET, named as the GraphQL-over-HTTP specification names them
/// (async-graphql's own `parse_query_string` expects `operation_name`, so it is not used).
#[derive(Deserialize)]
pub struct GetParams {
    query: Option<String>,
    #[serde(rename = "operationName", alias = "operation_name")]
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

impl GetParams {
    fn into_request(self) -> Option<GqlRequest> {
        let mut request = json!({"query": self.query.filter(|q| !q.trim().is_empty())?});
        if let Some(name) = self.operation_name {
            request["operationName"] = json!(name);
        }
        if let Some(variables) = self.variables {
            request["variables"] = serde_json::from_str(&variables).ok()?;
        }
        if let Some(extensions) = self.extensions {
            request["extensions"] = serde_json::from_str(&extensions).ok()?;
        }
        serde_json::from_value(request).ok()
    }
}

pub async fn get(
    State(state): State<HttpState>,
    Extension(client): Extension<ClientAddress>,
    headers: HeaderMap,
    params: Result<Query<GetParams>, QueryRejection>,
) -> Response {
    let Some(media) = negotiate(&headers) else { return not_acceptable() };
    let Some(request) = params.ok().and_then(|Query(params)| params.into_request()) else {
        return request_error(
            media,
            StatusCode::BAD_REQUEST,
            "send the operation as ?query=… (and optionally variables as JSON, operationName)",
        );
    };
    if let Some(kind) = non_query_operation(&request) {
        let mut response =
            request_error(media, StatusCode::METHOD_NOT_ALLOWED, &format!("a {kind} must be sent with POST"));
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(&state, &headers, client, media, BatchRequest::Single(request)).await
}

pub async fn post(
    State(state): State<HttpState>,
    Extension(client): Extension<ClientAddress>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(media) = negotiate(&headers) else { return not_acceptable() };
    if !is_json(&headers) {
        return request_error(
            media,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the request with Content-Type: application/json",
        );
    }
    // Parsed straight into requests (no `serde_json::Value` in between), telling a batch
    // from a single request by its first byte: `BatchRequest`'s untagged deserializer
    // would take `[]` for a single empty request.
    let batch = if body.trim_ascii_start().starts_with(b"[") {
        match serde_json::from_slice::<Vec<GqlRequest>>(&body) {
            Ok(requests) if requests.is_empty() || requests.len() > MAX_BATCH => {
                return request_error(
                    media,
                    StatusCode::BAD_REQUEST,
                    &format!("a batch must hold 1 to {MAX_BATCH} operations"),
                );
            }
            parsed => parsed.map(BatchRequest::Batch),
        }
    } else {
        serde_json::from_slice::<GqlRequest>(&body).map(BatchRequest::Single)
    };
    let Ok(batch) = batch else {
        return request_error(
            media,
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object {query, variables, operationName} or an array of them",
        );
    };
    execute(&state, &headers, client, media, batch).await
}

async fn execute(
    state: &HttpState,
    headers: &HeaderMap,
    client: ClientAddress,
    media: MediaType,
    batch: BatchRequest,
) -> Response {
    let caller = caller_from_headers(headers, &state.app.tokens);
    match batch {
        BatchRequest::Single(request) => {
            let response = state.schema.execute(request.data(caller).data(client)).await;
            let body = ResponseBody::of(&response);
            let status = if media == MediaType::GraphqlResponseJson && body.never_executed {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            respond(media, status, &body)
        }
        BatchRequest::Batch(requests) => {
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                responses.push(state.schema.execute(request.data(caller.clone()).data(client)).await);
            }
            let bodies: Vec<ResponseBody<'_>> = responses.iter().map(ResponseBody::of).collect();
            respond(media, StatusCode::OK, &bodies)
        }
    }
}

/// One GraphQL response as the body says it, serialized straight from async-graphql's
/// `Response` so that objects keep the order of the selection set (GraphQL spec,
/// "Serialized Map Ordering"); a `serde_json::Value` would sort their keys. A response
/// whose request failed before execution (syntax, validation, variables) has no `data`
/// entry at all.
struct ResponseBody<'a> {
    response: &'a GqlResponse,
    never_executed: bool,
}

impl<'a> ResponseBody<'a> {
    fn of(response: &'a GqlResponse) -> Self {
        let never_executed = response.data == async_graphql::Value::Null
            && !response.errors.is_empty()
            && response.errors.iter().all(|e| e.path.is_empty());
        ResponseBody { response, never_executed }
    }
}

impl Serialize for ResponseBody<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let response = self.response;
        let mut map = serializer.serialize_map(None)?;
        if !self.never_executed {
            map.serialize_entry("data", &response.data)?;
        }
        if !response.errors.is_empty() {
            map.serialize_entry("errors", &response.errors)?;
        }
        if !response.extensions.is_empty() {
            map.serialize_entry("extensions", &response.extensions)?;
        }
        map.end()
    }
}

fn respond(media: MediaType, status: StatusCode, body: &impl Serialize) -> Response {
    let (status, body) = match serde_json::to_vec(body) {
        Ok(bytes) => (status, bytes),
        // GraphQL values always serialize; this keeps a broken one from becoming a 500 page.
        Err(_) => (
            StatusCode::OK,
            br#"{"errors":[{"message":"internal server error","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}"#
                .to_vec(),
        ),
    };
    let mut response = (status, body).into_response();
    response.headers_mut().insert(CONTENT_TYPE, media.content_type());
    response
}

fn request_error(media: MediaType, status: StatusCode, message: &str) -> Response {
    // `application/json` clients get 200 only for well-formed requests; these are not.
    respond(media, status, &json!({"errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}]}))
}

/// The media type to answer with; `None` when the client accepts neither JSON type.
fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else { return Some(MediaType::Json) };
    let mut json = false;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused =
            parts.any(|p| matches!(p.trim().replace(' ', "").as_str(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
        if refused {
            continue;
        }
        match media.as_str() {
            GRAPHQL_RESPONSE_JSON => return Some(MediaType::GraphqlResponseJson),
            "application/json" | "application/*" | "*/*" => json = true,
            _ => {}
        }
    }
    json.then_some(MediaType::Json)
}

fn not_acceptable() -> Response {
    request_error(
        MediaType::Json,
        StatusCode::NOT_ACCEPTABLE,
        "this endpoint answers application/graphql-response+json or application/json",
    )
}

/// `mutation` or `subscription` when the operation a GET would run is not a query. A
/// document that does not parse is left to the executor, which reports it properly.
fn non_query_operation(request: &GqlRequest) -> Option<&'static str> {
    let document = async_graphql::parser::parse_query(&request.query).ok()?;
    let operation = match (&document.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.iter().find(|(n, _)| n.as_str() == name)?.1,
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next()?,
        (DocumentOperations::Multiple(_), None) => return None,
    };
    match operation.node.ty {
        OperationType::Query => None,
        OperationType::Mutation => Some("mutation"),
        OperationType::Subscription => Some("subscription"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn accept_negotiation_prefers_the_graphql_media_type() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(MediaType::Json));
        assert_eq!(negotiate(&accept("application/json")), Some(MediaType::Json));
        assert_eq!(negotiate(&accept("*/*")), Some(MediaType::Json));
        assert_eq!(
            negotiate(&accept("application/graphql-response+json, application/json;q=0.9")),
            Some(MediaType::GraphqlResponseJson)
        );
        assert_eq!(
            negotiate(&accept("application/graphql-response+json;q=0, application/json")),
            Some(MediaType::Json)
        );
        assert_eq!(negotiate(&accept("text/html")), None);
    }

    #[test]
    fn only_queries_may_travel_over_get() {
        let op = |q: &str, name: Option<&str>| {
            let mut request = GqlRequest::new(q);
            if let Some(name) = name {
                request = request.operation_name(name);
            }
            non_query_operation(&request)
        };
        assert_eq!(op("{ figurines { id } }", None), None);
        assert_eq!(
            op("mutation { login(input: {username: \"a\", password: \"b\"}) { token } }", None),
            Some("mutation")
        );
        assert_eq!(
            op("query A { me { id } } mutation B { cancelOrder(id: \"x\") { id } }", Some("B")),
            Some("mutation")
        );
        assert_eq!(op("query A { me { id } } mutation B { cancelOrder(id: \"x\") { id } }", Some("A")), None);
        assert_eq!(op("subscription { x }", None), Some("subscription"));
    }
}
