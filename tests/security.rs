//! The security boundary: every attempt below is answered as stated, and the upstream receives
//! nothing it should not have.

mod common;

use std::time::Duration;

use common::upstream::{self, FakeUpstream};
use common::*;
use mcpgate::config::Limits;
use reqwest::header::{HeaderValue, ORIGIN};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const POLICY: &str = r#"{
  "version": "1",
  "default": "deny",
  "tools": {
    "get_price": {},
    "get_server_time": { "rate_limit": { "max": 1, "window": 3600 } },
    "get_all_trading_day_tickers": { "action": "deny", "reason": "too heavy" }
  },
  "agents": {
    "research-bot": { "tools": { "get_exchange_info": {} } }
  }
}"#;

const RESEARCH_KEY: &str = "k-research-0123456789";
const TRADER_KEY: &str = "k-trader-0123456789";

fn agent(name: &str, key: &str) -> String {
    format!(
        "{name}=sha256:{}",
        hex::encode(mcpgate::auth::digest_of(key))
    )
}

async fn with_agents(require_auth: bool) -> Harness {
    start_with(Setup {
        policy: POLICY.into(),
        agents: vec![
            agent("research-bot", RESEARCH_KEY),
            agent("trader", TRADER_KEY),
        ],
        require_auth,
        audit: true,
        ..Setup::default()
    })
    .await
}

/// Every tools/call the upstream received, by tool name.
fn forwarded_calls(harness: &Harness) -> Vec<String> {
    harness
        .simulator
        .received()
        .into_iter()
        .filter(|m| m["method"] == "tools/call")
        .map(|m| m["params"]["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Posts `body` as it is and asserts it is refused with 400, `code`, and a message saying `says`.
async fn assert_refused(client: &Client, body: &'static str, code: i64, says: &str) {
    let answer = client.post_raw(client.headers(), body).await;
    assert_eq!(answer.status, 400, "{body}");
    assert_eq!(answer.body["error"]["code"], code, "{body}");
    assert!(answer.message().contains(says), "{body}: {}", answer.text);
}

#[tokio::test]
async fn duplicate_keys_in_method_name_or_params_are_invalid_requests_and_never_forwarded() {
    let harness = start(POLICY).await;
    let client = harness.client().initialized().await;
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_price","name":"get_all_trading_day_tickers","arguments":{}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"get_all_trading_day_tickers"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_price"},"params":{"name":"get_all_trading_day_tickers"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_price","arguments":{"symbol":"BTCUSDT","symbol":"ETHUSDT"}}}"#,
        // Go's encoding/json reads "Name" as "name", last one winning.
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_price","Name":"get_all_trading_day_tickers","arguments":{}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_price","arguments":{"symbol":"BTCUSDT","SYMBOL":"ETHUSDT"}}}"#,
    ] {
        assert_refused(&client, body, -32600, "duplicate key").await;
    }
    assert!(forwarded_calls(&harness).is_empty());
}

#[tokio::test]
async fn members_policy_reads_spelled_in_other_letter_case_are_refused_and_never_forwarded() {
    let harness = start(POLICY).await;
    let client = harness.client().initialized().await;
    for (body, code) in [
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_price","Arguments":{"symbol":"ETHUSDT"}}}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","Params":{"name":"get_all_trading_day_tickers"}}"#,
            -32600,
        ),
    ] {
        assert_refused(&client, body, code, "case-sensitive").await;
    }
    assert!(forwarded_calls(&harness).is_empty());
}

#[tokio::test]
async fn forwarded_messages_are_the_gateway_serialisation_of_what_it_evaluated() {
    let harness = start(POLICY).await;
    let client = harness.client().initialized().await;
    // Escapes and spacing that another parser could read differently are normalised away.
    let body = "{ \"jsonrpc\":\"2.0\", \"id\":7, \"method\":\"tools/call\",\n \"params\":{\"name\":\"get_\\u0070rice\",\"arguments\":{\"symbol\":\"BTCUSDT\"}} }";
    let answer = client.post_raw(client.headers(), body).await;
    assert!(!answer.is_tool_error(), "{}", answer.text);
    let received = harness.simulator.received();
    let call = received
        .iter()
        .find(|m| m["method"] == "tools/call")
        .unwrap();
    assert_eq!(call["params"]["name"], "get_price");
}

#[tokio::test]
async fn a_2025_03_26_batch_is_policed_element_by_element() {
    let harness = start(POLICY).await;
    let client = harness.client().initialized().await;
    let mut headers = client.headers();
    headers.insert(
        "mcp-protocol-version",
        HeaderValue::from_static("2025-03-26"),
    );
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_price", "arguments": {"symbol": "BTCUSDT"}}},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "get_all_trading_day_tickers", "arguments": {}}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "get_exchange_info", "arguments": {}}},
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "x", "progress": 1}}
    ]);
    let answer = client.post_raw(headers, batch.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let answers = answer.body.as_array().expect("an array of answers");
    assert_eq!(
        answers.len(),
        3,
        "one answer per request, none for the notification"
    );
    let by_id = |id: i64| answers.iter().find(|a| a["id"] == id).unwrap();
    assert_eq!(by_id(1)["result"]["isError"], false);
    assert_eq!(by_id(2)["result"]["isError"], true);
    assert_eq!(
        by_id(2)["result"]["content"][0]["text"],
        "Denied by gateway policy (tools.get_all_trading_day_tickers): too heavy"
    );
    assert_eq!(by_id(3)["error"]["code"], -32602);
    assert_eq!(forwarded_calls(&harness), ["get_price"]);
}

#[tokio::test]
async fn method_name_variants_are_refused_and_never_forwarded() {
    let harness = start(r#"{"version": "1", "default": "allow", "tools": {"get_all_trading_day_tickers": {"action": "deny"}}}"#).await;
    let client = harness.client().initialized().await;
    for method in [
        "Tools/Call",
        "TOOLS/CALL",
        "tools/call ",
        "tools/\u{200b}call",
        "ｔｏｏｌｓ/call",
    ] {
        let answer = client
            .post(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {"name": "get_all_trading_day_tickers"}}))
            .await;
        answer.assert_error(400, -32600, &format!("method {method:?}: method names are"));
    }
    let methods: Vec<Value> = harness
        .simulator
        .received()
        .into_iter()
        .map(|m| m["method"].clone())
        .collect();
    assert!(
        !methods.iter().any(|m| m
            .as_str()
            .is_some_and(|m| m.eq_ignore_ascii_case("tools/call") || m.contains("call"))),
        "{methods:?}"
    );
}

#[tokio::test]
async fn a_64_mib_body_is_refused_with_413_and_the_gateway_stays_up() {
    let harness = start(POLICY).await;
    let mut client = harness.client().initialized().await;
    let padding = "x".repeat(64 * 1024 * 1024);
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"get_price","arguments":{{"symbol":"{padding}"}}}}}}"#
    );
    let answer = client.post_raw(client.headers(), body).await;
    answer.assert_error(413, -32600, "--max-body-bytes");
    assert!(forwarded_calls(&harness).is_empty());
    let after = client
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    assert!(!after.is_tool_error(), "{}", after.text);
}

#[tokio::test]
async fn a_foreign_origin_is_refused_before_anything_is_forwarded() {
    let harness = start(POLICY).await;
    let client = harness.client().initialized().await;
    let mut headers = client.headers();
    headers.insert(ORIGIN, HeaderValue::from_static("https://attacker.example"));
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_price", "arguments": {"symbol": "BTCUSDT"}}});
    let answer = client.post_raw(headers, call.to_string()).await;
    answer.assert_error(403, -32600, "--allowed-origin");
    assert!(forwarded_calls(&harness).is_empty());
}

#[tokio::test]
async fn a_missing_key_is_401_when_auth_is_required() {
    let harness = with_agents(true).await;
    let client = harness.client();
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let answer = client.post(&init).await;
    answer.assert_error(401, -32004, "send Authorization: Bearer");
    assert_eq!(
        answer.headers["www-authenticate"],
        r#"Bearer realm="mcpgate""#
    );
    assert_eq!(
        harness.simulator.session_count(),
        0,
        "nothing reached the upstream"
    );
}

#[tokio::test]
async fn an_unknown_key_is_401_even_when_auth_is_optional() {
    let harness = with_agents(false).await;
    let client = harness.client().with_key("k-guessed");
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let answer = client.post(&init).await;
    answer.assert_error(401, -32004, "not recognised");
    assert_eq!(harness.simulator.session_count(), 0);
}

#[tokio::test]
async fn a_stolen_session_id_is_unknown_to_any_other_caller() {
    let harness = with_agents(false).await;
    let mut owner = harness.client().with_key(RESEARCH_KEY).initialized().await;
    let stolen = owner.session.clone();

    let mut thief = harness.client().with_key(TRADER_KEY);
    thief.session = stolen.clone();
    let answer = thief
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    answer.assert_error(404, -32001, "session not found");

    let mut anonymous = harness.client();
    anonymous.session = stolen;
    let answer = anonymous
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    answer.assert_error(404, -32001, "session not found");
    assert!(forwarded_calls(&harness).is_empty());

    let ok = owner
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    assert!(
        !ok.is_tool_error(),
        "the owner still has its session: {}",
        ok.text
    );
}

#[tokio::test]
async fn agent_sections_refine_the_rules_and_the_audit_names_the_agent() {
    let harness = with_agents(false).await;
    let mut research = harness.client().with_key(RESEARCH_KEY).initialized().await;
    let mut trader = harness.client().with_key(TRADER_KEY).initialized().await;

    let allowed = research.call_tool("get_exchange_info", json!({})).await;
    assert!(!allowed.is_tool_error(), "{}", allowed.text);
    let refused = trader.call_tool("get_exchange_info", json!({})).await;
    assert_eq!(refused.body["error"]["code"], -32602, "{}", refused.text);
    assert!(research
        .tool_names()
        .await
        .contains(&"get_exchange_info".to_string()));
    assert!(!trader
        .tool_names()
        .await
        .contains(&"get_exchange_info".to_string()));

    let audit = harness.audit_lines();
    let call = audit
        .iter()
        .find(|l| l["tool"] == "get_exchange_info" && l["decision"] == "allow")
        .unwrap();
    assert_eq!(call["agent"], "research-bot");
    let text = std::fs::read_to_string(harness.dir.path().join("audit.jsonl")).unwrap();
    assert!(
        !text.contains(RESEARCH_KEY) && !text.contains(TRADER_KEY),
        "keys never reach the audit log"
    );
}

#[tokio::test]
async fn an_agent_cannot_reset_its_rate_limit_by_opening_a_new_session() {
    let harness = with_agents(false).await;
    let mut first = harness.client().with_key(TRADER_KEY).initialized().await;
    let ok = first.call_tool("get_server_time", json!({})).await;
    assert!(!ok.is_tool_error(), "{}", ok.text);

    let mut second = harness.client().with_key(TRADER_KEY).initialized().await;
    let limited = second.call_tool("get_server_time", json!({})).await;
    assert!(
        limited.message().starts_with("Rate limited"),
        "{}",
        limited.text
    );

    let mut other_agent = harness.client().with_key(RESEARCH_KEY).initialized().await;
    let theirs = other_agent.call_tool("get_server_time", json!({})).await;
    assert!(
        !theirs.is_tool_error(),
        "another agent has its own counter: {}",
        theirs.text
    );
}

fn audit_text(harness: &Harness) -> String {
    std::fs::read_to_string(harness.dir.path().join("audit.jsonl")).unwrap()
}

#[tokio::test]
async fn a_huge_unknown_tool_name_makes_a_capped_audit_record() {
    let harness = with_agents(false).await;
    let mut client = harness.client().initialized().await;
    let name = "x".repeat(1 << 20);
    let answer = client.call_tool(&name, json!({})).await;
    answer.assert_error(200, -32602, "Unknown tool");
    let text = audit_text(&harness);
    let line = text
        .lines()
        .find(|l| l.contains(r#""decision":"unknown_tool""#))
        .unwrap();
    assert!(line.len() < 16 * 1024, "a {} byte record", line.len());
    let record: Value = serde_json::from_str(line).unwrap();
    let marker = format!("…[truncated: {} bytes]", 1 << 20);
    assert!(record["tool"].as_str().unwrap().ends_with(&marker));
    assert!(record["reason"].as_str().unwrap().contains("…[truncated: "));
}

#[tokio::test]
async fn line_separators_from_an_agent_are_escaped_in_the_audit_log() {
    let harness = with_agents(false).await;
    let mut client = harness.client().initialized().await;
    let name = "get_price\u{2028}{\"decision\":\"allow\"}\u{2029}\u{85}";
    client.call_tool(name, json!({})).await;
    let text = audit_text(&harness);
    assert!(!text.contains(['\u{2028}', '\u{2029}', '\u{85}']), "{text}");
    for line in text
        .split(['\n', '\u{2028}', '\u{2029}', '\u{85}'])
        .filter(|l| !l.is_empty())
    {
        serde_json::from_str::<Value>(line).unwrap();
    }
    assert!(harness
        .audit_lines()
        .iter()
        .any(|l| l["tool"] == name && l["decision"] == "unknown_tool"));
}

#[tokio::test]
async fn a_bad_key_and_someone_elses_session_are_audited_and_a_flood_only_so_often() {
    let harness = with_agents(false).await;
    let owner = harness.client().with_key(RESEARCH_KEY).initialized().await;

    let mut stranger = harness.client().with_key("k-nobody-0123456789");
    stranger
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await
        .assert_error(401, -32004, "not recognised");
    let mut thief = harness.client().with_key(TRADER_KEY);
    thief.session = owner.session.clone();
    thief
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await
        .assert_error(404, -32001, "session not found");

    let audit = harness.audit_lines();
    let unauthorized = audit
        .iter()
        .find(|l| l["decision"] == "unauthorized")
        .unwrap();
    assert_eq!(unauthorized["method"], "POST");
    assert_eq!(unauthorized["reason"], "the agent key is not recognised");
    let unknown = audit
        .iter()
        .find(|l| l["decision"] == "unknown_session")
        .unwrap();
    assert_eq!(unknown["agent"], "trader");
    assert_eq!(unknown["session"], owner.session.as_deref().unwrap());
    assert!(
        !audit_text(&harness).contains("k-nobody-0123456789"),
        "keys are never written"
    );

    for _ in 0..100 {
        stranger
            .call_tool("get_price", json!({}))
            .await
            .assert_error(401, -32004, "not recognised");
    }
    let refusals = harness
        .audit_lines()
        .iter()
        .filter(|l| {
            matches!(
                l["decision"].as_str(),
                Some("unauthorized" | "unknown_session")
            )
        })
        .count();
    // 102 refusals, and a minute's budget for their records.
    assert!(
        refusals <= mcpgate::gateway::EDGE_REFUSALS_PER_MINUTE as usize,
        "{refusals} refusals recorded"
    );
}

/// An upstream whose tools/call waits until released; `arrived` says when one is waiting.
async fn holding_upstream() -> (
    String,
    tokio::sync::mpsc::Receiver<()>,
    tokio::sync::mpsc::Sender<()>,
) {
    let (arrived_tx, arrived) = tokio::sync::mpsc::channel::<()>(8);
    let (release, release_rx) = tokio::sync::mpsc::channel::<()>(8);
    let release_rx = std::sync::Arc::new(tokio::sync::Mutex::new(release_rx));
    let url = FakeUpstream::start(move |message| {
        let arrived_tx = arrived_tx.clone();
        let release_rx = release_rx.clone();
        async move {
            if message["method"] != "tools/call" {
                return None;
            }
            arrived_tx.send(()).await.unwrap();
            release_rx.lock().await.recv().await;
            Some(upstream::result(&message, json!({"content": []})))
        }
    })
    .await;
    (url, arrived, release)
}

#[tokio::test]
async fn an_agent_past_its_in_flight_limit_gets_429() {
    let (url, mut arrived, release) = holding_upstream().await;
    let harness = start_with(Setup {
        policy: r#"{"version": "1", "default": "allow", "tools": {}}"#.into(),
        upstream: Some(url),
        limits: Limits {
            max_in_flight_per_agent: 1,
            ..Limits::default()
        },
        ..Setup::default()
    })
    .await;
    let mut client = harness.client().initialized().await;
    let session = client.session.clone();
    let url = harness.url.clone();
    let held = tokio::spawn(async move {
        let mut first = Client::new(&url);
        first.session = session;
        first.call_tool("slow", json!({})).await.status
    });
    arrived.recv().await.unwrap();
    let refused = client.call_tool("slow", json!({})).await;
    refused.assert_error(429, -32005, "--max-in-flight-per-agent");
    release.send(()).await.unwrap();
    assert_eq!(held.await.unwrap(), 200);
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let harness = start(POLICY).await;
    let client = harness.client();
    let mut headers = client.headers();
    headers.insert(
        "x-padding",
        HeaderValue::from_str(&"a".repeat(200 * 1024)).unwrap(),
    );
    let response = client
        .http
        .post(&harness.url)
        .headers(headers)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
}

/// Sends `request` raw to a gateway that gives clients 200 ms to send one, and reads what it
/// answers until it closes the connection; `None` if the connection is still open after 10 s.
async fn send_to_a_short_read_timeout(request: &[u8]) -> Option<Vec<u8>> {
    let harness = start_with(Setup {
        limits: Limits {
            request_read_timeout: Duration::from_millis(200),
            ..Limits::default()
        },
        ..Setup::default()
    })
    .await;
    let addr = harness.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(request).await.unwrap();
    let mut buffer = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut buffer)).await;
    closed.is_ok().then_some(buffer)
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_cut_off() {
    let closed =
        send_to_a_short_read_timeout(b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: app").await;
    assert!(
        closed.is_some(),
        "the gateway closed the connection of a client that never finished its headers"
    );
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_408() {
    // The gateway answers and closes: the rest of this request would never be read.
    let buffer = send_to_a_short_read_timeout(b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: 100\r\n\r\n{\"json")
        .await
        .expect("the gateway closed the connection");
    let response = String::from_utf8_lossy(&buffer);
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"]["code"], -32600, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--request-read-timeout-secs"),
        "{body}"
    );
}
