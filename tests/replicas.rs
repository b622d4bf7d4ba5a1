//! Several replicas behind one address: a real `redis-server` and a real HAProxy (round robin,
//! no stickiness, config written here) in front of three gateways sharing a session key and
//! `--state redis://…`. Each test starts its own Redis and balancer on free ports.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use mcpgate::config::ReplicaConfig;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

/// Rate-limited, queue-approved and user-approved tools, and everything else allowed.
const POLICY: &str = r#"{"version": "1", "default": "allow", "tools": {
    "get_server_time": {"rate_limit": {"max": 5, "window": 600, "per": "global"}},
    "get_recent_trades": {"action": "approval", "reason": "reads the book", "timeout": 300},
    "subscribe_to_kline_stream": {"action": "approval", "reason": "opens a stream", "via": "elicitation"}}}"#;

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// A `redis-server` without persistence on `port`, once it says it accepts connections.
    async fn start(port: u16) -> Self {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server runs (apt-get install redis-server)");
        wait_for_line(child.stdout.take().unwrap(), "Ready to accept connections").await;
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    async fn stop(mut self) -> u16 {
        self.child.kill().await.unwrap();
        self.port
    }
}

struct Fleet {
    replicas: Vec<Harness>,
    balancer: Child,
    url: String,
    redis: Option<Redis>,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    free_local_addr().port()
}

fn replica_setup(upstream: &str, key: &str, previous: Option<&str>, redis: &str) -> Setup {
    Setup {
        policy: POLICY.into(),
        upstream: Some(upstream.to_owned()),
        audit: true,
        replicas: ReplicaConfig {
            session_key: Some(key.to_owned()),
            session_key_previous: previous.map(str::to_owned),
            state: Some(redis.to_owned()),
            ..ReplicaConfig::default()
        },
        ..Setup::default()
    }
}

impl Fleet {
    /// Redis, one simulator, three replicas sharing `key`, and HAProxy in front.
    async fn start() -> Self {
        let redis = Redis::start(free_port()).await;
        let (simulator, upstream) = start_simulator(binance_sim::SimulatorOptions {
            record: true,
            ..Default::default()
        })
        .await;
        let key = mcpgate::session_token::new_key();
        let mut replicas = Vec::new();
        for _ in 0..3 {
            let mut harness = start_with(replica_setup(&upstream, &key, None, &redis.url())).await;
            harness.simulator = simulator.clone();
            replicas.push(harness);
        }
        let dir = tempfile::tempdir().unwrap();
        let (balancer, url) = balance(&dir, &replicas).await;
        Fleet {
            replicas,
            balancer,
            url,
            redis: Some(redis),
            _dir: dir,
        }
    }

    fn simulator(&self) -> &binance_sim::Simulator {
        &self.replicas[0].simulator
    }

    fn client(&self) -> Client {
        Client::new(&self.url).json_only()
    }
}

/// HAProxy, round robin over the replicas with no stickiness: every request goes to the next
/// replica. Each answer names the replica (`X-Replica`). A replica that refuses connections is
/// skipped (`retry-on conn-failure`, `redispatch`), as a balancer with health checks would.
async fn balance(dir: &tempfile::TempDir, replicas: &[Harness]) -> (Child, String) {
    let port = free_port();
    let servers: String = replicas
        .iter()
        .enumerate()
        .map(|(i, r)| format!("  server r{i} {}\n", r.base.trim_start_matches("http://")))
        .collect();
    let config = format!(
        "global\n  maxconn 256\n\
         defaults\n  mode http\n  timeout connect 2s\n  timeout client 120s\n  timeout server 120s\n\
         \x20 retries 3\n  option redispatch 1\n  retry-on conn-failure empty-response\n\
         frontend mcp\n  bind 127.0.0.1:{port}\n  default_backend replicas\n\
         backend replicas\n  balance roundrobin\n  option http-server-close\n\
         \x20 http-response set-header X-Replica %s\n{servers}"
    );
    let path: PathBuf = dir.path().join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("haproxy runs (apt-get install haproxy)");
    let base = format!("http://127.0.0.1:{port}");
    // Readiness probe: the balancer answers /readyz once it listens and a replica is ready.
    let http = reqwest::Client::new();
    loop {
        match http.get(format!("{base}/readyz")).send().await {
            Ok(answer) if answer.status().is_success() => break,
            _ => tokio::task::yield_now().await,
        }
    }
    (child, format!("{base}/mcp"))
}

async fn replica_of(answer: &reqwest::Response) -> String {
    answer.headers()["x-replica"].to_str().unwrap().to_owned()
}

/// Posts one message in the client's session and says which replica answered.
async fn post_seen(client: &Client, message: &Value) -> (String, Answer) {
    let response = reqwest::Client::new()
        .post(&client.url)
        .headers(client.headers())
        .json(message)
        .send()
        .await
        .unwrap();
    let replica = replica_of(&response).await;
    (replica, Answer::read(response).await)
}

#[tokio::test]
async fn a_session_opened_on_one_replica_is_served_by_every_other() {
    let fleet = Fleet::start().await;
    let client = fleet.client().initialized().await;
    let mut seen = Vec::new();
    for id in 0..6 {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "ping_binance", "arguments": {}}});
        let (replica, answer) = post_seen(&client, &call).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert!(!answer.is_tool_error(), "{}", answer.text);
        seen.push(replica);
    }
    for pair in seen.windows(2) {
        assert_ne!(pair[0], pair[1], "round robin: {seen:?}");
    }
    assert_eq!(fleet.simulator().tool_calls("ping_binance"), 6);
}

#[tokio::test]
async fn a_limit_hit_through_every_replica_at_once_lets_exactly_max_through() {
    let fleet = Fleet::start().await;
    let client = fleet.client().initialized().await;
    let calls = (0..15).map(|id| {
        let client = &client;
        async move {
            let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": "get_server_time", "arguments": {}}});
            post_seen(client, &call).await
        }
    });
    let answers = futures::future::join_all(calls).await;
    let passed = answers.iter().filter(|(_, a)| !a.is_tool_error()).count();
    let replicas: std::collections::HashSet<_> = answers.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(replicas.len(), 3, "the calls reached every replica");
    assert_eq!(passed, 5, "the limit holds across the fleet");
    assert_eq!(fleet.simulator().tool_calls("get_server_time"), 5);
    let refused = answers.iter().find(|(_, a)| a.is_tool_error()).unwrap();
    assert!(
        refused.1.message().contains("Rate limited"),
        "{}",
        refused.1.text
    );
}

/// The replica whose audit log queued the approval.
fn holder(fleet: &Fleet) -> usize {
    (0..3)
        .find(|&i| {
            fleet.replicas[i]
                .audit_lines()
                .iter()
                .any(|r| r["decision"] == "approval_pending")
        })
        .expect("one replica queued the approval")
}

fn admin(harness: &Harness, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(format!("{}{path}", harness.base))
        .bearer_auth(ADMIN_TOKEN)
}

#[tokio::test]
async fn a_call_held_on_one_replica_is_released_by_a_decision_on_another() {
    let fleet = Fleet::start().await;
    let client = fleet.client().initialized().await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "get_recent_trades", "arguments": {"symbol": "BTCUSDT"}}});
    let held = tokio::spawn({
        let client = client.clone();
        async move { post_seen(&client, &call).await }
    });
    // Every replica's admin API lists the fleet's queue: wait until the call is in it.
    let list = |i: usize| {
        let base = fleet.replicas[i].base.clone();
        async move {
            reqwest::Client::new()
                .get(format!("{base}/admin/approvals"))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap()
                .json::<Vec<Value>>()
                .await
                .unwrap()
        }
    };
    let mut changes = fleet.replicas[2].gateway.approvals.subscribe();
    let id = loop {
        if let Some(pending) = list(2).await.first() {
            break pending["id"].as_str().unwrap().to_owned();
        }
        let _ = changes.recv().await;
    };
    for i in 0..3 {
        assert_eq!(
            list(i).await[0]["id"],
            id.as_str(),
            "replica {i} sees the queue"
        );
    }
    let holding = holder(&fleet);
    let other = (holding + 1) % 3;
    let decided = admin(
        &fleet.replicas[other],
        &format!("/admin/approvals/{id}/approve"),
    )
    .json(&json!({}))
    .send()
    .await
    .unwrap();
    assert_eq!(decided.status(), 200);
    let (replica, answer) = held.await.unwrap();
    assert_eq!(replica, format!("r{holding}"));
    assert!(!answer.is_tool_error(), "{}", answer.text);
    assert_eq!(fleet.simulator().tool_calls("get_recent_trades"), 1);
    // Used: a second decision is refused, on any replica.
    let again = admin(
        &fleet.replicas[holding],
        &format!("/admin/approvals/{id}/approve"),
    )
    .json(&json!({}))
    .send()
    .await
    .unwrap();
    assert_eq!(again.status(), 409);
}

#[tokio::test]
async fn of_two_replicas_racing_for_one_approval_exactly_one_uses_it() {
    let fleet = Fleet::start().await;
    for round in 0..5 {
        let session = format!("race-{round}");
        let arguments = json!({"symbol": "ETHUSDT", "round": round});
        let ask = mcpgate::approval::Ask {
            agent: None,
            session: &session,
            tool: "get_recent_trades",
            arguments: &arguments,
            other_params: None,
            rule: "tools.get_recent_trades",
            reason: "race",
            timeout: Duration::from_secs(60),
        };
        let queue = &fleet.replicas[0].gateway.approvals;
        let ticket = queue
            .request(&ask, std::time::Instant::now(), |_| {})
            .await
            .unwrap();
        let mcpgate::approval::Ticket::Waiting { approval, .. } = ticket else {
            panic!("queued");
        };
        fleet.replicas[1]
            .gateway
            .approvals
            .decide(&approval.id, true, "admin", None)
            .await
            .unwrap();
        let (a, b) = tokio::join!(
            fleet.replicas[1]
                .gateway
                .approvals
                .use_granted(&approval.id),
            fleet.replicas[2]
                .gateway
                .approvals
                .use_granted(&approval.id),
        );
        assert!(a.is_ok() != b.is_ok(), "round {round}: exactly one wins");
    }
}

#[tokio::test]
async fn a_replica_killed_mid_session_leaves_the_session_to_the_others() {
    let mut fleet = Fleet::start().await;
    let client = fleet.client().initialized().await;
    let call = |id: u64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "ping_binance", "arguments": {}}})
    };
    let (_, first) = post_seen(&client, &call(1)).await;
    assert_eq!(first.status, 200);
    drop(fleet.replicas.remove(1));
    for id in 2..8 {
        let (replica, answer) = post_seen(&client, &call(id)).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_ne!(replica, "r1");
    }
}

#[tokio::test]
async fn with_redis_down_limited_calls_fail_closed_and_everything_returns_with_it() {
    let mut fleet = Fleet::start().await;
    let client = fleet.client().initialized().await;
    let call = |id: u64, name: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": name, "arguments": {}}})
    };
    let port = fleet.redis.take().unwrap().stop().await;
    for id in 0..3 {
        let (_, limited) = post_seen(&client, &call(id, "get_server_time")).await;
        assert!(limited.is_tool_error(), "{}", limited.text);
        assert!(
            limited.message().contains("shared state store")
                && limited.message().contains("unreachable"),
            "{}",
            limited.text
        );
        // A rule that needs no shared state keeps working, on every replica.
        let (_, free) = post_seen(&client, &call(100 + id, "ping_binance")).await;
        assert!(!free.is_tool_error(), "{}", free.text);
    }
    let ready = reqwest::get(format!("{}/readyz", fleet.replicas[0].base))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("unreachable"));
    assert_eq!(fleet.simulator().tool_calls("get_server_time"), 0);

    fleet.redis = Some(Redis::start(port).await);
    // The connection manager reconnects by itself; the probe says when.
    for replica in &fleet.replicas {
        loop {
            let ready = reqwest::get(format!("{}/readyz", replica.base))
                .await
                .unwrap();
            if ready.status() == 200 {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    let (_, limited) = post_seen(&client, &call(9, "get_server_time")).await;
    assert!(!limited.is_tool_error(), "{}", limited.text);
}

#[tokio::test]
async fn tampered_expired_and_other_agents_tokens_are_unknown_and_reach_nothing() {
    let redis = Redis::start(free_port()).await;
    let (simulator, upstream) = start_simulator(binance_sim::SimulatorOptions {
        record: true,
        ..Default::default()
    })
    .await;
    let key = mcpgate::session_token::new_key();
    let bot_key = "bot-key-for-tests";
    let eve_key = "eve-key-for-tests";
    let digest = |k: &str| hex::encode(mcpgate::auth::digest_of(k));
    let mut setup = replica_setup(&upstream, &key, None, &redis.url());
    setup.agents = vec![
        format!("bot=sha256:{}", digest(bot_key)),
        format!("eve=sha256:{}", digest(eve_key)),
    ];
    let harness = start_with(setup).await;
    let bot = Client::new(&harness.url)
        .with_key(bot_key)
        .json_only()
        .initialized()
        .await;
    let token = bot.session.clone().unwrap();
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "ping_binance", "arguments": {}}});

    let mut tampered = bot.clone();
    let mut bytes = token.clone().into_bytes();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    tampered.session = Some(String::from_utf8(bytes).unwrap());
    tampered
        .post(&call)
        .await
        .assert_error(404, -32001, "session not found");

    let mut eve = Client::new(&harness.url).with_key(eve_key).json_only();
    eve.session = Some(token.clone());
    eve.post(&call)
        .await
        .assert_error(404, -32001, "session not found");

    let mut expired_setup = replica_setup(&upstream, &key, None, &redis.url());
    expired_setup.replicas.session_max_age = Duration::ZERO;
    let expiring = start_with(expired_setup).await;
    let mut stale = Client::new(&expiring.url).json_only();
    let opened = stale
        .post(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": VERSION, "capabilities": {},
            "clientInfo": {"name": "mcpgate-tests", "version": "1"}}}),
        )
        .await;
    stale.session = Some(opened.headers[SESSION].to_str().unwrap().to_owned());
    stale
        .post(&call)
        .await
        .assert_error(404, -32001, "session not found");

    assert_eq!(
        simulator.tool_calls("ping_binance"),
        0,
        "nothing reached the upstream"
    );
    let answer = bot.post(&call).await;
    assert!(!answer.is_tool_error(), "{}", answer.text);

    // Ended on one replica: unknown on every other.
    let mut other_setup = replica_setup(&upstream, &key, None, &redis.url());
    other_setup.agents = vec![format!("bot=sha256:{}", digest(bot_key))];
    let other = start_with(other_setup).await;
    let ended = reqwest::Client::new()
        .delete(&harness.url)
        .headers(bot.headers())
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 204);
    let mut elsewhere = bot.clone();
    elsewhere.url = other.url.clone();
    elsewhere
        .post(&call)
        .await
        .assert_error(404, -32001, "session not found");
}

#[tokio::test]
async fn sessions_sealed_with_the_previous_key_keep_working() {
    let redis = Redis::start(free_port()).await;
    let (_simulator, upstream) = start_simulator(Default::default()).await;
    let old = mcpgate::session_token::new_key();
    let new = mcpgate::session_token::new_key();
    let before = start_with(replica_setup(&upstream, &old, None, &redis.url())).await;
    let after = start_with(replica_setup(&upstream, &new, Some(&old), &redis.url())).await;
    let mut client = Client::new(&before.url).json_only().initialized().await;
    client.url = after.url.clone();
    let answer = client.call_tool("ping_binance", json!({})).await;
    assert!(!answer.is_tool_error(), "{}", answer.text);
}

/// The official SDK clients through the balancer: `binance` (every tool, progress) with both,
/// and `approval` (the gateway's own elicitation, answered by POST to whichever replica) with
/// Python. Every request of theirs lands on another replica than the one before.
async fn run_sdk(python: bool, url: &str, scenario: &str) -> Value {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    let mut command = if python {
        let mut c = Command::new(dir.join(".venv/bin/python"));
        c.arg(dir.join("py_client.py"));
        c
    } else {
        let mut c = Command::new("node");
        c.arg(dir.join("ts_client.mjs"));
        c
    };
    let output = command
        .args([url, scenario])
        .current_dir(&dir)
        .kill_on_drop(true)
        .output()
        .await
        .expect("the client runs");
    assert_exited_ok(
        &output,
        &format!("SDK client {scenario} through the balancer"),
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn the_sdk_clients_run_whole_sessions_through_the_balancer() {
    let fleet = Fleet::start().await;
    for python in [true, false] {
        let seen = run_sdk(python, &fleet.url, "binance").await;
        assert_eq!(seen["tools"].as_array().unwrap().len(), 29, "{seen}");
        assert!(!seen["progress"].as_array().unwrap().is_empty(), "{seen}");
    }
    let approved = run_sdk(true, &fleet.url, "approval").await;
    assert_eq!(
        approved["elicitations"].as_array().unwrap().len(),
        1,
        "{approved}"
    );
    assert_eq!(approved["subscribe"]["isError"], false, "{approved}");
    assert_eq!(fleet.simulator().tool_calls("subscribe_to_kline_stream"), 1);
    // Every replica served part of the sessions.
    for replica in &fleet.replicas {
        assert!(!replica.audit_lines().is_empty());
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.balancer.start_kill();
    }
}
