//! The official MCP SDK clients (Python `mcp` 2.x, TypeScript `@modelcontextprotocol/sdk` 1.x)
//! through the gateway: they must see exactly what they see when talking to the upstream directly.
//!
//! Needs the clients installed by `scripts/test` (tests/clients/.venv and tests/clients/node_modules).

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use common::*;
use serde_json::Value;
use tokio::process::{Child, Command};

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

#[derive(Clone, Copy, Debug)]
enum Sdk {
    Python,
    TypeScript,
}

async fn run_client(sdk: Sdk, url: &str, scenario: &str) -> Value {
    let dir = clients_dir();
    let mut command = match sdk {
        Sdk::Python => {
            let python = dir.join(".venv/bin/python");
            assert!(
                python.exists(),
                "{} is missing: run scripts/test, which installs the SDK clients",
                python.display()
            );
            let mut c = Command::new(python);
            c.arg(dir.join("py_client.py"));
            c
        }
        Sdk::TypeScript => {
            assert!(
                dir.join("node_modules").exists(),
                "tests/clients/node_modules is missing: run scripts/test"
            );
            let mut c = Command::new("node");
            c.arg(dir.join("ts_client.mjs"));
            c
        }
    };
    let output = command
        .args([url, scenario])
        .current_dir(&dir)
        .kill_on_drop(true)
        .output()
        .await
        .expect("the client runs");
    assert_exited_ok(&output, &format!("{sdk:?} client against {url}"));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{sdk:?} client printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// `@modelcontextprotocol/server-everything`: the reference server, with progress, elicitation
/// and a GET stream. Returns once it says it listens.
async fn start_everything() -> (Child, String) {
    let script =
        clients_dir().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        script.exists(),
        "server-everything is missing: run scripts/test"
    );
    start_node_server(&script, &["streamableHttp"]).await
}

/// Runs a Node MCP server on a free port; returns once it says it listens, with its URL.
async fn start_node_server(script: &std::path::Path, args: &[&str]) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(clients_dir())
        .env("PORT", port.to_string())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    wait_for_line(child.stderr.take().unwrap(), "listening on port").await;
    (child, format!("http://127.0.0.1:{port}/mcp"))
}

async fn same_through_gateway(sdk: Sdk, scenario: &str, upstream: Option<String>) -> Value {
    let harness = start_with(Setup {
        upstream,
        ..Setup::default()
    })
    .await;
    let direct = run_client(sdk, &harness.upstream_url, scenario).await;
    let gated = run_client(sdk, &harness.url, scenario).await;
    assert_eq!(
        gated, direct,
        "{sdk:?}/{scenario}: the gateway changed what the client saw"
    );
    gated
}

/// The `binance` scenario against the simulator: every tool listed, and progress on a long call.
async fn sees_the_simulator_unchanged(sdk: Sdk) -> Value {
    let seen = same_through_gateway(sdk, "binance", None).await;
    assert_eq!(seen["tools"].as_array().unwrap().len(), 29);
    assert!(
        !seen["progress"].as_array().unwrap().is_empty(),
        "progress reached the client: {seen}"
    );
    seen
}

#[tokio::test]
async fn python_sdk_sees_the_simulator_unchanged() {
    let seen = sees_the_simulator_unchanged(Sdk::Python).await;
    assert_eq!(
        seen["protocol"], "2025-11-25",
        "fell back from the server/discover probe to initialize"
    );
}

#[tokio::test]
async fn typescript_sdk_sees_the_simulator_unchanged() {
    sees_the_simulator_unchanged(Sdk::TypeScript).await;
}

/// The `everything` scenario against server-everything: three progress notifications and one
/// elicitation, answered, reach `sdk`'s client through the gateway as they do directly.
async fn progress_and_elicitation_round_trip(sdk: Sdk) {
    let (_server, url) = start_everything().await;
    let seen = same_through_gateway(sdk, "everything", Some(url)).await;
    assert_eq!(seen["progress"].as_array().unwrap().len(), 3, "{seen}");
    assert_eq!(seen["elicitations"].as_array().unwrap().len(), 1, "{seen}");
    assert!(
        seen["elicitation"].to_string().contains("Ada Lovelace"),
        "{seen}"
    );
}

#[tokio::test]
async fn python_sdk_progress_and_elicitation_round_trip_through_the_gateway() {
    progress_and_elicitation_round_trip(Sdk::Python).await;
}

#[tokio::test]
async fn typescript_sdk_progress_and_elicitation_round_trip_through_the_gateway() {
    progress_and_elicitation_round_trip(Sdk::TypeScript).await;
}

/// SEP-1699 (2025-11-25) through the gateway: the TypeScript SDK fixture server primes the
/// stream of a `test_reconnection` call (`id:`, `retry:`, empty `data:`), closes it before the
/// answer and keeps the answer in its event store. The client must learn the priming event's id
/// through the gateway, come back with a GET carrying it as `Last-Event-ID`, and get its answer
/// there; directly first, so the fixture is known to do what the gateway is tested against.
#[tokio::test]
async fn typescript_sdk_resumes_a_call_whose_stream_the_upstream_closed_after_priming() {
    let (_server, url) = common::node::start_fixture_server("conformance_server.mjs").await;
    let harness = start_before(url).await;
    for (target, url) in [
        ("directly", &harness.upstream_url),
        ("through the gateway", &harness.url),
    ] {
        // The client gives up on the call after 30 s ("Request timed out"); this only bounds a
        // client that hangs some other way.
        let seen = tokio::time::timeout(
            std::time::Duration::from_secs(120),
            run_client(Sdk::TypeScript, url, "resume"),
        )
        .await
        .unwrap_or_else(|_| panic!("{target}: the TypeScript client hung for 120 s"));
        assert_eq!(
            seen["resumed"]["content"][0]["text"], "Reconnection test completed successfully",
            "{target}: {seen}"
        );
        let primer = seen["primedWith"].as_str().unwrap_or_else(|| {
            panic!("{target}: no event id reached the client, so it could not resume: {seen}")
        });
        assert_eq!(
            seen["resumedWith"],
            serde_json::json!([primer]),
            "{target}: one GET resumed the call's stream from its priming event: {seen}"
        );
    }
}

#[tokio::test]
async fn get_relays_the_upstream_stream_and_adds_list_changed_when_the_policy_changes_the_view() {
    use futures::StreamExt;
    let (_server, url) = start_everything().await;
    let harness = start_before(url).await;
    let mut client = harness.client().initialized().await;
    assert!(client.tool_names().await.contains(&"echo".to_string()));
    let stream = client
        .http
        .get(&harness.url)
        .header("accept", "text/event-stream")
        .header(SESSION, client.session.as_ref().unwrap())
        .header("mcp-protocol-version", VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));

    let status = harness
        .rewrite_policy(
            r#"{"version": "1", "default": "allow", "tools": {"echo": {"action": "deny"}}}"#,
        )
        .await;
    assert_eq!(status.applied, 1);
    let mut body = stream.bytes_stream();
    let mut seen = String::new();
    let found = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(chunk) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if seen.contains("notifications/tools/list_changed") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        found,
        Ok(true),
        "the GET stream carried list_changed: {seen}"
    );
    assert!(!client.tool_names().await.contains(&"echo".to_string()));
}

#[tokio::test]
async fn python_sdk_user_approves_a_held_call_through_elicitation() {
    let harness = start(
        r#"{"version": "1", "default": "deny", "tools": {
            "subscribe_to_kline_stream": {"action": "approval", "reason": "opens a stream", "via": "elicitation"}}}"#,
    )
    .await;
    let seen = run_client(Sdk::Python, &harness.url, "approval").await;
    assert_eq!(seen["elicitations"].as_array().unwrap().len(), 1, "{seen}");
    assert!(
        seen["elicitations"][0]
            .as_str()
            .unwrap()
            .contains("subscribe_to_kline_stream"),
        "{seen}"
    );
    assert_eq!(seen["subscribe"]["isError"], false, "{seen}");
    assert_eq!(harness.simulator.tool_calls("subscribe_to_kline_stream"), 1);
}

#[tokio::test]
async fn python_sdk_legacy_sse_client_sees_what_a_streamable_http_client_sees() {
    let harness = start(
        r#"{"version": "1", "default": "allow", "tools": {"get_order_book": {"arguments":
            {"type": "object", "properties": {"depth": {"type": "integer", "maximum": 3}}}}}}"#,
    )
    .await;
    let legacy = run_client(Sdk::Python, &format!("{}/sse", harness.base), "binance").await;
    let streamable = run_client(Sdk::Python, &harness.url, "binance").await;
    assert_eq!(
        legacy, streamable,
        "the transport changed what the client saw"
    );
    assert_eq!(legacy["tools"].as_array().unwrap().len(), 29);
    assert_eq!(legacy["price"]["isError"], false, "{legacy}");
    assert_eq!(legacy["book"]["isError"], true, "{legacy}");
    assert!(
        legacy["book"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("arguments refused"),
        "{legacy}"
    );
    assert!(
        !legacy["progress"].as_array().unwrap().is_empty(),
        "progress reached the legacy client: {legacy}"
    );
    assert_eq!(harness.simulator.tool_calls("get_order_book"), 0);
    assert_eq!(harness.simulator.tool_calls("get_price"), 2);
}

/// The Python client pinned to MCP 2026-07-28 (no initialize, no session) in front of the
/// simulator, which speaks 2025-xx only: the gateway bridges. Policy, approvals and the
/// simulator's counts are what a 2025-xx client gets; the approval the rule puts to the user is
/// an input-required round.
#[tokio::test]
async fn python_sdk_pinned_to_2026_07_28_is_bridged_to_a_2025_upstream() {
    let harness = start(
        r#"{"version": "1", "default": "deny", "tools": {
            "get_price": {"action": "allow"},
            "get_order_book": {"action": "allow", "arguments": {"type": "object",
                "properties": {"depth": {"type": "integer", "maximum": 100}}}},
            "subscribe_to_kline_stream": {"action": "approval", "reason": "opens a stream", "via": "elicitation"}}}"#,
    )
    .await;
    let seen = run_client(Sdk::Python, &harness.url, "modern").await;
    assert_eq!(seen["protocol"], "2026-07-28", "{seen}");
    let discover = &seen["discover"];
    assert_eq!(
        discover["supportedVersions"],
        serde_json::json!(["2025-03-26", "2025-06-18", "2025-11-25"]),
        "{seen}"
    );
    assert_eq!(
        discover["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "binance-mcp-simulator"
    );
    assert_eq!(
        seen["tools"],
        serde_json::json!(["get_order_book", "get_price", "subscribe_to_kline_stream"])
    );
    assert_eq!(seen["price"]["isError"], false, "{seen}");
    assert_eq!(seen["price"]["resultType"], "complete", "{seen}");
    assert_eq!(seen["denied"]["isError"], true, "{seen}");
    assert!(
        seen["denied"]
            .to_string()
            .contains("Denied by gateway policy"),
        "{seen}"
    );
    assert_eq!(harness.simulator.tool_calls("get_order_book"), 0);
    assert_eq!(seen["elicitations"].as_array().unwrap().len(), 1, "{seen}");
    assert!(
        seen["elicitations"][0]
            .as_str()
            .unwrap()
            .contains("subscribe_to_kline_stream"),
        "{seen}"
    );
    assert_eq!(seen["approved"]["isError"], false, "{seen}");
    assert_eq!(harness.simulator.tool_calls("subscribe_to_kline_stream"), 1);
    assert_eq!(harness.simulator.tool_calls("get_price"), 1);
}

/// The Python client pinned to 2026-07-28 in front of server-everything (2025-xx only): the
/// server's `elicitation/create` and `sampling/createMessage`, sent on the call's stream, reach
/// the client as input-required rounds (`exchange/rounds.rs`); its callbacks answer, the retry
/// carries the answers, and the tools' results say what the callbacks answered.
#[tokio::test]
async fn python_sdk_pinned_to_2026_07_28_answers_an_old_servers_questions_in_rounds() {
    let (_server, url) = start_everything().await;
    let harness = start_with(Setup {
        upstream: Some(url),
        audit: true,
        ..Setup::default()
    })
    .await;
    let seen = run_client(Sdk::Python, &harness.url, "modern-everything").await;
    assert_eq!(seen["protocol"], "2026-07-28", "{seen}");
    assert_eq!(seen["elicitations"].as_array().unwrap().len(), 1, "{seen}");
    let elicited = &seen["elicitation"];
    assert_ne!(elicited["isError"], true, "{seen}");
    assert!(elicited.to_string().contains("Ada Lovelace"), "{seen}");
    assert_eq!(elicited["resultType"], "complete", "{seen}");
    assert_eq!(
        seen["sampled"],
        serde_json::json!(["Resource trigger-sampling-request context: say hello"]),
        "{seen}"
    );
    assert!(
        seen["sampling"].to_string().contains("a sampled answer"),
        "{seen}"
    );
    // Each tool call is audited once as a call and once as its round's retry, never refused.
    let calls: Vec<Value> = harness
        .audit_lines()
        .into_iter()
        .filter(|line| line["method"] == "tools/call")
        .collect();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert!(
        calls.iter().all(|line| line["decision"] == "allow"),
        "{calls:?}"
    );
}

/// tests/clients/modern_server.py: a Python SDK server speaking MCP 2026-07-28 (and the
/// handshake too, unless `modern_only`). Returns once it listens, with its MCP URL.
async fn start_modern_fixture(modern_only: bool) -> (Child, String) {
    use tokio::io::AsyncBufReadExt;
    let dir = clients_dir();
    let mut command = Command::new(dir.join(".venv/bin/python"));
    command.arg(dir.join("modern_server.py"));
    if modern_only {
        command.arg("--modern-only");
    }
    let mut child = command
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the fixture starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .next_line()
        .await
        .unwrap()
        .expect("the fixture says where it listens");
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("not a listening line: {line}"))
        .to_owned();
    (child, url)
}

/// What reached the fixture: one entry per POST (`modern_server.py` says which fields).
async fn fixture_received(url: &str) -> Vec<Value> {
    let received = url.replace("/mcp", "/received");
    reqwest::get(&received).await.unwrap().json().await.unwrap()
}

/// The policy both fixture tests run under: `delete_everything` denied, `launch` put to the user.
const FIXTURE_POLICY: &str = r#"{"version": "1", "default": "deny", "tools": {
    "echo": {"action": "allow"},
    "deploy": {"action": "allow"},
    "ask_name": {"action": "allow"},
    "delete_everything": {"action": "deny", "reason": "destroys data"},
    "launch": {"action": "approval", "reason": "launches things", "via": "elicitation"}}}"#;

/// The Python client pinned to 2026-07-28 in front of a Python SDK server that speaks it: the
/// gateway passes requests through as 2026-07-28 ones (no upstream session; the client's
/// envelope kept; `Mcp-Method`/`Mcp-Name` on every request, matching what was sent). Policy,
/// the approval round and the upstream's own input-required round all work as with a bridged
/// upstream.
#[tokio::test]
async fn python_sdk_pinned_to_2026_07_28_is_passed_through_to_a_2026_07_28_upstream() {
    let (_server, url) = start_modern_fixture(false).await;
    let harness = start_with(Setup {
        policy: FIXTURE_POLICY.into(),
        upstream: Some(url.clone()),
        ..Setup::default()
    })
    .await;
    let seen = run_client(Sdk::Python, &harness.url, "modern-fixture").await;
    assert_eq!(seen["protocol"], "2026-07-28", "{seen}");
    assert_eq!(
        seen["discover"]["supportedVersions"],
        serde_json::json!(["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"]),
        "{seen}"
    );
    assert_eq!(
        seen["discover"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "modern-fixture"
    );
    assert_eq!(
        seen["tools"],
        serde_json::json!(["ask_name", "deploy", "echo", "launch"]),
        "{seen}"
    );
    assert_eq!(seen["echo"]["content"][0]["text"], "through the gateway");
    assert_eq!(seen["echo"]["resultType"], "complete", "{seen}");
    // The client mirrors `region` into Mcp-Param-Region; the gateway checks it and writes its
    // own from the arguments it forwards, which the SDK's server checks in turn.
    assert_eq!(
        seen["deployed"]["content"][0]["text"], "deployed v2 to eu-west-1",
        "{seen}"
    );
    assert_eq!(seen["denied"]["isError"], true, "{seen}");
    assert!(
        seen["denied"].to_string().contains("destroys data"),
        "{seen}"
    );
    assert_eq!(
        seen["approved"]["content"][0]["text"], "launched the moon",
        "{seen}"
    );
    assert_eq!(
        seen["asked"]["content"][0]["text"], "Hello, Ada Lovelace",
        "{seen}"
    );
    let asked = seen["elicitations"].as_array().unwrap();
    assert_eq!(
        asked.len(),
        2,
        "the gateway's question, then the tool's: {seen}"
    );
    assert!(asked[0].as_str().unwrap().contains("launch"), "{seen}");
    assert_eq!(asked[1], "What is your name?");

    let received = fixture_received(&url).await;
    for request in &received {
        assert_eq!(request["version"], "2026-07-28", "{request}");
        assert_eq!(request["envelope"], "2026-07-28", "{request}");
        assert_eq!(
            request["session"],
            Value::Null,
            "no upstream session: {request}"
        );
        assert_eq!(request["mcp-method"], request["method"], "{request}");
        assert_eq!(request["mcp-name"], request["name"], "{request}");
    }
    let calls = |name: &str| {
        received
            .iter()
            .filter(|r| r["method"] == "tools/call" && r["name"] == name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        calls("deploy")[0]["params"],
        serde_json::json!({"mcp-param-region": "eu-west-1"}),
        "{received:?}"
    );
    assert!(calls("delete_everything").is_empty(), "{received:?}");
    assert_eq!(calls("launch").len(), 1, "{received:?}");
    let ask = calls("ask_name");
    assert_eq!(ask.len(), 2, "asked, then answered: {received:?}");
    assert_eq!(ask[1]["inputResponses"], true, "{received:?}");
    assert!(received.iter().all(|r| r["method"] != "initialize"));
}

/// `subscriptions/listen` passed through to a 2026-07-28 upstream: the Python client's listen
/// stream through the gateway is acknowledged with what it asked for, and the upstream's
/// tools `list_changed` (sent when a tool is called) reaches it.
#[tokio::test]
async fn python_sdk_listens_through_the_gateway_to_a_2026_07_28_upstream() {
    let (_server, url) = start_modern_fixture(false).await;
    let harness = start_with(Setup {
        policy: r#"{"version": "1", "default": "deny", "tools": {"change_tools": {}},
            "methods": {"subscriptions/listen": {}}}"#
            .into(),
        upstream: Some(url.clone()),
        ..Setup::default()
    })
    .await;
    let seen = run_client(Sdk::Python, &harness.url, "modern-listen").await;
    assert_eq!(seen["protocol"], "2026-07-28", "{seen}");
    assert_eq!(
        seen["honored"],
        serde_json::json!({"toolsListChanged": true}),
        "{seen}"
    );
    assert_eq!(seen["event"], "ToolsListChanged", "{seen}");
    let received = fixture_received(&url).await;
    assert!(
        received
            .iter()
            .any(|r| r["method"] == "subscriptions/listen"
                && r["mcp-method"] == "subscriptions/listen"
                && r["session"].is_null()),
        "{received:?}"
    );
}

/// A client pinned to the handshake in front of an upstream that speaks only 2026-07-28: the
/// gateway answers initialize from the upstream's `server/discover`, keeps the session itself,
/// and sends each request as a 2026-07-28 one with an envelope of its own; the upstream's
/// input-required round is put to the client as an elicitation (`exchange/asked.rs`).
#[tokio::test]
async fn python_sdk_pinned_to_the_handshake_is_served_by_a_2026_07_28_only_upstream() {
    let (_server, url) = start_modern_fixture(true).await;
    let harness = start_with(Setup {
        policy: FIXTURE_POLICY.into(),
        upstream: Some(url.clone()),
        ..Setup::default()
    })
    .await;
    let seen = run_client(Sdk::Python, &harness.url, "legacy-fixture").await;
    assert_eq!(seen["protocol"], "2025-11-25", "{seen}");
    assert_eq!(
        seen["tools"],
        serde_json::json!(["ask_name", "deploy", "echo", "launch"]),
        "{seen}"
    );
    assert_eq!(seen["echo"]["content"][0]["text"], "through the gateway");
    // The client sends no Mcp-Param headers at the handshake; the gateway writes them.
    assert_eq!(
        seen["deployed"]["content"][0]["text"], "deployed v2 to eu-west-1",
        "{seen}"
    );
    assert_eq!(seen["denied"]["isError"], true, "{seen}");
    assert!(
        seen["denied"].to_string().contains("destroys data"),
        "{seen}"
    );
    assert_eq!(
        seen["approved"]["content"][0]["text"], "launched the moon",
        "{seen}"
    );
    // The upstream's input-required round reaches the client as an elicitation on the call's
    // stream, and the gateway repeats the call with its answer.
    assert_eq!(
        seen["asked"]["content"][0]["text"], "Hello, Ada Lovelace",
        "{seen}"
    );
    let asked = seen["elicitations"].as_array().unwrap();
    assert_eq!(asked.len(), 2, "the approval, then the tool's: {seen}");
    assert_eq!(asked[1], "What is your name?");

    let received = fixture_received(&url).await;
    let (refused, sent): (Vec<_>, Vec<_>) =
        received.iter().partition(|r| r["version"] != "2026-07-28");
    assert_eq!(
        refused.len(),
        1,
        "only the client's initialize was tried: {refused:?}"
    );
    assert_eq!(refused[0]["method"], "initialize");
    for request in &sent {
        assert_eq!(request["envelope"], "2026-07-28", "{request}");
        assert_eq!(request["mcp-method"], request["method"], "{request}");
        assert_eq!(request["mcp-name"], request["name"], "{request}");
    }
    assert!(
        sent.iter().all(|r| r["name"] != "delete_everything"),
        "{sent:?}"
    );
    assert!(
        sent.iter().any(|r| r["name"] == "deploy"
            && r["params"] == serde_json::json!({"mcp-param-region": "eu-west-1"})),
        "{sent:?}"
    );
    assert!(
        sent.iter()
            .all(|r| !r["method"].as_str().unwrap().starts_with("notifications/")),
        "notifications stay at the gateway: {sent:?}"
    );
    let asks: Vec<_> = sent.iter().filter(|r| r["name"] == "ask_name").collect();
    assert_eq!(asks.len(), 2, "asked, then answered: {sent:?}");
    assert_eq!(asks[1]["inputResponses"], true, "{sent:?}");
}

/// Rules the model can see: the Binance policy's `depth` ≤ 100 reaches the SDK's parsed tool
/// list inside `get_order_book`'s inputSchema, and its rate limit is in the description.
#[tokio::test]
async fn python_sdk_sees_the_policy_argument_rules_in_the_tool_list() {
    let harness = start_with(Setup {
        policy: std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/policies/binance.json"
        ))
        .unwrap(),
        ..Setup::default()
    })
    .await;
    let seen = run_client(Sdk::Python, &harness.url, "schemas").await;
    let book = &seen["schemas"]["get_order_book"];
    assert_eq!(book["inputSchema"]["type"], "object", "{book}");
    assert_eq!(
        book["inputSchema"]["properties"]["depth"]["maximum"], 100,
        "{book}"
    );
    assert!(
        book["description"]
            .as_str()
            .unwrap()
            .contains("At most 30 calls per 60 s"),
        "{book}"
    );
    let direct = run_client(Sdk::Python, &harness.upstream_url, "schemas").await;
    assert_ne!(
        direct["schemas"]["get_order_book"]["inputSchema"]["properties"]["depth"]["maximum"], 100,
        "the simulator itself does not say it"
    );
}
