//! Rules the model can see. Without this an agent learns that `depth` must be ≤ 100 from a
//! refusal; with it, `tools/list` says so, and a schema-aware client never sends what will be
//! refused. On by default (`"advertise": false` turns it off).
//!
//! - The rule's argument schema joins the upstream's `inputSchema` as `allOf`, so what is
//!   advertised is exactly what the gateway enforces, and, for clients that read only the
//!   top-level `properties`, each property also carries the policy's keywords it does not have
//!   and the tighter of two bounds (`maximum: 100` where the upstream said nothing or 5000).
//!   Only consequences of both schemas are written, so the merge can never loosen anything. The
//!   top-level `"type": "object"` stays: the Python SDK rejects a tool without it.
//! - A rule schema with `$ref` or `$defs` is not joined: its references would resolve against
//!   the merged document. Its call is still checked; only the advertisement is left out.
//! - The description gains a line for approval and for the rule's rate limit.

use serde_json::{Map, Value};

use super::rules::{ToolAction, ToolRule};
use super::CompiledPolicy;

/// Bounds where the smaller value is the tighter one.
const UPPER: [&str; 5] = [
    "maximum",
    "exclusiveMaximum",
    "maxLength",
    "maxItems",
    "maxProperties",
];
/// Bounds where the larger value is the tighter one.
const LOWER: [&str; 5] = [
    "minimum",
    "exclusiveMinimum",
    "minLength",
    "minItems",
    "minProperties",
];

impl CompiledPolicy {
    /// Whether tools/list shows the rules (`advertise`, on by default).
    pub fn advertises(&self) -> bool {
        self.advertise
    }

    /// Writes `agent`'s rule for this tool into its definition (a `tools/list` entry), in place.
    pub fn advertise(&self, agent: Option<&str>, tool: &mut Value) {
        let Some(name) = tool.get("name").and_then(Value::as_str) else {
            return;
        };
        let Some(rule) = self.tool_rule(self.section(agent), name) else {
            return;
        };
        if let Some(arguments) = &rule.arguments {
            if !mentions_references(&arguments.source) {
                let upstream = tool.get("inputSchema").cloned().unwrap_or(Value::Null);
                tool["inputSchema"] = merged(&upstream, &arguments.source);
            }
        }
        let notes = notes(rule);
        if !notes.is_empty() {
            let description = tool
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("");
            let joined = if description.is_empty() {
                notes.join("\n")
            } else {
                format!("{description}\n\n{}", notes.join("\n"))
            };
            tool["description"] = Value::String(joined);
        }
    }
}

fn notes(rule: &ToolRule) -> Vec<String> {
    let mut notes = Vec::new();
    if let ToolAction::Approval { .. } = rule.action {
        notes.push("[gateway] Each call waits for a person's approval before it runs.".to_owned());
    }
    if let Some(limit) = &rule.rate_limit {
        notes.push(format!(
            "[gateway] At most {} calls per {} s (per {}).",
            limit.max(),
            limit.window().as_secs(),
            limit.per().as_str()
        ));
    }
    notes
}

fn mentions_references(schema: &Value) -> bool {
    match schema {
        Value::Object(object) => object.iter().any(|(key, value)| {
            matches!(
                key.as_str(),
                "$ref" | "$defs" | "definitions" | "$dynamicRef"
            ) || mentions_references(value)
        }),
        Value::Array(items) => items.iter().any(mentions_references),
        _ => false,
    }
}

/// The upstream's schema and the rule's together.
fn merged(upstream: &Value, rule: &Value) -> Value {
    let mut out = match upstream {
        Value::Object(object) => object.clone(),
        _ => Map::new(),
    };
    out.insert("type".into(), Value::String("object".into()));
    if let (Some(Value::Object(theirs)), Some(Value::Object(ours))) = (
        rule.get("properties"),
        Some(
            out.entry("properties")
                .or_insert_with(|| Value::Object(Map::new())),
        ),
    ) {
        for (name, own) in theirs {
            let merged_property = match ours.get(name) {
                Some(existing) => tighten(existing, own),
                None => own.clone(),
            };
            ours.insert(name.clone(), merged_property);
        }
    }
    if let Some(Value::Array(required)) = rule.get("required") {
        let list = out
            .entry("required")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = list {
            for name in required {
                if !list.contains(name) {
                    list.push(name.clone());
                }
            }
        }
    }
    let mut rule = rule.clone();
    if let Value::Object(rule) = &mut rule {
        rule.remove("$schema");
    }
    let all_of = out
        .entry("allOf")
        .or_insert_with(|| Value::Array(Vec::new()));
    match all_of {
        Value::Array(items) => items.push(rule),
        other => *other = Value::Array(vec![other.clone(), rule]),
    }
    Value::Object(out)
}

/// One property's schema with the rule's keywords added where it has none, and the tighter of
/// two numeric bounds. Any other disagreement keeps the upstream's keyword: `allOf` carries the
/// rule's.
fn tighten(upstream: &Value, rule: &Value) -> Value {
    let (Value::Object(up), Value::Object(own)) = (upstream, rule) else {
        return upstream.clone();
    };
    let mut out = up.clone();
    for (key, value) in own {
        match (out.get(key).and_then(Value::as_f64), value.as_f64()) {
            (Some(a), Some(b)) if UPPER.contains(&key.as_str()) && b < a => {
                out.insert(key.clone(), value.clone());
            }
            (Some(a), Some(b)) if LOWER.contains(&key.as_str()) && b > a => {
                out.insert(key.clone(), value.clone());
            }
            _ if !out.contains_key(key) => {
                out.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POLICY: &str = r#"{"version":"1","default":"deny","tools":{
        "get_order_book":{"arguments":{"type":"object","properties":{"depth":{"type":"integer","maximum":100}}},
                          "rate_limit":{"max":5,"window":60}},
        "place_order":{"action":"approval"}}}"#;

    #[test]
    fn argument_rules_join_the_upstream_schema_and_notes_join_the_description() {
        let policy = CompiledPolicy::from_json_slice(POLICY.as_bytes()).unwrap();
        let mut tool = json!({"name": "get_order_book", "description": "Order book.",
            "inputSchema": {"type": "object", "properties": {
                "symbol": {"type": "string"}, "depth": {"type": "integer", "maximum": 5000, "default": 100}},
                "required": ["symbol"]}});
        policy.advertise(None, &mut tool);
        let schema = &tool["inputSchema"];
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["properties"]["depth"]["maximum"], 100);
        assert_eq!(schema["properties"]["depth"]["default"], 100);
        assert_eq!(schema["required"], json!(["symbol"]));
        assert_eq!(schema["allOf"][0]["properties"]["depth"]["maximum"], 100);
        assert_eq!(
            tool["description"],
            "Order book.\n\n[gateway] At most 5 calls per 60 s (per agent)."
        );
        let mut held = json!({"name": "place_order"});
        policy.advertise(None, &mut held);
        assert!(held["description"].as_str().unwrap().contains("approval"));
        assert!(
            held.get("inputSchema").is_none(),
            "no rule schema, nothing added"
        );
    }

    #[test]
    fn a_looser_rule_never_loosens_the_upstream() {
        let merged = tighten(
            &json!({"maximum": 10, "type": "integer"}),
            &json!({"maximum": 100, "type": "number"}),
        );
        assert_eq!(merged, json!({"maximum": 10, "type": "integer"}));
    }
}
