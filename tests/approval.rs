//! Human approval: held calls, the admin API, single-use fingerprinted approvals, elicitation.

mod common;

use std::time::Duration;

use common::*;
use mcpgate::approval::Approval;
use mcpgate::config::ApprovalConfig;
use serde_json::{json, Value};

const POLICY: &str = r#"{
  "version": "1",
  "default": "deny",
  "tools": {
    "get_price": {},
    "subscribe_to_trade_stream": { "action": "approval", "reason": "opens a long-lived upstream stream" },
    "subscribe_to_ticker_stream": { "action": "approval", "reason": "opens a stream", "timeout": 1 },
    "subscribe_to_kline_stream": { "action": "approval", "reason": "opens a stream", "via": "elicitation" }
  }
}"#;

fn approvals(hold: Duration) -> ApprovalConfig {
    ApprovalConfig {
        admin_token: Some(ADMIN_TOKEN.into()),
        hold,
        ..ApprovalConfig::default()
    }
}

fn setup(hold: Duration) -> Setup {
    Setup {
        policy: POLICY.into(),
        audit: true,
        approvals: approvals(hold),
        ..Setup::default()
    }
}

struct Admin {
    http: reqwest::Client,
    base: String,
}

impl Admin {
    fn of(harness: &Harness) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: harness.base.clone(),
        }
    }

    async fn decide(&self, id: &str, verdict: &str, reason: Option<&str>) -> (u16, Value) {
        let body = reason
            .map(|r| json!({ "reason": r }).to_string())
            .unwrap_or_default();
        let response = self
            .http
            .post(format!("{}/admin/approvals/{id}/{verdict}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// The id of the first approval listed.
    async fn first_id(&self) -> String {
        self.list().await[0]["id"].as_str().unwrap().to_owned()
    }

    async fn list(&self) -> Vec<Value> {
        let response = self
            .http
            .get(format!("{}/admin/approvals", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

/// Asserts the admin API's error body says `says`.
#[track_caller]
fn assert_admin_error(body: &Value, says: &str) {
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains(says), "not {says:?}: {body}");
}

/// Asserts `answer` is a call held for a new approval, not the one with id `decided`.
#[track_caller]
fn assert_waits_for_another_approval(answer: &Answer, decided: &str) {
    let message = answer.message();
    assert!(
        message.starts_with("Waiting for approval apr_"),
        "{message}"
    );
    assert!(!message.contains(decided), "{message}");
}

/// Waits for the gateway to queue the next approval (an event, not a poll).
async fn next_pending(changes: &mut tokio::sync::broadcast::Receiver<Approval>) -> Approval {
    loop {
        let approval = tokio::time::timeout(Duration::from_secs(10), changes.recv())
            .await
            .expect("an approval was queued")
            .unwrap();
        if approval.status == mcpgate::approval::Status::Pending {
            return approval;
        }
    }
}

async fn session(harness: &Harness) -> Client {
    harness.client().json_only().initialized().await
}

/// POSTs `message` in `client`'s session and returns the response unread, to read as a stream.
async fn post_unread(client: &Client, message: &Value) -> reqwest::Response {
    client
        .http
        .post(&client.url)
        .headers(client.headers())
        .body(message.to_string())
        .send()
        .await
        .unwrap()
}

/// Makes a call under an approval rule from another task and waits until it is queued.
async fn hold_call(
    harness: &Harness,
    client: &Client,
    tool: &'static str,
    arguments: Value,
) -> (tokio::task::JoinHandle<Answer>, Approval) {
    let mut changes = harness.gateway.approvals.subscribe();
    let mut caller = Client::new(&client.url);
    caller.session = client.session.clone();
    caller.accept = client.accept;
    let call = tokio::spawn(async move { caller.call_tool(tool, arguments).await });
    (call, next_pending(&mut changes).await)
}

#[tokio::test]
async fn approved_within_the_hold_the_call_goes_through_once() {
    let harness = start_with(setup(Duration::from_secs(30))).await;
    let client = session(&harness).await;
    let (call, pending) = hold_call(
        &harness,
        &client,
        "subscribe_to_trade_stream",
        json!({"symbol": "BTCUSDT"}),
    )
    .await;
    assert_eq!(pending.tool, "subscribe_to_trade_stream");
    assert_eq!(pending.arguments, json!({"symbol": "BTCUSDT"}));
    assert_eq!(pending.reason, "opens a long-lived upstream stream");
    assert_eq!(
        harness.simulator.tool_calls("subscribe_to_trade_stream"),
        0,
        "held, not forwarded"
    );

    let (status, approved) = Admin::of(&harness)
        .decide(&pending.id, "approve", Some("ok for BTC"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(approved["status"], "approved");
    let answer = call.await.unwrap();
    assert!(!answer.is_tool_error(), "{}", answer.text);
    assert!(
        answer.message().contains("btcusdt@trade"),
        "{}",
        answer.text
    );
    assert_eq!(harness.simulator.tool_calls("subscribe_to_trade_stream"), 1);

    let decisions: Vec<String> = harness
        .audit_lines()
        .iter()
        .filter(|l| l["tool"] == "subscribe_to_trade_stream")
        .map(|l| l["decision"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(decisions, ["approval_pending", "approved", "allow"]);
    let approved_line = harness
        .audit_lines()
        .into_iter()
        .find(|l| l["decision"] == "approved")
        .unwrap();
    assert_eq!(approved_line["reviewer"], "admin");
    assert_eq!(approved_line["reason"], "ok for BTC");
    assert_eq!(approved_line["approval"], pending.id.as_str());
}

#[tokio::test]
async fn a_rejected_call_is_an_error_result_with_the_reviewers_reason() {
    let harness = start_with(setup(Duration::from_secs(30))).await;
    let client = session(&harness).await;
    let (call, pending) = hold_call(
        &harness,
        &client,
        "subscribe_to_trade_stream",
        json!({"symbol": "BTCUSDT"}),
    )
    .await;
    let (status, _) = Admin::of(&harness)
        .decide(&pending.id, "reject", Some("no streams today"))
        .await;
    assert_eq!(status, 200);
    let answer = call.await.unwrap();
    assert!(answer.is_tool_error());
    let message = answer.message();
    assert!(
        message.contains("Rejected by admin") && message.contains("no streams today"),
        "{message}"
    );
    assert_eq!(harness.simulator.tool_calls("subscribe_to_trade_stream"), 0);
}

#[tokio::test]
async fn an_approval_nobody_decides_expires_and_the_call_is_not_made() {
    let harness = start_with(setup(Duration::from_secs(30))).await;
    let mut client = session(&harness).await;
    let answer = client
        .call_tool("subscribe_to_ticker_stream", json!({"symbol": "BTCUSDT"}))
        .await;
    assert!(answer.is_tool_error());
    assert!(answer.message().contains("expired"), "{}", answer.text);
    let listed = Admin::of(&harness).list().await;
    assert_eq!(listed[0]["status"], "expired");
    let (status, body) = Admin::of(&harness)
        .decide(listed[0]["id"].as_str().unwrap(), "approve", None)
        .await;
    assert_eq!(
        status, 409,
        "an expired approval cannot be approved: {body}"
    );
    assert_admin_error(
        &body,
        "is already Expired; only pending approvals can be decided",
    );
    assert_eq!(
        harness.simulator.tool_calls("subscribe_to_ticker_stream"),
        0
    );
    assert!(harness
        .audit_lines()
        .iter()
        .any(|l| l["decision"] == "expired"));
}

#[tokio::test]
async fn after_the_hold_the_agent_repeats_the_call_and_an_approval_is_used_once() {
    let harness = start_with(setup(Duration::from_millis(50))).await;
    let mut client = session(&harness).await;
    let btc = json!({"symbol": "BTCUSDT"});

    let first = client
        .call_tool("subscribe_to_trade_stream", btc.clone())
        .await;
    assert!(first.is_tool_error());
    let pending = Admin::of(&harness).list().await[0].clone();
    let id = pending["id"].as_str().unwrap();
    assert!(
        first.message().contains(id),
        "the agent is told which approval to wait for: {}",
        first.text
    );
    assert!(
        first.message().contains("repeat exactly the same call"),
        "{}",
        first.text
    );

    let same_again = client
        .call_tool("subscribe_to_trade_stream", btc.clone())
        .await;
    assert!(
        same_again.message().contains(id),
        "a repeat while pending joins the same approval"
    );
    assert_eq!(Admin::of(&harness).list().await.len(), 1);

    Admin::of(&harness).decide(id, "approve", None).await;
    let other_arguments = client
        .call_tool("subscribe_to_trade_stream", json!({"symbol": "ETHUSDT"}))
        .await;
    assert!(
        other_arguments.is_tool_error(),
        "other arguments are not covered: {}",
        other_arguments.text
    );
    assert_waits_for_another_approval(&other_arguments, id);

    let retried = client
        .call_tool("subscribe_to_trade_stream", btc.clone())
        .await;
    assert!(!retried.is_tool_error(), "{}", retried.text);
    assert_eq!(harness.simulator.tool_calls("subscribe_to_trade_stream"), 1);

    let once_more = client.call_tool("subscribe_to_trade_stream", btc).await;
    assert!(once_more.is_tool_error(), "single use: {}", once_more.text);
    assert_waits_for_another_approval(&once_more, id);
    assert_eq!(harness.simulator.tool_calls("subscribe_to_trade_stream"), 1);
}

#[tokio::test]
async fn an_approval_covers_the_same_agent_only() {
    let harness = start_with(setup(Duration::from_millis(50))).await;
    let mut first = session(&harness).await;
    let mut second = session(&harness).await;
    let args = json!({"symbol": "BTCUSDT"});
    first
        .call_tool("subscribe_to_trade_stream", args.clone())
        .await;
    let id = Admin::of(&harness).first_id().await;
    Admin::of(&harness).decide(&id, "approve", None).await;
    let other = second
        .call_tool("subscribe_to_trade_stream", args.clone())
        .await;
    assert!(
        other.is_tool_error(),
        "another anonymous session is another caller: {}",
        other.text
    );
    assert_waits_for_another_approval(&other, &id);
    let own = first.call_tool("subscribe_to_trade_stream", args).await;
    assert!(!own.is_tool_error(), "{}", own.text);
}

#[tokio::test]
async fn a_stream_client_is_held_on_an_sse_stream_and_gets_the_answer_on_it() {
    let harness = start_with(setup(Duration::from_secs(30))).await;
    let client = harness.client().initialized().await;
    let mut changes = harness.gateway.approvals.subscribe();
    let call = json!({"jsonrpc": "2.0", "id": 41, "method": "tools/call",
        "params": {"name": "subscribe_to_trade_stream", "arguments": {"symbol": "ETHUSDT"}}});
    let response = post_unread(&client, &call).await;
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut stream = SseReader::new(response);
    let pending = next_pending(&mut changes).await;
    Admin::of(&harness)
        .decide(&pending.id, "approve", None)
        .await;
    let answer = stream.next_message().await.unwrap();
    assert_eq!(answer["id"], 41);
    assert_eq!(answer["result"]["isError"], false, "{answer}");
}

#[tokio::test]
async fn elicitation_asks_the_clients_user_on_the_held_stream() {
    let harness = start_with(setup(Duration::from_secs(30))).await;
    let mut client = harness.client();
    let init = client
        .post(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": VERSION, "capabilities": {"elicitation": {}},
            "clientInfo": {"name": "t", "version": "1"}}}),
        )
        .await;
    client.session = Some(init.headers[SESSION].to_str().unwrap().to_owned());
    client
        .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;

    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "subscribe_to_kline_stream", "arguments": {"symbol": "BTCUSDT", "interval": "1h"}}});
    let response = post_unread(&client, &call).await;
    let mut stream = SseReader::new(response);
    let question = stream.next_message().await.unwrap();
    assert_eq!(question["method"], "elicitation/create");
    let question_id = question["id"].as_str().unwrap().to_owned();
    assert!(question["params"]["message"]
        .as_str()
        .unwrap()
        .contains("subscribe_to_kline_stream"));

    let stranger = harness.client().initialized().await;
    let forged = stranger
        .post(&json!({"jsonrpc": "2.0", "id": question_id, "result": {"action": "accept", "content": {"approve": true}}}))
        .await;
    // Another session cannot answer.
    forged.assert_error(400, -32600, "matches no approval question");

    let answered = client
        .post(&json!({"jsonrpc": "2.0", "id": question_id, "result": {"action": "accept", "content": {"approve": true}}}))
        .await;
    assert_eq!(answered.status, 202);
    let answer = stream.next_message().await.unwrap();
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    assert_eq!(harness.simulator.tool_calls("subscribe_to_kline_stream"), 1);
    let forwarded: Vec<Value> = harness.simulator.received();
    assert!(
        !forwarded.iter().any(|m| m["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("mcpgate-"))),
        "the answer to the gateway's question never reaches the upstream"
    );
}

#[tokio::test]
async fn a_client_without_elicitation_falls_back_to_the_queue() {
    let harness = start_with(setup(Duration::from_secs(30))).await;
    let client = session(&harness).await;
    let (call, pending) = hold_call(
        &harness,
        &client,
        "subscribe_to_kline_stream",
        json!({"symbol": "BTCUSDT"}),
    )
    .await;
    Admin::of(&harness)
        .decide(&pending.id, "approve", None)
        .await;
    let answer = call.await.unwrap();
    assert!(!answer.is_tool_error(), "{}", answer.text);
}

#[tokio::test]
async fn the_admin_api_requires_the_token_and_lists_pending_first() {
    let harness = start_with(setup(Duration::from_millis(50))).await;
    let mut client = session(&harness).await;
    client
        .call_tool("subscribe_to_trade_stream", json!({"symbol": "BTCUSDT"}))
        .await;
    client
        .call_tool("subscribe_to_trade_stream", json!({"symbol": "ETHUSDT"}))
        .await;
    let admin = Admin::of(&harness);
    let listed = admin.list().await;
    admin
        .decide(listed[0]["id"].as_str().unwrap(), "reject", None)
        .await;
    let listed = admin.list().await;
    assert_eq!(listed[0]["status"], "pending");
    assert_eq!(listed[1]["status"], "rejected");
    for field in [
        "id",
        "agent",
        "session",
        "tool",
        "arguments",
        "rule",
        "reason",
        "created_at",
        "expires_at",
        "status",
    ] {
        assert!(listed[0].get(field).is_some(), "approvals show {field}");
    }

    let anonymous = reqwest::get(format!("{}/admin/approvals", harness.base))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_admin_error(&anonymous.json().await.unwrap(), "--admin-token");
    let wrong = admin
        .http
        .get(format!("{}/admin/approvals", harness.base))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_admin_error(&wrong.json().await.unwrap(), "--admin-token");
    let (status, body) = admin.decide("apr_0000000000000000", "approve", None).await;
    assert_eq!(status, 404);
    assert_admin_error(&body, "no approval apr_0000000000000000");
    let (status, body) = admin
        .decide(listed[1]["id"].as_str().unwrap(), "approve", None)
        .await;
    assert_eq!(status, 409, "a decided approval stays decided");
    assert_admin_error(&body, "is already Rejected");
    let page = reqwest::get(format!("{}/admin", harness.base))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("approval queue"));
}

#[tokio::test]
async fn without_an_admin_token_there_is_no_admin_api() {
    let harness = start_with(Setup {
        approvals: ApprovalConfig {
            admin_token: None,
            ..approvals(Duration::from_millis(50))
        },
        ..setup(Duration::from_millis(50))
    })
    .await;
    let response = reqwest::get(format!("{}/admin/approvals", harness.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn the_events_feed_reports_queue_changes() {
    let harness = start_with(setup(Duration::from_millis(50))).await;
    let events = reqwest::Client::new()
        .get(format!("{}/admin/approvals/events", harness.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let mut feed = SseReader::new(events);
    let mut client = session(&harness).await;
    client
        .call_tool("subscribe_to_trade_stream", json!({"symbol": "BTCUSDT"}))
        .await;
    let created = feed.next_message().await.unwrap();
    assert_eq!(created["status"], "pending");
    assert_eq!(created["tool"], "subscribe_to_trade_stream");
}

#[tokio::test]
async fn each_new_approval_is_posted_to_the_webhook_signed_with_its_timestamp() {
    let (received, mut deliveries) =
        tokio::sync::mpsc::channel::<(String, String, bytes::Bytes)>(4);
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: bytes::Bytes| {
            let received = received.clone();
            async move {
                let signature = headers["x-mcpgate-signature"].to_str().unwrap().to_owned();
                let timestamp = headers["x-mcpgate-timestamp"].to_str().unwrap().to_owned();
                received.send((signature, timestamp, body)).await.unwrap();
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await });

    let harness = start_with(Setup {
        approvals: ApprovalConfig {
            webhook: Some(hook_url.parse().unwrap()),
            webhook_secret: Some("hook-secret".into()),
            ..approvals(Duration::from_millis(50))
        },
        ..setup(Duration::from_millis(50))
    })
    .await;
    let mut client = session(&harness).await;
    client
        .call_tool("subscribe_to_trade_stream", json!({"symbol": "BTCUSDT"}))
        .await;
    let (signature, timestamp, body) =
        tokio::time::timeout(Duration::from_secs(10), deliveries.recv())
            .await
            .unwrap()
            .unwrap();
    // What a receiver does: check the time is recent, then the signature over time and body.
    let timestamp: u64 = timestamp.parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(timestamp) < 300, "{timestamp} vs {now}");
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(&body);
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(b"hook-secret").unwrap();
    hmac::Mac::update(&mut mac, &signed);
    let expected = hex::encode(hmac::Mac::finalize(mac).into_bytes());
    assert_eq!(signature, format!("sha256={expected}"));
    let approval: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(approval["tool"], "subscribe_to_trade_stream");
    assert_eq!(approval["status"], "pending");
}

async fn mcpgate_approvals(harness: &Harness, args: &[&str], token: &str) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .arg("approvals")
        .args(args)
        .args(["--url", &harness.base])
        .env("MCPGATE_ADMIN_TOKEN", token)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_cli_lists_approves_and_rejects() {
    let harness = start_with(setup(Duration::from_secs(30))).await;
    let client = session(&harness).await;
    let (call, pending) = hold_call(
        &harness,
        &client,
        "subscribe_to_trade_stream",
        json!({"symbol": "BTCUSDT"}),
    )
    .await;

    let listed = mcpgate_approvals(&harness, &["list"], ADMIN_TOKEN).await;
    let table = String::from_utf8_lossy(&listed.stdout);
    assert_exited_ok(&listed, "mcpgate approvals list");
    assert!(
        table.contains(&pending.id) && table.contains("pending") && table.contains("BTCUSDT"),
        "{table}"
    );

    let refused = mcpgate_approvals(&harness, &["list"], "wrong").await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));

    let approved = mcpgate_approvals(&harness, &["approve", &pending.id], ADMIN_TOKEN).await;
    assert_exited_ok(&approved, "mcpgate approvals approve");
    assert!(!call.await.unwrap().is_tool_error());

    let (second, pending) = hold_call(
        &harness,
        &client,
        "subscribe_to_trade_stream",
        json!({"symbol": "ETHUSDT"}),
    )
    .await;
    let rejected = mcpgate_approvals(
        &harness,
        &["reject", &pending.id, "--reason", "ETH is off limits"],
        ADMIN_TOKEN,
    )
    .await;
    assert_exited_ok(&rejected, "mcpgate approvals reject");
    assert!(second
        .await
        .unwrap()
        .message()
        .contains("ETH is off limits"));
}

#[tokio::test]
async fn a_held_stream_sends_progress_to_a_client_that_asked_for_it() {
    let harness = start_with(Setup {
        approvals: ApprovalConfig {
            progress_every: Duration::from_millis(20),
            ..approvals(Duration::from_secs(30))
        },
        ..setup(Duration::from_secs(30))
    })
    .await;
    let client = harness.client().initialized().await;
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
        "name": "subscribe_to_trade_stream", "arguments": {"symbol": "BTCUSDT"},
        "_meta": {"progressToken": "wait-1"}}});
    let response = post_unread(&client, &call).await;
    let mut stream = SseReader::new(response);
    let mut steps = Vec::new();
    while steps.len() < 2 {
        let note = stream.next_message().await.unwrap();
        assert_eq!(note["method"], "notifications/progress", "{note}");
        assert_eq!(note["params"]["progressToken"], "wait-1");
        steps.push(note["params"]["progress"].as_u64().unwrap());
    }
    assert!(steps[1] > steps[0], "progress increases: {steps:?}");
    let pending = Admin::of(&harness).first_id().await;
    Admin::of(&harness).decide(&pending, "approve", None).await;
    loop {
        let message = stream.next_message().await.unwrap();
        if message.get("method").is_none() {
            assert_eq!(message["id"], 9);
            assert_eq!(message["result"]["isError"], false, "{message}");
            break;
        }
    }
}

const LIMITED: &str = r#"{"version": "1", "default": "deny", "tools": {
    "subscribe_to_trade_stream": { "action": "approval", "reason": "opens a stream",
        "rate_limit": { "max": 2, "window": 60 } },
    "subscribe_to_ticker_stream": { "action": "approval", "reason": "opens a stream" }
}}"#;

#[tokio::test]
async fn held_calls_count_against_the_rules_rate_limit_when_they_are_queued() {
    let harness = start_with(Setup {
        policy: LIMITED.into(),
        ..setup(Duration::from_millis(50))
    })
    .await;
    let mut client = session(&harness).await;
    for symbol in ["BTCUSDT", "ETHUSDT"] {
        let held = client
            .call_tool("subscribe_to_trade_stream", json!({ "symbol": symbol }))
            .await;
        assert!(
            held.message().starts_with("Waiting for approval"),
            "{}",
            held.text
        );
    }
    let limited = client
        .call_tool("subscribe_to_trade_stream", json!({"symbol": "SOLUSDT"}))
        .await;
    assert!(
        limited
            .message()
            .starts_with("Rate limited by gateway policy (tools.subscribe_to_trade_stream)"),
        "{}",
        limited.text
    );
    let mut again = session(&harness).await;
    let still = again
        .call_tool("subscribe_to_trade_stream", json!({"symbol": "XRPUSDT"}))
        .await;
    assert!(
        still.message().starts_with("Rate limited"),
        "{}",
        still.text
    );
    assert_eq!(
        Admin::of(&harness).list().await.len(),
        2,
        "nothing more was queued"
    );

    // Repeating a pending call queues nothing new and costs nothing.
    let joined = client
        .call_tool("subscribe_to_trade_stream", json!({"symbol": "BTCUSDT"}))
        .await;
    assert!(
        joined.message().starts_with("Waiting for approval"),
        "{}",
        joined.text
    );
}

#[tokio::test]
async fn one_caller_queues_only_so_many_approvals_and_none_too_large() {
    let harness = start_with(Setup {
        policy: LIMITED.into(),
        approvals: ApprovalConfig {
            max_pending_per_agent: 2,
            max_held_call_bytes: 1024,
            ..approvals(Duration::from_millis(50))
        },
        ..setup(Duration::from_millis(50))
    })
    .await;
    let mut client = session(&harness).await;
    for n in 0..2 {
        let held = client
            .call_tool("subscribe_to_ticker_stream", json!({ "n": n }))
            .await;
        assert!(
            held.message().starts_with("Waiting for approval"),
            "{}",
            held.text
        );
    }
    let refused = client
        .call_tool("subscribe_to_ticker_stream", json!({"n": 2}))
        .await;
    assert!(refused.is_tool_error());
    assert!(
        refused
            .message()
            .contains("2 calls of this caller already wait for approval"),
        "{}",
        refused.text
    );
    let mut other = session(&harness).await;
    let large = other
        .call_tool(
            "subscribe_to_ticker_stream",
            json!({"blob": "x".repeat(2048)}),
        )
        .await;
    assert!(
        large
            .message()
            .contains("a call held for approval may have at most 1024"),
        "{}",
        large.text
    );
    assert_eq!(Admin::of(&harness).list().await.len(), 2);
    let limited: Vec<Value> = harness
        .audit_lines()
        .into_iter()
        .filter(|l| l["decision"] == "approval_limited")
        .collect();
    assert_eq!(limited.len(), 2, "{limited:?}");
}

#[tokio::test]
async fn an_approval_does_not_cover_meta_the_reviewer_did_not_see() {
    let harness = start_with(setup(Duration::from_millis(50))).await;
    let client = session(&harness).await;
    let call = |meta: Value| {
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
            "name": "subscribe_to_trade_stream", "arguments": {"symbol": "BTCUSDT"}, "_meta": meta}})
    };
    let first = client.post(&call(json!({"trace": "seen"}))).await;
    assert!(
        first.message().starts_with("Waiting for approval"),
        "{}",
        first.text
    );
    let pending = Admin::of(&harness).list().await[0].clone();
    assert_eq!(pending["other_params"], r#"{"_meta":{"trace":"seen"}}"#);
    let id = pending["id"].as_str().unwrap();
    Admin::of(&harness).decide(id, "approve", None).await;

    let smuggled = client.post(&call(json!({"trace": "unseen"}))).await;
    assert_waits_for_another_approval(&smuggled, id);
    assert_eq!(harness.simulator.tool_calls("subscribe_to_trade_stream"), 0);
    let seen = client.post(&call(json!({"trace": "seen"}))).await;
    assert!(!seen.is_tool_error(), "{}", seen.text);
    assert_eq!(harness.simulator.tool_calls("subscribe_to_trade_stream"), 1);
}

#[tokio::test]
async fn a_notification_under_an_approval_rule_queues_nothing() {
    let harness = start_with(setup(Duration::from_millis(50))).await;
    let client = session(&harness).await;
    let note = json!({"jsonrpc": "2.0", "method": "tools/call", "params": {
        "name": "subscribe_to_trade_stream", "arguments": {"symbol": "BTCUSDT"}}});
    let answer = client.post(&note).await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    assert!(
        answer.message().contains("a notification cannot be held"),
        "{}",
        answer.text
    );
    assert!(Admin::of(&harness).list().await.is_empty());
    assert!(harness.gateway.approvals.list().await.unwrap().is_empty());
    assert_eq!(harness.simulator.tool_calls("subscribe_to_trade_stream"), 0);
}

#[tokio::test]
async fn an_expired_approval_lets_go_of_the_held_call() {
    let harness = start_with(setup(Duration::from_secs(30))).await;
    let mut client = session(&harness).await;
    let answer = client
        .call_tool(
            "subscribe_to_ticker_stream",
            json!({"symbol": "BTCUSDT", "pad": "x".repeat(4096)}),
        )
        .await;
    assert!(answer.message().contains("expired"), "{}", answer.text);
    let listed = Admin::of(&harness).list().await;
    assert_eq!(listed[0]["status"], "expired");
    assert_eq!(listed[0]["arguments"], Value::Null);
    assert_eq!(listed[0]["arguments_json"], Value::Null);
}

#[tokio::test]
async fn a_reviewer_with_a_token_of_their_own_is_recorded_by_name() {
    let harness = start_with(Setup {
        approvals: ApprovalConfig {
            reviewers: vec![mcpgate::config::Reviewer::from_spec(
                "alice=alices-token-0123",
            )],
            ..approvals(Duration::from_secs(30))
        },
        ..setup(Duration::from_secs(30))
    })
    .await;
    let client = session(&harness).await;
    let (call, pending) = hold_call(
        &harness,
        &client,
        "subscribe_to_trade_stream",
        json!({"symbol": "BTCUSDT"}),
    )
    .await;
    let response = reqwest::Client::new()
        .post(format!(
            "{}/admin/approvals/{}/reject",
            harness.base, pending.id
        ))
        .bearer_auth("alices-token-0123")
        .body(r#"{"reason": "not now"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let decided: Value = response.json().await.unwrap();
    assert_eq!(decided["decided_by"], "alice");
    let answer = call.await.unwrap();
    assert!(
        answer.message().starts_with("Rejected by alice"),
        "{}",
        answer.text
    );
    let rejected = harness
        .audit_lines()
        .into_iter()
        .find(|l| l["decision"] == "rejected")
        .unwrap();
    assert_eq!(rejected["reviewer"], "alice");
}
