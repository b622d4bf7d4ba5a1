//! The policy file as users write it: serde types that mirror the JSON one to one.
//!
//! These types are the single source of the file format. `file_schema()` derives the JSON Schema
//! from them (committed as `policies/schema.json` for editors and for `$schema`), and loading checks
//! a file against that schema before serde reads it, so that every mistake is reported with its
//! path at once instead of serde stopping at the first. Nothing here is used after loading:
//! `compile` turns these into the rules `decide` reads.
//!
//! Enum variants carry no doc comments on purpose: schemars would turn a documented variant into a
//! `oneOf` branch, and a value outside a `oneOf` gets a vague error ("is not valid under any of the
//! schemas") where a plain `enum` gets a precise one ("is not one of ["allow","deny"]").

use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::rules::{ApprovalVia, DefaultAction, LimitScope};

/// An mcpgate policy: which tools and methods an agent may call, how often, and with what arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "mcpgate policy")]
pub(super) struct PolicyFile {
    /// Where the editor finds this schema; ignored by mcpgate.
    #[serde(rename = "$schema")]
    #[allow(dead_code)] // read by editors, not by the gateway
    pub schema: Option<String>,
    /// Format version; "1" is the only one.
    pub version: Version,
    /// What happens to a tool with no entry in `tools`, and to a method with no entry in `methods`.
    pub default: DefaultAction,
    /// Applies to every tools/call and every policed method together, on top of each rule's own limit.
    pub rate_limit: Option<RateLimitFile>,
    /// Rules for tools/call, by exact tool name.
    #[serde(default)]
    pub tools: BTreeMap<String, ToolRuleFile>,
    /// Rules for other methods (resources/read, prompts/get, ...), by exact method name.
    #[serde(default)]
    pub methods: BTreeMap<String, MethodRuleFile>,
    /// Per-agent sections, by authenticated agent name. An entry here replaces the global one.
    #[serde(default)]
    pub agents: BTreeMap<String, AgentSectionFile>,
    /// What to do when a tool's definition differs from its rule's `pin`: "enforce" (the default:
    /// hide the tool and refuse its calls) or "warn" (audit and show it, and let it through).
    pub pins: Option<PinModeFile>,
    /// Show the agent the rules in tools/list: argument rules merged into each tool's
    /// inputSchema, approval and limits in its description. On by default.
    pub advertise: Option<bool>,
    /// Rules on every tool result: redaction and a size cap. A tool's own `results` add to these.
    pub results: Option<ResultRulesFile>,
}

/// "enforce" or "warn".
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum PinModeFile {
    #[default]
    Enforce,
    Warn,
}

/// What is done to a tool's result before the agent sees it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ResultRulesFile {
    /// Built-in sets of secrets to replace with a marker: "private_keys", "cloud_keys", "api_keys", "jwts", "card_numbers".
    #[serde(default)]
    pub redact: Vec<RedactSetFile>,
    /// Regular expressions (the linear-time `regex` syntax) whose matches are replaced with a marker.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Largest result (as JSON text, after redaction) relayed; a larger one is withheld and the call answered with an error.
    #[schemars(range(min = 1))]
    pub max_bytes: Option<u64>,
}

/// A built-in set of secret formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum RedactSetFile {
    PrivateKeys,
    CloudKeys,
    ApiKeys,
    Jwts,
    CardNumbers,
}

/// The policy format version: "1".
#[derive(Debug, Deserialize, JsonSchema)]
pub(super) enum Version {
    #[serde(rename = "1")]
    V1,
}

/// A rule for one tool.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ToolRuleFile {
    /// "allow" (the default), "deny", or "approval" (a human decides each call).
    #[serde(default)]
    pub action: ToolActionFile,
    /// Shown to the agent when the call is denied or waits for approval.
    pub reason: Option<String>,
    /// This tool's own limit, on top of the top-level one.
    pub rate_limit: Option<RateLimitFile>,
    /// A JSON Schema the call's `arguments` object must satisfy (a call without arguments is checked as {}).
    #[serde(default)]
    #[schemars(schema_with = "arguments_schema")]
    pub arguments: Option<Value>,
    /// Keep the tool out of tools/list and answer calls to it as if it did not exist.
    #[serde(default)]
    pub hide: bool,
    /// Approval only: seconds a pending approval waits before it expires (default 300).
    #[schemars(range(min = 1, max = u32::MAX))]
    pub timeout: Option<u32>,
    /// Approval only: how a human is asked, "queue" (the default) or "elicitation".
    pub via: Option<ApprovalVia>,
    /// Top-level tools only: the digest of the tool's reviewed definition ("sha256:HEX"), as
    /// `mcpgate policy pin` writes it.
    #[schemars(regex(pattern = r"^sha256:[0-9a-f]{64}$"))]
    pub pin: Option<String>,
    /// Rules on this tool's results, on top of the top-level `results`.
    pub results: Option<ResultRulesFile>,
    /// OAuth scopes the caller's access token must grant (all of them) for this tool to be called.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// What a tool rule does with a call: "allow", "deny" or "approval".
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum ToolActionFile {
    #[default]
    Allow,
    Deny,
    Approval,
}

/// A rule for one non-tool method.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct MethodRuleFile {
    /// "allow" (the default) or "deny".
    #[serde(default)]
    pub action: MethodActionFile,
    /// Shown to the agent when the call is denied.
    pub reason: Option<String>,
    /// This method's own limit, on top of the top-level one.
    pub rate_limit: Option<RateLimitFile>,
}

/// What a method rule does with a call: "allow" or "deny".
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum MethodActionFile {
    #[default]
    Allow,
    Deny,
}

/// At most `max` calls per `window` seconds.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RateLimitFile {
    /// Calls allowed in one window (and in one burst).
    #[schemars(range(min = 1, max = u32::MAX))]
    pub max: u32,
    /// Window length in seconds.
    #[schemars(range(min = 1, max = u32::MAX))]
    pub window: u32,
    /// Whose calls share the counter: "agent" (the default; the session when the agent is unknown), "session" or "global".
    #[serde(default)]
    pub per: LimitScope,
}

/// Rules for one agent; each field present here replaces the global one for this agent.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AgentSectionFile {
    /// Replaces the top-level `default` for this agent.
    pub default: Option<DefaultAction>,
    /// Replaces the top-level `rate_limit` for this agent.
    pub rate_limit: Option<RateLimitFile>,
    /// Tool rules that replace the global ones of the same name for this agent.
    #[serde(default)]
    pub tools: BTreeMap<String, ToolRuleFile>,
    /// Method rules that replace the global ones of the same name for this agent.
    #[serde(default)]
    pub methods: BTreeMap<String, MethodRuleFile>,
}

fn arguments_schema(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "A JSON Schema (draft 2020-12 unless it says otherwise in $schema) for the call's arguments. Remote $ref is not fetched."
    })
}

/// The JSON Schema of the policy file format, generated from the types above.
///
/// `policies/schema.json` is this value, pretty-printed; a unit test keeps the two equal.
pub fn file_schema() -> Value {
    let schema = SchemaGenerator::default().into_root_schema_for::<PolicyFile>();
    let mut value = schema.to_value();
    forbid_null(&mut value);
    value
}

/// schemars lets every `Option` field be `null` (and annotates it `"default": null`); a policy that
/// says `"timeout": null` is more likely a mistake than a way of saying "absent", so the schema
/// refuses null everywhere.
fn forbid_null(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if object.get("default") == Some(&Value::Null) {
                object.remove("default");
            }
            remove_null_type(object);
            remove_null_alternative(object);
            object.values_mut().for_each(forbid_null);
        }
        Value::Array(items) => items.iter_mut().for_each(forbid_null),
        _ => {}
    }
}

/// `"type": ["integer", "null"]` → `"type": "integer"`.
fn remove_null_type(object: &mut Map<String, Value>) {
    let Some(Value::Array(types)) = object.get_mut("type") else {
        return;
    };
    types.retain(|t| t != "null");
    if let [single] = types.as_slice() {
        let single = single.clone();
        object.insert("type".to_owned(), single);
    }
}

/// `"anyOf": [{"$ref": X}, {"type": "null"}]` → `"$ref": X`.
fn remove_null_alternative(object: &mut Map<String, Value>) {
    let Some(Value::Array(alternatives)) = object.get("anyOf") else {
        return;
    };
    let is_null = |v: &Value| v.get("type").and_then(Value::as_str) == Some("null");
    let rest: Vec<&Value> = alternatives.iter().filter(|v| !is_null(v)).collect();
    if rest.len() == alternatives.len() {
        return;
    }
    let rest: Vec<Value> = rest.into_iter().cloned().collect();
    object.remove("anyOf");
    match <[Value; 1]>::try_from(rest) {
        Ok([Value::Object(only)]) => object.extend(only),
        Ok([other]) => {
            object.insert("anyOf".to_owned(), Value::Array(vec![other]));
        }
        Err(rest) => {
            object.insert("anyOf".to_owned(), Value::Array(rest));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMITTED: &str = include_str!("../../policies/schema.json");

    /// `policies/schema.json` is generated; this keeps it from drifting from the types.
    /// To regenerate: `UPDATE_SCHEMA=1 cargo test --lib policy::file` (or `mcpgate policy schema > policies/schema.json`).
    #[test]
    fn committed_schema_matches_the_types() {
        let generated = serde_json::to_string_pretty(&file_schema()).unwrap() + "\n";
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/schema.json");
            std::fs::write(path, &generated).unwrap();
            return;
        }
        let committed: Value = serde_json::from_str(COMMITTED).unwrap();
        assert!(
            committed == file_schema(),
            "policies/schema.json is out of date: regenerate it with \
             `UPDATE_SCHEMA=1 cargo test --lib policy::file` \
             (or `cargo run -- policy schema > policies/schema.json`)"
        );
    }

    #[test]
    fn schema_refuses_null_and_unknown_fields() {
        let text = file_schema().to_string();
        assert!(!text.contains("null"), "{text}");
        assert!(text.contains("\"additionalProperties\":false"), "{text}");
    }
}
