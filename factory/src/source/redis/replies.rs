//! The replies of the stream commands the source reads with, parsed. Redis 6.2 and 7 and
//! the RESP2 and RESP3 protocols each shape them a little differently.

use anyhow::Context;
use fred::types::Value;

use minifig_common::redis::TRACEPARENT_FIELD;

use super::ORDER_ID_FIELD;

/// One stream entry as read; `order_id` is `None` when the entry has no such field (or
/// was deleted from the stream while pending, which Redis 6.2 reports as nil fields).
/// `traceparent` is the optional trace context the API put beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub id: String,
    pub order_id: Option<String>,
    pub traceparent: Option<String>,
}

/// `XREADGROUP`: nil, or `[[stream, [entry...]]...]` (RESP2), or `{stream: [entry...]}`
/// (RESP3).
pub(super) fn parse_read(reply: Value) -> anyhow::Result<Vec<Entry>> {
    let per_stream: Vec<Value> = match reply {
        Value::Null => return Ok(Vec::new()),
        Value::Array(streams) => {
            streams.into_iter().map(|stream| stream.into_array().into_iter().nth(1).unwrap_or(Value::Null)).collect()
        }
        Value::Map(map) => map.inner().into_values().collect(),
        other => anyhow::bail!("unexpected reply {other:?}"),
    };
    per_stream.into_iter().flat_map(Value::into_array).map(parse_entry).collect()
}

/// An `XAUTOCLAIM` reply.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Autoclaim {
    /// Where the next scan starts.
    pub next: String,
    pub entries: Vec<Entry>,
    /// Pending entries no longer in the stream (trimmed), which Redis 7 dropped from the
    /// pending list. (Redis 6.2 returns them among `entries`, without fields.)
    pub trimmed: usize,
}

/// `XAUTOCLAIM`: `[next, [entry...]]` (Redis 6.2) or `[next, [entry...], [deleted id...]]`
/// (Redis 7).
pub(super) fn parse_autoclaim(reply: Value) -> anyhow::Result<Autoclaim> {
    let mut parts = reply.into_array().into_iter();
    let next = parts.next().and_then(|next| next.as_string()).context("no cursor in the reply")?;
    let entries = parts
        .next()
        .map(Value::into_array)
        .unwrap_or_default()
        .into_iter()
        .map(parse_entry)
        .collect::<Result<_, _>>()?;
    let trimmed = parts.next().map_or(0, |deleted| deleted.into_array().len());
    Ok(Autoclaim { next, entries, trimmed })
}

/// `[id, [field, value, ...]]`, `[id, {field: value}]` or `[id, nil]`.
fn parse_entry(entry: Value) -> anyhow::Result<Entry> {
    let mut parts = entry.into_array().into_iter();
    let id = parts.next().and_then(|id| id.as_string()).context("a stream entry without an id")?;
    // Field names and values, in either shape; an odd trailing name has no value.
    let fields: Vec<(Option<String>, Value)> = match parts.next() {
        Some(Value::Map(map)) => {
            map.inner().into_iter().map(|(field, value)| (field.as_str().map(str::to_owned), value)).collect()
        }
        Some(Value::Array(fields)) => {
            let mut fields = fields.into_iter();
            std::iter::from_fn(|| {
                let field = fields.next()?;
                Some((field.as_str().map(|name| name.into_owned()), fields.next()?))
            })
            .collect()
        }
        _ => Vec::new(),
    };
    let field = |name: &str| {
        fields.iter().find(|(field, _)| field.as_deref() == Some(name)).and_then(|(_, value)| value.as_string())
    };
    Ok(Entry { id, order_id: field(ORDER_ID_FIELD), traceparent: field(TRACEPARENT_FIELD) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    fn entry(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![s(id), Value::Array(fields.iter().map(|f| s(f)).collect())])
    }

    #[test]
    fn a_read_with_nothing_new_is_empty() {
        assert_eq!(parse_read(Value::Null).unwrap(), vec![]);
    }

    #[test]
    fn a_read_yields_each_entry_with_its_order_id() {
        let reply = Value::Array(vec![Value::Array(vec![
            s("minifig:orders"),
            Value::Array(vec![entry("1-0", &["order_id", "a"]), entry("2-0", &["other", "x", "order_id", "b"])]),
        ])]);
        assert_eq!(
            parse_read(reply).unwrap(),
            vec![
                Entry { id: "1-0".into(), order_id: Some("a".into()), traceparent: None },
                Entry { id: "2-0".into(), order_id: Some("b".into()), traceparent: None },
            ]
        );
    }

    #[test]
    fn the_trace_context_beside_the_order_id_is_read_in_either_shape() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let array = entry("1-0", &["order_id", "a", "traceparent", traceparent]);
        let mut map = fred::types::Map::new();
        map.insert("traceparent".into(), s(traceparent));
        map.insert("order_id".into(), s("b"));
        let map = Value::Array(vec![s("2-0"), Value::Map(map)]);
        let reply = Value::Array(vec![Value::Array(vec![s("k"), Value::Array(vec![array, map])])]);
        let entries = parse_read(reply).unwrap();
        assert_eq!(entries[0].traceparent.as_deref(), Some(traceparent));
        assert_eq!(entries[1].order_id.as_deref(), Some("b"));
        assert_eq!(entries[1].traceparent.as_deref(), Some(traceparent));
    }

    #[test]
    fn entries_without_an_order_id_are_reported_as_such() {
        let reply = Value::Array(vec![Value::Array(vec![
            s("k"),
            Value::Array(vec![entry("1-0", &["something", "else"]), Value::Array(vec![s("2-0"), Value::Null])]),
        ])]);
        let entries = parse_read(reply).unwrap();
        assert_eq!(entries.iter().map(|e| e.order_id.clone()).collect::<Vec<_>>(), vec![None, None]);
    }

    #[test]
    fn autoclaim_replies_of_redis_6_and_7_both_parse() {
        let claimed = Value::Array(vec![entry("5-0", &["order_id", "z"])]);
        let six = Value::Array(vec![s("0-0"), claimed.clone()]);
        let seven = Value::Array(vec![s("9-1"), claimed, Value::Array(vec![s("3-0"), s("4-0")])]);
        let entries = vec![Entry { id: "5-0".into(), order_id: Some("z".into()), traceparent: None }];
        assert_eq!(
            parse_autoclaim(six).unwrap(),
            Autoclaim { next: "0-0".into(), entries: entries.clone(), trimmed: 0 }
        );
        assert_eq!(parse_autoclaim(seven).unwrap(), Autoclaim { next: "9-1".into(), entries, trimmed: 2 });
    }

    #[test]
    fn an_autoclaim_that_only_found_trimmed_entries_parses() {
        let reply = Value::Array(vec![s("0-0"), Value::Array(vec![]), Value::Array(vec![s("3-0")])]);
        assert_eq!(parse_autoclaim(reply).unwrap(), Autoclaim { next: "0-0".into(), entries: vec![], trimmed: 1 });
    }
}
