//! MCP 2026-07-28 requests with access tokens: there is no session, so each request's token
//! gives the scopes its rules are judged by, bridged to the simulator (2025-xx) or passed
//! through to an upstream that speaks 2026-07-28.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

use crate::common::{upstream, Answer, Client};
use crate::world::World;

const MODERN: &str = "2026-07-28";

/// One 2026-07-28 request with `token`: its `_meta` envelope and its `Mcp-Method` /
/// `Mcp-Name` headers.
async fn modern_request(world: &World, token: &str, method: &str, params: Value) -> Answer {
    let client = Client::new(&world.harness.url).with_key(token).json_only();
    let mut headers: HeaderMap = client.headers();
    headers.insert("mcp-protocol-version", HeaderValue::from_static(MODERN));
    headers.insert("mcp-method", HeaderValue::from_str(method).unwrap());
    if let Some(name) = params["name"].as_str() {
        headers.insert("mcp-name", HeaderValue::from_str(name).unwrap());
    }
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"}});
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    client.post_raw(headers, body.to_string()).await
}

async fn order_book(world: &World, token: &str) -> Answer {
    let params = json!({"name": "get_order_book", "arguments": {"symbol": "BTCUSDT"}});
    modern_request(world, token, "tools/call", params).await
}

async fn listed(world: &World, token: &str) -> Vec<String> {
    let answer = modern_request(world, token, "tools/list", json!({})).await;
    let tools = answer.body["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("tools/list answered {}", answer.text));
    let mut names: Vec<String> = tools
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[track_caller]
fn assert_lacks_orders(answer: &Answer) {
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(answer.is_tool_error(), "{}", answer.text);
    assert!(
        answer.message().contains("lacks the scope orders"),
        "{}",
        answer.text
    );
}

/// Bridged to a 2025-xx upstream, where the gateway keeps an upstream session per caller: a
/// wider and a narrower token of one agent, taking turns, are each judged by their own scopes.
#[tokio::test]
async fn a_bridged_request_is_judged_by_its_own_tokens_scopes() {
    let world = World::start().await;
    let wide = world.token_for("research-bot", "mcp orders");
    let narrow = world.token_for("research-bot", "mcp");

    let answer = order_book(&world, &wide).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(!answer.is_tool_error(), "{}", answer.text);
    assert_eq!(answer.body["result"]["resultType"], "complete");
    assert_eq!(world.simulator.tool_calls("get_order_book"), 1);

    // Right after the wider token was let through: the narrower is not.
    assert_lacks_orders(&order_book(&world, &narrow).await);
    assert_eq!(world.simulator.tool_calls("get_order_book"), 1);
    assert_eq!(listed(&world, &narrow).await, ["get_price"]);

    // And the narrower's refusal did not stick to the wider.
    assert_eq!(listed(&world, &wide).await, ["get_order_book", "get_price"]);
    let answer = order_book(&world, &wide).await;
    assert!(!answer.is_tool_error(), "{}", answer.text);
    assert_eq!(world.simulator.tool_calls("get_order_book"), 2);
}

/// What a fake 2026-07-28 upstream received: each request's method and tool name.
type Received = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// An upstream that speaks only 2026-07-28: `server/discover` names it, initialize is refused,
/// `tools/list` lists both tools, `tools/call` answers with the name it was called with.
async fn modern_upstream() -> (String, Received) {
    let received = Received::default();
    let seen = received.clone();
    let url = upstream::FakeUpstream::start(move |message| {
        let method = message["method"].as_str().unwrap_or_default().to_owned();
        let name = message["params"]["name"].as_str().map(str::to_owned);
        seen.lock().unwrap().push((method.clone(), name));
        async move {
            let result = match method.as_str() {
                "server/discover" => json!({"supportedVersions": [MODERN],
                    "capabilities": {"tools": {}}, "resultType": "complete"}),
                "tools/list" => json!({"tools": [
                    {"name": "get_price", "inputSchema": {"type": "object"}},
                    {"name": "get_order_book", "inputSchema": {"type": "object"}}],
                    "resultType": "complete"}),
                "tools/call" => json!({"content": [{"type": "text",
                    "text": message["params"]["name"]}], "isError": false, "resultType": "complete"}),
                "initialize" => {
                    let refusal = json!({"jsonrpc": "2.0", "id": message["id"], "error": {
                        "code": -32022, "message": "Unsupported protocol version",
                        "data": {"supported": [MODERN]}}});
                    return Some((StatusCode::BAD_REQUEST, axum::Json(refusal)).into_response());
                }
                _ => return None,
            };
            Some(upstream::result(&message, result))
        }
    })
    .await;
    (url, received)
}

/// Passed through to a 2026-07-28 upstream: the token without the scope is refused with
/// nothing forwarded, and tools/list hides the tool from it; the token with it calls through.
#[tokio::test]
async fn a_request_passed_through_is_judged_by_its_tokens_scopes() {
    let (url, received) = modern_upstream().await;
    let world = World::start_with_upstream(url).await;
    let wide = world.token_for("research-bot", "mcp orders");
    let narrow = world.token_for("research-bot", "mcp");
    let calls = || {
        received
            .lock()
            .unwrap()
            .iter()
            .filter(|(method, name)| {
                method == "tools/call" && name.as_deref() == Some("get_order_book")
            })
            .count()
    };

    assert_lacks_orders(&order_book(&world, &narrow).await);
    assert_eq!(calls(), 0, "a refused call reached the upstream");
    assert_eq!(listed(&world, &narrow).await, ["get_price"]);

    let answer = order_book(&world, &wide).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(!answer.is_tool_error(), "{}", answer.text);
    assert_eq!(
        answer.body["result"]["content"][0]["text"],
        "get_order_book"
    );
    assert_eq!(calls(), 1);
    assert_eq!(listed(&world, &wide).await, ["get_order_book", "get_price"]);

    assert_lacks_orders(&order_book(&world, &narrow).await);
    assert_eq!(calls(), 1);
}
