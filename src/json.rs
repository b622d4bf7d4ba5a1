//! Strict JSON: the one parser for everything that crosses the boundary (agent messages and policy
//! files). It differs from `serde_json::from_slice::<Value>` in one way only: an object with the
//! same key twice is an error. Parsers disagree on which duplicate wins (first, last, or both), so
//! a message whose meaning depends on the reader must never be evaluated by one and obeyed by another.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Value};

/// Why a document was refused.
#[derive(Debug, thiserror::Error)]
pub enum StrictJsonError {
    /// Not JSON at all (or trailing garbage): JSON-RPC "parse error".
    #[error("{0}")]
    Syntax(String),
    /// Well-formed JSON whose objects repeat a key: JSON-RPC "invalid request".
    #[error("duplicate key {0:?}: a JSON object must not repeat a key")]
    DuplicateKey(String),
}

/// Parses `bytes` as one JSON document, refusing duplicate object keys anywhere in it.
pub fn parse(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue.deserialize(&mut de).map_err(classify)?;
    de.end().map_err(classify)?;
    Ok(value)
}

const DUPLICATE_MARKER: &str = "\u{0}duplicate key\u{0}";

fn classify(err: serde_json::Error) -> StrictJsonError {
    let text = err.to_string();
    match text.strip_prefix(DUPLICATE_MARKER) {
        Some(rest) => {
            let key = rest.split(DUPLICATE_MARKER).next().unwrap_or_default();
            StrictJsonError::DuplicateKey(key.to_owned())
        }
        None => StrictJsonError::Syntax(text),
    }
}

struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match object.entry(key) {
                Entry::Occupied(seen) => {
                    return Err(de::Error::custom(format_args!(
                        "{DUPLICATE_MARKER}{}{DUPLICATE_MARKER}",
                        seen.key()
                    )));
                }
                Entry::Vacant(slot) => {
                    slot.insert(map.next_value_seed(StrictValue)?);
                }
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ordinary_json_like_serde_json() {
        let text = br#"{"a":[1,-2,3.5,"x",null,true],"b":{"c":{}}}"#;
        let strict = parse(text).unwrap();
        let loose: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(strict, loose);
    }

    #[test]
    fn refuses_duplicate_keys_at_any_depth() {
        for text in [
            r#"{"method":"a","method":"b"}"#,
            r#"{"params":{"name":"x","name":"y"}}"#,
            r#"[{"a":{"b":[{"c":1,"c":2}]}}]"#,
        ] {
            match parse(text.as_bytes()) {
                Err(StrictJsonError::DuplicateKey(_)) => {}
                other => panic!("{text}: expected a duplicate-key error, got {other:?}"),
            }
        }
    }

    #[test]
    fn keys_that_differ_only_after_unescaping_are_duplicates() {
        let text = br#"{"name":"a","na\u006de":"b"}"#;
        assert!(matches!(
            parse(text),
            Err(StrictJsonError::DuplicateKey(key)) if key == "name"
        ));
    }

    #[test]
    fn syntax_errors_and_trailing_garbage_are_syntax_errors() {
        for text in ["{", "{\"a\":1} x", "", "nul"] {
            assert!(
                matches!(parse(text.as_bytes()), Err(StrictJsonError::Syntax(_))),
                "{text:?}"
            );
        }
    }
}
