//! What counts as a JSON request body, for every route that takes one.

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;

/// `application/json`, or an `application/…+json` type, with any parameters (`charset`).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<mime::Mime>().ok()).is_some_and(
        |m| m.type_() == mime::APPLICATION && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON)),
    )
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with(content_type: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers
    }

    #[test]
    fn json_and_its_suffixed_types_count_and_nothing_else() {
        for json in
            ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "application/merge-patch+json"]
        {
            assert!(is_json(&with(json)), "{json}");
        }
        for other in ["text/json", "application/x-www-form-urlencoded", "application/graphql", "json", ""] {
            assert!(!is_json(&with(other)), "{other}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }
}
