//! Operating the gateway: metrics, per-call logs, readiness that means MCP, policy reloads
//! through ConfigMap links, audit rotation, the stopping sequence, warnings at start, and the
//! demo from any directory. Tests that need the process's signals, logs or standard streams
//! run the `mcpgate` binary.

mod common;

use std::process::Stdio;
use std::time::Duration;

use axum::http::StatusCode;
use common::process::{write_policy, Process};
use common::upstream::{self, FakeUpstream};
use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

const BOT_KEY: &str = "k-bot-0123456789";

fn agent(name: &str, key: &str) -> String {
    format!(
        "{name}=sha256:{}",
        hex::encode(mcpgate::auth::digest_of(key))
    )
}

const POLICY: &str = r#"{"version": "1", "default": "deny", "tools": {
    "get_price": {},
    "get_order_book": {"action": "deny", "reason": "not today"}
}}"#;

// ---- metrics ----

#[tokio::test]
async fn a_scrape_after_known_traffic_counts_it_with_bounded_labels() {
    let harness = start_with(Setup {
        policy: POLICY.into(),
        agents: vec![agent("bot", BOT_KEY)],
        metrics: true,
        ..Setup::default()
    })
    .await;
    let mut bot = harness.client().with_key(BOT_KEY).initialized().await;
    for _ in 0..2 {
        let answer = bot
            .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
            .await;
        assert!(!answer.is_tool_error(), "{}", answer.text);
    }
    let denied = bot
        .call_tool("get_order_book", json!({"symbol": "BTCUSDT"}))
        .await;
    assert!(denied.is_tool_error(), "{}", denied.text);
    // Names an agent invents must not become series of their own.
    for invented in ["made_up_1", "made_up_2", "made_up_3"] {
        bot.call_tool(invented, json!({})).await;
    }
    let mut anonymous = harness.client().initialized().await;
    anonymous
        .call_tool("get_price", json!({"symbol": "ETHUSDT"}))
        .await;

    let samples = harness.scrape().await;
    let count = |series: &str| sample(&samples, series);
    assert_eq!(
        count(r#"mcpgate_decisions_total{tool="get_price",decision="allow",agent="bot"}"#),
        2.0
    );
    assert_eq!(
        count(r#"mcpgate_decisions_total{tool="get_order_book",decision="deny",agent="bot"}"#),
        1.0
    );
    assert_eq!(
        count(r#"mcpgate_decisions_total{tool="_other",decision="unknown_tool",agent="bot"}"#),
        3.0
    );
    assert_eq!(
        count(r#"mcpgate_decisions_total{tool="get_price",decision="allow",agent="anonymous"}"#),
        1.0
    );
    assert!(
        samples
            .iter()
            .all(|(series, _)| !series.contains("made_up")),
        "{samples:?}"
    );
    assert_eq!(
        count(r#"mcpgate_upstream_duration_seconds_count{method="tools/call",outcome="answered"}"#),
        3.0
    );
    assert_eq!(
        count(r#"mcpgate_upstream_duration_seconds_count{method="initialize",outcome="answered"}"#),
        2.0
    );
    // initialize, initialized and every call of both clients went through POST /mcp.
    assert!(
        count("mcpgate_request_duration_seconds_count") >= 11.0,
        "{samples:?}"
    );
    assert_eq!(count("mcpgate_sessions"), 2.0);
    assert_eq!(count("mcpgate_approvals_pending"), 0.0);
    assert_eq!(count("mcpgate_in_flight"), 0.0);
    assert_eq!(
        count(r#"mcpgate_policy_reloads_total{result="applied"}"#),
        0.0
    );

    harness
        .rewrite_policy(
            r#"{"version": "1", "default": "deny", "tools": {"get_price": {}, "new_rule": {}}}"#,
        )
        .await;
    bot.call_tool("new_rule", json!({})).await;
    let samples = harness.scrape().await;
    assert_eq!(
        sample(
            &samples,
            r#"mcpgate_policy_reloads_total{result="applied"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &samples,
            r#"mcpgate_decisions_total{tool="new_rule",decision="allow",agent="bot"}"#
        ),
        1.0,
        "a reloaded policy's tool names become labels"
    );
}

#[tokio::test]
async fn upstream_failures_are_counted_by_kind_and_audited_with_their_text() {
    let url = FakeUpstream::start(|message: Value| async move {
        (message["method"] == "tools/call")
            .then(|| upstream::status(StatusCode::INTERNAL_SERVER_ERROR, "the upstream exploded"))
    })
    .await;
    let harness = start_with(Setup {
        upstream: Some(url),
        audit: true,
        metrics: true,
        ..Setup::default()
    })
    .await;
    let mut client = harness.client().initialized().await;
    let answer = client.call_tool("anything", json!({})).await;
    answer.assert_error(502, -32000, "the upstream exploded");
    let samples = harness.scrape().await;
    assert_eq!(
        sample(
            &samples,
            r#"mcpgate_upstream_errors_total{kind="unexpected_answer"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &samples,
            r#"mcpgate_upstream_duration_seconds_count{method="tools/call",outcome="failed"}"#
        ),
        1.0
    );
    let failed = harness
        .audit_lines()
        .into_iter()
        .find(|record| record["decision"] == "upstream_error")
        .expect("the failure is audited");
    let reason = failed["reason"]
        .as_str()
        .expect("the failure's text is its reason");
    assert!(reason.contains("the upstream exploded"), "{failed}");
}

/// The kernel wakes every worker for a new connection and one of them wins the race; a burst
/// could land on one worker and stay there. Each connection here is opened after the one before
/// is counted, so a worker that kept what it accepted would break the even split at once.
#[tokio::test]
async fn connections_are_spread_evenly_over_the_worker_loops() {
    let harness = start_with(Setup {
        policy: POLICY.into(),
        metrics: true,
        ..Setup::default()
    })
    .await;
    let workers = harness.gateway.config.workers.get();
    assert!(workers >= 2, "the harness runs {workers} worker(s)");
    let per_worker = |samples: &[(String, f64)]| -> Vec<f64> {
        (0..workers)
            .map(|worker| {
                sample(
                    samples,
                    &format!(r#"mcpgate_worker_connections{{worker="{worker}"}}"#),
                )
            })
            .collect()
    };
    // One client each: its own pool, so its own connection, kept open.
    let mut clients = Vec::new();
    for opened in 1..=4 * workers {
        let client = reqwest::Client::new();
        let health = client
            .get(format!("{}/healthz", harness.base))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        clients.push(client);
        let counts = per_worker(&harness.scrape().await);
        let (fewest, most) = counts
            .iter()
            .fold((f64::MAX, 0.0_f64), |(lo, hi), &n| (lo.min(n), hi.max(n)));
        assert_eq!(counts.iter().sum::<f64>(), opened as f64, "{counts:?}");
        assert!(
            most - fewest <= 1.0,
            "after {opened} connections: {counts:?}"
        );
    }
}

#[tokio::test]
async fn metrics_are_not_served_beside_mcp() {
    let harness = start_with(Setup {
        metrics: true,
        ..Setup::default()
    })
    .await;
    let beside = reqwest::get(format!("{}/metrics", harness.base))
        .await
        .unwrap();
    assert_eq!(beside.status(), 404);
}

// ---- readiness ----

#[tokio::test]
async fn an_upstream_url_without_its_mcp_path_is_not_ready_and_initialize_says_why() {
    let (_simulator, simulator_url) = start_simulator(Default::default()).await;
    let without_path = simulator_url.trim_end_matches("/mcp").to_owned();
    let harness = start_before(without_path).await;
    let ready = reqwest::get(format!("{}/readyz", harness.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let text = ready.text().await.unwrap();
    assert!(text.contains("does not answer MCP"), "{text}");
    assert!(text.contains("check the URL's path"), "{text}");

    let mut client = harness.client();
    let answer = client
        .request(
            "initialize",
            json!({"protocolVersion": VERSION, "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}),
        )
        .await;
    answer.assert_error(502, -32000, "check the URL's path");
}

#[tokio::test]
async fn an_http_server_that_is_not_mcp_is_not_ready() {
    // Answers every POST 200 with JSON that is no initialize result.
    let url = FakeUpstream::start(|message: Value| async move {
        Some(upstream::result(&message, json!({"hello": "world"})))
    })
    .await;
    let harness = start_before(url).await;
    let ready = reqwest::get(format!("{}/readyz", harness.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("does not answer MCP"));
}

#[tokio::test]
async fn readiness_checks_are_cached_and_end_their_upstream_session() {
    let harness = start(ALLOW_ALL).await;
    for _ in 0..5 {
        let ready = reqwest::get(format!("{}/readyz", harness.base))
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);
    }
    let initializes = harness
        .simulator
        .received()
        .iter()
        .filter(|m| m["method"] == "initialize")
        .count();
    // Five probes within the cache's two seconds make one check, or two across its edge.
    assert!((1..=2).contains(&initializes), "{initializes} initializes");
    assert_eq!(
        harness.simulator.session_count(),
        0,
        "each check ends its session"
    );
}

#[tokio::test]
async fn readyz_fails_at_once_when_draining() {
    let harness = start(ALLOW_ALL).await;
    harness
        .gateway
        .readiness
        .enter(mcpgate::gateway::Phase::Draining);
    let ready = reqwest::get(format!("{}/readyz", harness.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("shutting down"));
    let mut client = harness.client();
    client.initialize().await;
    let answer = client
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    assert!(
        !answer.is_tool_error(),
        "still served while draining: {}",
        answer.text
    );
}

// ---- reload ----

#[tokio::test]
async fn a_configmap_update_that_swaps_the_data_link_reloads_the_policy() {
    let harness = start_with(Setup {
        policy: POLICY.into(),
        configmap: true,
        ..Setup::default()
    })
    .await;
    let mut client = harness.client().initialized().await;
    let allowed = client
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    assert!(!allowed.is_tool_error(), "{}", allowed.text);

    let status = harness
        .swap_configmap(
            r#"{"version": "1", "default": "deny", "tools": {"get_price": {"action": "deny", "reason": "frozen"}}}"#,
            "2026_11_29_10_00_00.1",
        )
        .await;
    assert!(status.applied >= 1, "{status:?}");
    let denied = client
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    assert!(denied.is_tool_error(), "{}", denied.text);
    assert!(denied.message().contains("frozen"), "{}", denied.text);

    // And again: the chain is followed anew after each swap.
    harness
        .swap_configmap(POLICY, "2026_11_29_10_05_00.2")
        .await;
    let allowed = client
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    assert!(!allowed.is_tool_error(), "{}", allowed.text);
}

// ---- the binary: logs, signals, standard streams ----

#[tokio::test]
async fn refused_keys_and_upstream_failures_are_logged_with_the_audit_fields() {
    let url = FakeUpstream::start(|message: Value| async move {
        (message["method"] == "tools/call")
            .then(|| upstream::status(StatusCode::BAD_GATEWAY, "the upstream exploded"))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(&dir, POLICY);
    let audit = dir.path().join("audit.jsonl");
    let mut gateway = Process::serve(
        &url,
        &policy,
        &[
            "--drain-delay-secs",
            "0",
            "--agent",
            &agent("bot", BOT_KEY),
            "--audit",
            audit.to_str().unwrap(),
        ],
    );
    gateway.serving().await;

    let mut stranger = gateway.client().with_key("not-a-key-anyone-was-given");
    let refused = stranger
        .request(
            "initialize",
            json!({"protocolVersion": VERSION, "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}),
        )
        .await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    let line = gateway.json_line("decision", "unauthorized").await;
    assert_eq!(line["level"], "WARN", "{line}");
    assert!(
        !line.to_string().contains("not-a-key-anyone-was-given"),
        "keys are never logged"
    );

    let mut bot = gateway.client().with_key(BOT_KEY).initialized().await;
    let failed = bot
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    assert_eq!(failed.status, 502, "{}", failed.text);
    let line = gateway.json_line("decision", "upstream_error").await;
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(line["agent"], "bot", "{line}");
    assert_eq!(line["tool"], "get_price", "{line}");
    assert_eq!(line["method"], "tools/call", "{line}");
    assert_eq!(line["rule"], "tools.get_price", "{line}");
    assert!(line["session"].is_string(), "{line}");
    let reason = line["reason"].as_str().unwrap();
    assert!(reason.contains("the upstream exploded"), "{line}");

    bot.call_tool("get_order_book", json!({"symbol": "BTCUSDT"}))
        .await;
    let line = gateway.json_line("decision", "deny").await;
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["reason"], "not today", "{line}");

    let records = std::fs::read_to_string(&audit).unwrap();
    let record: Value = records
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["decision"] == "upstream_error")
        .unwrap();
    assert_eq!(
        record["reason"].as_str(),
        Some(reason),
        "the log and the audit agree"
    );

    gateway.signal("TERM");
    gateway.exits_ok().await;
}

#[tokio::test]
async fn text_logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let (_simulator, url) = start_simulator(Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(&dir, POLICY);
    let addr = free_local_addr();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"));
    command
        .args(["serve", "--log-format", "text", "--drain-delay-secs", "0"])
        .args([
            "--listen",
            &addr.to_string(),
            "--upstream",
            &url,
            "--policy",
        ])
        .arg(&policy);
    let mut gateway = Process::spawn(command, format!("http://{addr}"));
    let line = gateway.line(|l| l.contains("mcpgate serving MCP")).await;
    assert!(!line.contains('\u{1b}'), "{line:?}");
    gateway.signal("TERM");
    gateway.exits_ok().await;
}

#[tokio::test]
async fn sighup_reopens_the_audit_file_that_logrotate_renamed() {
    use std::os::unix::fs::PermissionsExt;
    let (_simulator, url) = start_simulator(Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(&dir, POLICY);
    let audit = dir.path().join("audit.jsonl");
    let rotated = dir.path().join("audit.jsonl.1");
    let mut gateway = Process::serve(
        &url,
        &policy,
        &[
            "--drain-delay-secs",
            "0",
            "--audit",
            audit.to_str().unwrap(),
        ],
    );
    gateway.serving().await;
    let mode = std::fs::metadata(&audit).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the audit file is private");

    let mut client = gateway.client().initialized().await;
    std::fs::rename(&audit, &rotated).unwrap();
    gateway.signal("HUP");
    gateway.json_line("message", "audit log reopened").await;
    client
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;

    let records = |path: &std::path::Path| -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let before = records(&rotated);
    assert!(
        before.iter().any(|r| r["method"] == "initialize"),
        "{before:?}"
    );
    let after = records(&audit);
    assert!(
        after.iter().all(|r| r["method"] != "initialize"),
        "{after:?}"
    );
    assert!(after.iter().any(|r| r["tool"] == "get_price"), "{after:?}");
    let mode = std::fs::metadata(&audit).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the reopened file is private too");
    gateway.signal("TERM");
    gateway.exits_ok().await;
}

#[tokio::test]
async fn audit_dash_writes_records_to_standard_output() {
    let (_simulator, url) = start_simulator(Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(&dir, POLICY);
    let addr = free_local_addr();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"));
    command
        .current_dir(dir.path())
        .args([
            "serve",
            "--log-format",
            "json",
            "--drain-delay-secs",
            "0",
            "--audit",
            "-",
        ])
        .args([
            "--listen",
            &addr.to_string(),
            "--upstream",
            &url,
            "--policy",
        ])
        .arg(&policy)
        .stdout(Stdio::piped());
    let mut gateway = Process::spawn(command, format!("http://{addr}"));
    let mut stdout = BufReader::new(gateway.child.stdout.take().unwrap()).lines();
    gateway.serving().await;
    gateway.client().initialized().await;
    let line = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
        .await
        .unwrap()
        .unwrap()
        .expect("a record on standard output");
    let record: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(record["method"], "initialize", "{line}");
    assert!(!dir.path().join("-").exists(), "no file named -");
    gateway.signal("TERM");
    gateway.exits_ok().await;
}

#[tokio::test]
async fn sigterm_fails_readyz_serves_through_the_drain_and_answers_held_calls() {
    let (_simulator, url) = start_simulator(Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(
        &dir,
        r#"{"version": "1", "default": "deny", "tools": {
            "get_price": {},
            "place_order": {"action": "approval", "reason": "moves money"}
        }}"#,
    );
    // A drain far longer than the test: it is ended by a second SIGTERM, so what is seen
    // during it cannot depend on timing.
    let mut gateway = Process::serve(
        &url,
        &policy,
        &[
            "--drain-delay-secs",
            "600",
            "--shutdown-grace-secs",
            "30",
            "--approval-hold",
            "600",
            "--admin-token",
            ADMIN_TOKEN,
        ],
    );
    gateway.serving().await;
    let mut client = gateway.client().json_only().initialized().await;
    let mut held_client = gateway.client().json_only();
    held_client.session = client.session.clone();
    let held = tokio::spawn(async move {
        held_client
            .call_tool(
                "place_order",
                json!({"symbol": "BTCUSDT", "side": "BUY", "quantity": 1}),
            )
            .await
    });
    gateway.json_line("decision", "approval_pending").await;

    gateway.signal("TERM");
    gateway
        .line(|l| l.contains("draining: /readyz fails"))
        .await;
    let ready = reqwest::get(format!("{}/readyz", gateway.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let served = client
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    assert_eq!(
        served.status, 200,
        "new requests are served while draining: {}",
        served.text
    );
    assert!(!served.is_tool_error(), "{}", served.text);
    assert!(
        !held.is_finished(),
        "the held call still waits during the drain"
    );

    gateway.signal("TERM");
    let answer = tokio::time::timeout(Duration::from_secs(30), held)
        .await
        .expect("the held call is answered when the listener closes")
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(answer.is_tool_error(), "{}", answer.text);
    assert!(
        answer.message().contains("Repeat exactly the same call"),
        "{}",
        answer.text
    );
    gateway.exits_ok().await;
}

#[tokio::test]
async fn start_warns_about_a_wrong_upstream_open_access_and_undecidable_approvals() {
    let (_simulator, simulator_url) = start_simulator(Default::default()).await;
    let without_path = simulator_url.trim_end_matches("/mcp").to_owned();
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(
        &dir,
        r#"{"version": "1", "default": "deny", "tools": {"place_order": {"action": "approval"}}}"#,
    );
    let port = free_local_addr().port();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"));
    command
        .args(["serve", "--log-format", "json", "--drain-delay-secs", "0"])
        .args([
            "--listen",
            &format!("0.0.0.0:{port}"),
            "--upstream",
            &without_path,
        ])
        .arg("--policy")
        .arg(&policy);
    let mut gateway = Process::spawn(command, format!("http://127.0.0.1:{port}"));
    gateway.line(|l| l.contains("without --require-auth")).await;
    gateway.line(|l| l.contains("nobody can decide them")).await;
    let wrong = gateway.line(|l| l.contains("does not answer MCP")).await;
    assert!(wrong.contains("check the URL's path"), "{wrong}");
    gateway.signal("TERM");
    gateway.exits_ok().await;

    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .args(["serve", "--require-upstream", "--listen", "127.0.0.1:0"])
        .args(["--upstream", &without_path, "--policy"])
        .arg(&policy)
        .output()
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let errors = String::from_utf8_lossy(&refused.stderr);
    assert!(errors.contains("--require-upstream"), "{errors}");
    assert!(errors.contains("check the URL's path"), "{errors}");
}

#[tokio::test]
async fn demo_runs_from_any_directory_with_the_built_in_policy() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_local_addr();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .current_dir(dir.path())
        .args([
            "demo",
            "--drain-delay-secs",
            "0",
            "--listen",
            &addr.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            let done = line.contains("Ctrl-C stops it");
            banner.push(line);
            if done {
                return;
            }
        }
    })
    .await
    .expect("the demo prints its banner");
    let banner = banner.join("\n");
    assert!(banner.contains("built-in Binance policy"), "{banner}");

    let mut client = Client::new(&format!("http://{addr}/mcp"))
        .initialized()
        .await;
    let allowed = client
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    assert!(!allowed.is_tool_error(), "{}", allowed.text);
    let denied = client
        .call_tool(
            "get_order_book",
            json!({"symbol": "BTCUSDT", "depth": 5000}),
        )
        .await;
    assert!(
        denied.is_tool_error(),
        "the Binance policy applies: {}",
        denied.text
    );

    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}
