//! Result rules: secrets in a tool's result are replaced before the agent sees them, over JSON
//! and over SSE, and the audit counts them.

mod common;

use common::upstream::{result, sse, FakeUpstream};
use common::{Client, Setup};
use serde_json::{json, Value};

const POLICY: &str = r#"{"version": "1", "default": "deny",
  "results": {"redact": ["private_keys", "api_keys"]},
  "tools": {"read_config": {}, "stream_config": {}, "dump": {"results": {"max_bytes": 64}}}}"#;

const PRIVATE_KEY: &str =
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----";
const API_KEY: &str = "sk-proj-Zx81mQ2v9LkP0aBcDeFgHiJkLmNoPq";

fn leaky(request: &Value) -> Value {
    json!({"jsonrpc": "2.0", "id": request["id"], "result": {
        "content": [{"type": "text", "text": format!("deploy key:\n{PRIVATE_KEY}\ntoken: {API_KEY}")}],
        "structuredContent": {"token": API_KEY, "region": "eu-west-1"}}})
}

async fn harness() -> common::Harness {
    let upstream = FakeUpstream::start(|message: Value| async move {
        let tool = message["params"]["name"].as_str().map(str::to_owned);
        match (message["method"].as_str()?, tool.as_deref()) {
            ("tools/call", Some("read_config")) => {
                Some(result(&message, leaky(&message)["result"].clone()))
            }
            ("tools/call", Some("stream_config")) => {
                let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress",
                    "params": {"progressToken": 1, "progress": 1, "message": "reading"}});
                Some(sse(&[progress, leaky(&message)]))
            }
            ("tools/call", Some("dump")) => Some(result(
                &message,
                json!({"content": [{"type": "text", "text": "x".repeat(500)}]}),
            )),
            _ => None,
        }
    })
    .await;
    common::start_with(Setup {
        policy: POLICY.into(),
        upstream: Some(upstream),
        audit: true,
        ..Setup::default()
    })
    .await
}

fn assert_redacted(answer: &common::Answer) {
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        !answer.text.contains("b3BlbnNzaC1rZXktdjEAAAAA"),
        "{}",
        answer.text
    );
    assert!(!answer.text.contains(API_KEY), "{}", answer.text);
    let result = &answer.body["result"];
    assert_eq!(
        result["content"][0]["text"],
        "deploy key:\n[REDACTED:private_key]\ntoken: [REDACTED:api_key]"
    );
    assert_eq!(result["structuredContent"]["token"], "[REDACTED:api_key]");
    assert_eq!(result["structuredContent"]["region"], "eu-west-1");
}

fn redaction_records(harness: &common::Harness, tool: &str) -> Vec<Value> {
    harness
        .audit_lines()
        .into_iter()
        .filter(|r| r["decision"] == "redacted" && r["tool"] == tool)
        .collect()
}

#[tokio::test]
async fn secrets_in_a_json_answer_are_redacted_and_audited() {
    let harness = harness().await;
    let mut client = harness.client().json_only().initialized().await;
    let answer = client.call_tool("read_config", json!({})).await;
    assert!(answer.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert_redacted(&answer);
    let records = redaction_records(&harness, "read_config");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["redactions"], 3);
    assert_eq!(records[0]["reason"], "redacted: private_key, api_key");
}

#[tokio::test]
async fn secrets_in_a_streamed_answer_are_redacted_event_by_event() {
    let harness = harness().await;
    let mut client: Client = harness.client().initialized().await;
    let answer = client.call_tool("stream_config", json!({})).await;
    assert!(answer.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert!(
        answer.text.contains("reading"),
        "progress is relayed: {}",
        answer.text
    );
    assert_redacted(&answer);
    assert_eq!(
        redaction_records(&harness, "stream_config")[0]["redactions"],
        3
    );
}

#[tokio::test]
async fn a_result_over_max_bytes_is_withheld() {
    let harness = harness().await;
    let mut client = harness.client().initialized().await;
    let answer = client.call_tool("dump", json!({})).await;
    assert!(answer.is_tool_error(), "{}", answer.text);
    assert!(answer.message().contains("withheld"), "{}", answer.text);
    assert!(!answer.text.contains(&"x".repeat(100)));
    let records = redaction_records(&harness, "dump");
    assert!(records[0]["reason"].as_str().unwrap().contains("max_bytes"));
}
