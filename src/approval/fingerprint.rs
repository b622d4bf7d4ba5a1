//! What makes two calls "the same call" for an approval: the caller, the tool, the arguments in
//! canonical form (object keys sorted, no insignificant whitespace), so that reordering keys
//! does not dodge an approval and changing any value does not reuse one, and everything else
//! forwarded in the call's params (`_meta`, ...) exactly as it is forwarded, so that nothing the
//! reviewer did not see rides on an approved call.

use serde_json::Value;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Stands in for the fingerprint of an approval read back from a shared store, which keeps
    /// it as a key instead.
    pub fn unknown() -> Self {
        Fingerprint([0; 32])
    }

    /// Hex, for a shared store's keys.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl Fingerprint {
    /// `agent` when the caller authenticated; otherwise the call is bound to its session.
    /// `other_params`: the call's params besides `name` and `arguments`, as forwarded (kept as
    /// text, so compared as text: a byte of difference needs its own approval).
    pub fn of(
        agent: Option<&str>,
        session: &str,
        tool: &str,
        arguments: &Value,
        other_params: Option<&str>,
    ) -> Self {
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
        match other_params {
            Some(text) => {
                hash.update(b"\0params\0");
                hash.update(text.as_bytes());
            }
            None => hash.update(b"\0no params"),
        }
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
            None,
        );
        let b = Fingerprint::of(
            Some("bot"),
            "s2",
            "t",
            &json!({"y": {"a": [1, 2], "b": 2}, "x": 1}),
            None,
        );
        assert_eq!(a, b, "same agent, other session: the same call");
        for other in [
            Fingerprint::of(
                Some("bot"),
                "s1",
                "t",
                &json!({"x": 2, "y": {"b": 2, "a": [1, 2]}}),
                None,
            ),
            Fingerprint::of(
                Some("bot"),
                "s1",
                "t",
                &json!({"x": 1, "y": {"b": 2, "a": [2, 1]}}),
                None,
            ),
            Fingerprint::of(
                Some("bot"),
                "s1",
                "u",
                &json!({"x": 1, "y": {"b": 2, "a": [1, 2]}}),
                None,
            ),
            Fingerprint::of(
                Some("other"),
                "s1",
                "t",
                &json!({"x": 1, "y": {"b": 2, "a": [1, 2]}}),
                None,
            ),
            Fingerprint::of(
                None,
                "s1",
                "t",
                &json!({"x": 1, "y": {"b": 2, "a": [1, 2]}}),
                None,
            ),
        ] {
            assert_ne!(a, other);
        }
    }

    #[test]
    fn anonymous_calls_are_bound_to_their_session() {
        let args = json!({});
        assert_ne!(
            Fingerprint::of(None, "s1", "t", &args, None),
            Fingerprint::of(None, "s2", "t", &args, None)
        );
    }

    #[test]
    fn a_string_and_a_number_differ() {
        assert_ne!(
            Fingerprint::of(None, "s", "t", &json!({"n": 1}), None),
            Fingerprint::of(None, "s", "t", &json!({"n": "1"}), None)
        );
    }

    #[test]
    fn params_besides_the_arguments_are_covered_as_forwarded() {
        let args = json!({"symbol": "BTCUSDT"});
        let plain = Fingerprint::of(Some("bot"), "s", "t", &args, None);
        let meta = Fingerprint::of(Some("bot"), "s", "t", &args, Some(r#"{"_meta":{"x":1}}"#));
        assert_ne!(plain, meta);
        assert_ne!(
            meta,
            Fingerprint::of(Some("bot"), "s", "t", &args, Some(r#"{"_meta":{"x":2}}"#))
        );
        assert_eq!(
            meta,
            Fingerprint::of(Some("bot"), "s2", "t", &args, Some(r#"{"_meta":{"x":1}}"#))
        );
    }
}
