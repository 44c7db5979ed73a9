//! The two subprotocols' messages: what a client may send, parsed strictly, and what the
//! server sends, rendered per subprotocol.
//!
//! | meaning | `graphql-transport-ws` | legacy `graphql-ws` |
//! | --- | --- | --- |
//! | client opens the connection | `connection_init` | `connection_init` |
//! | server accepts it | `connection_ack` | `connection_ack` |
//! | server refuses it / a fatal error | close code (4400, 4401, 4403, …) | `connection_error`, then the same close code |
//! | client starts an operation | `subscribe` | `start` |
//! | a result | `next` | `data` |
//! | the operation failed before producing a result | `error` (GraphQL errors array) | `error` (GraphQL errors array) |
//! | the operation is over (server) | `complete` | `complete` |
//! | client stops an operation | `complete` | `stop` |
//! | keep-alive from the server | `ping` (client answers `pong`) | `ka` |
//! | client heartbeat | `ping` -> `pong` | none |
//! | client leaves | close frame | `connection_terminate` |

use async_graphql::{Request, Response, ServerError};
use serde_json::{Map, Value, json};

/// The subprotocol a socket speaks, chosen from `Sec-WebSocket-Protocol` at the upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws`: the graphql-ws library's protocol (GraphiQL, Apollo Client,
    /// urql). <https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>
    TransportWs,
    /// `graphql-ws`: the legacy subscriptions-transport-ws protocol (GraphQL Playground).
    LegacyWs,
}

impl Protocol {
    pub const TRANSPORT_WS: &'static str = "graphql-transport-ws";
    pub const LEGACY_WS: &'static str = "graphql-ws";

    /// The subprotocol names, in the order of preference used when a client offers both.
    pub const NAMES: [&'static str; 2] = [Self::TRANSPORT_WS, Self::LEGACY_WS];

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            Self::TRANSPORT_WS => Some(Protocol::TransportWs),
            Self::LEGACY_WS => Some(Protocol::LegacyWs),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::TransportWs => Self::TRANSPORT_WS,
            Protocol::LegacyWs => Self::LEGACY_WS,
        }
    }
}

/// A message from the client, whichever subprotocol it came in.
#[derive(Debug)]
pub enum ClientMessage {
    /// `connection_init`, with its payload object (absent or `null`: `None`).
    ConnectionInit { payload: Option<Map<String, Value>> },
    /// `ping` (graphql-transport-ws), answered with a `pong` carrying the same payload.
    Ping { payload: Option<Map<String, Value>> },
    /// `pong` (graphql-transport-ws): the answer to our keep-alive, or a heartbeat.
    Pong,
    /// `subscribe` / `start`: run an operation under the client's id.
    Subscribe { id: String, request: Box<Request> },
    /// `complete` (client to server) / `stop`: the client no longer wants that operation.
    Complete { id: String },
    /// `connection_terminate` (legacy): the client is leaving.
    Terminate,
}

/// Why a text message is not one the subprotocol allows; the text becomes the 4400 reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl ClientMessage {
    /// Parses one text message as `protocol` defines it. Anything else, including a
    /// message type that only the server may send, is [`Malformed`].
    pub fn parse(protocol: Protocol, text: &str) -> Result<Self, Malformed> {
        let malformed = |why: &str| Malformed(why.to_owned());
        let value: Value = serde_json::from_str(text).map_err(|_| malformed("Invalid message: not JSON"))?;
        let Value::Object(mut message) = value else { return Err(malformed("Invalid message: not a JSON object")) };
        let Some(Value::String(kind)) = message.remove("type") else {
            return Err(malformed("Invalid message: no \"type\""));
        };
        match (protocol, kind.as_str()) {
            (_, "connection_init") => Ok(ClientMessage::ConnectionInit { payload: optional_object(&mut message)? }),
            (Protocol::TransportWs, "ping") => Ok(ClientMessage::Ping { payload: optional_object(&mut message)? }),
            (Protocol::TransportWs, "pong") => {
                optional_object(&mut message)?;
                Ok(ClientMessage::Pong)
            }
            (Protocol::TransportWs, "subscribe") | (Protocol::LegacyWs, "start") => {
                let id = operation_id(&mut message)?;
                let Some(Value::Object(payload)) = message.remove("payload") else {
                    return Err(malformed("Invalid message: the payload must be an object"));
                };
                Ok(ClientMessage::Subscribe { id, request: Box::new(request(payload)?) })
            }
            (Protocol::TransportWs, "complete") | (Protocol::LegacyWs, "stop") => {
                Ok(ClientMessage::Complete { id: operation_id(&mut message)? })
            }
            (Protocol::LegacyWs, "connection_terminate") => Ok(ClientMessage::Terminate),
            _ => Err(malformed("Invalid message: unknown type")),
        }
    }
}

/// `payload` absent or `null` is `None`; an object is kept; anything else is malformed.
fn optional_object(message: &mut Map<String, Value>) -> Result<Option<Map<String, Value>>, Malformed> {
    match message.remove("payload") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(payload)) => Ok(Some(payload)),
        Some(_) => Err(Malformed("Invalid message: the payload must be an object".to_owned())),
    }
}

fn operation_id(message: &mut Map<String, Value>) -> Result<String, Malformed> {
    match message.remove("id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(id),
        _ => Err(Malformed("Invalid message: \"id\" must be a non-empty string".to_owned())),
    }
}

/// `{query, operationName?, variables?, extensions?}` as the GraphQL-over-HTTP request it is.
fn request(mut payload: Map<String, Value>) -> Result<Request, Malformed> {
    let malformed = |why: &str| Malformed(format!("Invalid message: {why}"));
    let Some(Value::String(query)) = payload.remove("query") else {
        return Err(malformed("the payload needs a \"query\" string"));
    };
    let mut request = json!({"query": query});
    match payload.remove("operationName") {
        None | Some(Value::Null) => {}
        Some(name @ Value::String(_)) => request["operationName"] = name,
        Some(_) => return Err(malformed("\"operationName\" must be a string")),
    }
    for key in ["variables", "extensions"] {
        match payload.remove(key) {
            None | Some(Value::Null) => {}
            Some(object @ Value::Object(_)) => request[key] = object,
            Some(_) => return Err(Malformed(format!("Invalid message: \"{key}\" must be an object"))),
        }
    }
    serde_json::from_value(request).map_err(|_| malformed("the payload is not a GraphQL request"))
}

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
    use super::*;

    fn parse(protocol: Protocol, value: Value) -> Result<ClientMessage, Malformed> {
        ClientMessage::parse(protocol, &value.to_string())
    }

    #[test]
    fn subscribe_and_start_carry_a_graphql_request() {
        let payload = json!({"query": "subscription { myOrderEvents { version } }", "operationName": null, "variables": {"a": 1}, "extensions": null});
        for (protocol, kind) in [(Protocol::TransportWs, "subscribe"), (Protocol::LegacyWs, "start")] {
            let message = parse(protocol, json!({"type": kind, "id": "1", "payload": payload})).unwrap();
            let ClientMessage::Subscribe { id, request } = message else { panic!("not a subscribe: {message:?}") };
            assert_eq!(id, "1");
            assert_eq!(request.query, "subscription { myOrderEvents { version } }");
            assert_eq!(request.variables.into_value().into_json().unwrap(), json!({"a": 1}));
        }
    }

    #[test]
    fn each_subprotocol_accepts_only_its_own_types() {
        let t = Protocol::TransportWs;
        let l = Protocol::LegacyWs;
        assert!(matches!(
            parse(t, json!({"type": "connection_init"})),
            Ok(ClientMessage::ConnectionInit { payload: None })
        ));
        assert!(matches!(
            parse(l, json!({"type": "connection_init", "payload": {}})),
            Ok(ClientMessage::ConnectionInit { payload: Some(_) })
        ));
        assert!(matches!(
            parse(t, json!({"type": "ping", "payload": {"x": 1}})),
            Ok(ClientMessage::Ping { payload: Some(_) })
        ));
        assert!(matches!(parse(t, json!({"type": "pong"})), Ok(ClientMessage::Pong)));
        assert!(matches!(parse(t, json!({"type": "complete", "id": "a"})), Ok(ClientMessage::Complete { .. })));
        assert!(matches!(parse(l, json!({"type": "stop", "id": "a"})), Ok(ClientMessage::Complete { .. })));
        assert!(matches!(parse(l, json!({"type": "connection_terminate"})), Ok(ClientMessage::Terminate)));
        for (protocol, kind) in
            [(t, "start"), (t, "stop"), (l, "subscribe"), (l, "ping"), (t, "next"), (t, "connection_ack"), (l, "ka")]
        {
            assert!(
                parse(protocol, json!({"type": kind, "id": "1", "payload": {"query": "{ me { id } }"}})).is_err(),
                "{kind}"
            );
        }
    }

    #[test]
    fn malformed_messages_are_refused() {
        let t = Protocol::TransportWs;
        assert!(ClientMessage::parse(t, "not json").is_err());
        assert!(parse(t, json!([1, 2])).is_err());
        assert!(parse(t, json!({"id": "1"})).is_err());
        assert!(parse(t, json!({"type": 7})).is_err());
        assert!(parse(t, json!({"type": "connection_init", "payload": "token"})).is_err());
        assert!(parse(t, json!({"type": "subscribe", "payload": {"query": "{ me { id } }"}})).is_err());
        assert!(parse(t, json!({"type": "subscribe", "id": "", "payload": {"query": "{ me { id } }"}})).is_err());
        assert!(parse(t, json!({"type": "subscribe", "id": "1"})).is_err());
        assert!(parse(t, json!({"type": "subscribe", "id": "1", "payload": {"variables": {}}})).is_err());
        assert!(
            parse(t, json!({"type": "subscribe", "id": "1", "payload": {"query": "{ x }", "variables": [1]}})).is_err()
        );
        assert!(parse(t, json!({"type": "subscribe", "id": 1, "payload": {"query": "{ x }"}})).is_err());
        assert!(parse(t, json!({"type": "complete"})).is_err());
    }

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
