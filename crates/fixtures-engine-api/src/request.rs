//! Small pieces both backends build requests with.

use std::time::Duration;

use serde_json::Value;

/// Inserts `value` under `key` of a request body unless it is empty (null, `[]`, `{}`, `false`).
pub fn put_unless_empty(m: &mut serde_json::Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(b) => !b,
        _ => false,
    };
    if !empty {
        m.insert(key.to_owned(), value);
    }
}

/// Merges `patch` into `base`: objects key by key, anything else replaced (a spec's `raw`).
pub fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// A duration in nanoseconds, as the Engine API's health-check fields take it.
pub fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// `text` as one component of a URL's path or query (ids and names are plain, but a name is
/// user input, an image reference holds `/`, and a filter is JSON). `:` and `@` may stand in
/// a path segment as they are (RFC 3986), and stay so: `busybox:latest`, `app@sha256:..`.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_encoded() {
        assert_eq!(encode("fx-api_1.2"), "fx-api_1.2");
        assert_eq!(encode("localhost:5000/fx/app:1"), "localhost:5000%2Ffx%2Fapp:1");
        assert_eq!(encode(r#"{"label":["a=b"]}"#), "%7B%22label%22:%5B%22a%3Db%22%5D%7D");
    }
}
