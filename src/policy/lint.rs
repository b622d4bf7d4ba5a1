//! Warnings about policies that load but may not mean what their author thinks.
//!
//! JSON Schema's numeric keywords (`maximum`, ...) apply only to numbers and its string keywords
//! (`pattern`, ...) only to strings: `{"maximum": 100}` lets the string `"5000"` through, and
//! an upstream that converts it (Python's pydantic does) runs with 5000. A schema with such a
//! keyword and no `type` is almost always meant to have one.

use serde_json::Value;

use crate::json::{self, SchemaPlace};

const NUMERIC: [&str; 5] = [
    "maximum",
    "minimum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "multipleOf",
];
const STRING: [&str; 4] = ["minLength", "maxLength", "pattern", "format"];

/// A warning for every argument schema in a policy file (as JSON) that uses numeric or string
/// keywords without a `type`, each with its JSON pointer.
pub fn untyped_argument_keywords(policy: &Value) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut tools = |section: &Value, at: &str| {
        if let Some(tools) = section.get("tools").and_then(Value::as_object) {
            for (name, rule) in tools {
                if let Some(schema) = rule.get("arguments") {
                    let at = format!("{at}/tools/{}/arguments", escape(name));
                    walk(schema, &at, &mut warnings);
                }
            }
        }
    };
    tools(policy, "");
    if let Some(agents) = policy.get("agents").and_then(Value::as_object) {
        for (name, section) in agents {
            tools(section, &format!("/agents/{}", escape(name)));
        }
    }
    warnings
}

fn walk(schema: &Value, at: &str, warnings: &mut Vec<String>) {
    let Some(object) = schema.as_object() else {
        return;
    };
    let pinned = ["type", "const", "enum"]
        .iter()
        .any(|k| object.contains_key(*k));
    if !pinned {
        let used = |keywords: &[&str]| -> Vec<String> {
            keywords
                .iter()
                .filter(|k| object.contains_key(**k))
                .map(|k| format!("{k:?}"))
                .collect()
        };
        let (numeric, string) = (used(&NUMERIC), used(&STRING));
        let mut says = Vec::new();
        if !numeric.is_empty() {
            says.push(format!(
                "{} constrain only numbers (add \"type\": \"integer\" or \"number\")",
                numeric.join(", ")
            ));
        }
        if !string.is_empty() {
            says.push(format!(
                "{} constrain only strings (add \"type\": \"string\")",
                string.join(", ")
            ));
        }
        if !says.is_empty() {
            let at = if at.is_empty() { "/" } else { at };
            warnings.push(format!(
                "{at}: {}; without \"type\", a value of another type passes (the string \"5000\" passes \"maximum\": 100)",
                says.join("; ")
            ));
        }
    }
    for (keyword, place, sub) in json::subschemas(object) {
        let at = match place {
            SchemaPlace::Keyword => format!("{at}/{keyword}"),
            SchemaPlace::Member(name) => format!("{at}/{keyword}/{}", escape(name)),
            SchemaPlace::Item(i) => format!("{at}/{keyword}/{i}"),
        };
        walk(sub, &at, warnings);
    }
}

/// RFC 6901.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numeric_and_string_keywords_without_a_type_are_warned_about_with_their_pointer() {
        let policy = json!({"version": "1", "default": "deny", "tools": {
            "get_order_book": {"arguments": {"type": "object", "properties": {
                "depth": {"maximum": 100},
                "symbol": {"pattern": "^[A-Z]+$", "maxLength": 20},
                "typed": {"type": "integer", "maximum": 100},
                "pinned": {"enum": [1, 2], "minimum": 1},
                "nested": {"type": "array", "items": {"anyOf": [{"minimum": 0}, {"type": "null"}]}}
            }}}},
            "agents": {"bot": {"tools": {"a/b": {"arguments": {"multipleOf": 2}}}}}});
        let warnings = untyped_argument_keywords(&policy);
        assert_eq!(warnings.len(), 4, "{warnings:#?}");
        assert!(warnings[0].starts_with(
            "/tools/get_order_book/arguments/properties/depth: \"maximum\" constrain only numbers"
        ));
        assert!(warnings[1].starts_with("/tools/get_order_book/arguments/properties/symbol: \"maxLength\", \"pattern\" constrain only strings"), "{}", warnings[1]);
        assert!(warnings[2]
            .starts_with("/tools/get_order_book/arguments/properties/nested/items/anyOf/0: "));
        assert!(warnings[3].starts_with("/agents/bot/tools/a~1b/arguments: \"multipleOf\""));
    }

    #[test]
    fn the_shipped_policy_has_no_untyped_keywords() {
        let text = include_str!("../../policies/binance.json");
        let policy: Value = serde_json::from_str(text).unwrap();
        assert_eq!(untyped_argument_keywords(&policy), Vec::<String>::new());
    }
}
