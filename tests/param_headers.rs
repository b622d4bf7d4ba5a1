//! `Mcp-Param-*` headers (MCP 2026-07-28): a 2026-07-28 client's are checked against its
//! arguments with the tool's `x-mcp-header` annotations, and a 2026-07-28 upstream gets the
//! gateway's own, written from the arguments it forwards. The official SDKs on both sides are
//! in `sdk_clients.rs`; here a fake upstream shows what reached it.

mod common;

use common::modern::*;
use common::*;
use reqwest::header::HeaderValue;
use serde_json::{json, Value};

/// `get_price`, whose `symbol` is mirrored in `Mcp-Param-Symbol`.
fn annotated_price() -> Value {
    json!([{"name": "get_price", "inputSchema": {"type": "object", "properties": {
        "symbol": {"type": "string", "x-mcp-header": "Symbol"}}}}])
}

/// A `tools/call` of `get_price` with these arguments and, when given, this `Mcp-Param-Symbol`.
async fn call(client: &Client, arguments: Value, symbol_header: Option<&str>) -> Answer {
    let mut headers = modern_headers(client, "tools/call", Some("get_price"));
    if let Some(value) = symbol_header {
        headers.insert("mcp-param-symbol", HeaderValue::from_str(value).unwrap());
    }
    let body = request(
        1,
        "tools/call",
        json!({"name": "get_price", "arguments": arguments}),
    );
    client.post_raw(headers, body).await
}

/// Before any list passed through, the gateway lists the upstream's tools itself to learn the
/// annotation; headers agreeing with the body pass, and the upstream gets the gateway's own
/// (base64 where the value would not survive as header text). Every disagreement is refused
/// with -32020 and reaches nothing.
#[tokio::test]
async fn param_headers_are_checked_against_the_arguments_and_written_from_them() {
    let (url, received) = modern_upstream(annotated_price()).await;
    let harness = start_before(url).await;
    let client = harness.client();

    let agreeing = call(&client, json!({"symbol": "BTCUSDT"}), Some("BTCUSDT")).await;
    assert_eq!(
        sse_or_json(&agreeing)["result"]["isError"],
        false,
        "{}",
        agreeing.text
    );
    let methods: Vec<Value> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, m)| m["method"].clone())
        .collect();
    assert_eq!(
        methods,
        ["server/discover", "tools/list", "tools/call"],
        "the gateway learnt the tool's annotations by listing"
    );
    let before = received.lock().unwrap().len();
    for (arguments, header, why) in [
        (
            json!({"symbol": "BTCUSDT"}),
            Some("ETHUSDT"),
            "does not match",
        ),
        (json!({"symbol": "BTCUSDT"}), None, "is missing"),
        (json!({}), Some("BTCUSDT"), "is absent"),
        (json!({"symbol": null}), Some("BTCUSDT"), "is absent"),
        (
            json!({"symbol": "BTCUSDT"}),
            Some("=?base64?QlRDVVNEVA?="),
            "does not match",
        ),
    ] {
        let refused = call(&client, arguments.clone(), header).await;
        refused.assert_error(400, -32020, why);
        assert!(
            refused.text.contains("mcp-param-symbol"),
            "{arguments} {header:?}: {}",
            refused.text
        );
    }
    assert_eq!(
        received.lock().unwrap().len(),
        before,
        "nothing more reached the upstream"
    );

    // The same value in the base64 form the client may choose; the gateway writes its own.
    let encoded = call(
        &client,
        json!({"symbol": "BTC€"}),
        Some("=?base64?QlRD4oKs?="),
    )
    .await;
    assert_eq!(
        sse_or_json(&encoded)["result"]["isError"],
        false,
        "{}",
        encoded.text
    );
    let absent = call(&client, json!({}), None).await;
    assert_eq!(
        sse_or_json(&absent)["result"]["isError"],
        false,
        "{}",
        absent.text
    );

    let received = received.lock().unwrap().clone();
    let sent: Vec<Option<&str>> = received
        .iter()
        .filter(|(_, m)| m["method"] == "tools/call")
        .map(|(headers, _)| {
            let mut params = headers
                .iter()
                .filter(|(name, _)| name.as_str().starts_with("mcp-param-"));
            let first = params.next().map(|(_, value)| value.to_str().unwrap());
            assert!(params.next().is_none(), "{headers:?}");
            first
        })
        .collect();
    assert_eq!(
        sent,
        [Some("BTCUSDT"), Some("=?base64?QlRD4oKs?="), None],
        "one header per argument present, as the gateway writes it"
    );
    assert_eq!(
        received
            .iter()
            .filter(|(_, m)| m["method"] == "tools/list")
            .count(),
        1,
        "learnt once"
    );
}

/// A tool the caller may not see is refused by the policy whatever its headers say: no
/// listing is made to check them, and nothing reaches the upstream.
#[tokio::test]
async fn a_call_the_policy_refuses_is_not_checked_and_lists_nothing() {
    let (url, received) = modern_upstream(annotated_price()).await;
    let harness = start_with(Setup {
        upstream: Some(url),
        policy: r#"{"version": "1", "default": "deny", "tools": {
            "get_price": {"action": "deny", "reason": "not today"}}}"#
            .into(),
        ..Setup::default()
    })
    .await;
    let client = harness.client();
    let refused = call(&client, json!({"symbol": "BTCUSDT"}), Some("ETHUSDT")).await;
    assert_eq!(
        sse_or_json(&refused)["result"]["isError"],
        true,
        "{}",
        refused.text
    );
    assert!(refused.text.contains("not today"), "{}", refused.text);
    let methods: Vec<Value> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, m)| m["method"].clone())
        .collect();
    assert_eq!(methods, ["server/discover"]);
}
