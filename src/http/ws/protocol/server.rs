//! What the server sends, rendered in the socket's subprotocol.

use async_graphql::{Response, ServerError};
use serde_json::{Map, Value};

use super::Protocol;

/// A message from the server.
#[derive(Debug)]
pub enum ServerMessage<'a> {
    ConnectionAck,
    /// Legacy only: the connection is refused or about to be closed, and why.
    ConnectionError {
        message: &'a str,
    },
    /// `ping` / `ka`: sent every keep-alive interval.
    KeepAlive,
    /// graphql-transport-ws only: the answer to the client's `ping`.
    Pong {
        payload: Option<&'a Map<String, Value>>,
    },
    /// `next` / `data`: one result of an operation.
    Next {
        id: &'a str,
        payload: &'a Response,
    },
    /// `error`: the operation failed before producing any result; nothing follows.
    Error {
        id: &'a str,
        errors: &'a [ServerError],
    },
    /// `complete`: the operation is over.
    Complete {
        id: &'a str,
    },
}

impl ServerMessage<'_> {
    /// The JSON text of this message in `protocol`. Written straight from the response, so
    /// its objects keep the selection set's order (GraphQL spec, "Serialized Map Ordering").
    pub fn render(&self, protocol: Protocol) -> String {
        let legacy = protocol == Protocol::LegacyWs;
        let (kind, id, payload) = match self {
            ServerMessage::ConnectionAck => ("connection_ack", None, None),
            ServerMessage::ConnectionError { message } => {
                ("connection_error", None, Some(Payload::Message { message }))
            }
            ServerMessage::KeepAlive => (if legacy { "ka" } else { "ping" }, None, None),
            ServerMessage::Pong { payload } => ("pong", None, payload.map(Payload::Object)),
            ServerMessage::Next { id, payload } => {
                (if legacy { "data" } else { "next" }, Some(*id), Some(Payload::Response(payload)))
            }
            ServerMessage::Error { id, errors } => ("error", Some(*id), Some(Payload::Errors(errors))),
            ServerMessage::Complete { id } => ("complete", Some(*id), None),
        };
        let envelope = Envelope { kind, id, payload };
        serde_json::to_string(&envelope).unwrap_or_else(|_| {
            // Only a serializer failure gets here (a map with non-string keys, which
            // GraphQL values cannot hold): tell the client without internals.
            let id = id.map(|id| format!(",\"id\":{}", serde_json::Value::from(id))).unwrap_or_default();
            format!(
                "{{\"type\":\"error\"{id},\"payload\":[{{\"message\":\"internal server error\",\"extensions\":{{\"code\":\"INTERNAL_SERVER_ERROR\"}}}}]}}"
            )
        })
    }
}

#[derive(serde::Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<Payload<'a>>,
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum Payload<'a> {
    Message { message: &'a str },
    Object(&'a Map<String, Value>),
    Response(&'a Response),
    Errors(&'a [ServerError]),
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn server_messages_use_each_subprotocols_names() {
        let rendered = |message: ServerMessage<'_>, protocol| -> Value {
            serde_json::from_str(&message.render(protocol)).unwrap()
        };
        let response = Response::new(async_graphql::Value::Null);
        let next = || ServerMessage::Next { id: "7", payload: &response };
        assert_eq!(
            rendered(next(), Protocol::TransportWs),
            json!({"type": "next", "id": "7", "payload": {"data": null}})
        );
        assert_eq!(rendered(next(), Protocol::LegacyWs), json!({"type": "data", "id": "7", "payload": {"data": null}}));
        assert_eq!(rendered(ServerMessage::KeepAlive, Protocol::TransportWs), json!({"type": "ping"}));
        assert_eq!(rendered(ServerMessage::KeepAlive, Protocol::LegacyWs), json!({"type": "ka"}));
        let errors = [ServerError::new("nope", None)];
        assert_eq!(
            rendered(ServerMessage::Error { id: "7", errors: &errors }, Protocol::TransportWs),
            json!({"type": "error", "id": "7", "payload": [{"message": "nope"}]})
        );
        assert_eq!(
            rendered(ServerMessage::ConnectionError { message: "no" }, Protocol::LegacyWs),
            json!({"type": "connection_error", "payload": {"message": "no"}})
        );
    }
}
