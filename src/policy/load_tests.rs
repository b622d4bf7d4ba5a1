//! Loading: a policy either compiles or reports every mistake, each at its JSON path.

use super::*;
use crate::policy::{CompiledPolicy, DefaultAction};

fn errors(text: &str) -> Vec<String> {
    match CompiledPolicy::from_json_slice(text.as_bytes()) {
        Ok(_) => panic!("expected load errors for {text}"),
        Err(LoadErrors(errors)) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn assert_reports(text: &str, expected: &[&str]) {
    let errors = errors(text);
    for line in expected {
        assert!(
            errors.iter().any(|e| e == line),
            "missing {line:?} in:\n{}",
            errors.join("\n")
        );
    }
}

#[test]
fn loads_the_documented_example() {
    let text = r#"{
      "$schema": "./schema.json",
      "version": "1",
      "default": "deny",
      "rate_limit": { "max": 600, "window": 60 },
      "tools": {
        "get_price": {},
        "get_all_24hr_tickers": { "rate_limit": { "max": 2, "window": 60 } },
        "get_order_book": { "arguments": { "type": "object", "properties": { "depth": { "maximum": 100 } } } },
        "get_all_trading_day_tickers": { "action": "deny", "reason": "too heavy; ask for one symbol" },
        "subscribe_to_trade_stream": { "action": "approval", "reason": "opens a long-lived upstream stream", "timeout": 300, "via": "queue" },
        "cleanup_all_streams": {}
      },
      "methods": { "resources/read": {}, "prompts/get": { "action": "deny", "reason": "no prompts here" } },
      "agents": { "research-bot": { "default": "deny", "tools": { "get_price": { "rate_limit": {"max": 10, "window": 1} } }, "methods": {} } }
    }"#;
    let policy = CompiledPolicy::from_json_slice(text.as_bytes()).unwrap();
    assert_eq!(policy.default_action(), DefaultAction::Deny);
}

#[test]
fn reports_every_structural_mistake_at_once_with_its_path() {
    let text = r#"{
      "version": "1", "default": "deny", "defualt": "allow",
      "rate_limit": { "max": 600, "window": 0 },
      "tools": {
        "get_price": { "rate_limit": { "max": 0, "window": 60 } },
        "a": { "action": "maybe" },
        "b": { "hide": "yes" },
        "c": { "rate_limit": { "max": 1, "window": 1, "per": "planet" } }
      },
      "agents": { "bot": { "tool": {} } }
    }"#;
    assert_reports(
        text,
        &[
            "(root): Additional properties are not allowed ('defualt' was unexpected)",
            "/rate_limit/window: 0 is less than the minimum of 1",
            "/tools/get_price/rate_limit/max: 0 is less than the minimum of 1",
            r#"/tools/a/action: "maybe" is not one of "allow", "deny" or "approval""#,
            r#"/tools/b/hide: "yes" is not of type "boolean""#,
            r#"/tools/c/rate_limit/per: "planet" is not one of "agent", "session" or "global""#,
            "/agents/bot: Additional properties are not allowed ('tool' was unexpected)",
        ],
    );
}

#[test]
fn rule_checks_are_reported_together_with_structural_mistakes() {
    let text = r#"{
      "version": "1", "default": "deny",
      "tools": {
        "a": { "rate_limit": { "max": 0, "window": 60 } },
        "b": { "timeout": 30 },
        "c": { "arguments": { "type": "objekt" } }
      }
    }"#;
    let errors = errors(text);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert_eq!(
        errors[0],
        "/tools/a/rate_limit/max: 0 is less than the minimum of 1"
    );
    assert!(errors[1..]
        .iter()
        .any(|e| e.starts_with("/tools/b/timeout: ")));
    assert!(errors[1..]
        .iter()
        .any(|e| e.starts_with("/tools/c/arguments/type: ")));
}

#[test]
fn timeout_and_via_are_refused_on_rules_that_are_not_approval() {
    let text = r#"{
      "version": "1", "default": "deny",
      "tools": {
        "a": { "timeout": 30 },
        "b": { "action": "deny", "via": "queue" },
        "ok": { "action": "approval", "timeout": 30, "via": "elicitation" }
      },
      "agents": { "bot": { "tools": { "c": { "action": "allow", "timeout": 5 } } } }
    }"#;
    assert_eq!(
        errors(text),
        [
            r#"/tools/a/timeout: timeout applies only to action "approval", and this rule's action is "allow""#,
            r#"/tools/b/via: via applies only to action "approval", and this rule's action is "deny""#,
            r#"/agents/bot/tools/c/timeout: timeout applies only to action "approval", and this rule's action is "allow""#,
        ]
    );
}

#[test]
fn argument_schemas_that_do_not_compile_are_refused_with_their_path() {
    let text = r#"{
      "version": "1", "default": "deny",
      "tools": {
        "bad_type": { "arguments": { "properties": { "depth": { "type": "integr" } } } },
        "look_around": { "arguments": { "properties": { "s": { "pattern": "^(?=A)" } } } },
        "remote": { "arguments": { "$ref": "https://example.com/schema.json" } },
        "not_an_object": { "arguments": true }
      }
    }"#;
    let errors = errors(text);
    assert_eq!(errors.len(), 4, "{errors:#?}");
    for path in [
        "/tools/bad_type/arguments/properties/depth/type: ",
        "/tools/look_around/arguments",
        "/tools/remote/arguments",
        r#"/tools/not_an_object/arguments: true is not of type "object""#,
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(path)),
            "{path} in {errors:#?}"
        );
    }
}

#[test]
fn duplicate_keys_are_all_reported_where_they_are() {
    let text = r#"{
      "version": "1", "default": "deny", "default": "allow",
      "tools": { "get_price": { "rate_limit": { "max": 1, "max": 1000, "window": 1 } } },
      "methods": { "resources/read": { "action": "deny", "action": "allow" } }
    }"#;
    assert_eq!(
        errors(text),
        [
            "/default: this key appears twice in its object; JSON parsers disagree on which one wins",
            "/tools/get_price/rate_limit/max: this key appears twice in its object; JSON parsers disagree on which one wins",
            "/methods/resources~1read/action: this key appears twice in its object; JSON parsers disagree on which one wins",
        ]
    );
}

#[test]
fn syntax_errors_are_reported_at_the_root() {
    let errors = errors(r#"{"version": "1", "default": "deny",}"#);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("(root): "), "{errors:?}");
}

#[test]
fn version_and_default_are_required_and_version_must_be_1() {
    assert_reports(
        r#"{"tools": {}}"#,
        &[
            r#"(root): "version" is a required property"#,
            r#"(root): "default" is a required property"#,
        ],
    );
    assert_reports(
        r#"{"version": 1, "default": "deny"}"#,
        &[r#"/version: 1 is not of type "string""#],
    );
    assert_reports(
        r#"{"version": "2", "default": "deny"}"#,
        &[r#"/version: "2" is not one of "1""#],
    );
}

#[test]
fn null_is_not_a_way_of_leaving_a_field_out() {
    assert_reports(
        r#"{"version": "1", "default": "deny", "rate_limit": null, "tools": {"a": {"reason": null}}}"#,
        &[
            r#"/rate_limit: null is not of type "object""#,
            r#"/tools/a/reason: null is not of type "string""#,
        ],
    );
}

#[test]
fn rules_for_methods_that_are_never_policed_are_refused() {
    let text = r#"{
      "version": "1", "default": "deny",
      "methods": { "initialize": { "action": "deny" }, "tools/call": {}, "notifications/initialized": {} },
      "agents": { "bot": { "methods": { "ping": {} } } }
    }"#;
    assert_eq!(
        errors(text),
        [
            "/methods/initialize: initialize is a lifecycle method, which always passes; a rule for it would never apply",
            "/methods/notifications~1initialized: notifications/initialized is a lifecycle method, which always passes; a rule for it would never apply",
            r#"/methods/tools~1call: tools/call is decided by the rules under "tools"; a rule for it would never apply"#,
            "/agents/bot/methods/ping: ping is a lifecycle method, which always passes; a rule for it would never apply",
        ]
    );
}

#[test]
fn methods_take_no_tool_fields() {
    assert_reports(
        r#"{"version": "1", "default": "deny", "methods": {"resources/read": {"action": "approval", "hide": true}}}"#,
        &[
            r#"/methods/resources~1read/action: "approval" is not one of "allow" or "deny""#,
            "/methods/resources~1read: Additional properties are not allowed ('hide' was unexpected)",
        ],
    );
}

#[test]
fn load_errors_display_one_line_per_error() {
    let Err(errors) = CompiledPolicy::from_json_slice(br#"{"version": "1"}"#) else {
        panic!("loaded");
    };
    assert_eq!(
        errors.to_string(),
        r#"(root): "default" is a required property"#
    );
    let two = LoadErrors(vec![LoadError::new("/a", "x"), LoadError::new("/b", "y")]);
    assert_eq!(two.to_string(), "/a: x\n/b: y");
}
