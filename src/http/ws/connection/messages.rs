//! What the client sends: the connection's handshake, its operations, its pings, and its
//! leaving, in either subprotocol.

use axum::extract::ws::{Message, WebSocket};
use minifig_common::telemetry::propagation::TRACEPARENT;

use super::operations::bad_input;
use super::{Connection, End, send};
use crate::http::ws::MAX_OPERATIONS_PER_SOCKET;
use crate::http::ws::credentials::Credential;
use crate::http::ws::protocol::{ClientMessage, Fatal, Malformed, Protocol, ServerMessage};

impl Connection {
    pub(super) async fn on_client(
        &mut self,
        socket: &mut WebSocket,
        message: Option<Result<Message, axum::Error>>,
    ) -> Result<(), End> {
        match message {
            None => Err(End::Left),
            Some(Err(err)) => Err(read_error(&err)),
            Some(Ok(Message::Text(text))) => match ClientMessage::parse(self.protocol, text.as_str()) {
                Ok(message) => self.on_message(socket, message).await,
                Err(Malformed(why)) => Err(End::Fatal(Fatal::Malformed(why))),
            },
            Some(Ok(Message::Binary(_))) => Err(End::Fatal(Fatal::Malformed(Malformed::binary_frame().0))),
            // WebSocket-level pings are answered by tungstenite itself.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
            Some(Ok(Message::Close(_))) => Err(End::ClientClosed),
        }
    }

    async fn on_message(&mut self, socket: &mut WebSocket, message: ClientMessage) -> Result<(), End> {
        match message {
            ClientMessage::ConnectionInit { payload } => {
                let Some((keys, header)) = self.pending.take() else {
                    return Err(End::Fatal(Fatal::TooManyInits));
                };
                let credential = Credential::from_init_payload(payload.as_ref()).or(header);
                if let Some(serde_json::Value::String(traceparent)) =
                    payload.as_ref().and_then(|payload| payload.get(TRACEPARENT))
                {
                    self.traceparent = Some(traceparent.clone());
                }
                let (caller, expires_at) =
                    credential.authenticate(&keys).map_err(|err| End::Fatal(Fatal::Forbidden(err)))?;
                self.caller = caller;
                self.arm_expiry(expires_at);
                self.keepalive.reset();
                send(socket, self.protocol, ServerMessage::ConnectionAck).await?;
                if self.protocol == Protocol::LegacyWs {
                    // subscriptions-transport-ws clients start their keep-alive watch on
                    // the first `ka`, so it follows the ack at once.
                    send(socket, self.protocol, ServerMessage::KeepAlive).await?;
                }
                Ok(())
            }
            ClientMessage::Ping { payload } => {
                send(socket, self.protocol, ServerMessage::Pong { payload: payload.as_ref() }).await
            }
            ClientMessage::Pong => Ok(()),
            ClientMessage::Subscribe { id, request } => {
                if self.pending.is_some() {
                    return Err(End::Fatal(Fatal::Unauthorized));
                }
                if self.operations.contains_key(&id) {
                    return Err(End::Fatal(Fatal::DuplicateId(id)));
                }
                if self.operations.len() >= MAX_OPERATIONS_PER_SOCKET {
                    let error = bad_input(format!(
                        "too many operations on one connection (at most {MAX_OPERATIONS_PER_SOCKET}); complete some first or open another connection"
                    ));
                    return send(socket, self.protocol, ServerMessage::Error { id: &id, errors: &[error] }).await;
                }
                self.start(id, *request);
                Ok(())
            }
            ClientMessage::Complete { id } => {
                if let Some(operation) = self.operations.remove(&id) {
                    operation.abort.abort();
                }
                Ok(())
            }
            ClientMessage::Terminate => Err(End::Terminated),
        }
    }
}

/// What a failed read means. axum hides tungstenite's error type (of a version this crate
/// does not depend on), so its message is what tells them apart; the tests pin both.
fn read_error(err: &axum::Error) -> End {
    let text = err.to_string();
    if text.starts_with("Space limit exceeded") {
        End::Fatal(Fatal::MessageTooBig)
    } else if text.starts_with("WebSocket protocol error") || text.starts_with("UTF-8 encoding error") {
        End::Fatal(Fatal::FramingError)
    } else {
        End::Left
    }
}
