//! The policy through the gateway: what is allowed reaches the upstream, nothing else does.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use binance_sim::SimulatorOptions;
use common::upstream::{self, FakeUpstream};
use common::*;
use serde_json::{json, Value};

const POLICY: &str = r#"{
  "version": "1",
  "default": "deny",
  "tools": {
    "get_price": {},
    "get_all_24hr_tickers": { "rate_limit": { "max": 2, "window": 60 } },
    "get_order_book": { "arguments": { "type": "object", "properties": { "depth": { "maximum": 100 } } } },
    "get_all_trading_day_tickers": { "action": "deny", "reason": "too heavy; ask for one symbol" },
    "get_server_time": { "hide": true },
    "cleanup_all_streams": {}
  },
  "methods": { "resources/list": { "action": "deny", "reason": "no resources here" } }
}"#;

/// The tools POLICY lets an agent see, sorted.
const SHOWN: [&str; 4] = [
    "cleanup_all_streams",
    "get_all_24hr_tickers",
    "get_order_book",
    "get_price",
];

#[tokio::test]
async fn allowed_calls_reach_the_upstream() {
    let harness = start(POLICY).await;
    let mut client = harness.client().initialized().await;
    let answer = client
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    assert!(!answer.is_tool_error(), "{}", answer.text);
    assert_eq!(harness.simulator.tool_calls("get_price"), 1);
}

#[tokio::test]
async fn a_denied_call_is_an_error_result_with_the_reason_and_never_reaches_the_upstream() {
    let harness = start(POLICY).await;
    let mut client = harness.client().initialized().await;
    let answer = client
        .call_tool("get_all_trading_day_tickers", json!({}))
        .await;
    assert_eq!(answer.status, 200);
    assert!(answer.is_tool_error());
    assert_eq!(
        answer.message(),
        "Denied by gateway policy (tools.get_all_trading_day_tickers): too heavy; ask for one symbol"
    );
    assert_eq!(answer.body["id"], 1, "the answer carries the request's id");
    assert_eq!(
        harness.simulator.tool_calls("get_all_trading_day_tickers"),
        0
    );
}

#[tokio::test]
async fn a_tool_without_a_rule_is_unknown_under_default_deny() {
    let harness = start(POLICY).await;
    let mut client = harness.client().initialized().await;
    let answer = client.call_tool("get_exchange_info", json!({})).await;
    assert_eq!(answer.body["error"]["code"], -32602);
    assert_eq!(answer.message(), "Unknown tool: get_exchange_info");
    assert_eq!(harness.simulator.tool_calls("get_exchange_info"), 0);
}

#[tokio::test]
async fn names_match_exactly_so_variants_fall_to_the_default() {
    let harness = start(POLICY).await;
    let mut client = harness.client().initialized().await;
    for variant in [
        "Get_Price",
        "get_price ",
        "get\u{200b}_price",
        "ｇｅｔ_price",
        "GET_PRICE",
    ] {
        let answer = client
            .call_tool(variant, json!({"symbol": "BTCUSDT"}))
            .await;
        assert_eq!(
            answer.body["error"]["code"], -32602,
            "{variant:?}: {}",
            answer.text
        );
    }
    let forwarded: Vec<Value> = harness
        .simulator
        .received()
        .into_iter()
        .filter(|m| m["method"] == "tools/call")
        .collect();
    assert!(
        forwarded.is_empty(),
        "nothing reached the upstream: {forwarded:?}"
    );
}

#[tokio::test]
async fn a_denied_method_is_a_json_rpc_error_with_the_reason() {
    let harness = start(POLICY).await;
    let mut client = harness.client().initialized().await;
    let answer = client.request("resources/list", json!({})).await;
    assert_eq!(answer.body["error"]["code"], -32003);
    assert!(
        answer.message().contains("no resources here"),
        "{}",
        answer.text
    );
    let prompts = client.request("prompts/list", json!({})).await;
    assert_eq!(
        prompts.body["error"]["code"], -32003,
        "methods without a rule take the default: {}",
        prompts.text
    );
}

#[tokio::test]
async fn arguments_that_miss_the_rule_schema_are_denied_naming_what_failed() {
    let harness = start(POLICY).await;
    let mut client = harness.client().initialized().await;
    let ok = client
        .call_tool("get_order_book", json!({"symbol": "BTCUSDT", "depth": 50}))
        .await;
    assert!(!ok.is_tool_error(), "{}", ok.text);
    let refused = client
        .call_tool("get_order_book", json!({"symbol": "BTCUSDT", "depth": 500}))
        .await;
    assert!(refused.is_tool_error());
    let message = refused.message();
    assert!(
        message.starts_with("Denied by gateway policy (tools.get_order_book)"),
        "{message}"
    );
    assert!(
        message.contains("depth") && message.contains("100"),
        "{message}"
    );
    assert_eq!(harness.simulator.tool_calls("get_order_book"), 1);
}

#[tokio::test]
async fn tools_list_shows_only_what_the_agent_may_call() {
    let harness = start(POLICY).await;
    let mut client = harness.client().initialized().await;
    let mut names = client.tool_names().await;
    names.sort();
    assert_eq!(names, SHOWN);
    let hidden = client.call_tool("get_server_time", json!({})).await;
    assert_eq!(hidden.message(), "Unknown tool: get_server_time");
}

#[tokio::test]
async fn every_page_of_tools_list_is_filtered() {
    let harness = start_with(Setup {
        policy: POLICY.into(),
        simulator: SimulatorOptions {
            page_size: Some(4),
            record: true,
            ..SimulatorOptions::default()
        },
        ..Setup::default()
    })
    .await;
    let mut client = harness.client().initialized().await;
    // The simulator pages by 4; `tool_names` follows `nextCursor` to the last page.
    let mut seen = client.tool_names().await;
    seen.sort();
    assert_eq!(seen, SHOWN);
}

#[tokio::test]
async fn a_rate_limit_passes_max_calls_and_refuses_the_next_naming_the_retry() {
    let harness = start(POLICY).await;
    let mut client = harness.client().initialized().await;
    for _ in 0..2 {
        let ok = client.call_tool("get_all_24hr_tickers", json!({})).await;
        assert!(!ok.is_tool_error(), "{}", ok.text);
    }
    let limited = client.call_tool("get_all_24hr_tickers", json!({})).await;
    assert!(limited.is_tool_error());
    let message = limited.message();
    assert!(
        message.starts_with("Rate limited by gateway policy (tools.get_all_24hr_tickers)"),
        "{message}"
    );
    assert!(
        message.contains("at most 2 calls per 60 s") && message.contains("retry in"),
        "{message}"
    );
    assert_eq!(harness.simulator.tool_calls("get_all_24hr_tickers"), 2);
}

#[tokio::test]
async fn an_anonymous_agent_cannot_reset_its_rate_limit_by_initializing_again() {
    let harness = start(POLICY).await;
    let mut first = harness.client().initialized().await;
    for _ in 0..2 {
        let ok = first.call_tool("get_all_24hr_tickers", json!({})).await;
        assert!(!ok.is_tool_error(), "{}", ok.text);
    }
    let mut again = harness.client().initialized().await;
    let limited = again.call_tool("get_all_24hr_tickers", json!({})).await;
    assert!(
        limited
            .message()
            .starts_with("Rate limited by gateway policy"),
        "anonymous callers share one counter: {}",
        limited.text
    );
    assert_eq!(harness.simulator.tool_calls("get_all_24hr_tickers"), 2);
}

/// An upstream that fails tools/call with 503 while `failing` is set.
async fn flaky_upstream(failing: Arc<AtomicBool>) -> String {
    FakeUpstream::start(move |message| {
        let failing = failing.clone();
        async move {
            match message["method"].as_str()? {
                "tools/call" if failing.load(Ordering::SeqCst) => Some(upstream::status(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                )),
                "tools/call" => Some(upstream::result(
                    &message,
                    json!({"content": [{"type": "text", "text": "ok"}]}),
                )),
                _ => None,
            }
        }
    })
    .await
}

#[tokio::test]
async fn quota_is_given_back_when_the_upstream_fails() {
    let failing = Arc::new(AtomicBool::new(true));
    let harness = start_with(Setup {
        policy: r#"{"version": "1", "default": "deny", "tools": {"act": {"rate_limit": {"max": 1, "window": 3600}}}}"#.into(),
        upstream: Some(flaky_upstream(failing.clone()).await),
        ..Setup::default()
    })
    .await;
    let mut client = harness.client().initialized().await;
    let failed = client.call_tool("act", json!({})).await;
    failed.assert_error(502, -32000, "upstream answered HTTP 503");
    failing.store(false, Ordering::SeqCst);
    let ok = client.call_tool("act", json!({})).await;
    assert_eq!(
        ok.message(),
        "ok",
        "the failed call's unit was given back: {}",
        ok.text
    );
    let limited = client.call_tool("act", json!({})).await;
    assert!(
        limited.message().starts_with("Rate limited"),
        "{}",
        limited.text
    );
}

#[tokio::test]
async fn a_valid_policy_edit_applies_at_once_and_an_invalid_one_changes_nothing() {
    let harness = start(POLICY).await;
    let mut client = harness.client().initialized().await;

    let denying = POLICY.replace(
        r#""get_price": {}"#,
        r#""get_price": {"action": "deny", "reason": "closed for today"}"#,
    );
    let status = harness.rewrite_policy(&denying).await;
    assert_eq!(status.applied, 1);
    let denied = client
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    assert_eq!(
        denied.message(),
        "Denied by gateway policy (tools.get_price): closed for today"
    );

    let status = harness
        .rewrite_policy(r#"{"version": "1", "default": "allow", "tools": {"x": {"max": 0}}}"#)
        .await;
    assert_eq!(status.rejected, 1);
    assert!(
        status.last_error.unwrap().contains("/tools/x"),
        "the error names where"
    );
    let still = client
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    assert_eq!(
        still.message(),
        "Denied by gateway policy (tools.get_price): closed for today"
    );
    let unknown = client.call_tool("get_exchange_info", json!({})).await;
    assert_eq!(
        unknown.body["error"]["code"], -32602,
        "default deny still holds"
    );
    assert_eq!(harness.simulator.tool_calls("get_price"), 0);
}

#[tokio::test]
async fn every_decision_is_audited_with_arguments_redacted() {
    let harness = start_with(Setup {
        policy: POLICY.into(),
        audit: true,
        ..Setup::default()
    })
    .await;
    let mut client = harness.client().initialized().await;
    client
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    client
        .call_tool("get_all_trading_day_tickers", json!({}))
        .await;
    client.call_tool("nope", json!({})).await;
    let calls: Vec<Value> = harness
        .audit_lines()
        .into_iter()
        .filter(|l| l["method"] == "tools/call")
        .collect();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[0]["decision"], "allow");
    assert_eq!(calls[0]["rule"], "tools.get_price");
    assert_eq!(calls[0]["upstream_status"], 200);
    assert!(calls[0]["latency_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(calls[0]["session"], client.session.clone().unwrap());
    assert_eq!(calls[1]["decision"], "deny");
    assert_eq!(calls[1]["reason"], "too heavy; ask for one symbol");
    assert_eq!(calls[2]["decision"], "unknown_tool");
    assert!(
        calls.iter().all(|c| c["arguments"].is_null()),
        "arguments are redacted by default"
    );
}

#[tokio::test]
async fn audit_arguments_are_recorded_when_asked() {
    let harness = start_with(Setup {
        policy: POLICY.into(),
        audit: true,
        audit_arguments: true,
        ..Setup::default()
    })
    .await;
    let mut client = harness.client().initialized().await;
    client
        .call_tool("get_price", json!({"symbol": "ETHUSDT"}))
        .await;
    let line = harness
        .audit_lines()
        .into_iter()
        .find(|l| l["method"] == "tools/call")
        .unwrap();
    assert_eq!(line["arguments"]["symbol"], "ETHUSDT");
}

/// An upstream that streams its tools/list answer under another id (a string for a number).
async fn mislabelling_upstream() -> String {
    FakeUpstream::start(|message| async move {
        (message["method"] == "tools/list").then(|| {
            upstream::sse(&[
                json!({"jsonrpc": "2.0", "id": message["id"].to_string(), "result": {"tools": [
                {"name": "get_price", "inputSchema": {"type": "object"}},
                {"name": "withdraw_funds", "inputSchema": {"type": "object"}}]}}),
            ])
        })
    })
    .await
}

/// An answer under another id is not relayed at all (it was filtered and relayed before issue
/// 11): a client would take it for the answer to whatever it asked under that id.
#[tokio::test]
async fn a_streamed_tools_list_under_another_id_is_not_relayed() {
    let harness = start_with(Setup {
        policy: POLICY.into(),
        upstream: Some(mislabelling_upstream().await),
        ..Setup::default()
    })
    .await;
    let mut client = harness.client().initialized().await;
    let answer = client.request("tools/list", json!({})).await;
    assert!(!answer.text.contains("withdraw_funds"), "{}", answer.text);
    assert_eq!(answer.body["error"]["code"], -32000, "{}", answer.text);
    assert!(
        answer.message().contains("other than the one sent"),
        "{}",
        answer.text
    );
}
