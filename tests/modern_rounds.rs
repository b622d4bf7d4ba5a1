//! A handshake-era upstream's questions during a call, put to an MCP 2026-07-28 client as
//! input-required rounds (`exchange/rounds.rs`): the question in `inputRequests`, the client's
//! retry with `inputResponses` and `requestState` policed and its answer sent upstream as the
//! response to the question, the final result relayed under the retry's id. The official Python
//! client doing the same against server-everything is in `sdk_clients.rs`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use common::modern::*;
use common::*;
use serde_json::{json, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

const ADA_KEY: &str = "k-ada-0123456789";
const EVE_KEY: &str = "k-eve-0123456789";

fn agent(name: &str, key: &str) -> String {
    format!(
        "{name}=sha256:{}",
        hex::encode(mcpgate::auth::digest_of(key))
    )
}

/// A call this test's upstream answers from the stream it keeps open.
type OpenCall = Arc<Mutex<Option<(Value, UnboundedSender<Value>)>>>;

/// A handshake-era upstream whose `ask_name` tool asks its client for a name with
/// `elicitation/create` (id `q1`) on the call's stream, then answers `hello NAME`, or `no name`
/// when the answer carries none. Every message it receives comes out of the receiver, in order.
async fn asking_upstream() -> (String, UnboundedReceiver<Value>) {
    let (seen, received) = unbounded_channel();
    let open = OpenCall::default();
    let url = upstream::FakeUpstream::start(move |message| {
        let _ = seen.send(message.clone());
        let open = open.clone();
        async move {
            if message["method"] == "tools/call" {
                let (events, stream) = unbounded_channel();
                let _ = events.send(json!({"jsonrpc": "2.0", "id": "q1",
                    "method": "elicitation/create", "params": {"message": "Your name?",
                    "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}}}}));
                *open.lock().unwrap() = Some((message["id"].clone(), events));
                return Some(upstream::open_sse(stream));
            }
            if message.get("method").is_none() && message["id"] == "q1" {
                let (call, events) = open.lock().unwrap().take()?;
                let text = match message["result"]["content"]["name"].as_str() {
                    Some(name) => format!("hello {name}"),
                    None => "no name".to_owned(),
                };
                let _ = events.send(json!({"jsonrpc": "2.0", "id": call, "result": {
                    "content": [{"type": "text", "text": text}], "isError": false}}));
                return Some(StatusCode::ACCEPTED.into_response());
            }
            None
        }
    })
    .await;
    (url, received)
}

/// `ask_name` from a client declaring `capabilities`, retrying `round` (its state and answer).
async fn ask_name(
    client: &Client,
    id: i64,
    capabilities: &Value,
    arguments: Value,
    round: Option<(&str, Value)>,
) -> Value {
    let mut params = json!({"name": "ask_name", "arguments": arguments});
    if let Some((state, answer)) = round {
        params["inputResponses"] = json!({ state: answer });
        params["requestState"] = json!(state);
    }
    let body = request_declaring(id, "tools/call", params, capabilities.clone());
    let headers = modern_headers(client, "tools/call", Some("ask_name"));
    sse_or_json(&client.post_raw(headers, body).await)
}

fn eliciting() -> Value {
    json!({"elicitation": {}})
}

fn named(name: &str) -> Value {
    json!({"action": "accept", "content": {"name": name}})
}

/// The round's `requestState`, after checking it asks what the upstream asked.
fn round_state(answer: &Value) -> String {
    let result = &answer["result"];
    assert_eq!(result["resultType"], "input_required", "{answer}");
    let state = result["requestState"].as_str().unwrap().to_owned();
    let asked = &result["inputRequests"][&state];
    assert_eq!(asked["method"], "elicitation/create", "{answer}");
    assert_eq!(asked["params"]["message"], "Your name?", "{answer}");
    state
}

/// What the upstream has received so far.
fn received(seen: &mut UnboundedReceiver<Value>) -> Vec<Value> {
    std::iter::from_fn(|| seen.try_recv().ok()).collect()
}

/// Waits for the upstream to receive a message that `wanted` picks (a guard, not a clock: it
/// fails the test rather than waiting forever).
async fn until_received(seen: &mut UnboundedReceiver<Value>, wanted: impl Fn(&Value) -> bool) {
    let found = async {
        while let Some(message) = seen.recv().await {
            if wanted(&message) {
                return;
            }
        }
        panic!("the upstream went away");
    };
    tokio::time::timeout(Duration::from_secs(10), found)
        .await
        .expect("the upstream received it");
}

fn answers_to_q1(messages: &[Value]) -> Vec<&Value> {
    messages
        .iter()
        .filter(|m| m.get("method").is_none() && m["id"] == "q1")
        .collect()
}

/// The upstream's `elicitation/create` reaches the client as a round; its retry carries the
/// answer to the upstream, under the question's id, and gets the tool's result. The retry is
/// the same call: the limit of one call an hour lets it through, and refuses the next call.
#[tokio::test]
async fn an_old_upstreams_elicitation_is_an_input_required_round() {
    let (url, mut seen) = asking_upstream().await;
    let harness = start_with(Setup {
        policy: r#"{"version": "1", "default": "deny", "tools": {
            "ask_name": {"rate_limit": {"max": 1, "window": 3600}}}}"#
            .into(),
        upstream: Some(url),
        ..Setup::default()
    })
    .await;
    let client = harness.client();
    let first = ask_name(&client, 1, &eliciting(), json!({}), None).await;
    assert_eq!(first["id"], 1, "{first}");
    let state = round_state(&first);

    let retry = ask_name(
        &client,
        2,
        &eliciting(),
        json!({}),
        Some((&state, named("Ada"))),
    )
    .await;
    assert_eq!(retry["id"], 2, "answered under the retry's id: {retry}");
    assert_eq!(
        retry["result"]["content"][0]["text"], "hello Ada",
        "{retry}"
    );
    assert_eq!(retry["result"]["resultType"], "complete", "{retry}");

    let messages = received(&mut seen);
    let calls = messages.iter().filter(|m| m["method"] == "tools/call");
    assert_eq!(
        calls.count(),
        1,
        "the retry is no second call: {messages:?}"
    );
    let answers = answers_to_q1(&messages);
    assert_eq!(answers.len(), 1, "{messages:?}");
    assert_eq!(answers[0]["result"], named("Ada"));

    let next = ask_name(&client, 3, &eliciting(), json!({}), None).await;
    assert_eq!(next["result"]["isError"], true, "{next}");
    assert!(next.to_string().contains("Rate limited"), "{next}");
    assert!(received(&mut seen).is_empty());
}

/// A round belongs to its caller and its call: another agent's retry with the state, or the
/// caller's with other arguments, is refused and sends the upstream nothing; the round then
/// still serves its caller.
#[tokio::test]
async fn a_request_state_is_refused_to_another_caller_and_another_call() {
    let (url, mut seen) = asking_upstream().await;
    let harness = start_with(Setup {
        upstream: Some(url),
        agents: vec![agent("ada", ADA_KEY), agent("eve", EVE_KEY)],
        ..Setup::default()
    })
    .await;
    let ada = harness.client().with_key(ADA_KEY);
    let eve = harness.client().with_key(EVE_KEY);
    let arguments = json!({"greeting": "hi"});
    let first = ask_name(&ada, 1, &eliciting(), arguments.clone(), None).await;
    let state = round_state(&first);
    received(&mut seen);

    let stolen = ask_name(
        &eve,
        1,
        &eliciting(),
        arguments.clone(),
        Some((&state, named("Eve"))),
    )
    .await;
    assert_eq!(stolen["error"]["code"], -32602, "{stolen}");
    assert_eq!(
        stolen["error"]["message"],
        "Invalid or expired requestState"
    );
    let other_call = json!({"greeting": "bye"});
    let changed = ask_name(
        &ada,
        2,
        &eliciting(),
        other_call,
        Some((&state, named("Ada"))),
    )
    .await;
    assert_eq!(changed["error"]["code"], -32602, "{changed}");
    let messages = received(&mut seen);
    assert!(answers_to_q1(&messages).is_empty(), "{messages:?}");
    assert!(
        messages.iter().all(|m| m["method"] != "tools/call"),
        "neither retry became a call: {messages:?}"
    );

    let retry = ask_name(
        &ada,
        3,
        &eliciting(),
        arguments,
        Some((&state, named("Ada"))),
    )
    .await;
    assert_eq!(
        retry["result"]["content"][0]["text"], "hello Ada",
        "{retry}"
    );
}

/// A round nobody answers in time ends the upstream's call with `notifications/cancelled`, and
/// its state is no longer good.
#[tokio::test]
async fn an_unanswered_round_cancels_the_upstream_call() {
    let (url, mut seen) = asking_upstream().await;
    let harness = start_with(Setup {
        upstream: Some(url),
        limits: mcpgate::config::Limits {
            input_round_timeout: Duration::ZERO,
            ..Default::default()
        },
        ..Setup::default()
    })
    .await;
    let client = harness.client();
    let state = round_state(&ask_name(&client, 7, &eliciting(), json!({}), None).await);
    // The call went upstream under an id of the gateway's (`exchange/bridge.rs`), which the
    // cancellation names.
    let call_id = std::sync::Mutex::new(Value::Null);
    until_received(&mut seen, |m| {
        if m["method"] == "tools/call" {
            *call_id.lock().unwrap() = m["id"].clone();
        }
        m["method"] == "notifications/cancelled"
            && m["params"]["requestId"] == *call_id.lock().unwrap()
    })
    .await;
    assert_ne!(*call_id.lock().unwrap(), json!(7));
    let late = ask_name(
        &client,
        8,
        &eliciting(),
        json!({}),
        Some((&state, named("Ada"))),
    )
    .await;
    assert_eq!(late["error"]["code"], -32602, "{late}");
    assert!(answers_to_q1(&received(&mut seen)).is_empty());
}

/// The retry is policed on its body: a policy that now denies the call refuses it, and the
/// upstream call is cancelled rather than given the answer.
#[tokio::test]
async fn a_retry_the_policy_now_denies_is_refused_and_the_upstream_call_cancelled() {
    let (url, mut seen) = asking_upstream().await;
    let harness = start_with(Setup {
        policy: r#"{"version": "1", "default": "deny", "tools": {"ask_name": {}}}"#.into(),
        upstream: Some(url),
        ..Setup::default()
    })
    .await;
    let client = harness.client();
    let state = round_state(&ask_name(&client, 1, &eliciting(), json!({}), None).await);
    let denying = r#"{"version": "1", "default": "deny", "tools": {
        "ask_name": {"action": "deny", "reason": "no more names"}}}"#;
    assert_eq!(harness.rewrite_policy(denying).await.rejected, 0);
    let retry = ask_name(
        &client,
        2,
        &eliciting(),
        json!({}),
        Some((&state, named("Ada"))),
    )
    .await;
    assert_eq!(retry["id"], 2);
    assert_eq!(retry["result"]["isError"], true, "{retry}");
    assert!(retry.to_string().contains("no more names"), "{retry}");
    until_received(&mut seen, |m| m["method"] == "notifications/cancelled").await;
    assert!(answers_to_q1(&received(&mut seen)).is_empty());
}

/// A client whose envelope declares no elicitation is not asked: the gateway answers the
/// upstream's question "method not found" and relays what the tool makes of it.
#[tokio::test]
async fn a_client_that_cannot_elicit_is_not_asked() {
    let (url, mut seen) = asking_upstream().await;
    let harness = start_before(url).await;
    let answer = ask_name(&harness.client(), 1, &json!({}), json!({}), None).await;
    assert_eq!(
        answer["result"]["content"][0]["text"], "no name",
        "{answer}"
    );
    let messages = received(&mut seen);
    let answers = answers_to_q1(&messages);
    assert_eq!(answers.len(), 1, "{messages:?}");
    assert_eq!(answers[0]["error"]["code"], -32601);
}

/// A caller holding its most open rounds (`--max-input-rounds-per-agent`, 0 here) is not asked
/// again: the upstream's question is answered with an error naming the bound.
#[tokio::test]
async fn a_caller_at_its_round_cap_is_not_asked() {
    let (url, mut seen) = asking_upstream().await;
    let harness = start_with(Setup {
        upstream: Some(url),
        limits: mcpgate::config::Limits {
            max_input_rounds_per_caller: 0,
            ..Default::default()
        },
        ..Setup::default()
    })
    .await;
    let answer = ask_name(&harness.client(), 1, &eliciting(), json!({}), None).await;
    assert_eq!(
        answer["result"]["content"][0]["text"], "no name",
        "{answer}"
    );
    let messages = received(&mut seen);
    let answers = answers_to_q1(&messages);
    assert_eq!(answers.len(), 1, "{messages:?}");
    assert!(
        answers[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-input-rounds-per-agent"),
        "{messages:?}"
    );
}
