//! Strict JSON: the one parser for everything that crosses the boundary (agent messages and policy
//! files). It differs from `serde_json::from_slice::<Value>` in one way only: an object with the
//! same key twice, in any letter case, is an error. Parsers disagree on which duplicate wins
//! (first, last, or both) and on whether `Name` is `name`, so a message whose meaning depends on
//! the reader must never be evaluated by one and obeyed by another.
//!
//! [`parse`] builds a value; [`scan`] reads the same language in one pass without building one,
//! for the readers that keep most of a message as text.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use smallvec::SmallVec;

pub mod scan;

/// Why a document was refused.
#[derive(Debug, thiserror::Error)]
pub enum StrictJsonError {
    /// Not JSON at all (or trailing garbage): JSON-RPC "parse error".
    #[error("{0}")]
    Syntax(String),
    /// Well-formed JSON whose objects repeat a key: JSON-RPC "invalid request".
    #[error("duplicate key {0:?}: a JSON object must not repeat a key, in any letter case")]
    DuplicateKey(String),
}

/// Where a subschema sits in a JSON Schema object: under its keyword, or under a member or an
/// item of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaPlace<'a> {
    Keyword,
    Member(&'a str),
    Item(usize),
}

/// Keywords whose value is one subschema, a map of them, or a list of them (JSON Schema
/// 2020-12, and the draft-07 spellings still in use).
const ONE_SCHEMA: [&str; 12] = [
    "additionalProperties",
    "items",
    "additionalItems",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
];
const SCHEMA_MAPS: [&str; 5] = [
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];
const SCHEMA_LISTS: [&str; 5] = ["allOf", "anyOf", "oneOf", "prefixItems", "items"];

/// Every subschema of `schema` one level down, with the keyword and place it sits at: what a
/// walker of schemas visits (the policy's lint, `x-mcp-header` annotations), and nothing else
/// (an `examples` or `default` value is not a schema).
pub fn subschemas(schema: &Map<String, Value>) -> Vec<(&'static str, SchemaPlace<'_>, &Value)> {
    let mut found = Vec::new();
    for keyword in ONE_SCHEMA {
        if let Some(sub @ Value::Object(_)) = schema.get(keyword) {
            found.push((keyword, SchemaPlace::Keyword, sub));
        }
    }
    for keyword in SCHEMA_MAPS {
        for (name, sub) in schema
            .get(keyword)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            found.push((keyword, SchemaPlace::Member(name.as_str()), sub));
        }
    }
    for keyword in SCHEMA_LISTS {
        for (i, sub) in schema
            .get(keyword)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            found.push((keyword, SchemaPlace::Item(i), sub));
        }
    }
    found
}

/// Parses `bytes` as one JSON document, refusing duplicate object keys anywhere in it.
pub fn parse(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue.deserialize(&mut de).map_err(classify)?;
    de.end().map_err(classify)?;
    Ok(value)
}

const DUPLICATE_MARKER: &str = "\u{0}duplicate key\u{0}";

/// Tells a duplicate key found by the seeds here from any other error serde_json reports.
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

fn duplicate<E: de::Error>(key: &str) -> E {
    E::custom(format_args!("{DUPLICATE_MARKER}{key}{DUPLICATE_MARKER}"))
}

/// Reads one value strictly.
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
        let mut keys = Keys::default();
        while let Some(key) = map.next_key_seed(Key)? {
            keys.insert(key.clone()).map_err(|key| duplicate(&key))?;
            object.insert(key.into_owned(), map.next_value_seed(StrictValue)?);
        }
        Ok(Value::Object(object))
    }
}

/// The keys of one object seen so far. Two keys are the same if they differ only in letter case:
/// Go's encoding/json and .NET's web defaults match member names that way, so `"Name"` beside
/// `"name"` is a repeated key to them, read last-wins. Most objects have a handful of keys,
/// compared in a list; past that a set of folded keys keeps an object with very many keys from
/// costing a comparison per pair.
#[derive(Default)]
pub(crate) struct Keys<'de> {
    /// Each with whether it is ASCII, which most keys are: two such compare without folding.
    /// Held in place: most objects cost no allocation for their keys.
    few: SmallVec<[(Cow<'de, str>, bool); Keys::FEW]>,
    many: HashSet<String>,
}

impl<'de> Keys<'de> {
    const FEW: usize = 16;

    /// Gives `key` back if the object had it already, in any letter case.
    pub(crate) fn insert(&mut self, key: Cow<'de, str>) -> Result<(), Cow<'de, str>> {
        let ascii = key.is_ascii();
        let seen = |(seen, seen_ascii): &(Cow<'de, str>, bool)| match ascii && *seen_ascii {
            true => seen.eq_ignore_ascii_case(&key),
            false => fold(seen).eq(fold(&key)),
        };
        if self.few.iter().any(seen) {
            return Err(key);
        }
        if self.few.len() < Self::FEW {
            self.few.push((key, ascii));
        } else if !self.many.insert(folded(&key)) {
            return Err(key);
        }
        Ok(())
    }
}

/// Whether two member names are one to a parser that ignores letter case. Folding goes through
/// upper case so that `ſ` (long s) meets `s` and `K` (Kelvin sign) meets `k`, as Unicode's
/// case folding, which such parsers use, has them.
pub fn same_key(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    fold(a).eq(fold(b))
}

fn fold(key: &str) -> impl Iterator<Item = char> + '_ {
    key.chars()
        .flat_map(char::to_uppercase)
        .flat_map(char::to_lowercase)
}

fn folded(key: &str) -> String {
    fold(key).collect()
}

/// An object key, borrowed from the input unless it had escapes to decode.
pub(crate) struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
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
        assert!(matches!(
            parse(b"{\"a\":\"\xff\"}"),
            Err(StrictJsonError::Syntax(_))
        ));
    }

    #[test]
    fn keys_that_differ_only_in_letter_case_are_duplicates() {
        for (text, key) in [
            (r#"{"name":"a","Name":"b"}"#, "Name"),
            (r#"{"params":{},"PARAMS":{}}"#, "PARAMS"),
            // Unicode case folding: long s is s, the Kelvin sign is k.
            (r#"{"params":{},"param\u017f":{}}"#, "param\u{17f}"),
            (r#"{"kind":1,"\u212aind":2}"#, "\u{212a}ind"),
        ] {
            match parse(text.as_bytes()) {
                Err(StrictJsonError::DuplicateKey(found)) => assert_eq!(found, key, "{text}"),
                other => panic!("{text}: expected a duplicate-key error, got {other:?}"),
            }
            assert!(
                matches!(scan::check(text), Err(StrictJsonError::DuplicateKey(_))),
                "{text}"
            );
        }
        let many = format!(
            "{{{},\"K39\":0}}",
            (0..40)
                .map(|i| format!("\"k{i}\":{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(matches!(
            scan::check(&many),
            Err(StrictJsonError::DuplicateKey(_))
        ));
        assert!(parse(br#"{"name":1,"names":2,"nam":3}"#).is_ok());
    }
}
