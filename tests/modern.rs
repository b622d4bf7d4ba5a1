//! MCP 2026-07-28 at the gateway's edge, bridged to the simulator (which speaks 2025-xx only):
//! the per-request envelope and routing headers, `server/discover`, results as 2026-07-28
//! clients read them. The official Python client pinned to 2026-07-28 is in `sdk_clients.rs`.

mod common;

use common::*;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

const MODERN: &str = "2026-07-28";

fn modern_headers(client: &Client, method: &str, name: Option<&str>) -> HeaderMap {
    let mut headers = client.headers();
    headers.insert("mcp-protocol-version", HeaderValue::from_static(MODERN));
    headers.insert("mcp-method", HeaderValue::from_str(method).unwrap());
    if let Some(name) = name {
        headers.insert("mcp-name", HeaderValue::from_str(name).unwrap());
    }
    headers
}

fn request(id: i64, method: &str, mut params: Value) -> String {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"}});
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

#[tokio::test]
async fn server_discover_is_answered_from_the_upstreams_initialize() {
    let harness = start(ALLOW_ALL).await;
    let client = harness.client();
    let answer = client
        .post_raw(
            modern_headers(&client, "server/discover", None),
            request(1, "server/discover", json!({})),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let result = &answer.body["result"];
    // Handshake-era only in front of a 2025-xx upstream (`exchange/bridge.rs` says why).
    assert_eq!(
        result["supportedVersions"],
        json!(["2025-03-26", "2025-06-18", "2025-11-25"])
    );
    assert_eq!(
        result["capabilities"]["tools"],
        json!({"listChanged": false})
    );
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "binance-mcp-simulator"
    );
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["ttlMs"], 0);
    assert_eq!(result["cacheScope"], "private");
    assert!(
        answer.headers.get(SESSION).is_none(),
        "no session is issued"
    );
}

#[tokio::test]
async fn results_carry_their_type_and_lists_their_caching() {
    let harness = start(ALLOW_ALL).await;
    let client = harness.client();
    let list = client
        .post_raw(
            modern_headers(&client, "tools/list", None),
            request(1, "tools/list", json!({})),
        )
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body["result"]["resultType"], "complete");
    assert_eq!(list.body["result"]["ttlMs"], 0);
    assert_eq!(list.body["result"]["cacheScope"], "private");
    assert!(list.body["result"]["tools"].as_array().unwrap().len() > 1);
    let call = client
        .post_raw(
            modern_headers(&client, "tools/call", Some("get_price")),
            request(
                2,
                "tools/call",
                json!({"name": "get_price", "arguments": {"symbol": "BTCUSDT"}}),
            ),
        )
        .await;
    let call = sse_or_json(&call);
    assert_eq!(call["id"], 2);
    assert_eq!(call["result"]["resultType"], "complete");
    assert_eq!(call["result"]["isError"], false);
    assert!(call["result"].get("ttlMs").is_none());
    assert_eq!(harness.simulator.tool_calls("get_price"), 1);
}

#[tokio::test]
async fn a_header_that_disagrees_with_the_body_is_refused_and_nothing_reaches_the_upstream() {
    let harness = start(ALLOW_ALL).await;
    let client = harness.client();
    let call = request(
        1,
        "tools/call",
        json!({"name": "get_price", "arguments": {"symbol": "BTCUSDT"}}),
    );
    let cases = [
        modern_headers(&client, "tools/call", Some("get_ticker")),
        modern_headers(&client, "tools/list", Some("get_price")),
        modern_headers(&client, "tools/call", None),
    ];
    for headers in cases {
        let answer = client.post_raw(headers, call.clone()).await;
        answer.assert_error(400, -32020, "does not match the request body");
        assert_eq!(answer.body["id"], 1);
    }
    let mut other_version = modern_headers(&client, "tools/call", Some("get_price"));
    other_version.insert(
        "mcp-protocol-version",
        HeaderValue::from_static("2025-06-18"),
    );
    other_version.insert(SESSION, HeaderValue::from_static("0123"));
    let answer = client.post_raw(other_version, call.clone()).await;
    assert_eq!(answer.status, 404, "a 2025-06-18 request needs its session");
    assert_eq!(harness.simulator.total_tool_calls(), 0);
    assert!(
        harness.simulator.received().is_empty(),
        "nothing reached the upstream: {:?}",
        harness.simulator.received()
    );
}

#[tokio::test]
async fn a_request_without_its_envelope_is_invalid_params() {
    let harness = start(ALLOW_ALL).await;
    let client = harness.client();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let answer = client
        .post_raw(
            modern_headers(&client, "tools/list", None),
            body.to_string(),
        )
        .await;
    answer.assert_error(400, -32602, "params._meta");
    assert!(harness.simulator.received().is_empty());
}

/// The one JSON-RPC answer in a JSON or SSE body.
fn sse_or_json(answer: &Answer) -> Value {
    if answer.body.is_object() {
        return answer.body.clone();
    }
    sse_messages(&answer.text)
        .into_iter()
        .find(|m| m.get("result").is_some() || m.get("error").is_some())
        .unwrap_or_else(|| panic!("no answer in {}", answer.text))
}
