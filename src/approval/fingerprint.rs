//! What makes two calls "the same call" for an approval: the caller, the tool, and the arguments
//! in canonical form (object keys sorted, no insignificant whitespace), so that reordering keys
//! does not dodge an approval and changing any value does not reuse one.

use serde_json::Value;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// `agent` when the caller authenticated; otherwise the call is bound to its session.
    pub fn of(agent: Option<&str>, session: &str, tool: &str, arguments: &Value) -> Self {
        let mut hash = Sha256::new();
        match agent {
            Some(agent) => hash.update(format!("agent\0{agent}\0")),
            None => hash.update(format!("session\0{session}\0")),
        }
        hash.update(tool.as_bytes());
        hash.update([0]);
        let mut canonical = String::new();
        write_canonical(arguments, &mut canonical);
        hash.update(canonical.as_bytes());
        Self(hash.finalize().into())
    }
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter_but_every_value_does() {
        let a = Fingerprint::of(
            Some("bot"),
            "s1",
            "t",
            &json!({"x": 1, "y": {"b": 2, "a": [1, 2]}}),
        );
        let b = Fingerprint::of(
            Some("bot"),
            "s2",
            "t",
            &json!({"y": {"a": [1, 2], "b": 2}, "x": 1}),
        );
        assert_eq!(a, b, "same agent, other session: the same call");
        for other in [
            Fingerprint::of(
                Some("bot"),
                "s1",
                "t",
                &json!({"x": 2, "y": {"b": 2, "a": [1, 2]}}),
            ),
            Fingerprint::of(
                Some("bot"),
                "s1",
                "t",
                &json!({"x": 1, "y": {"b": 2, "a": [2, 1]}}),
            ),
            Fingerprint::of(
                Some("bot"),
                "s1",
                "u",
                &json!({"x": 1, "y": {"b": 2, "a": [1, 2]}}),
            ),
            Fingerprint::of(
                Some("other"),
                "s1",
                "t",
                &json!({"x": 1, "y": {"b": 2, "a": [1, 2]}}),
            ),
            Fingerprint::of(
                None,
                "s1",
                "t",
                &json!({"x": 1, "y": {"b": 2, "a": [1, 2]}}),
            ),
        ] {
            assert_ne!(a, other);
        }
    }

    #[test]
    fn anonymous_calls_are_bound_to_their_session() {
        let args = json!({});
        assert_ne!(
            Fingerprint::of(None, "s1", "t", &args),
            Fingerprint::of(None, "s2", "t", &args)
        );
    }

    #[test]
    fn a_string_and_a_number_differ() {
        assert_ne!(
            Fingerprint::of(None, "s", "t", &json!({"n": 1})),
            Fingerprint::of(None, "s", "t", &json!({"n": "1"}))
        );
    }
}
