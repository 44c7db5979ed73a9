//! The operations a socket runs: started from a `subscribe`, polled in place by the
//! connection's task, each result sent as `next` (or one `error`), then `complete`.

use std::sync::Arc;

use async_graphql::{Request, Response, ServerError};
use axum::extract::ws::WebSocket;
use futures::StreamExt;
use futures::stream::{self, AbortHandle};

use minifig_common::telemetry::propagation::TRACEPARENT;

use super::{Connection, End, send, send_text};
use crate::http::ws::MAX_OUTGOING_MESSAGE_BYTES;
use crate::http::ws::protocol::ServerMessage;

/// One running operation.
pub(super) struct Running {
    /// Tells this operation's results from those of an earlier one under the same id.
    generation: u64,
    pub(super) abort: AbortHandle,
    /// Whether a result was sent: an error before any is sent as `error`, not `next`.
    answered: bool,
}

/// What an operation's stream yields: `(id, generation, Some(result))`, then once
/// `(id, generation, None)` when it ends by itself.
pub(super) type Item = (Arc<str>, u64, Option<Response>);

impl Connection {
    pub(super) fn start(&mut self, id: String, request: Request) {
        let generation = self.next_generation;
        self.next_generation += 1;
        let key: Arc<str> = Arc::from(id.as_str());
        let end = (key.clone(), generation, None);
        // Browsers cannot set headers on a WebSocket: an operation's trace context comes
        // from its own `extensions.traceparent`, else the socket's (see `Connection`).
        let traceparent = match request.extensions.get(TRACEPARENT) {
            Some(async_graphql::Value::String(traceparent)) => Some(traceparent.clone()),
            _ => self.traceparent.clone(),
        };
        let results = self
            .schema
            .execute_stream(request.data(self.caller.clone()).data(self.client), traceparent.as_deref())
            .map(move |result| (key.clone(), generation, Some(result)))
            .chain(stream::once(futures::future::ready(end)));
        let (results, abort) = stream::abortable(results);
        self.results.push(results.boxed());
        self.operations.insert(id, Running { generation, abort, answered: false });
    }

    pub(super) async fn on_result(
        &mut self,
        socket: &mut WebSocket,
        id: Arc<str>,
        generation: u64,
        result: Option<Response>,
    ) -> Result<(), End> {
        let Some(operation) = self.operations.get_mut(&*id).filter(|op| op.generation == generation) else {
            // Stopped by the client meanwhile.
            return Ok(());
        };
        let Some(response) = result else {
            self.operations.remove(&*id);
            return send(socket, self.protocol, ServerMessage::Complete { id: &id }).await;
        };
        // Failed before producing anything (parse, validation, NOT_FOUND at subscribe…):
        // one `error` message, and no `complete` after it.
        let failed_before_any_result =
            !operation.answered && response.data == async_graphql::Value::Null && !response.errors.is_empty();
        operation.answered = true;
        let text = if failed_before_any_result {
            None
        } else {
            Some(ServerMessage::Next { id: &id, payload: &response }.render(self.protocol))
                .filter(|text| text.len() <= MAX_OUTGOING_MESSAGE_BYTES)
        };
        match text {
            Some(text) => send_text(socket, text).await,
            None => {
                if let Some(operation) = self.operations.remove(&*id) {
                    operation.abort.abort();
                }
                let too_large;
                let errors = if failed_before_any_result {
                    &response.errors[..]
                } else {
                    too_large = [bad_input(format!(
                        "the result is larger than {} KiB, too large to send over the WebSocket; run this operation over HTTP",
                        MAX_OUTGOING_MESSAGE_BYTES / 1024
                    ))];
                    &too_large[..]
                };
                send(socket, self.protocol, ServerMessage::Error { id: &id, errors }).await
            }
        }
    }
}

/// A `BAD_USER_INPUT` error not tied to a field.
pub(super) fn bad_input(message: String) -> ServerError {
    let mut error = ServerError::new(message, None);
    error.extensions.get_or_insert_with(Default::default).set("code", "BAD_USER_INPUT");
    error
}
