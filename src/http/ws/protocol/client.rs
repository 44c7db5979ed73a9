//! What a client may send, in either subprotocol, parsed strictly: anything else is
//! [`Malformed`] and closes the socket with 4400.

use async_graphql::Request;
use serde_json::{Map, Value, json};

use super::Protocol;

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

impl Malformed {
    /// A binary frame: both subprotocols are text only.
    pub fn binary_frame() -> Self {
        Malformed("Invalid message: binary frames are not part of the protocol".to_owned())
    }
}

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
}
