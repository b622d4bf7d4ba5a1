//! A notification is what JSON-RPC says it is (a message without an `id`), not a method name's
//! prefix; and only MCP's own client notifications pass without a rule.

mod common;

use std::sync::{Arc, Mutex};

use common::upstream::FakeUpstream;
use common::*;
use serde_json::json;

/// An upstream that keeps the method of every message it gets.
async fn method_recording_upstream() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    let url = FakeUpstream::start(move |message| {
        let method = message["method"].as_str().unwrap_or("response").to_owned();
        kept.lock().unwrap().push(method);
        async { None }
    })
    .await;
    (url, seen)
}

async fn gateway(policy: &str) -> (Harness, Arc<Mutex<Vec<String>>>) {
    let (url, seen) = method_recording_upstream().await;
    let harness = start_with(Setup {
        policy: policy.into(),
        upstream: Some(url),
        ..Setup::default()
    })
    .await;
    (harness, seen)
}

const DEFAULT_DENY: &str = r#"{"version": "1", "default": "deny", "tools": {"get_price": {}}}"#;

#[tokio::test]
async fn a_notification_name_with_an_id_is_a_request_and_default_deny_refuses_it() {
    let (harness, seen) = gateway(DEFAULT_DENY).await;
    let client = harness.client().initialized().await;
    for method in [
        "notifications/custom_exec",
        "notifications/../tools/call",
        "notifications/initialized",
    ] {
        let answer = client
            .post(&json!({"jsonrpc": "2.0", "id": 136, "method": method,
                "params": {"name": "withdraw_funds", "arguments": {}}}))
            .await;
        answer.assert_error(200, -32003, "not allowed by the policy");
    }
    let seen = seen.lock().unwrap();
    assert_eq!(*seen, ["initialize", "notifications/initialized"]);
}

#[tokio::test]
async fn only_mcp_client_notifications_pass_unless_the_policy_allows_others() {
    let policy = r#"{"version": "1", "default": "deny", "tools": {},
        "methods": {"notifications/custom": {}}}"#;
    let (harness, seen) = gateway(policy).await;
    let client = harness.client().initialized().await;
    for (method, status) in [
        ("notifications/cancelled", 202),
        ("notifications/progress", 202),
        ("notifications/roots/list_changed", 202),
        ("notifications/custom", 202),
        ("notifications/custom_exec", 403),
        ("notifications/tools/list_changed", 403),
        ("notifications/../tools/call", 403),
    ] {
        let answer = client
            .post(&json!({"jsonrpc": "2.0", "method": method, "params": {}}))
            .await;
        assert_eq!(answer.status, status, "{method}: {}", answer.text);
        if status == 403 {
            answer.assert_error(403, -32003, "not allowed by the policy");
        }
    }
    let seen = seen.lock().unwrap();
    assert_eq!(
        *seen,
        [
            "initialize",
            "notifications/initialized",
            "notifications/cancelled",
            "notifications/progress",
            "notifications/roots/list_changed",
            "notifications/custom",
        ]
    );
}
