//! Finds every repeated key in a policy file, with its path. `crate::json::parse` already refused
//! the file; it names the first duplicate key but not where it is, and a policy author needs the
//! where (`"max"` repeats in many rules). This second reading runs only on that failure path.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::load::LoadError;
use crate::json;

/// Every repeated key in `bytes`, each at its own pointer (`/tools/x/rate_limit/max`).
pub(super) fn locate(bytes: &[u8]) -> Vec<LoadError> {
    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = Walk {
        path: String::new(),
        found: &mut found,
    };
    if let Err(error) = seed.deserialize(&mut de) {
        found.push(LoadError::new("", error.to_string()));
    }
    if found.is_empty() {
        // Unreachable while this walk and `json::parse` agree; still, never report "no errors".
        found.push(LoadError::new("", "duplicate key"));
    }
    found
}

struct Walk<'f> {
    path: String,
    found: &'f mut Vec<LoadError>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            let child = Walk {
                path: format!("{}/{index}", self.path),
                found: &mut *self.found,
            };
            if seq.next_element_seed(child)?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = json::Keys::default();
        while let Some(key) = map.next_key_seed(json::Key)? {
            let child_path = format!(
                "{}/{}",
                self.path,
                key.replace('~', "~0").replace('/', "~1")
            );
            if seen.insert(key).is_ok() {
                let child = Walk {
                    path: child_path,
                    found: &mut *self.found,
                };
                map.next_value_seed(child)?;
            } else {
                self.found.push(LoadError::new(
                    child_path,
                    "this key appears twice in its object; JSON parsers disagree on which one wins",
                ));
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}
