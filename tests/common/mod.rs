//! The test harness: a simulated upstream and a gateway in front of it, each on its own
//! ephemeral port on 127.0.0.1, talked to over real sockets.
#![allow(dead_code)] // each test binary uses its own part of the harness

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use binance_sim::{Simulator, SimulatorOptions};
use mcpgate::config::{ApprovalConfig, GatewayConfig, Limits, UpstreamAccess};
use mcpgate::gateway::Gateway;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const SESSION: &str = "mcp-session-id";
pub const VERSION: &str = "2025-06-18";
pub const ADMIN_TOKEN: &str = "admin-token-for-tests";

/// A policy that allows everything: for tests about the transport, not the rules.
pub const ALLOW_ALL: &str = r#"{"version": "1", "default": "allow", "tools": {}}"#;

pub mod legacy;
pub mod modern;
pub mod node;
pub mod process;
pub mod upstream;

pub struct Harness {
    pub url: String,
    pub base: String,
    pub gateway: Arc<Gateway>,
    pub simulator: Simulator,
    pub upstream_url: String,
    pub policy_path: PathBuf,
    /// `http://ADDR/metrics` when the setup asked for metrics.
    pub metrics_url: Option<String>,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub struct Setup {
    pub policy: String,
    pub simulator: SimulatorOptions,
    pub limits: Limits,
    pub audit: bool,
    pub audit_arguments: bool,
    pub allowed_origins: Vec<String>,
    pub agents: Vec<String>,
    pub require_auth: bool,
    pub approvals: ApprovalConfig,
    /// Put the gateway in front of this URL instead of a fresh simulator.
    pub upstream: Option<String>,
    /// Run this program per session as the upstream, on stdio (`--upstream-command`).
    pub upstream_command: Option<mcpgate::upstream::UpstreamCommand>,
    /// Serve /metrics on a listener of its own (`--metrics-listen`).
    pub metrics: bool,
    /// Session key and shared state (several replicas).
    pub replicas: mcpgate::config::ReplicaConfig,
    /// Lay the policy out as a Kubernetes ConfigMap mounts it: `policy.json ->
    /// ..data/policy.json`, `..data -> ..2026_01_01_00_00_00.0/` (see [`Harness::swap_configmap`]).
    pub configmap: bool,
    /// `--upstream-header`s and `--upstream-ca`.
    pub upstream_access: UpstreamAccess,
    /// Accept OAuth access tokens (`--oauth-issuer`, `--public-url`).
    pub oauth: Option<mcpgate::oauth::OAuthConfig>,
    /// Serve on this listener instead of a fresh one: a test that must know the gateway's URL
    /// before it starts (an OAuth `--public-url` naming the gateway itself) binds it first.
    pub listener: Option<TcpListener>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            policy: ALLOW_ALL.into(),
            simulator: SimulatorOptions {
                record: true,
                ..SimulatorOptions::default()
            },
            limits: Limits::default(),
            audit: false,
            audit_arguments: false,
            allowed_origins: Vec::new(),
            agents: Vec::new(),
            require_auth: false,
            approvals: ApprovalConfig {
                admin_token: Some(ADMIN_TOKEN.into()),
                hold: Duration::from_secs(30),
                ..ApprovalConfig::default()
            },
            upstream: None,
            upstream_command: None,
            metrics: false,
            replicas: Default::default(),
            configmap: false,
            upstream_access: UpstreamAccess::default(),
            oauth: None,
            listener: None,
        }
    }
}

pub async fn start_simulator(options: SimulatorOptions) -> (Simulator, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let simulator = Simulator::new(options);
    tokio::spawn(simulator.clone().serve(listener));
    (simulator, format!("http://{addr}/mcp"))
}

pub async fn start(policy: &str) -> Harness {
    start_with(Setup {
        policy: policy.into(),
        ..Setup::default()
    })
    .await
}

/// A gateway that allows everything, in front of the upstream at `url`.
pub async fn start_before(url: String) -> Harness {
    start_with(Setup {
        upstream: Some(url),
        ..Setup::default()
    })
    .await
}

pub async fn start_with(setup: Setup) -> Harness {
    let (simulator, simulator_url) = start_simulator(setup.simulator).await;
    let upstream_url = setup.upstream.unwrap_or(simulator_url);
    let dir = tempfile::tempdir().unwrap();
    let policy_path = dir.path().join("policy.json");
    if setup.configmap {
        let first = dir.path().join("..2026_01_01_00_00_00.0");
        std::fs::create_dir(&first).unwrap();
        std::fs::write(first.join("policy.json"), &setup.policy).unwrap();
        std::os::unix::fs::symlink("..2026_01_01_00_00_00.0", dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/policy.json", &policy_path).unwrap();
    } else {
        std::fs::write(&policy_path, &setup.policy).unwrap();
    }
    let listener = match setup.listener {
        Some(listener) => listener,
        None => TcpListener::bind("127.0.0.1:0").await.unwrap(),
    };
    let addr = listener.local_addr().unwrap();
    let metrics_listen = setup.metrics.then(free_local_addr);
    let config = GatewayConfig {
        listen: addr,
        upstream: upstream_url.parse().unwrap(),
        upstream_access: setup.upstream_access,
        upstream_command: setup.upstream_command.clone(),
        policy: policy_path.clone(),
        allowed_origins: setup.allowed_origins,
        audit: setup.audit.then(|| dir.path().join("audit.jsonl")),
        audit_arguments: setup.audit_arguments,
        audit_fsync: mcpgate::audit::Fsync::Never,
        agents: setup.agents,
        require_auth: setup.require_auth,
        approvals: setup.approvals,
        limits: setup.limits,
        workers: std::num::NonZeroUsize::new(2).unwrap(),
        metrics_listen,
        replicas: setup.replicas,
        oauth: setup.oauth,
    };
    let gateway = mcpgate::gateway::build(config).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(mcpgate::server::serve(gateway.clone(), listener, async {
        let _ = stopped.await;
    }));
    Harness {
        url: format!("http://{addr}/mcp"),
        base: format!("http://{addr}"),
        gateway,
        simulator,
        upstream_url,
        policy_path,
        metrics_url: metrics_listen.map(|addr| format!("http://{addr}/metrics")),
        dir,
        stop: Some(stop),
    }
}

/// tests/clients/stdio_server.py (the Python SDK's server on stdio) as `--upstream-command`,
/// with one `--upstream-env` variable, `GIVEN`.
pub fn stdio_fixture() -> mcpgate::upstream::UpstreamCommand {
    let clients = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    let python = clients.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test",
        python.display()
    );
    mcpgate::upstream::UpstreamCommand {
        program: python.to_string_lossy().into_owned(),
        args: vec![clients
            .join("stdio_server.py")
            .to_string_lossy()
            .into_owned()],
        env: vec![("GIVEN".into(), "by --upstream-env".into())],
    }
}

/// An address on 127.0.0.1 that was free a moment ago, for listeners the gateway binds itself.
pub fn free_local_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

impl Harness {
    pub fn client(&self) -> Client {
        Client::new(&self.url)
    }

    pub fn audit_lines(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir.path().join("audit.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Publishes `policy` as a ConfigMap update does (setup `configmap`): a new timestamped
    /// directory, a `..data_tmp` link to it renamed over `..data`, the old directory removed.
    /// `policy.json` itself is never touched. Waits until the gateway serves it, told by its
    /// rule names, which must differ from the current policy's.
    pub async fn swap_configmap(
        &self,
        policy: &str,
        stamp: &str,
    ) -> mcpgate::gateway::ReloadStatus {
        let names = |p: &mcpgate::policy::CompiledPolicy| -> Vec<String> {
            p.tool_rule_names().map(str::to_owned).collect()
        };
        let wanted =
            names(&mcpgate::policy::CompiledPolicy::from_json_slice(policy.as_bytes()).unwrap());
        assert_ne!(
            names(&self.gateway.policy.load()),
            wanted,
            "tell the policies apart"
        );
        let mut reloads = self.gateway.reloads.subscribe();
        let root = self.dir.path();
        let old = std::fs::read_link(root.join("..data")).unwrap();
        let new = format!("..{stamp}");
        std::fs::create_dir(root.join(&new)).unwrap();
        std::fs::write(root.join(&new).join("policy.json"), policy).unwrap();
        std::os::unix::fs::symlink(&new, root.join("..data_tmp")).unwrap();
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        std::fs::remove_dir_all(root.join(old)).unwrap();
        let gateway = &self.gateway;
        let status = tokio::time::timeout(
            Duration::from_secs(10),
            reloads.wait_for(|_| names(&gateway.policy.load()) == wanted),
        )
        .await
        .expect("the gateway applied the ConfigMap update")
        .unwrap()
        .clone();
        status
    }

    /// The metrics scrape: every sample as `(name{labels}, value)`, checked to be well formed.
    pub async fn scrape(&self) -> Vec<(String, f64)> {
        let url = self
            .metrics_url
            .as_ref()
            .expect("the setup asked for metrics");
        let response = reqwest::get(url).await.unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        parse_scrape(&response.text().await.unwrap())
    }

    /// Replaces the policy file and waits until the gateway has applied (or rejected) it.
    pub async fn rewrite_policy(&self, policy: &str) -> mcpgate::gateway::ReloadStatus {
        let mut reloads = self.gateway.reloads.subscribe();
        let before = reloads.borrow_and_update().clone();
        std::fs::write(&self.policy_path, policy).unwrap();
        let status = tokio::time::timeout(
            Duration::from_secs(10),
            reloads.wait_for(|s| s.applied != before.applied || s.rejected != before.rejected),
        )
        .await
        .expect("the gateway noticed the policy change")
        .unwrap()
        .clone();
        status
    }
}

/// Parses the OpenMetrics text format: `# TYPE/HELP/UNIT` lines, samples as `name{labels}
/// value`, and `# EOF` last. Panics on anything else.
pub fn parse_scrape(text: &str) -> Vec<(String, f64)> {
    let mut samples = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "# EOF" {
            assert!(lines.peek().is_none(), "# EOF is the last line");
            return samples;
        }
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line.starts_with("# UNIT ")
        {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("a sample: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            value => value.parse().unwrap_or_else(|_| panic!("a number: {line}")),
        };
        if let Some((name, labels)) = series.split_once('{') {
            assert!(labels.ends_with('}'), "labels close: {line}");
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
        }
        samples.push((series.to_owned(), value));
    }
    panic!("the scrape ends with # EOF:\n{text}");
}

/// The value of one sample, or 0 when the series does not exist yet.
pub fn sample(samples: &[(String, f64)], series: &str) -> f64 {
    samples
        .iter()
        .find(|(name, _)| name == series)
        .map_or(0.0, |(_, value)| *value)
}

/// A raw streamable-HTTP client, for asserting exact statuses and bodies.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub url: String,
    pub session: Option<String>,
    pub accept: &'static str,
    /// The agent key sent as `Authorization: Bearer`.
    pub key: Option<String>,
    next_id: i64,
}

pub struct Answer {
    pub status: reqwest::StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Client {
    pub fn new(url: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: url.into(),
            session: None,
            accept: "application/json, text/event-stream",
            key: None,
            next_id: 0,
        }
    }

    pub fn with_key(mut self, key: &str) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn json_only(mut self) -> Self {
        self.accept = "application/json";
        self
    }

    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static(self.accept));
        headers.insert("mcp-protocol-version", HeaderValue::from_static(VERSION));
        if let Some(session) = &self.session {
            headers.insert(SESSION, HeaderValue::from_str(session).unwrap());
        }
        if let Some(key) = &self.key {
            headers.insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
            );
        }
        headers
    }

    pub async fn post_raw(&self, headers: HeaderMap, body: impl Into<reqwest::Body>) -> Answer {
        let response = self
            .http
            .post(&self.url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .unwrap();
        Answer::read(response).await
    }

    pub async fn post(&self, message: &Value) -> Answer {
        self.post_raw(self.headers(), serde_json::to_vec(message).unwrap())
            .await
    }

    /// initialize + notifications/initialized; keeps the session id.
    pub async fn initialize(&mut self) -> Value {
        let answer = self
            .post(
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": VERSION, "capabilities": {},
                "clientInfo": {"name": "mcpgate-tests", "version": "1"}}}),
            )
            .await;
        assert_eq!(answer.status, 200, "initialize: {}", answer.text);
        let session = answer
            .headers
            .get(SESSION)
            .expect("initialize issues a session id");
        self.session = Some(session.to_str().unwrap().to_owned());
        let note = self
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert_eq!(note.status, 202, "{}", note.text);
        answer.body
    }

    /// This client, once it has initialized a session.
    pub async fn initialized(mut self) -> Self {
        self.initialize().await;
        self
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Answer {
        self.next_id += 1;
        self.post(
            &json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}),
        )
        .await
    }

    pub async fn call_tool(&mut self, name: &str, arguments: Value) -> Answer {
        self.request("tools/call", json!({"name": name, "arguments": arguments}))
            .await
    }

    /// Every tool name tools/list shows, following `nextCursor` from page to page.
    pub async fn tool_names(&mut self) -> Vec<String> {
        let mut names = Vec::new();
        let mut params = json!({});
        for _page in 0..100 {
            let answer = self.request("tools/list", params).await;
            let Some(tools) = answer.body["result"]["tools"].as_array() else {
                panic!("tools/list answered {}", answer.text);
            };
            for tool in tools {
                names.push(tool["name"].as_str().unwrap().to_owned());
            }
            match answer.body["result"]["nextCursor"].as_str() {
                Some(cursor) => params = json!({ "cursor": cursor }),
                None => return names,
            }
        }
        panic!("tools/list was still paging after 100 pages");
    }
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let is_stream = headers
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/event-stream"));
        let text = response.text().await.unwrap();
        let body = if is_stream {
            last_sse_message(&text)
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    /// The text of a refused or failed call's result, or the JSON-RPC error message.
    pub fn message(&self) -> String {
        if let Some(text) = self.body["result"]["content"][0]["text"].as_str() {
            return text.to_owned();
        }
        self.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn is_tool_error(&self) -> bool {
        self.body["result"]["isError"] == json!(true)
    }

    /// Asserts which error this is: the HTTP status, the JSON-RPC error code, and a recognisable
    /// part of the message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: i64, says: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.body["error"]["code"], code, "{}", self.text);
        assert!(self.message().contains(says), "not {says:?}: {}", self.text);
    }
}

/// Every JSON message in an SSE body, in order.
pub fn sse_messages(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("data:")
                        .map(|d| d.strip_prefix(' ').unwrap_or(d))
                })
                .collect();
            (!data.is_empty())
                .then(|| serde_json::from_str(&data.join("\n")).ok())
                .flatten()
        })
        .collect()
}

fn last_sse_message(text: &str) -> Value {
    sse_messages(text).pop().unwrap_or(Value::Null)
}

/// Reads an SSE response message by message, as the events arrive.
pub struct SseReader {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self::from_stream(response.bytes_stream())
    }

    /// Reads on from a body whose first events were read some other way.
    pub fn from_stream(
        body: impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send + 'static,
    ) -> Self {
        Self {
            body: Box::pin(body),
            buffer: String::new(),
        }
    }

    /// The next JSON message, or `None` when the stream ends.
    pub async fn next_message(&mut self) -> Option<Value> {
        use futures::StreamExt;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                if let Some(message) = sse_messages(&event).pop() {
                    return Some(message);
                }
                continue;
            }
            let chunk = self.body.next().await?.ok()?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// Asserts that a child process (`what`) exited 0, showing its stderr when it did not.
#[track_caller]
pub fn assert_exited_ok(output: &std::process::Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Reads a child's `output` until a line containing `ready` (how the servers the tests start say
/// they listen), then drains the rest in the background: a full pipe would stall the child.
/// Returns that line, or `None` when the output ended without it (the child exited).
pub async fn wait_for_line<R>(output: R, ready: &str) -> Option<String>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(output).lines();
    let mut found = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.contains(ready) {
            found = Some(line);
            break;
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    found
}
