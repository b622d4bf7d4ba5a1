//! The legacy HTTP+SSE transport with access tokens: the session behind a stream keeps the
//! scopes of the token that opened the stream, as a streamable HTTP session keeps its
//! initialize's, and each message must come with a token of the same agent granting them.

use serde_json::{json, Value};

use crate::common::legacy::LegacyStream;
use crate::world::{challenge, World};

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {},
        "clientInfo": {"name": "legacy", "version": "1"}}})
}

/// Initializes the stream's session with `token`; returns the stream to read further answers.
async fn initialized(stream: &mut LegacyStream, token: &str) {
    let accepted = stream.post(Some(token), &initialize()).await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    let answer = stream
        .reader
        .next_message()
        .await
        .expect("initialize's answer");
    assert!(answer["result"]["serverInfo"].is_object(), "{answer}");
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(stream.post(Some(token), &note).await.status, 202);
}

/// Sends a request on the stream and reads its answer there.
async fn ask(
    stream: &mut LegacyStream,
    token: &str,
    id: i64,
    method: &str,
    params: Value,
) -> Value {
    let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let accepted = stream.post(Some(token), &request).await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    let answer = stream.reader.next_message().await.expect("an answer");
    assert_eq!(answer["id"], id, "{answer}");
    answer
}

#[tokio::test]
async fn a_legacy_session_is_judged_by_the_scopes_of_the_token_that_opened_it() {
    let world = World::start().await;
    let narrow = world.token_for("research-bot", "mcp");
    let mut stream = LegacyStream::open(&world.harness, Some(&narrow)).await;
    initialized(&mut stream, &narrow).await;

    let listed = ask(&mut stream, &narrow, 1, "tools/list", json!({})).await;
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["get_price"], "get_order_book needs `orders`");
    let call = json!({"name": "get_order_book", "arguments": {"symbol": "BTCUSDT"}});
    let refused = ask(&mut stream, &narrow, 2, "tools/call", call).await;
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    let text = refused["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("lacks the scope orders"), "{text}");
    assert_eq!(world.simulator.tool_calls("get_order_book"), 0);
}

#[tokio::test]
async fn a_legacy_stream_takes_messages_only_with_a_token_of_its_agent_and_scopes() {
    let world = World::start().await;
    let wide = world.token();
    let mut stream = LegacyStream::open(&world.harness, Some(&wide)).await;

    let narrower = stream
        .post(Some(&world.token_for("research-bot", "mcp")), &initialize())
        .await;
    assert_eq!(narrower.status, 403, "{}", narrower.text);
    assert!(challenge(&narrower).contains(r#"error="insufficient_scope", scope="mcp""#));
    let other_agent = stream
        .post(
            Some(&world.token_for("other-bot", "mcp orders")),
            &initialize(),
        )
        .await;
    other_agent.assert_error(404, -32001, "session not found");
    assert!(
        world.simulator.received().is_empty(),
        "a refused message reached the upstream"
    );

    initialized(&mut stream, &wide).await;
    let call = json!({"name": "get_order_book", "arguments": {"symbol": "BTCUSDT"}});
    let answer = ask(&mut stream, &wide, 1, "tools/call", call).await;
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    assert_eq!(world.simulator.tool_calls("get_order_book"), 1);
}
