//! The legacy HTTP+SSE transport (2024-11-05) on `/sse`: bound to the agent that opened the
//! stream, and nothing reaches the upstream that the streamable transport would not forward.
//! (The Python SDK's `sse_client` runs a whole session in tests/sdk_clients.rs.)

mod common;

use common::legacy::LegacyStream;
use common::*;
use serde_json::json;

const KEY: &str = "k-legacy-0123456789";
const OTHER_KEY: &str = "k-other-0123456789";

fn agent(name: &str, key: &str) -> String {
    format!(
        "{name}=sha256:{}",
        hex::encode(mcpgate::auth::digest_of(key))
    )
}

async fn with_agents() -> Harness {
    start_with(Setup {
        agents: vec![agent("legacy-bot", KEY), agent("other-bot", OTHER_KEY)],
        ..Setup::default()
    })
    .await
}

#[tokio::test]
async fn a_legacy_stream_belongs_to_the_agent_that_opened_it() {
    let harness = with_agents().await;
    let stream = LegacyStream::open(&harness, Some(KEY)).await;
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {},
        "clientInfo": {"name": "legacy", "version": "1"}}});
    for intruder in [Some(OTHER_KEY), None] {
        let refused = stream.post(intruder, &initialize).await;
        refused.assert_error(404, -32001, "session not found");
    }
    assert!(harness.simulator.received().is_empty(), "nothing forwarded");

    let accepted = stream.post(Some(KEY), &initialize).await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    let mut reader = stream.reader;
    let answer = reader.next_message().await.expect("initialize's answer");
    assert_eq!(answer["id"], 0, "{answer}");
    assert!(answer["result"]["serverInfo"].is_object(), "{answer}");
}

#[tokio::test]
async fn a_legacy_message_before_initialize_is_answered_on_the_stream_and_never_forwarded() {
    let harness = start(ALLOW_ALL).await;
    let stream = LegacyStream::open(&harness, None).await;
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "get_price", "arguments": {"symbol": "BTCUSDT"}}});
    let accepted = stream.post(None, &call).await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    let mut reader = stream.reader;
    let answer = reader
        .next_message()
        .await
        .expect("an answer on the stream");
    assert_eq!(answer["id"], 7, "{answer}");
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("send initialize first"),
        "{answer}"
    );
    assert!(harness.simulator.received().is_empty(), "nothing forwarded");
}

#[tokio::test]
async fn a_message_to_an_unknown_legacy_endpoint_is_404() {
    let harness = start(ALLOW_ALL).await;
    let answer = Client::new(&format!("{}/message?sessionId=0123", harness.base))
        .post(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .await;
    answer.assert_error(404, -32001, "session not found");
}
