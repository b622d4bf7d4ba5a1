//! MCP 2026-07-28 at the gateway's edge, bridged to the simulator (which speaks 2025-xx only):
//! the per-request envelope and routing headers, `server/discover`, results as 2026-07-28
//! clients read them; and passed through to a fake upstream that speaks 2026-07-28. The
//! official Python client pinned to 2026-07-28, and a Python SDK server speaking it, are in
//! `sdk_clients.rs`.

mod common;

use std::sync::{Arc, Mutex};

use common::modern::*;
use common::*;
use reqwest::header::HeaderValue;
use serde_json::{json, Value};

#[tokio::test]
async fn server_discover_is_answered_from_the_upstreams_initialize() {
    let harness = start(ALLOW_ALL).await;
    let client = harness.client();
    let answer = send(&client, 1, "server/discover", json!({})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let result = &answer.body["result"];
    // Handshake-era only in front of a 2025-xx upstream (`exchange/bridge.rs` says why).
    assert_eq!(
        result["supportedVersions"],
        json!(["2025-03-26", "2025-06-18", "2025-11-25"])
    );
    assert_eq!(
        result["capabilities"]["tools"],
        json!({"listChanged": false})
    );
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "binance-mcp-simulator"
    );
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["ttlMs"], 0);
    assert_eq!(result["cacheScope"], "private");
    assert!(
        answer.headers.get(SESSION).is_none(),
        "no session is issued"
    );
}

#[tokio::test]
async fn results_carry_their_type_and_lists_their_caching() {
    let harness = start(ALLOW_ALL).await;
    let client = harness.client();
    let list = send(&client, 1, "tools/list", json!({})).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body["result"]["resultType"], "complete");
    assert_eq!(list.body["result"]["ttlMs"], 0);
    assert_eq!(list.body["result"]["cacheScope"], "private");
    assert!(list.body["result"]["tools"].as_array().unwrap().len() > 1);
    let call = send(
        &client,
        2,
        "tools/call",
        json!({"name": "get_price", "arguments": {"symbol": "BTCUSDT"}}),
    )
    .await;
    let call = sse_or_json(&call);
    assert_eq!(call["id"], 2);
    assert_eq!(call["result"]["resultType"], "complete");
    assert_eq!(call["result"]["isError"], false);
    assert!(call["result"].get("ttlMs").is_none());
    assert_eq!(harness.simulator.tool_calls("get_price"), 1);
}

#[tokio::test]
async fn a_header_that_disagrees_with_the_body_is_refused_and_nothing_reaches_the_upstream() {
    let harness = start(ALLOW_ALL).await;
    let client = harness.client();
    let call = request(
        1,
        "tools/call",
        json!({"name": "get_price", "arguments": {"symbol": "BTCUSDT"}}),
    );
    let cases = [
        modern_headers(&client, "tools/call", Some("get_ticker")),
        modern_headers(&client, "tools/list", Some("get_price")),
        modern_headers(&client, "tools/call", None),
    ];
    for headers in cases {
        let answer = client.post_raw(headers, call.clone()).await;
        answer.assert_error(400, -32020, "does not match the request body");
        assert_eq!(answer.body["id"], 1);
    }
    let mut other_version = modern_headers(&client, "tools/call", Some("get_price"));
    other_version.insert(
        "mcp-protocol-version",
        HeaderValue::from_static("2025-06-18"),
    );
    other_version.insert(SESSION, HeaderValue::from_static("0123"));
    let answer = client.post_raw(other_version, call.clone()).await;
    assert_eq!(answer.status, 404, "a 2025-06-18 request needs its session");
    assert_eq!(harness.simulator.total_tool_calls(), 0);
    assert!(
        harness.simulator.received().is_empty(),
        "nothing reached the upstream: {:?}",
        harness.simulator.received()
    );
}

#[tokio::test]
async fn a_request_without_its_envelope_is_invalid_params() {
    let harness = start(ALLOW_ALL).await;
    let client = harness.client();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let answer = client
        .post_raw(
            modern_headers(&client, "tools/list", None),
            body.to_string(),
        )
        .await;
    answer.assert_error(400, -32602, "params._meta");
    assert!(harness.simulator.received().is_empty());
}

/// The headers a 2026-07-28 upstream gets are the gateway's, written from the body it
/// forwards: a name the agent sent in another (equivalent) encoding arrives in the canonical
/// one, and headers the gateway did not write (an `Mcp-Param-*` the tool does not declare, a
/// session) never arrive.
#[tokio::test]
async fn a_2026_07_28_upstream_gets_routing_headers_written_from_the_forwarded_body() {
    let (url, received) = modern_upstream(price_tool()).await;
    let harness = start_before(url).await;
    let client = harness.client();
    let mut headers = modern_headers(&client, "tools/call", None);
    // base64 of "get_price": the same name to the edge's check, not what the gateway writes.
    headers.insert(
        "mcp-name",
        HeaderValue::from_static("=?base64?Z2V0X3ByaWNl?="),
    );
    headers.insert("mcp-param-symbol", HeaderValue::from_static("ETHUSDT"));
    let call = client
        .post_raw(
            headers,
            request(
                7,
                "tools/call",
                json!({"name": "get_price", "arguments": {"symbol": "BTCUSDT"}}),
            ),
        )
        .await;
    let call = sse_or_json(&call);
    assert_eq!(call["result"]["content"][0]["text"], "get_price", "{call}");
    let list = send(&client, 8, "tools/list", json!({})).await;
    assert_eq!(
        list.body["result"]["tools"][0]["name"], "get_price",
        "{}",
        list.text
    );
    assert_eq!(
        list.body["result"]["cacheScope"], "private",
        "filtered per caller"
    );
    assert_eq!(list.body["result"]["ttlMs"], 60000);

    let received = received.lock().unwrap().clone();
    let methods: Vec<&str> = received
        .iter()
        .map(|(_, m)| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        ["server/discover", "tools/list", "tools/call", "tools/list"],
        "no initialize; the first list is the gateway's own, learning the tool's annotations"
    );
    for (headers, message) in &received {
        assert_eq!(headers["mcp-protocol-version"], MODERN);
        assert_eq!(headers["mcp-method"], message["method"].as_str().unwrap());
        assert!(headers.get(SESSION).is_none(), "{headers:?}");
        assert!(
            headers
                .keys()
                .all(|name| !name.as_str().starts_with("mcp-param-")),
            "{headers:?}"
        );
        assert_eq!(
            message["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"], MODERN,
            "{message}"
        );
    }
    let (call_headers, call_body) = &received[2];
    assert_eq!(call_headers["mcp-name"], "get_price");
    assert_eq!(
        call_body["params"]["_meta"]["io.modelcontextprotocol/clientInfo"]["name"], "test",
        "the client's envelope is passed on"
    );
    assert!(received[3].0.get("mcp-name").is_none());
}

/// A header/body mismatch is refused at the edge in front of a 2026-07-28 upstream as well:
/// nothing more reaches it.
#[tokio::test]
async fn a_mismatch_in_front_of_a_2026_07_28_upstream_reaches_nothing() {
    let (url, received) = modern_upstream(price_tool()).await;
    let harness = start_before(url).await;
    let client = harness.client();
    let call = request(
        1,
        "tools/call",
        json!({"name": "get_price", "arguments": {}}),
    );
    let first = client
        .post_raw(
            modern_headers(&client, "tools/call", Some("get_price")),
            call.clone(),
        )
        .await;
    assert_eq!(sse_or_json(&first)["result"]["isError"], false);
    let before = received.lock().unwrap().len();
    for headers in [
        modern_headers(&client, "tools/call", Some("get_ticker")),
        modern_headers(&client, "tools/list", Some("get_price")),
    ] {
        let answer = client.post_raw(headers, call.clone()).await;
        answer.assert_error(400, -32020, "does not match the request body");
    }
    assert_eq!(received.lock().unwrap().len(), before);
}

/// An upstream that refuses initialize but answers `server/discover` at 2026-07-28 is ready.
#[tokio::test]
async fn a_2026_07_28_only_upstream_is_ready() {
    let (url, received) = modern_upstream(price_tool()).await;
    let harness = start_before(url).await;
    let ready = reqwest::get(format!("{}/readyz", harness.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    let methods: Vec<Value> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, m)| m["method"].clone())
        .collect();
    assert_eq!(methods, ["initialize", "server/discover"]);
}

/// A handshake-era client in front of a 2026-07-28-only upstream: initialize is answered by the
/// gateway from the upstream's `server/discover`, and each request goes as a 2026-07-28 one with
/// the gateway's envelope; notifications stay here, and GET has no stream to offer.
#[tokio::test]
async fn a_handshake_client_is_served_by_a_2026_07_28_only_upstream() {
    let (url, received) = modern_upstream(price_tool()).await;
    let harness = start_before(url).await;
    let mut client = harness.client();
    let opened = client.initialize().await;
    assert_eq!(opened["result"]["protocolVersion"], VERSION, "{opened}");
    assert_eq!(
        opened["result"]["serverInfo"]["name"], "fake-modern",
        "{opened}"
    );
    assert_eq!(client.tool_names().await, ["get_price"]);
    let call = client
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    assert_eq!(
        call.body["result"]["content"][0]["text"], "get_price",
        "{}",
        call.text
    );
    let stream = client
        .http
        .get(&harness.url)
        .headers(client.headers())
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 405);
    // The upstream's 404 means "method not found" here, not "session gone": the client gets
    // the error under 200 and its session goes on.
    let unknown = client.request("prompts/list", json!({})).await;
    unknown.assert_error(200, -32601, "Method not found");
    let again = client.call_tool("get_price", json!({})).await;
    assert_eq!(again.body["result"]["isError"], false, "{}", again.text);

    let received = received.lock().unwrap().clone();
    let methods: Vec<&str> = received
        .iter()
        .map(|(_, m)| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        [
            "initialize",
            "server/discover",
            "tools/list",
            "tools/call",
            "prompts/list",
            "tools/call"
        ]
    );
    for (headers, message) in &received[2..] {
        assert_eq!(headers["mcp-protocol-version"], MODERN);
        assert_eq!(headers["mcp-method"], message["method"].as_str().unwrap());
        assert!(headers.get(SESSION).is_none());
        let meta = &message["params"]["_meta"];
        assert_eq!(
            meta["io.modelcontextprotocol/protocolVersion"], MODERN,
            "{message}"
        );
        assert_eq!(
            meta["io.modelcontextprotocol/clientInfo"]["name"], "mcpgate",
            "{message}"
        );
    }
    assert_eq!(received[3].0["mcp-name"], "get_price");
}

/// How many GET streams the listening upstream opened.
static LISTENED_GETS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A 2025-xx upstream whose session GET stream sends one of each change notification (and a
/// log line, and a ping), then ends; it takes `resources/subscribe` and records what it got.
async fn upstream_with_changes() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let seen = received.clone();
    let url = upstream::FakeUpstream::start_with_stream(
        move |message| {
            seen.lock().unwrap().push(message.clone());
            async move {
                (message["method"] == "resources/subscribe")
                    .then(|| upstream::result(&message, json!({})))
            }
        },
        || {
            LISTENED_GETS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let note = |method: &str, params: Value| {
                json!({"jsonrpc": "2.0", "method": method, "params": params})
            };
            upstream::sse(&[
                note("notifications/message", json!({"level": "info", "data": "log"})),
                json!({"jsonrpc": "2.0", "id": "up-1", "method": "ping"}),
                note("notifications/tools/list_changed", json!({})),
                note("notifications/prompts/list_changed", json!({})),
                note("notifications/resources/updated", json!({"uri": "file:///b"})),
                note("notifications/resources/updated", json!({"uri": "file:///a"})),
            ])
        },
    )
    .await;
    (url, received)
}

fn listen_request(id: i64, notifications: Value) -> String {
    request(
        id,
        "subscriptions/listen",
        json!({"notifications": notifications}),
    )
}

/// `subscriptions/listen` in front of a 2025-xx upstream is its session's GET stream, read
/// through the listen filter: the acknowledgment first, then only the kinds asked for (a
/// resource's updates once its `resources/subscribe` went through), each stamped with the
/// subscription id, and the listen request's result when the upstream ends its stream.
#[tokio::test]
async fn a_listen_stream_relays_what_it_asked_for_from_the_upstreams_get_stream() {
    let (url, received) = upstream_with_changes().await;
    let harness = start_with(Setup {
        policy: r#"{"version": "1", "default": "deny", "tools": {},
            "methods": {"subscriptions/listen": {}, "resources/subscribe": {}}}"#
            .into(),
        upstream: Some(url),
        ..Setup::default()
    })
    .await;
    let client = harness.client();
    let answer = client
        .post_raw(
            modern_headers(&client, "subscriptions/listen", None),
            listen_request(
                5,
                json!({"toolsListChanged": true, "resourceSubscriptions": ["file:///a"]}),
            ),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let frames = sse_messages(&answer.text);
    let methods: Vec<&str> = frames
        .iter()
        .map(|f| f["method"].as_str().unwrap_or("(result)"))
        .collect();
    assert_eq!(
        methods,
        [
            "notifications/subscriptions/acknowledged",
            "notifications/tools/list_changed",
            "notifications/resources/updated",
            "(result)"
        ],
        "{}",
        answer.text
    );
    assert_eq!(
        frames[0]["params"]["notifications"],
        json!({"toolsListChanged": true, "resourceSubscriptions": ["file:///a"]})
    );
    assert_eq!(frames[2]["params"]["uri"], "file:///a");
    for frame in &frames[..3] {
        assert_eq!(
            frame["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 5,
            "{frame}"
        );
    }
    assert_eq!(frames[3]["id"], 5);
    assert_eq!(
        frames[3]["result"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        5
    );
    let received = received.lock().unwrap().clone();
    let subscribe = received
        .iter()
        .find(|m| m["method"] == "resources/subscribe")
        .expect("the resource was subscribed to upstream");
    assert_eq!(subscribe["params"]["uri"], "file:///a");
    let pong = received
        .iter()
        .find(|m| m["id"] == "up-1")
        .expect("the upstream's ping was answered");
    assert_eq!(pong["result"], json!({}));
}

/// Listen is a request like any other: under default deny without a rule it is refused and no
/// upstream stream is opened; a resource whose `resources/subscribe` the policy refuses is
/// left out of the acknowledgment and its updates out of the stream.
#[tokio::test]
async fn listen_and_its_resource_subscriptions_are_policed() {
    let (url, received) = upstream_with_changes().await;
    let harness = start_with(Setup {
        policy: r#"{"version": "1", "default": "deny", "tools": {}}"#.into(),
        upstream: Some(url),
        ..Setup::default()
    })
    .await;
    let client = harness.client();
    let ask = |id| {
        client.post_raw(
            modern_headers(&client, "subscriptions/listen", None),
            listen_request(
                id,
                json!({"promptsListChanged": true, "resourceSubscriptions": ["file:///a"]}),
            ),
        )
    };
    let gets = LISTENED_GETS.load(std::sync::atomic::Ordering::SeqCst);
    let refused = sse_or_json(&ask(1).await);
    assert_eq!(refused["error"]["code"], -32003, "{refused}");
    // Other tests share the counter, but none of theirs can be opened by this gateway.
    assert!(received
        .lock()
        .unwrap()
        .iter()
        .all(|m| m["method"] != "resources/subscribe"));

    harness
        .rewrite_policy(
            r#"{"version": "1", "default": "deny", "tools": {},
            "methods": {"subscriptions/listen": {}, "resources/subscribe": {"action": "deny"}}}"#,
        )
        .await;
    let answer = ask(2).await;
    let frames = sse_messages(&answer.text);
    assert_eq!(
        frames[0]["params"]["notifications"],
        json!({"promptsListChanged": true}),
        "{}",
        answer.text
    );
    assert_eq!(frames[1]["method"], "notifications/prompts/list_changed");
    assert_eq!(
        frames.len(),
        3,
        "the prompt change and the close only: {}",
        answer.text
    );
    assert!(LISTENED_GETS.load(std::sync::atomic::Ordering::SeqCst) > gets);
    assert!(received
        .lock()
        .unwrap()
        .iter()
        .all(|m| m["method"] != "resources/subscribe"));
}

/// The gateway's own `list_changed` (a policy change alters what the caller may see) reaches a
/// listen stream as it reaches a GET stream, here in front of an upstream with no GET stream.
#[tokio::test]
async fn every_listen_stream_of_a_caller_carries_the_gateways_own_list_changed() {
    let harness = start(
        r#"{"version": "1", "default": "allow", "tools": {}, "methods": {"subscriptions/listen": {}}}"#,
    )
    .await;
    let client = harness.client();
    // The gateway tells a caller of changes to what it was listed.
    let list = send(&client, 1, "tools/list", json!({})).await;
    assert!(list.text.contains("get_price"), "{}", list.text);
    // Two streams of one caller (one bridged session): each hears the change.
    let mut streams = Vec::new();
    for id in [3, 4] {
        let response = client
            .http
            .post(&harness.url)
            .headers(modern_headers(&client, "subscriptions/listen", None))
            .body(listen_request(id, json!({"toolsListChanged": true})))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut frames = SseReader::new(response);
        let ack = frames.next_message().await.unwrap();
        assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
        assert_eq!(
            ack["params"]["notifications"],
            json!({"toolsListChanged": true})
        );
        streams.push((id, frames));
    }
    let status = harness
        .rewrite_policy(
            r#"{"version": "1", "default": "allow", "tools": {"get_price": {"action": "deny"}},
            "methods": {"subscriptions/listen": {}}}"#,
        )
        .await;
    assert_eq!(status.applied, 1);
    for (id, frames) in &mut streams {
        // A guard against a hang, not a timing assert: the change comes as soon as it applies.
        let changed =
            tokio::time::timeout(std::time::Duration::from_secs(10), frames.next_message())
                .await
                .unwrap_or_else(|_| panic!("listen stream {id} carried no list_changed"))
                .unwrap();
        assert_eq!(changed["method"], "notifications/tools/list_changed");
        assert_eq!(
            changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
            *id
        );
    }
}

/// A listen request's answer is a stream: a client that takes only JSON is told so (406).
#[tokio::test]
async fn listen_needs_a_client_that_takes_a_stream() {
    let harness = start(ALLOW_ALL).await;
    let client = harness.client().json_only();
    let answer = client
        .post_raw(
            modern_headers(&client, "subscriptions/listen", None),
            listen_request(1, json!({"toolsListChanged": true})),
        )
        .await;
    answer.assert_error(406, -32600, "text/event-stream");
}

/// The callers of one agent share its bridged upstream session, and each numbers its own
/// requests: two sending the same id at once reach the upstream under distinct ids of the
/// gateway's, and each gets its own answer under its own id.
#[tokio::test]
async fn callers_sharing_a_bridged_session_may_use_the_same_id() {
    let harness = start(ALLOW_ALL).await;
    let (first, second) = (harness.client(), harness.client());
    let price = |client: &Client, symbol: &str| {
        let body = request(
            1,
            "tools/call",
            json!({"name": "get_24hr_ticker", "arguments": {"symbol": symbol}}),
        );
        let headers = modern_headers(client, "tools/call", Some("get_24hr_ticker"));
        let client = client.clone();
        async move { client.post_raw(headers, body).await }
    };
    let (btc, eth) = tokio::join!(price(&first, "BTCUSDT"), price(&second, "ETHUSDT"));
    for (answer, symbol) in [(btc, "BTCUSDT"), (eth, "ETHUSDT")] {
        let answer = sse_or_json(&answer);
        assert_eq!(answer["id"], 1, "{answer}");
        assert!(answer["result"].to_string().contains(symbol), "{answer}");
    }
    let ids: Vec<Value> = harness
        .simulator
        .received()
        .into_iter()
        .filter(|m| m["method"] == "tools/call")
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_ne!(ids[0], ids[1], "{ids:?}");
    assert!(ids.iter().all(|id| *id != json!(1)), "{ids:?}");
}
