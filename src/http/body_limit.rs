//! The request body limit, answered so that the client can read the answer.
//!
//! tower-http's `RequestBodyLimitLayer` answers 413 as soon as it sees too much, without
//! reading the rest of the body; the server then closes a connection whose client is still
//! sending, and the client gets `EPIPE` or a reset instead of the 413. Here the excess is
//! read and thrown away (up to [`MAX_DRAINED_BYTES`], for at most [`DRAIN_TIMEOUT`]) before
//! the answer, which closes the connection: a client that sent 5 MiB reads why it was
//! refused. A client that sent `Expect: 100-continue` with a `Content-Length` over the
//! limit gets the answer before it sends anything.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::header::{CONNECTION, CONTENT_LENGTH, EXPECT};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::MAX_BODY_BYTES;

/// Past this much, an oversized body is no longer read: the connection is closed.
const MAX_DRAINED_BYTES: usize = 16 * 1024 * 1024;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn limit(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let expects_continue =
        request.headers().get(EXPECT).is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let graphql = request.uri().path() == "/graphql";
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) && expects_continue {
        return too_large(graphql);
    }
    let (parts, body) = request.into_parts();
    let mut stream = body.into_data_stream();
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut read = 0;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            // The client went away or sent broken framing: nobody reads an answer.
            return StatusCode::BAD_REQUEST.into_response();
        };
        read += chunk.len();
        if read > MAX_BODY_BYTES {
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
                while read <= MAX_DRAINED_BYTES {
                    match stream.next().await {
                        Some(Ok(chunk)) => read += chunk.len(),
                        _ => break,
                    }
                }
            })
            .await;
            return too_large(graphql);
        }
        chunks.push(chunk);
    }
    let body = match chunks.len() {
        0 => Body::empty(),
        1 => Body::from(chunks.swap_remove(0)),
        _ => Body::from(chunks.concat()),
    };
    next.run(Request::from_parts(parts, body)).await
}

/// 413, in the envelope of the endpoint asked: a GraphQL response on `/graphql`, the REST
/// error object elsewhere.
fn too_large(graphql: bool) -> Response {
    let message = format!("the request body is larger than {} KiB", MAX_BODY_BYTES / 1024);
    let mut response = if graphql {
        let body = serde_json::json!({"errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}]});
        (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response()
    } else {
        super::rest::error_response(StatusCode::PAYLOAD_TOO_LARGE, "BAD_USER_INPUT", &message)
    };
    response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    response
}
