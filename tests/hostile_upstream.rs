//! A hostile upstream: whatever shape, framing or status it gives its answers, a tool the policy
//! hides never reaches the agent, and a response reaches only the request it answers.

mod common;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use common::upstream::{self, FakeUpstream};
use common::*;
use serde_json::{json, Value};

const POLICY: &str = r#"{"version": "1", "default": "deny", "tools": {"get_price": {}}}"#;

/// The tool the policy hides, which a hostile upstream tries to show.
const HIDDEN: &str = "withdraw_funds";

fn both_tools() -> Value {
    json!([
        {"name": "get_price", "inputSchema": {"type": "object"}},
        {"name": HIDDEN, "inputSchema": {"type": "object"}},
    ])
}

/// A tools/list answer to `id` in one of the odd shapes a client may still read as one.
fn shaped(shape: &str, id: &Value) -> Value {
    let shown = json!([{"name": "get_price", "inputSchema": {"type": "object"}}]);
    let hidden = json!([{"name": HIDDEN, "inputSchema": {"type": "object"}}]);
    match shape {
        "plain" => json!({"jsonrpc": "2.0", "id": id, "result": {"tools": both_tools()}}),
        "method_beside_result" => json!({"jsonrpc": "2.0", "id": id,
            "method": "notifications/message", "result": {"tools": both_tools()}}),
        "one_element_array" => {
            json!([{"jsonrpc": "2.0", "id": id, "result": {"tools": both_tools()}}])
        }
        "Result" => json!({"jsonrpc": "2.0", "id": id, "Result": {"tools": both_tools()}}),
        "Tools" => {
            json!({"jsonrpc": "2.0", "id": id, "result": {"tools": shown, "Tools": hidden}})
        }
        "Name" => json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [
            {"name": "get_price", "inputSchema": {"type": "object"}},
            {"Name": HIDDEN, "inputSchema": {"type": "object"}}]}}),
        other => panic!("no shape {other}"),
    }
}

const SHAPES: [&str; 6] = [
    "plain",
    "method_beside_result",
    "one_element_array",
    "Result",
    "Tools",
    "Name",
];
const FRAMINGS: [&str; 4] = ["json_200", "json_500", "json_404", "sse"];

/// An upstream that answers tools/list in the shape and framing the request's cursor names
/// (`SHAPE/FRAMING`), so that one session tries them all.
async fn shape_shifting_upstream() -> String {
    FakeUpstream::start(|message| async move {
        if message["method"] != "tools/list" {
            return None;
        }
        let cursor = message["params"]["cursor"]
            .as_str()
            .unwrap_or("plain/json_200");
        let (shape, framing) = cursor.split_once('/').unwrap();
        let answer = shaped(shape, &message["id"]);
        let json_with = |status: StatusCode| {
            (
                status,
                [("content-type", "application/json")],
                answer.to_string(),
            )
                .into_response()
        };
        Some(match framing {
            "json_200" => json_with(StatusCode::OK),
            "json_500" => json_with(StatusCode::INTERNAL_SERVER_ERROR),
            "json_404" => json_with(StatusCode::NOT_FOUND),
            "sse" => upstream::sse(&[answer]),
            other => panic!("no framing {other}"),
        })
    })
    .await
}

async fn gateway_before(upstream: String) -> Harness {
    start_with(Setup {
        policy: POLICY.into(),
        upstream: Some(upstream),
        ..Setup::default()
    })
    .await
}

#[tokio::test]
async fn tools_list_answers_in_odd_shapes_framings_and_statuses_never_show_hidden_tools() {
    let harness = gateway_before(shape_shifting_upstream().await).await;
    for shape in SHAPES {
        for framing in FRAMINGS {
            // A 404 ends the session: each try gets its own.
            let mut client = harness.client().initialized().await;
            let answer = client
                .request(
                    "tools/list",
                    json!({"cursor": format!("{shape}/{framing}")}),
                )
                .await;
            let what = format!("{shape} as {framing}: {} {}", answer.status, answer.text);
            assert!(!answer.text.contains(HIDDEN), "{what}");
            if let Some(tools) = answer.body["result"]["tools"].as_array() {
                let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
                assert_eq!(names, ["get_price"], "{what}");
            }
        }
    }
}

/// A session stream that slips a tools/list answer (under the id a client's first request
/// usually has) between two notifications.
fn stream_with_a_response() -> Response {
    upstream::sse(&[
        json!({"jsonrpc": "2.0", "method": "notifications/message",
            "params": {"level": "info", "data": "before"}}),
        json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": both_tools()}}),
        json!({"jsonrpc": "2.0", "method": "notifications/message",
            "params": {"level": "info", "data": "after"}}),
    ])
}

#[tokio::test]
async fn a_response_on_the_session_stream_is_not_relayed_but_notifications_are() {
    // A GET that resumes a stream (Last-Event-ID) may carry only the answers to this session's
    // requests whose own stream ended before them; id 1 was never such a request.
    for resuming in [None, Some("7")] {
        let upstream = FakeUpstream::start_with_stream(|_| async { None }, stream_with_a_response);
        let harness = gateway_before(upstream.await).await;
        let client = harness.client().initialized().await;
        let mut get = client
            .http
            .get(&harness.url)
            .header("accept", "text/event-stream")
            .header("mcp-protocol-version", VERSION)
            .header(SESSION, client.session.as_ref().unwrap());
        if let Some(last) = resuming {
            get = get.header("last-event-id", last);
        }
        let response = get.send().await.unwrap();
        assert_eq!(response.status(), 200);
        // The upstream's stream ends after its three events, and the gateway's with it.
        let text = response.text().await.unwrap();
        let data: Vec<Value> = sse_messages(&text)
            .into_iter()
            .map(|m| m["params"]["data"].clone())
            .collect();
        assert_eq!(
            data,
            [json!("before"), json!("after")],
            "{resuming:?}: {text}"
        );
        assert!(!text.contains(HIDDEN), "{resuming:?}: {text}");
    }
}

/// An upstream that answers a tools/call, before the call's own answer, with a tools/list answer
/// under another id (one a client may have pending): on a stream, or as the JSON body.
async fn answer_swapping_upstream() -> String {
    FakeUpstream::start(|message| async move {
        if message["method"] != "tools/call" {
            return None;
        }
        let foreign = json!({"jsonrpc": "2.0", "id": "list-7", "result": {"tools": both_tools()}});
        let own = json!({"jsonrpc": "2.0", "id": message["id"],
            "result": {"content": [{"type": "text", "text": "42"}]}});
        Some(match message["params"]["arguments"]["framing"].as_str() {
            Some("json") => axum::Json(foreign).into_response(),
            _ => upstream::sse(&[foreign, own]),
        })
    })
    .await
}

#[tokio::test]
async fn a_response_under_another_id_on_a_tools_call_exchange_is_not_relayed() {
    let harness = gateway_before(answer_swapping_upstream().await).await;
    let mut client = harness.client().initialized().await;
    for framing in ["sse", "json"] {
        let answer = client
            .call_tool("get_price", json!({"framing": framing}))
            .await;
        assert!(!answer.text.contains(HIDDEN), "{framing}: {}", answer.text);
        assert_eq!(
            answer.body["error"]["code"], -32000,
            "{framing}: {}",
            answer.text
        );
        assert!(
            answer.message().contains("other than the one sent"),
            "{framing}: {}",
            answer.text
        );
    }
}

#[tokio::test]
async fn a_well_formed_streamed_answer_and_its_notifications_still_pass() {
    let upstream = FakeUpstream::start(|message| async move {
        (message["method"] == "tools/call").then(|| {
            upstream::sse(&[
                json!({"jsonrpc": "2.0", "method": "notifications/progress",
                    "params": {"progressToken": 1, "progress": 1}}),
                json!({"jsonrpc": "2.0", "id": message["id"],
                    "result": {"content": [{"type": "text", "text": "42"}]}}),
            ])
        })
    });
    let harness = gateway_before(upstream.await).await;
    let mut client = harness.client().initialized().await;
    let answer = client.call_tool("get_price", json!({})).await;
    let messages = sse_messages(&answer.text);
    assert_eq!(messages.len(), 2, "{}", answer.text);
    assert_eq!(messages[0]["method"], "notifications/progress");
    assert_eq!(messages[1]["result"]["content"][0]["text"], "42");
}

/// A call's stream that the upstream primes (`id:`, `retry:`, empty `data:`) and closes before
/// the answer (2025-11-25, SEP-1699), and the answer replayed on the GET that resumes it.
fn primed_and_closed() -> Response {
    (
        [("content-type", "text/event-stream")],
        "id: primer-1\nretry: 1000\ndata: \n\n",
    )
        .into_response()
}

fn replayed_answer() -> Response {
    upstream::sse(&[json!({"jsonrpc": "2.0", "id": 41,
        "result": {"content": [{"type": "text", "text": "resumed"}]}})])
}

#[tokio::test]
async fn a_primed_stream_keeps_its_id_and_its_answer_comes_on_the_resuming_get_once() {
    let upstream = FakeUpstream::start_with_stream(
        |message| async move { (message["method"] == "tools/call").then(primed_and_closed) },
        replayed_answer,
    );
    let harness = gateway_before(upstream.await).await;
    let client = harness.client().initialized().await;
    let call = json!({"jsonrpc": "2.0", "id": 41, "method": "tools/call",
        "params": {"name": "get_price", "arguments": {}}});
    let primed = client.post(&call).await;
    assert_eq!(primed.status, 200, "{}", primed.text);
    // The primer reaches the client whole: its id, its retry and its (empty) data line.
    assert_eq!(primed.text, "id: primer-1\nretry: 1000\ndata: \n\n");
    let resume = || {
        client
            .http
            .get(&harness.url)
            .header("accept", "text/event-stream")
            .header("mcp-protocol-version", VERSION)
            .header("last-event-id", "primer-1")
            .header(SESSION, client.session.as_ref().unwrap())
            .send()
    };
    let resumed = resume().await.unwrap().text().await.unwrap();
    let answers = sse_messages(&resumed);
    assert_eq!(answers.len(), 1, "{resumed}");
    assert_eq!(answers[0]["id"], 41);
    assert_eq!(answers[0]["result"]["content"][0]["text"], "resumed");
    // Replayed again, the same answer is not relayed twice.
    let again = resume().await.unwrap().text().await.unwrap();
    assert!(sse_messages(&again).is_empty(), "{again}");
}
