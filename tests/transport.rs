//! The streamable HTTP transport through the gateway: statuses, sessions, JSON and SSE answers.

mod common;

use std::time::Duration;

use binance_sim::SimulatorOptions;
use common::*;
use mcpgate::config::Limits;
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE, ORIGIN};
use serde_json::json;

#[tokio::test]
async fn a_whole_session_initialize_list_call_end() {
    let harness = start(ALLOW_ALL).await;
    let mut client = harness.client();
    let init = client.initialize().await;
    assert_eq!(
        init["result"]["serverInfo"]["name"],
        "binance-mcp-simulator"
    );
    assert_eq!(client.tool_names().await.len(), 29);
    let price = client
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    assert_eq!(price.status, 200);
    assert!(!price.is_tool_error(), "{}", price.text);
    let quoted: f64 = price
        .message()
        .parse()
        .unwrap_or_else(|_| panic!("a price: {}", price.text));
    assert!(quoted > 0.0);

    let session = client.session.clone().unwrap();
    let ended = client
        .http
        .delete(&harness.url)
        .header(SESSION, &session)
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success());
    let after = client
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    // An ended session is unknown.
    after.assert_error(404, -32001, "session not found");
    assert_eq!(
        harness.simulator.session_count(),
        0,
        "the upstream session was ended too"
    );
}

#[tokio::test]
async fn the_gateway_issues_its_own_session_ids() {
    let harness = start(ALLOW_ALL).await;
    let client = harness.client().initialized().await;
    let ours = client.session.clone().unwrap();
    // A sealed token (nonce, then the encrypted session), base64url: longer than the 32 hex
    // characters ids were before sessions were sealed.
    assert!(ours.len() > 100, "{ours}");
    let upstream_ids: Vec<String> = harness
        .gateway
        .sessions
        .all()
        .iter()
        .filter_map(|s| {
            s.upstream_id
                .as_ref()
                .map(|v| v.to_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(upstream_ids.len(), 1);
    assert_ne!(upstream_ids[0], ours);
}

#[tokio::test]
async fn a_request_without_a_session_is_400_and_an_unknown_session_404() {
    let harness = start(ALLOW_ALL).await;
    let mut client = harness.client();
    let missing = client.request("tools/list", json!({})).await;
    missing.assert_error(400, -32600, "send initialize first");

    client.session = Some("0123456789abcdef0123456789abcdef".into());
    let unknown = client.request("tools/list", json!({})).await;
    unknown.assert_error(404, -32001, "session not found");
    assert_eq!(harness.simulator.tool_calls("get_price"), 0);
}

#[tokio::test]
async fn notifications_and_responses_get_202() {
    let harness = start(ALLOW_ALL).await;
    let client = harness.client().initialized().await;
    let note = client
        .post(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 9}}))
        .await;
    assert_eq!(note.status, 202);
    let response = client
        .post(&json!({"jsonrpc": "2.0", "id": "s-1", "result": {}}))
        .await;
    assert_eq!(response.status, 202);
}

#[tokio::test]
async fn malformed_json_is_a_400_parse_error_and_non_json_rpc_a_400_invalid_request() {
    let harness = start(ALLOW_ALL).await;
    let client = harness.client().initialized().await;
    let broken = client
        .post_raw(client.headers(), "{\"jsonrpc\": \"2.0\", ")
        .await;
    broken.assert_error(400, -32700, "parse error");
    assert_eq!(broken.body["id"], serde_json::Value::Null);

    let not_rpc = client
        .post_raw(client.headers(), r#"{"hello": "world"}"#)
        .await;
    not_rpc.assert_error(400, -32600, "invalid request");
}

#[tokio::test]
async fn wrong_content_type_is_415_and_unacceptable_accept_406() {
    let harness = start(ALLOW_ALL).await;
    let client = harness.client();
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}).to_string();

    let mut headers = client.headers();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    let answer = client.post_raw(headers, init.clone()).await;
    answer.assert_error(415, -32600, "Content-Type must be application/json");

    let mut headers = client.headers();
    headers.insert(ACCEPT, HeaderValue::from_static("text/html"));
    let answer = client.post_raw(headers, init).await;
    answer.assert_error(406, -32600, "Accept must allow");
    assert_eq!(
        harness.simulator.session_count(),
        0,
        "refused before reaching the upstream"
    );
}

#[tokio::test]
async fn a_foreign_origin_is_403_and_loopback_or_listed_origins_pass() {
    let harness = start_with(Setup {
        allowed_origins: vec!["https://app.example".into()],
        ..Setup::default()
    })
    .await;
    let client = harness.client().initialized().await;
    let list = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}).to_string();
    for (origin, status) in [
        ("http://evil.example", 403),
        ("http://localhost.evil.example", 403),
        ("http://localhost:3000", 200),
        ("https://app.example", 200),
    ] {
        let mut headers = client.headers();
        headers.insert(ORIGIN, HeaderValue::from_static(origin));
        let answer = client.post_raw(headers, list.clone()).await;
        assert_eq!(answer.status, status, "{origin}: {}", answer.text);
        if status == 403 {
            answer.assert_error(403, -32600, "--allowed-origin");
        }
    }
}

#[tokio::test]
async fn get_is_405_when_the_upstream_offers_no_stream() {
    let harness = start(ALLOW_ALL).await;
    let client = harness.client().initialized().await;
    let response = client
        .http
        .get(&harness.url)
        .header(ACCEPT, "text/event-stream")
        .header(SESSION, client.session.as_ref().unwrap())
        .send()
        .await
        .unwrap();
    let answer = Answer::read(response).await;
    answer.assert_error(405, -32600, "no server-to-client stream for GET");
    assert_eq!(answer.headers["allow"], "POST, DELETE");
}

#[tokio::test]
async fn an_unsupported_protocol_version_is_400_naming_the_supported_ones() {
    let harness = start(ALLOW_ALL).await;
    let client = harness.client();
    let mut headers = client.headers();
    headers.insert(
        "mcp-protocol-version",
        HeaderValue::from_static("1999-01-01"),
    );
    let answer = client
        .post_raw(
            headers,
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string(),
        )
        .await;
    answer.assert_error(
        400,
        -32022,
        "unsupported MCP-Protocol-Version \"1999-01-01\"",
    );
    assert_eq!(
        answer.body["error"]["data"]["supported"],
        json!(["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"])
    );
}

#[tokio::test]
async fn a_server_discover_probe_at_an_unknown_version_is_told_the_spoken_ones() {
    let harness = start(ALLOW_ALL).await;
    let client = harness.client();
    let mut headers = client.headers();
    headers.insert(
        "mcp-protocol-version",
        HeaderValue::from_static("2027-01-01"),
    );
    let probe = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2027-01-01",
        "io.modelcontextprotocol/clientCapabilities": {}}}});
    let answer = client.post_raw(headers, probe.to_string()).await;
    answer.assert_error(
        400,
        -32022,
        "unsupported MCP-Protocol-Version \"2027-01-01\"",
    );
    assert_eq!(answer.body["id"], 1);
    assert_eq!(answer.body["error"]["data"]["requested"], "2027-01-01");
    assert_eq!(
        answer.body["error"]["data"]["supported"],
        json!(["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"])
    );
}

#[tokio::test]
async fn a_json_only_client_gets_a_streamed_answer_as_one_json_body() {
    let harness = start_with(Setup {
        simulator: SimulatorOptions {
            always_sse: true,
            progress_step: Duration::from_millis(1),
            ..SimulatorOptions::default()
        },
        ..Setup::default()
    })
    .await;
    let mut client = harness.client().json_only().initialized().await;
    let answer = client
        .request(
            "tools/call",
            json!({"name": "get_exchange_info", "arguments": {}, "_meta": {"progressToken": "p1"}}),
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers[CONTENT_TYPE], "application/json");
    assert!(!answer.is_tool_error(), "{}", answer.text);
    assert!(answer.message().contains("symbols"), "{}", answer.text);
}

#[tokio::test]
async fn progress_notifications_are_relayed_before_the_answer() {
    let harness = start_with(Setup {
        simulator: SimulatorOptions {
            progress_step: Duration::from_millis(1),
            ..SimulatorOptions::default()
        },
        ..Setup::default()
    })
    .await;
    let mut client = harness.client().initialized().await;
    let answer = client
        .request("tools/call", json!({"name": "get_all_24hr_tickers", "arguments": {}, "_meta": {"progressToken": "p1"}}))
        .await;
    assert!(answer.headers[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let messages = sse_messages(&answer.text);
    let (answer_message, progress) = messages.split_last().unwrap();
    assert!(!progress.is_empty(), "{}", answer.text);
    assert!(progress
        .iter()
        .all(|m| m["method"] == "notifications/progress" && m["params"]["progressToken"] == "p1"));
    assert!(answer_message["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("BTCUSDT"));
}

#[tokio::test]
async fn an_upstream_that_refuses_connections_gets_a_clear_502() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", closed.local_addr().unwrap());
    drop(closed);
    let harness = start_before(url.clone()).await;
    let mut client = harness.client();
    let answer = client.request("initialize", json!({"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}})).await;
    answer.assert_error(502, -32000, &url);
    let ready = reqwest::get(format!("{}/readyz", harness.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("does not answer"));
    let healthy = reqwest::get(format!("{}/healthz", harness.base))
        .await
        .unwrap();
    assert_eq!(healthy.status(), 200);
}

#[tokio::test]
async fn an_upstream_that_never_answers_gets_a_504_within_the_timeout() {
    // Accepts connections and reads nothing: the upstream is up but hung.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", hung.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hung.accept().await {
            held.push(socket);
        }
    });
    let harness = start_with(Setup {
        upstream: Some(url),
        limits: Limits {
            upstream_timeout: Duration::from_millis(300),
            ..Limits::default()
        },
        ..Setup::default()
    })
    .await;
    let mut client = harness.client();
    let answer = client.request("initialize", json!({"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}})).await;
    answer.assert_error(504, -32000, "did not answer within");
}

#[tokio::test]
async fn readyz_is_200_while_the_upstream_answers() {
    let harness = start(ALLOW_ALL).await;
    let ready = reqwest::get(format!("{}/readyz", harness.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn an_oversized_body_is_413_and_never_forwarded() {
    let harness = start_with(Setup {
        limits: Limits {
            max_body_bytes: 1024,
            ..Limits::default()
        },
        ..Setup::default()
    })
    .await;
    let client = harness.client().initialized().await;
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "get_price", "arguments": {"symbol": "X".repeat(4096)}}});
    let answer = client.post(&big).await;
    answer.assert_error(413, -32600, "--max-body-bytes");
    assert_eq!(harness.simulator.tool_calls("get_price"), 0);
}

#[tokio::test]
async fn batches_are_refused_after_2025_03_26() {
    let harness = start(ALLOW_ALL).await;
    let client = harness.client().initialized().await;
    let batch = json!([{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}]);
    let answer = client.post(&batch).await;
    answer.assert_error(400, -32600, "batches");
}

#[tokio::test]
async fn a_batch_without_the_version_header_is_judged_by_the_sessions_negotiated_version() {
    let harness = start(ALLOW_ALL).await;
    let client = harness.client().initialized().await;
    let mut headers = client.headers();
    headers.remove("mcp-protocol-version");
    let batch = json!([{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}]);
    let answer = client.post_raw(headers, batch.to_string()).await;
    answer.assert_error(400, -32600, "batches were removed in MCP 2025-06-18");
    assert!(!harness
        .simulator
        .received()
        .iter()
        .any(|m| m["method"] == "tools/list"));
}

#[tokio::test]
async fn a_2025_03_26_session_takes_a_batch_without_the_version_header() {
    let harness = start(ALLOW_ALL).await;
    let mut client = harness.client();
    let init = client
        .post(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-03-26", "capabilities": {},
            "clientInfo": {"name": "old", "version": "1"}}}),
        )
        .await;
    assert_eq!(
        init.body["result"]["protocolVersion"], "2025-03-26",
        "{}",
        init.text
    );
    client.session = Some(init.headers[SESSION].to_str().unwrap().to_owned());
    let mut headers = client.headers();
    headers.remove("mcp-protocol-version");
    let batch = json!([{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}]);
    let answer = client.post_raw(headers, batch.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        answer.body[0]["result"]["tools"].is_array(),
        "{}",
        answer.text
    );
}

#[tokio::test]
async fn two_session_id_headers_are_a_400() {
    let harness = start(ALLOW_ALL).await;
    let client = harness.client().initialized().await;
    let other = harness.client().initialized().await;
    let mut headers = client.headers();
    headers.append(
        SESSION,
        reqwest::header::HeaderValue::from_str(other.session.as_deref().unwrap()).unwrap(),
    );
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "get_price", "arguments": {"symbol": "BTCUSDT"}}});
    let answer = client.post_raw(headers, call.to_string()).await;
    answer.assert_error(400, -32600, "mcp-session-id header was sent more than once");
    assert_eq!(harness.simulator.tool_calls("get_price"), 0);
}

#[tokio::test]
async fn other_methods_on_the_endpoint_are_405_naming_the_three_it_takes() {
    let harness = start(ALLOW_ALL).await;
    let response = harness
        .client()
        .http
        .put(&harness.url)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    for method in ["GET", "POST", "DELETE"] {
        assert!(allow.contains(method), "{allow}");
    }
}
