//! The simulated Binance MCP server over a real socket: sessions, tool listing and calls, SSE
//! progress, stream subscriptions and what it records.

use std::time::Duration;

use binance_sim::{catalogue, Simulator, SimulatorOptions, PROGRESS_STEPS};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::net::TcpListener;

const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// A simulator serving on an ephemeral port, and a client for it.
struct Upstream {
    url: String,
    simulator: Simulator,
    http: reqwest::Client,
}

async fn start(options: SimulatorOptions) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let simulator = Simulator::new(options);
    // The socket is already listening, so requests queue until the server accepts them.
    tokio::spawn(simulator.clone().serve(listener));
    Upstream {
        url,
        simulator,
        http: reqwest::Client::new(),
    }
}

async fn start_default() -> Upstream {
    start(SimulatorOptions {
        record: true,
        ..SimulatorOptions::default()
    })
    .await
}

impl Upstream {
    async fn post_with(
        &self,
        session: Option<&str>,
        accept: &str,
        body: &Value,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(&self.url)
            .header("accept", accept)
            .json(body);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send().await.unwrap()
    }

    async fn post(&self, session: Option<&str>, body: &Value) -> reqwest::Response {
        self.post_with(session, ACCEPT_BOTH, body).await
    }

    /// Initializes a session and sends `notifications/initialized`; returns the session id.
    async fn session(&self) -> String {
        let response = self.post(None, &initialize_request("2025-06-18")).await;
        assert_eq!(response.status(), StatusCode::OK);
        let session = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(
            self.post(Some(&session), &initialized).await.status(),
            StatusCode::ACCEPTED
        );
        session
    }

    /// One request's JSON-RPC response (from a JSON body or the last event of an SSE body).
    async fn request(&self, session: &str, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = self.post(Some(session), &body).await;
        assert_eq!(response.status(), StatusCode::OK);
        messages(response).await.pop().unwrap()
    }

    /// A `tools/call` result.
    async fn call(&self, session: &str, tool: &str, arguments: Value) -> Value {
        let response = self
            .request(
                session,
                "tools/call",
                json!({"name": tool, "arguments": arguments}),
            )
            .await;
        response["result"].clone()
    }
}

fn initialize_request(version: &str) -> Value {
    json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
    })
}

/// The JSON-RPC messages of a response: its JSON body, or the `data` of each SSE event.
async fn messages(response: reqwest::Response) -> Vec<Value> {
    let sse = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream");
    let text = response.text().await.unwrap();
    if !sse {
        return vec![serde_json::from_str(&text).unwrap()];
    }
    sse_events(&text)
        .into_iter()
        .map(|(_, data)| data)
        .collect()
}

/// `(id, data)` of each SSE event, in order.
fn sse_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            let field = |name: &str| {
                event
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .unwrap_or_default()
                    .to_owned()
            };
            assert_eq!(field("event: "), "message");
            (
                field("id: "),
                serde_json::from_str(&field("data: ")).unwrap(),
            )
        })
        .collect()
}

/// The JSON a tool returned, parsed from its text content.
fn data(result: &Value) -> Value {
    assert_eq!(result["isError"], false, "tool failed: {result}");
    serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap()
}

fn error_text(result: &Value) -> &str {
    assert_eq!(result["isError"], true, "tool succeeded: {result}");
    result["content"][0]["text"].as_str().unwrap()
}

#[tokio::test]
async fn initialize_opens_a_session_with_the_negotiated_version() {
    let upstream = start_default().await;
    for (requested, negotiated) in [
        ("2025-03-26", "2025-03-26"),
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("2024-11-05", "2025-11-25"),
    ] {
        let response = upstream.post(None, &initialize_request(requested)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let session = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(session.len() >= 32 && session.bytes().all(|b| b.is_ascii_graphic()));
        let answer = messages(response).await.pop().unwrap();
        assert_eq!(answer["id"], 0);
        assert_eq!(answer["result"]["protocolVersion"], negotiated);
        assert_eq!(
            answer["result"]["capabilities"]["tools"]["listChanged"],
            false
        );
        assert_eq!(
            answer["result"]["serverInfo"]["name"],
            "binance-mcp-simulator"
        );
    }
    assert_eq!(upstream.simulator.session_count(), 4);
}

#[tokio::test]
async fn request_without_session_is_400_and_unknown_session_is_404() {
    let upstream = start_default().await;
    let ping = json!({"jsonrpc": "2.0", "id": 5, "method": "ping"});

    let missing = upstream.post(None, &ping).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["id"], 5);
    assert!(body["error"]["code"].is_i64());

    let unknown = upstream
        .post(Some("0123456789abcdef0123456789abcdef"), &ping)
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let body: Value = unknown.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Session"));
}

#[tokio::test]
async fn notifications_and_responses_are_accepted_with_202() {
    let upstream = start_default().await;
    let session = upstream.session().await;
    let cancelled =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}});
    let response = upstream.post(Some(&session), &cancelled).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!(response.text().await.unwrap().is_empty());
    let reply = json!({"jsonrpc": "2.0", "id": "server-1", "result": {}});
    assert_eq!(
        upstream.post(Some(&session), &reply).await.status(),
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn ping_unknown_methods_and_malformed_bodies() {
    let upstream = start_default().await;
    let session = upstream.session().await;
    assert_eq!(
        upstream.request(&session, "ping", json!({})).await["result"],
        json!({})
    );
    let unknown = upstream
        .request(&session, "resources/list", json!({}))
        .await;
    assert_eq!(unknown["error"]["code"], -32601);

    let malformed = upstream
        .http
        .post(&upstream.url)
        .header("content-type", "application/json")
        .header("mcp-session-id", &session)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        malformed.json::<Value>().await.unwrap()["error"]["code"],
        -32700
    );

    let wrong_version = upstream
        .http
        .post(&upstream.url)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "1999-01-01")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_version.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn tools_list_has_the_29_catalogued_tools_and_schemas() {
    let upstream = start_default().await;
    let session = upstream.session().await;
    let answer = upstream.request(&session, "tools/list", json!({})).await;
    let tools = answer["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 29);
    assert!(answer["result"].get("nextCursor").is_none());
    for (listed, catalogued) in tools.iter().zip(catalogue()) {
        assert_eq!(listed["name"], catalogued.name.as_str());
        assert_eq!(listed["description"], catalogued.summary.as_str());
        assert_eq!(listed["inputSchema"], catalogued.input_schema);
    }
}

#[tokio::test]
async fn tools_list_pages_with_page_size() {
    let upstream = start(SimulatorOptions {
        page_size: Some(8),
        ..SimulatorOptions::default()
    })
    .await;
    let session = upstream.session().await;
    let mut names = Vec::new();
    let mut params = json!({});
    let mut pages = 0;
    loop {
        let answer = upstream.request(&session, "tools/list", params).await;
        pages += 1;
        let result = &answer["result"];
        names.extend(
            result["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned()),
        );
        match result.get("nextCursor") {
            Some(cursor) => params = json!({"cursor": cursor}),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(
        names,
        catalogue()
            .iter()
            .map(|t| t.name.clone())
            .collect::<Vec<_>>()
    );

    let bad = upstream
        .request(&session, "tools/list", json!({"cursor": "not-a-cursor"}))
        .await;
    assert_eq!(bad["error"]["code"], -32602);
}

#[tokio::test]
async fn price_and_order_book_answer_with_binance_shaped_json() {
    let upstream = start_default().await;
    let session = upstream.session().await;

    let price = data(
        &upstream
            .call(&session, "get_price", json!({"symbol": "BTCUSDT"}))
            .await,
    );
    let price = price.as_f64().unwrap();
    assert!((60_000.0..70_000.0).contains(&price), "BTC at {price}");

    let book = data(
        &upstream
            .call(
                &session,
                "get_order_book",
                json!({"symbol": "ETHUSDT", "depth": 5}),
            )
            .await,
    );
    assert!(book["lastUpdateId"].is_u64());
    let level =
        |side: &str, i: usize| -> f64 { book[side][i][0].as_str().unwrap().parse().unwrap() };
    assert_eq!(book["bids"].as_array().unwrap().len(), 5);
    assert_eq!(book["asks"].as_array().unwrap().len(), 5);
    assert!(level("bids", 0) < level("asks", 0));
    assert!(level("bids", 0) > level("bids", 4));
    assert!((3_000.0..4_000.0).contains(&level("bids", 0)));

    let ticker = data(
        &upstream
            .call(&session, "get_24hr_ticker", json!({"symbol": "BNBUSDT"}))
            .await,
    );
    for field in [
        "priceChange",
        "priceChangePercent",
        "weightedAvgPrice",
        "lastPrice",
        "volume",
        "quoteVolume",
    ] {
        assert!(ticker[field].is_f64(), "{field} in {ticker}");
    }
    assert!(ticker["openTime"].as_u64() < ticker["closeTime"].as_u64());
}

#[tokio::test]
async fn same_call_twice_gives_the_same_text() {
    let upstream = start_default().await;
    let session = upstream.session().await;
    for (tool, arguments) in [
        ("get_order_book", json!({"symbol": "SOLUSDT", "depth": 20})),
        (
            "get_historical_prices",
            json!({"symbol": "BTCUSDT", "interval": "1h", "limit": 24}),
        ),
        ("get_recent_trades", json!({"symbol": "DOGEUSDT"})),
        ("get_24hr_ticker", json!({"symbol": "ETHBTC"})),
    ] {
        let first = upstream.call(&session, tool, arguments.clone()).await;
        let second = upstream.call(&session, tool, arguments).await;
        assert_eq!(
            first["content"][0]["text"], second["content"][0]["text"],
            "{tool}"
        );
    }
}

#[tokio::test]
async fn invalid_symbol_is_a_tool_error_with_binances_text() {
    let upstream = start_default().await;
    let session = upstream.session().await;
    for symbol in ["NOTACOIN", "btcusdt", "BTC/USDT"] {
        let result = upstream
            .call(&session, "get_price", json!({"symbol": symbol}))
            .await;
        assert!(
            error_text(&result).contains(r#"{"code":-1121,"msg":"Invalid symbol."}"#),
            "{symbol}: {result}"
        );
    }
}

#[tokio::test]
async fn unknown_tools_and_bad_arguments() {
    let upstream = start_default().await;
    let session = upstream.session().await;
    let unknown = upstream
        .request(
            &session,
            "tools/call",
            json!({"name": "place_order", "arguments": {}}),
        )
        .await;
    assert_eq!(unknown["error"]["code"], -32602);
    assert_eq!(unknown["error"]["message"], "Unknown tool: place_order");

    let missing = upstream.call(&session, "get_price", json!({})).await;
    assert!(error_text(&missing).contains("symbol\n  Field required"));
    let wrong_type = upstream
        .call(
            &session,
            "get_order_book",
            json!({"symbol": "BTCUSDT", "depth": "deep"}),
        )
        .await;
    assert!(error_text(&wrong_type).contains("Input should be a valid integer"));
}

#[tokio::test]
async fn slow_tool_with_progress_token_streams_progress_then_the_result() {
    let upstream = start(SimulatorOptions {
        progress_step: Duration::ZERO,
        ..SimulatorOptions::default()
    })
    .await;
    let session = upstream.session().await;
    let body = json!({
        "jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "get_all_24hr_tickers", "arguments": {}, "_meta": {"progressToken": "tickers-1"}},
    });
    let response = upstream.post(Some(&session), &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = sse_events(&response.text().await.unwrap());

    assert_eq!(events.len() as u64, PROGRESS_STEPS + 1);
    let (progress, result) = events.split_at(PROGRESS_STEPS as usize);
    for (n, (_, notification)) in progress.iter().enumerate() {
        assert_eq!(notification["method"], "notifications/progress");
        assert_eq!(notification["params"]["progressToken"], "tickers-1");
        assert_eq!(notification["params"]["progress"], n as u64 + 1);
        assert_eq!(notification["params"]["total"], PROGRESS_STEPS);
        assert!(notification["params"]["message"].is_string());
    }
    let (_, answer) = &result[0];
    assert_eq!(answer["id"], 9);
    assert!(data(&answer["result"]).as_array().unwrap().len() >= 20);

    let mut ids: Vec<&String> = events.iter().map(|(id, _)| id).collect();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "event ids are unique");
}

#[tokio::test]
async fn progress_is_streamed_before_the_work_finishes() {
    // With an hour between notifications, the first one can only arrive if it is sent on its own.
    let upstream = start(SimulatorOptions {
        progress_step: Duration::from_secs(3600),
        ..SimulatorOptions::default()
    })
    .await;
    let session = upstream.session().await;
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "get_exchange_info", "_meta": {"progressToken": 77}},
    });
    let mut response = upstream.post(Some(&session), &body).await;
    let first = response.chunk().await.unwrap().unwrap();
    let events = sse_events(std::str::from_utf8(&first).unwrap());
    assert_eq!(events[0].1["method"], "notifications/progress");
    assert_eq!(events[0].1["params"]["progressToken"], 77);
}

#[tokio::test]
async fn slow_tools_answer_plain_json_without_a_token_or_without_sse() {
    let upstream = start(SimulatorOptions {
        progress_step: Duration::ZERO,
        ..SimulatorOptions::default()
    })
    .await;
    let session = upstream.session().await;
    let without_token = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_all_book_tickers"}});
    let response = upstream.post(Some(&session), &without_token).await;
    assert_eq!(response.headers()["content-type"], "application/json");

    let with_token = json!({
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "get_all_book_tickers", "_meta": {"progressToken": "t"}},
    });
    let response = upstream
        .post_with(Some(&session), "application/json", &with_token)
        .await;
    assert_eq!(response.headers()["content-type"], "application/json");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["id"], 2);
}

#[tokio::test]
async fn always_sse_answers_with_one_event_when_the_client_accepts_it() {
    let upstream = start(SimulatorOptions {
        always_sse: true,
        ..SimulatorOptions::default()
    })
    .await;
    let response = upstream.post(None, &initialize_request("2025-06-18")).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let events = sse_events(&response.text().await.unwrap());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1["result"]["protocolVersion"], "2025-06-18");

    let ping = json!({"jsonrpc": "2.0", "id": 3, "method": "ping"});
    let json_only = upstream
        .post_with(Some(&session), "application/json", &ping)
        .await;
    assert_eq!(json_only.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn stream_subscriptions_live_and_die_with_the_session() {
    let upstream = start_default().await;
    let session = upstream.session().await;
    let other = upstream.session().await;

    let subscribed = data(
        &upstream
            .call(
                &session,
                "subscribe_to_trade_stream",
                json!({"symbol": "BTCUSDT"}),
            )
            .await,
    );
    assert_eq!(subscribed["stream"], "btcusdt@trade");
    assert_eq!(subscribed["status"], "subscribed");
    let kline = data(
        &upstream
            .call(
                &session,
                "subscribe_to_kline_stream",
                json!({"symbol": "ETHUSDT"}),
            )
            .await,
    );
    assert_eq!(kline["stream"], "ethusdt@kline_1m");
    let bad_depth = upstream
        .call(
            &session,
            "subscribe_to_depth_stream",
            json!({"symbol": "BTCUSDT", "levels": 15}),
        )
        .await;
    assert!(error_text(&bad_depth).contains("Must be 5, 10, or 20"));

    let listed = data(
        &upstream
            .call(&session, "list_active_subscriptions", json!({}))
            .await,
    );
    assert_eq!(listed["count"], 2);
    assert!(listed["active_subscriptions"]["btcusdt@trade"].is_object());
    let elsewhere = data(
        &upstream
            .call(&other, "list_active_subscriptions", json!({}))
            .await,
    );
    assert_eq!(
        elsewhere["count"], 0,
        "subscriptions belong to their session"
    );

    let read = |session: String| {
        let upstream = &upstream;
        async move {
            upstream
                .call(
                    &session,
                    "get_latest_stream_data",
                    json!({"stream_name": "btcusdt@trade"}),
                )
                .await
        }
    };
    let first = data(&read(session.clone()).await);
    let second = data(&read(session.clone()).await);
    assert_eq!(first["data"]["e"], "trade");
    assert_eq!(
        second["data"]["t"].as_u64().unwrap(),
        first["data"]["t"].as_u64().unwrap() + 1,
        "ticks advance per read"
    );
    assert!(error_text(&read(other.clone()).await).contains("No active subscription"));

    let closed = data(
        &upstream
            .call(
                &session,
                "unsubscribe_from_stream",
                json!({"stream_name": "btcusdt@trade"}),
            )
            .await,
    );
    assert_eq!(closed["status"], "unsubscribed");
    assert!(error_text(&read(session.clone()).await).contains("No active subscription"));
    let cleaned = data(
        &upstream
            .call(&session, "cleanup_all_streams", json!({}))
            .await,
    );
    assert_eq!(cleaned["closed"], 1);
}

#[tokio::test]
async fn delete_ends_the_session() {
    let upstream = start_default().await;
    let session = upstream.session().await;
    upstream
        .call(
            &session,
            "subscribe_to_ticker_stream",
            json!({"symbol": "SOLUSDT"}),
        )
        .await;
    assert_eq!(upstream.simulator.session_count(), 1);

    let deleted = upstream
        .http
        .delete(&upstream.url)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    assert_eq!(upstream.simulator.session_count(), 0);

    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    assert_eq!(
        upstream.post(Some(&session), &ping).await.status(),
        StatusCode::NOT_FOUND
    );
    let again = upstream
        .http
        .delete(&upstream.url)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let anonymous = upstream.http.delete(&upstream.url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn get_is_405_with_allow_header() {
    let upstream = start_default().await;
    let session = upstream.session().await;
    let response = upstream
        .http
        .get(&upstream.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST, DELETE");
}

#[tokio::test]
async fn received_messages_and_tool_calls_are_counted() {
    let upstream = start_default().await;
    let session = upstream.session().await;
    upstream
        .call(&session, "get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    upstream
        .call(&session, "get_price", json!({"symbol": "NOTACOIN"}))
        .await;
    upstream.call(&session, "get_server_time", json!({})).await;
    upstream
        .request(&session, "tools/call", json!({"name": "no_such_tool"}))
        .await;

    assert_eq!(upstream.simulator.tool_calls("get_price"), 2);
    assert_eq!(upstream.simulator.tool_calls("get_server_time"), 1);
    assert_eq!(upstream.simulator.tool_calls("get_order_book"), 0);
    assert_eq!(upstream.simulator.tool_calls("no_such_tool"), 0);
    assert_eq!(upstream.simulator.total_tool_calls(), 3);

    let methods: Vec<Value> = upstream
        .simulator
        .received()
        .iter()
        .map(|m| m["method"].clone())
        .collect();
    assert_eq!(
        methods,
        [
            "initialize",
            "notifications/initialized",
            "tools/call",
            "tools/call",
            "tools/call",
            "tools/call"
        ]
    );
    assert_eq!(
        upstream.simulator.received()[2]["params"]["arguments"]["symbol"],
        "BTCUSDT"
    );
}

#[tokio::test]
async fn recording_is_off_by_default() {
    let upstream = start(SimulatorOptions::default()).await;
    let session = upstream.session().await;
    upstream.call(&session, "ping_binance", json!({})).await;
    assert!(upstream.simulator.received().is_empty());
    assert_eq!(upstream.simulator.tool_calls("ping_binance"), 1);
}
