//! A 2026-07-28 upstream's questions put to a handshake-era client (`exchange/asked.rs`): its
//! input-required round becomes an `elicitation/create` on the call's stream, the client's
//! answer goes back upstream as `inputResponses` with the upstream's `requestState`, and what
//! cannot be asked or is not answered ends the call with an error. The official Python SDK on
//! both sides is in `sdk_clients.rs`.

mod common;

use common::modern::*;
use common::*;
use mcpgate::config::Limits;
use serde_json::{json, Value};
use std::time::Duration;

/// `ask` asks for a name (two rounds when asked for `twice`) and greets it; `forever` asks
/// again whatever it is told; `sample` asks for sampling, which a handshake-era client is not
/// asked for here.
fn ask(call: &Value) -> Value {
    let params = &call["params"];
    let state = params["requestState"].as_str().unwrap_or_default();
    let answered = &params["inputResponses"]["name"]["content"]["name"];
    let question = |state: &str| {
        json!({"resultType": "input_required", "requestState": state, "inputRequests": {
            "name": {"method": "elicitation/create", "params": {"message": "Your name?",
                "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}}}}}})
    };
    match (params["name"].as_str(), state) {
        (Some("forever"), _) => question("again"),
        (Some("sample"), _) => json!({"resultType": "input_required", "requestState": "s",
            "inputRequests": {"text": {"method": "sampling/createMessage", "params": {}}}}),
        (_, "") => question("first"),
        (_, "first") if params["arguments"]["twice"] == true => question("second"),
        (_, "first" | "second") => json!({"content": [{"type": "text",
            "text": format!("Hello, {}", answered.as_str().unwrap_or("?"))}],
            "isError": false, "resultType": "complete"}),
        _ => json!({"content": [{"type": "text", "text": "unknown state"}], "isError": true}),
    }
}

/// A handshake-era client that declares elicitation, in front of the asking upstream.
async fn asked_client(harness: &Harness) -> Client {
    let mut client = harness.client();
    let init = client
        .post(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}},
            "clientInfo": {"name": "t", "version": "1"}}}),
        )
        .await;
    assert_eq!(init.status, 200, "{}", init.text);
    client.session = Some(init.headers[SESSION].to_str().unwrap().to_owned());
    client
}

async fn start_asking() -> (Harness, Received) {
    start_asking_with(Limits::default()).await
}

async fn start_asking_with(limits: Limits) -> (Harness, Received) {
    let tools = json!([{"name": "ask", "inputSchema": {"type": "object"}},
        {"name": "forever", "inputSchema": {"type": "object"}},
        {"name": "sample", "inputSchema": {"type": "object"}}]);
    let (url, received) = modern_upstream_calling(tools, ask).await;
    let harness = start_with(Setup {
        upstream: Some(url),
        limits,
        ..Setup::default()
    })
    .await;
    (harness, received)
}

/// The `tools/call` requests the upstream received, in order.
fn tool_calls(received: &Received) -> Vec<Value> {
    received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, m)| m.clone())
        .filter(|m| m["method"] == "tools/call")
        .collect()
}

/// How many calls of the tool `name` the upstream received.
fn calls_of(received: &Received, name: &str) -> usize {
    tool_calls(received)
        .iter()
        .filter(|m| m["params"]["name"] == name)
        .count()
}

/// Starts a call and reads its stream up to the first message.
async fn call(client: &Client, id: i64, name: &str, arguments: Value) -> (SseReader, Value) {
    let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": name, "arguments": arguments}});
    let response = client
        .http
        .post(&client.url)
        .headers(client.headers())
        .body(call.to_string())
        .send()
        .await
        .unwrap();
    let mut stream = SseReader::new(response);
    let first = stream
        .next_message()
        .await
        .expect("a message on the call's stream");
    (stream, first)
}

fn named(question: &Value, name: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": question["id"],
        "result": {"action": "accept", "content": {"name": name}}})
}

#[tokio::test]
async fn each_round_is_an_elicitation_on_the_calls_stream_and_the_call_is_repeated_upstream() {
    let (harness, received) = start_asking().await;
    let client = asked_client(&harness).await;
    let (mut stream, question) = call(&client, 5, "ask", json!({"twice": true})).await;
    assert_eq!(question["method"], "elicitation/create", "{question}");
    assert_eq!(question["params"]["message"], "Your name?");

    // Another session cannot answer it.
    let stranger = asked_client(&harness).await;
    let forged = stranger.post(&named(&question, "Mallory")).await;
    forged.assert_error(400, -32600, "not a question this session was asked");

    let answered = client.post(&named(&question, "Ada")).await;
    assert_eq!(answered.status, 202, "{}", answered.text);
    let again = stream.next_message().await.unwrap();
    assert_eq!(
        again["method"], "elicitation/create",
        "a second round: {again}"
    );
    assert_ne!(again["id"], question["id"]);
    client.post(&named(&again, "Grace")).await;
    let answer = stream.next_message().await.unwrap();
    assert_eq!(answer["id"], 5, "{answer}");
    assert_eq!(answer["result"]["content"][0]["text"], "Hello, Grace");

    let calls = tool_calls(&received);
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(
        calls[0]["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"],
        json!({"elicitation": {}}),
        "the gateway's envelope declares what it can put to the client"
    );
    assert_eq!(calls[1]["params"]["requestState"], "first");
    assert_eq!(
        calls[1]["params"]["inputResponses"]["name"]["content"]["name"],
        "Ada"
    );
    assert_eq!(calls[2]["params"]["requestState"], "second");
    assert!(
        calls.iter().all(|c| c["id"] == 5),
        "the same call: {calls:?}"
    );
}

#[tokio::test]
async fn what_cannot_be_asked_or_is_refused_ends_the_call_with_an_error() {
    let (harness, received) = start_asking().await;
    let client = asked_client(&harness).await;
    let (_, sampled) = call(&client, 6, "sample", json!({})).await;
    assert_eq!(sampled["id"], 6, "{sampled}");
    assert_eq!(sampled["error"]["code"], -32021, "{sampled}");
    assert!(
        sampled["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sampling/createMessage"),
        "{sampled}"
    );

    let (mut stream, question) = call(&client, 7, "ask", json!({})).await;
    let refusal = json!({"jsonrpc": "2.0", "id": question["id"],
        "error": {"code": -1, "message": "the user closed the dialog"}});
    assert_eq!(client.post(&refusal).await.status, 202);
    let answer = stream.next_message().await.unwrap();
    assert_eq!(answer["id"], 7, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the user closed the dialog"),
        "{answer}"
    );
    let asks = calls_of(&received, "ask");
    assert_eq!(asks, 1, "a refused question repeats nothing");
}

/// A client that did not declare elicitation is not asked: the gateway declares nothing for
/// it, and the upstream's own answer (here its round) is what the client gets.
#[tokio::test]
async fn a_client_without_elicitation_is_not_asked() {
    let (harness, received) = start_asking().await;
    let mut client = harness.client();
    client.initialize().await;
    let answer = client.call_tool("ask", json!({})).await;
    let messages = match answer.body.is_object() {
        true => vec![answer.body.clone()],
        false => sse_messages(&answer.text),
    };
    assert!(
        messages.iter().all(|m| m.get("method").is_none()),
        "no question: {}",
        answer.text
    );
    assert_eq!(
        messages.last().unwrap()["result"]["resultType"],
        "input_required"
    );
    let first = tool_calls(&received).remove(0);
    assert_eq!(
        first["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"],
        json!({})
    );
}

/// A question nobody answers in `--input-round-secs` ends the call with an error saying so, and
/// the call is not repeated.
#[tokio::test]
async fn a_question_not_answered_in_time_ends_the_call() {
    let (harness, received) = start_asking_with(Limits {
        input_round_timeout: Duration::ZERO,
        ..Limits::default()
    })
    .await;
    let client = asked_client(&harness).await;
    let (mut stream, question) = call(&client, 8, "ask", json!({})).await;
    assert_eq!(question["method"], "elicitation/create", "{question}");
    let answer = stream.next_message().await.unwrap();
    assert_eq!(answer["id"], 8, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--input-round-secs"),
        "{answer}"
    );
    let late = client.post(&named(&question, "Ada")).await;
    late.assert_error(400, -32600, "not a question this session was asked");
    let asks = calls_of(&received, "ask");
    assert_eq!(asks, 1);
}

/// An upstream that asks without end is cut off after eight rounds.
#[tokio::test]
async fn an_upstream_that_asks_without_end_is_cut_off() {
    let (harness, received) = start_asking().await;
    let client = asked_client(&harness).await;
    let (mut stream, mut message) = call(&client, 9, "forever", json!({})).await;
    let mut asked = 0;
    while message["method"] == "elicitation/create" {
        asked += 1;
        assert_eq!(client.post(&named(&message, "Ada")).await.status, 202);
        message = stream.next_message().await.unwrap();
    }
    assert_eq!(asked, 8, "{message}");
    assert_eq!(message["id"], 9, "{message}");
    assert!(
        message["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than 8 times"),
        "{message}"
    );
    let calls = calls_of(&received, "forever");
    assert_eq!(calls, 9, "the first call and eight repeats");
}
