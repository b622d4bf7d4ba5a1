//! Decisions: every action and field, exact names, lifecycle methods, agent sections.

use std::borrow::Cow;
use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::policy::{ApprovalVia, CompiledPolicy, LimitScope};

const POLICY: &str = r#"{
  "version": "1",
  "default": "deny",
  "rate_limit": { "max": 600, "window": 60 },
  "tools": {
    "get_price": {},
    "limited": { "rate_limit": { "max": 2, "window": 60, "per": "session" } },
    "get_order_book": { "arguments": { "type": "object", "properties": { "depth": { "maximum": 100 } } } },
    "needs_symbol": { "arguments": { "type": "object", "required": ["symbol"] } },
    "heavy": { "action": "deny", "reason": "too heavy; ask for one symbol" },
    "banned": { "action": "deny" },
    "secret": { "hide": true },
    "secret_denied": { "hide": true, "action": "deny", "reason": "must not leak" },
    "stream": { "action": "approval", "reason": "opens a long-lived upstream stream", "timeout": 60, "via": "elicitation",
                "arguments": { "properties": { "symbol": { "type": "string" } } } },
    "stream_defaults": { "action": "approval" }
  },
  "methods": {
    "resources/read": { "rate_limit": { "max": 5, "window": 10, "per": "global" } },
    "prompts/get": { "action": "deny", "reason": "no prompts here" },
    "completion/complete": { "action": "deny" }
  },
  "agents": {
    "research-bot": {
      "tools": { "get_price": { "rate_limit": { "max": 10, "window": 1 } }, "heavy": {} },
      "methods": { "prompts/get": {} }
    },
    "admin": { "default": "allow", "rate_limit": { "max": 6000, "window": 60 } }
  }
}"#;

fn policy() -> CompiledPolicy {
    CompiledPolicy::from_json_slice(POLICY.as_bytes()).unwrap()
}

fn tool<'a>(agent: Option<&'a str>, name: &'a str, arguments: Option<&'a Value>) -> Call<'a> {
    Call {
        agent,
        method: "tools/call",
        tool: Some(name),
        arguments,
    }
}

fn method<'a>(agent: Option<&'a str>, method: &'a str) -> Call<'a> {
    Call {
        agent,
        method,
        tool: None,
        arguments: None,
    }
}

/// The rule names of a decision's limits, in order.
fn limit_rules(decision: &Decision<'_>) -> Vec<String> {
    match decision {
        Decision::Allow { limits, .. } | Decision::Approval { limits, .. } => {
            limits.iter().map(|l| l.rule().to_owned()).collect()
        }
        other => panic!("no limits in {other:?}"),
    }
}

#[test]
fn an_empty_rule_allows_under_the_top_level_limit() {
    let policy = policy();
    let decision = policy.decide(&tool(None, "get_price", None));
    assert!(
        matches!(
            decision,
            Decision::Allow {
                rule: "tools.get_price",
                ..
            }
        ),
        "{decision:?}"
    );
    assert_eq!(limit_rules(&decision), ["rate_limit"]);
}

#[test]
fn a_rules_own_limit_comes_before_the_top_level_one() {
    let policy = policy();
    let decision = policy.decide(&tool(None, "limited", None));
    assert_eq!(limit_rules(&decision), ["tools.limited", "rate_limit"]);
    let Decision::Allow { limits, .. } = decision else {
        unreachable!()
    };
    let own = limits.iter().next().unwrap();
    assert_eq!(
        (own.max(), own.window(), own.per()),
        (2, Duration::from_secs(60), LimitScope::Session)
    );
    assert_eq!(own.key(), "/tools/limited|2/60s|session");
}

#[test]
fn deny_gives_the_rules_reason_or_a_plain_default() {
    let policy = policy();
    assert_eq!(
        policy.decide(&tool(None, "heavy", None)),
        Decision::Deny {
            rule: "tools.heavy",
            reason: Cow::Borrowed("too heavy; ask for one symbol")
        }
    );
    assert_eq!(
        policy.decide(&tool(None, "banned", None)),
        Decision::Deny {
            rule: "tools.banned",
            reason: Cow::Borrowed("the policy denies this tool")
        }
    );
}

#[test]
fn a_tool_without_a_rule_is_unknown_under_default_deny() {
    let policy = policy();
    assert_eq!(
        policy.decide(&tool(None, "place_order", None)),
        Decision::UnknownTool
    );
    let no_name = Call {
        tool: None,
        ..tool(None, "", None)
    };
    assert_eq!(policy.decide(&no_name), Decision::UnknownTool);
}

#[test]
fn a_tool_without_a_rule_is_allowed_by_rule_default_under_default_allow() {
    let policy = policy();
    let decision = policy.decide(&tool(Some("admin"), "place_order", None));
    assert!(
        matches!(
            decision,
            Decision::Allow {
                rule: "default",
                ..
            }
        ),
        "{decision:?}"
    );
    assert_eq!(limit_rules(&decision), ["agents.admin.rate_limit"]);
}

#[test]
fn hidden_tools_are_unknown_even_when_denied_with_a_reason() {
    let policy = policy();
    assert_eq!(
        policy.decide(&tool(None, "secret", None)),
        Decision::UnknownTool
    );
    assert_eq!(
        policy.decide(&tool(None, "secret_denied", None)),
        Decision::UnknownTool
    );
    assert_eq!(
        policy.decide(&tool(Some("admin"), "secret", None)),
        Decision::UnknownTool
    );
}

#[test]
fn arguments_outside_the_schema_are_refused_with_what_failed() {
    let policy = policy();
    let deep = json!({"symbol": "BTCUSDT", "depth": 500});
    assert_eq!(
        policy.decide(&tool(None, "get_order_book", Some(&deep))),
        Decision::InvalidArguments {
            rule: "tools.get_order_book",
            reason: "/depth: 500 is greater than the maximum of 100".to_owned()
        }
    );
    let fine = json!({"symbol": "BTCUSDT", "depth": 100});
    let decision = policy.decide(&tool(None, "get_order_book", Some(&fine)));
    assert!(
        matches!(
            decision,
            Decision::Allow {
                rule: "tools.get_order_book",
                ..
            }
        ),
        "{decision:?}"
    );
    let not_an_object = json!([1, 2]);
    assert!(matches!(
        policy.decide(&tool(None, "get_order_book", Some(&not_an_object))),
        Decision::InvalidArguments { .. }
    ));
}

#[test]
fn missing_arguments_are_checked_as_an_empty_object() {
    let policy = policy();
    assert_eq!(
        policy.decide(&tool(None, "needs_symbol", None)),
        Decision::InvalidArguments {
            rule: "tools.needs_symbol",
            reason: r#""symbol" is a required property"#.to_owned()
        }
    );
    assert!(matches!(
        policy.decide(&tool(None, "get_order_book", None)),
        Decision::Allow { .. }
    ));
}

#[test]
fn several_argument_failures_are_joined() {
    let policy = CompiledPolicy::from_json_slice(
        br#"{"version":"1","default":"deny","tools":{"t":{"arguments":{
              "properties":{"a":{"type":"integer"},"b":{"maxLength":2}},"additionalProperties":false}}}}"#,
    )
    .unwrap();
    let arguments = json!({"a": "x", "b": "long", "c": 1});
    let Decision::InvalidArguments { reason, .. } =
        policy.decide(&tool(None, "t", Some(&arguments)))
    else {
        panic!("expected InvalidArguments");
    };
    assert!(
        reason.contains(r#"/a: "x" is not of type "integer""#),
        "{reason}"
    );
    assert!(
        reason.contains(r#"/b: "long" is longer than 2 characters"#),
        "{reason}"
    );
    assert!(reason.contains("'c' was unexpected"), "{reason}");
    assert_eq!(reason.matches("; ").count(), 2, "{reason}");
}

#[test]
fn a_huge_argument_does_not_make_a_huge_reason() {
    let policy = policy();
    let arguments = json!({"symbol": {"quoted back": "x".repeat(100_000)}});
    let Decision::InvalidArguments { reason, .. } =
        policy.decide(&tool(None, "stream", Some(&arguments)))
    else {
        panic!("expected InvalidArguments");
    };
    assert!(reason.len() < 1100, "{}", reason.len());
    assert!(reason.ends_with('…'));
}

#[test]
fn approval_carries_reason_timeout_via_and_limits() {
    let policy = policy();
    let decision = policy.decide(&tool(None, "stream", None));
    assert_eq!(limit_rules(&decision), ["rate_limit"]);
    let Decision::Approval {
        rule,
        reason,
        timeout,
        via,
        ..
    } = decision
    else {
        panic!("{decision:?}");
    };
    assert_eq!(rule, "tools.stream");
    assert_eq!(reason, "opens a long-lived upstream stream");
    assert_eq!(timeout, Duration::from_secs(60));
    assert_eq!(via, ApprovalVia::Elicitation);

    let Decision::Approval {
        reason,
        timeout,
        via,
        ..
    } = policy.decide(&tool(None, "stream_defaults", None))
    else {
        panic!("expected Approval");
    };
    assert_eq!(reason, "a person must approve this call");
    assert_eq!(timeout, Duration::from_secs(300));
    assert_eq!(via, ApprovalVia::Queue);
}

#[test]
fn arguments_are_checked_before_asking_a_person() {
    let policy = policy();
    let bad = json!({"symbol": 7});
    assert!(matches!(
        policy.decide(&tool(None, "stream", Some(&bad))),
        Decision::InvalidArguments {
            rule: "tools.stream",
            ..
        }
    ));
}

#[test]
fn tool_names_match_exactly() {
    let policy = policy();
    for name in [
        "Get_Price",
        "GET_PRICE",
        "get_price ",
        " get_price",
        "get\u{200b}price",
        "get_price\u{200b}",
        "\u{ff47}\u{ff45}\u{ff54}_price", // full-width ｇｅｔ
        "get-price",
        "get_price\0",
    ] {
        assert_eq!(
            policy.decide(&tool(None, name, None)),
            Decision::UnknownTool,
            "{name:?}"
        );
        assert!(!policy.tool_visible(None, name), "{name:?}");
    }
    // Under default allow the near-misses fall to the default, not to the get_price rule.
    let decision = policy.decide(&tool(Some("admin"), "Get_Price", None));
    assert!(
        matches!(
            decision,
            Decision::Allow {
                rule: "default",
                ..
            }
        ),
        "{decision:?}"
    );
}

/// Lifecycle requests are decided by `decide`, MCP's client notifications (sent without an
/// id) by `decide_notification`.
fn decide_lifecycle<'p>(policy: &'p CompiledPolicy, call: &Call<'_>) -> Decision<'p> {
    match call.method.starts_with("notifications/") {
        true => policy.decide_notification(call),
        false => policy.decide(call),
    }
}

#[test]
fn lifecycle_methods_always_pass_without_consulting_rules() {
    let policy = policy();
    for name in [
        "initialize",
        "ping",
        "tools/list",
        "notifications/initialized",
        "notifications/cancelled",
    ] {
        assert_eq!(
            decide_lifecycle(&policy, &method(None, name)),
            Decision::Lifecycle,
            "{name}"
        );
        assert_eq!(
            decide_lifecycle(&policy, &method(Some("research-bot"), name)),
            Decision::Lifecycle
        );
    }
    for name in [
        "Initialize",
        "PING",
        "tools/list ",
        "notification/x",
        "tools/List",
    ] {
        assert_ne!(
            policy.decide(&method(None, name)),
            Decision::Lifecycle,
            "{name}"
        );
    }
}

#[test]
fn a_request_named_like_a_notification_is_decided_by_the_rules() {
    let policy = policy();
    for name in [
        "notifications/initialized",
        "notifications/custom_exec",
        "notifications/../tools/call",
    ] {
        assert!(
            matches!(
                policy.decide(&method(None, name)),
                Decision::Deny {
                    rule: "default",
                    ..
                }
            ),
            "{name}"
        );
    }
}

#[test]
fn only_mcp_client_notifications_pass_without_a_rule() {
    let policy = CompiledPolicy::from_json_slice(
        br#"{"version": "1", "default": "deny", "methods": {
            "notifications/custom": {}, "notifications/blocked": { "action": "deny" } }}"#,
    )
    .unwrap();
    for name in [
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/progress",
        "notifications/roots/list_changed",
    ] {
        assert_eq!(
            policy.decide_notification(&method(None, name)),
            Decision::Lifecycle,
            "{name}"
        );
    }
    let custom = policy.decide_notification(&method(None, "notifications/custom"));
    assert!(matches!(
        custom,
        Decision::Allow {
            rule: "methods.notifications/custom",
            ..
        }
    ));
    for name in [
        "notifications/blocked",
        "notifications/tools/list_changed",
        "notifications/message",
        "notifications/Initialized",
    ] {
        assert!(
            matches!(
                policy.decide_notification(&method(None, name)),
                Decision::Deny { .. }
            ),
            "{name}"
        );
    }
    // A rule for a notification also decides a request of that name.
    let request = policy.decide(&method(None, "notifications/custom"));
    assert!(matches!(request, Decision::Allow { .. }));
}

#[test]
fn methods_follow_their_rules_and_the_default() {
    let policy = policy();
    let read = policy.decide(&method(None, "resources/read"));
    assert!(
        matches!(
            read,
            Decision::Allow {
                rule: "methods.resources/read",
                ..
            }
        ),
        "{read:?}"
    );
    assert_eq!(limit_rules(&read), ["methods.resources/read", "rate_limit"]);
    assert_eq!(
        policy.decide(&method(None, "prompts/get")),
        Decision::Deny {
            rule: "methods.prompts/get",
            reason: Cow::Borrowed("no prompts here")
        }
    );
    assert_eq!(
        policy.decide(&method(None, "completion/complete")),
        Decision::Deny {
            rule: "methods.completion/complete",
            reason: Cow::Borrowed("the policy denies this method")
        }
    );
    assert_eq!(
        policy.decide(&method(None, "resources/list")),
        Decision::Deny {
            rule: "default",
            reason: Cow::Borrowed("this method is not allowed by the policy")
        }
    );
    assert_eq!(
        policy.decide(&method(None, "Resources/Read")),
        Decision::Deny {
            rule: "default",
            reason: Cow::Borrowed("this method is not allowed by the policy")
        }
    );
    let listed = policy.decide(&method(Some("admin"), "resources/list"));
    assert!(
        matches!(
            listed,
            Decision::Allow {
                rule: "default",
                ..
            }
        ),
        "{listed:?}"
    );
}

#[test]
fn an_agents_entry_replaces_the_global_one_whole() {
    let policy = policy();
    let bot = Some("research-bot");
    let price = policy.decide(&tool(bot, "get_price", None));
    assert!(matches!(
        price,
        Decision::Allow {
            rule: "agents.research-bot.tools.get_price",
            ..
        }
    ));
    assert_eq!(
        limit_rules(&price),
        ["agents.research-bot.tools.get_price", "rate_limit"]
    );
    // The global deny on "heavy" does not apply to this agent: its own entry allows.
    let heavy = policy.decide(&tool(bot, "heavy", None));
    assert!(matches!(
        heavy,
        Decision::Allow {
            rule: "agents.research-bot.tools.heavy",
            ..
        }
    ));
    let prompts = policy.decide(&method(bot, "prompts/get"));
    assert!(matches!(
        prompts,
        Decision::Allow {
            rule: "agents.research-bot.methods.prompts/get",
            ..
        }
    ));
}

#[test]
fn an_agent_without_an_entry_falls_back_to_the_global_rules() {
    let policy = policy();
    let bot = Some("research-bot");
    assert!(matches!(
        policy.decide(&tool(bot, "limited", None)),
        Decision::Allow {
            rule: "tools.limited",
            ..
        }
    ));
    assert_eq!(
        policy.decide(&tool(bot, "place_order", None)),
        Decision::UnknownTool
    );
    // Agent names match exactly too, and an unknown agent gets the global rules.
    assert_eq!(
        policy.decide(&tool(Some("Research-Bot"), "heavy", None)),
        policy.decide(&tool(None, "heavy", None))
    );
}

#[test]
fn an_agents_default_and_rate_limit_replace_the_top_level_ones() {
    let policy = policy();
    let admin = Some("admin");
    let priced = policy.decide(&tool(admin, "limited", None));
    assert_eq!(
        limit_rules(&priced),
        ["tools.limited", "agents.admin.rate_limit"]
    );
    // A global deny still applies: only `default` changed for this agent.
    assert!(matches!(
        policy.decide(&tool(admin, "heavy", None)),
        Decision::Deny { .. }
    ));
}
