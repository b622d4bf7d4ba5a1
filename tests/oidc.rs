//! OAuth 2.1 against a real OpenID Connect provider: the certified `oidc-provider` (Node,
//! tests/clients/oidc_provider.mjs) issues the tokens, and the official Python SDK's OAuth client
//! (tests/clients/py_oauth_client.py) does the whole MCP authorization flow through the gateway.
//!
//! Needs the clients installed by `scripts/test` (tests/clients/.venv and tests/clients/node_modules).

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{assert_exited_ok, wait_for_line, Harness, Setup};
use mcpgate::oauth::OAuthConfig;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

/// research-bot alone may read the order book; recent trades need a scope the provider grants
/// but the client does not ask for.
const POLICY: &str = r#"{"version": "1", "default": "deny",
  "tools": {"get_price": {}},
  "agents": {"research-bot": {"default": "deny", "tools": {
    "get_price": {}, "get_order_book": {}, "get_recent_trades": {"scopes": ["trades"]}}}}}"#;

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// The provider process, and what it said when it started listening.
struct Provider {
    child: Child,
    issuer: String,
    port: u16,
    kid: String,
}

impl Provider {
    /// Starts the provider for `resource` on `port` (0: a free one); returns once it listens.
    async fn start(resource: &str, port: u16) -> Self {
        let dir = clients_dir();
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "oidc-provider is missing: run scripts/test"
        );
        let mut child = Command::new("node")
            .arg(dir.join("oidc_provider.mjs"))
            .args(["--resource", resource, "--port", &port.to_string()])
            .args(["--scope", "mcp trades"])
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let ready = "oidc-provider listening on ";
        let Some(line) = wait_for_line(child.stdout.take().unwrap(), ready).await else {
            let mut stderr = String::new();
            let _ = child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .await;
            panic!("the provider exited before listening:\n{stderr}");
        };
        // Its warnings (an unsupported Node version, the development adapter) are read and
        // dropped: a full pipe would stall it.
        let mut stderr = child.stderr.take().unwrap();
        tokio::spawn(async move { tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await });
        let mut words = line.trim_start_matches(ready).split(" kid ");
        let issuer = words.next().unwrap().to_owned();
        let kid = words.next().expect("the provider names its key").to_owned();
        let port = issuer.rsplit(':').next().unwrap().parse().unwrap();
        Self {
            child,
            issuer,
            port,
            kid,
        }
    }

    /// Stops the provider and starts it again on the same port, so with the same issuer, but with
    /// a new signing key: a key rotation.
    async fn restart_with_a_new_key(mut self, resource: &str) -> Self {
        self.child.kill().await.unwrap();
        let next = Self::start(resource, self.port).await;
        assert_eq!(next.issuer, self.issuer);
        assert_ne!(next.kid, self.kid, "a restart generates a new key");
        next
    }
}

/// The gateway in front of the simulator, accepting the provider's tokens for its own URL.
async fn gateway_and_provider() -> (Harness, Provider) {
    // The gateway's URL is its resource id, which the provider must know: bound first.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let provider = Provider::start(&public_url, 0).await;
    let harness = common::start_with(Setup {
        policy: POLICY.into(),
        audit: true,
        listener: Some(listener),
        oauth: Some(OAuthConfig {
            issuers: vec![provider.issuer.parse().unwrap()],
            public_url: public_url.parse().unwrap(),
            scopes: vec!["mcp".into()],
            // Registration gives each client a random id: the agent is the user who signed in.
            agent_claim: Some("sub".into()),
            // Every unknown key id may fetch the keys again: the rotation test needs no wait.
            jwks_min_refresh: Duration::ZERO,
        }),
        ..Setup::default()
    })
    .await;
    assert_eq!(harness.url, public_url);
    (harness, provider)
}

/// Runs the Python SDK's OAuth client against the gateway, signing in as `login`.
async fn python_oauth_client(url: &str, login: &str) -> Value {
    let dir = clients_dir();
    let python = dir.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test",
        python.display()
    );
    let output = Command::new(python)
        .arg(dir.join("py_oauth_client.py"))
        .args([url, login])
        .current_dir(&dir)
        .kill_on_drop(true)
        .output()
        .await
        .expect("the client runs");
    assert_exited_ok(&output, "the Python OAuth client");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "the client printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// A JWT's header and claims, read without checking anything.
fn jwt_parts(token: &str) -> (Value, Value) {
    let part = |i: usize| -> Value {
        let text = token.split('.').nth(i).expect("a JWT has three parts");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).unwrap()).unwrap()
    };
    (part(0), part(1))
}

/// The exchanges of the SDK's HTTP client as `METHOD URL STATUS`.
fn exchanges(seen: &Value) -> Vec<String> {
    seen["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["method"].as_str().unwrap(),
                e["url"].as_str().unwrap(),
                e["status"]
            )
        })
        .collect()
}

fn call_text(seen: &Value, tool: &str) -> String {
    seen["calls"][tool]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn python_sdk_signs_in_at_a_real_provider_and_calls_as_its_agent() {
    let (harness, provider) = gateway_and_provider().await;
    let seen = python_oauth_client(&harness.url, "research-bot").await;

    // The flow, in the order the MCP authorization spec (2025-06-18) lays out.
    let flow = exchanges(&seen);
    let issuer = &provider.issuer;
    let expected_start = [
        format!("POST {} 401", harness.url),
        format!(
            "GET {}/.well-known/oauth-protected-resource/mcp 200",
            harness.base
        ),
        format!("GET {issuer}/.well-known/oauth-authorization-server 200"),
        format!("POST {issuer}/reg 201"),
        format!("POST {issuer}/token 200"),
        format!("POST {} 200", harness.url),
    ];
    assert_eq!(flow[..expected_start.len()], expected_start, "{flow:#?}");
    let authorization = reqwest::Url::parse(seen["authorization_url"].as_str().unwrap()).unwrap();
    let query: std::collections::HashMap<_, _> = authorization.query_pairs().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["resource"], harness.url.as_str());
    // The scope the gateway's metadata names (the SDK adds `offline_access`, which the
    // provider advertises); not `trades`, which it does not name.
    let requested: Vec<&str> = query["scope"].split(' ').collect();
    assert!(requested.contains(&"mcp"), "{requested:?}");
    assert!(!requested.contains(&"trades"), "{requested:?}");

    // The token the provider issued: a JWT for this gateway, naming who signed in.
    let (header, claims) = jwt_parts(seen["access_token"].as_str().unwrap());
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], provider.kid.as_str());
    assert_eq!(claims["iss"], provider.issuer.as_str());
    assert_eq!(claims["aud"], harness.url.as_str());
    assert_eq!(claims["sub"], "research-bot");
    assert_eq!(claims["client_id"], seen["client_id"]);
    assert_eq!(claims["scope"], "mcp");

    // research-bot's section: the order book (which the top-level rules deny) is listed and
    // served; recent trades need `trades`, which the token lacks: hidden, and refused.
    assert_eq!(seen["tools"], json!(["get_order_book", "get_price"]));
    assert_eq!(call_text(&seen, "get_price"), "65000.12");
    assert_eq!(seen["calls"]["get_order_book"]["isError"], false, "{seen}");
    assert_eq!(seen["calls"]["get_recent_trades"]["isError"], true);
    assert!(
        call_text(&seen, "get_recent_trades").contains("lacks the scope trades"),
        "{seen}"
    );
    assert_eq!(harness.simulator.tool_calls("get_order_book"), 1);
    assert_eq!(harness.simulator.tool_calls("get_recent_trades"), 0);
    let audited = harness.audit_lines();
    assert!(
        audited.iter().any(|r| r["agent"] == "research-bot"
            && r["tool"] == "get_order_book"
            && r["decision"] == "allow"),
        "{audited:#?}"
    );
}

#[tokio::test]
async fn a_key_rotated_at_the_provider_is_used_without_restarting_the_gateway() {
    let (harness, provider) = gateway_and_provider().await;
    let before = python_oauth_client(&harness.url, "research-bot").await;
    let old_token = before["access_token"].as_str().unwrap().to_owned();
    assert_eq!(jwt_parts(&old_token).0["kid"], provider.kid.as_str());

    let provider = provider.restart_with_a_new_key(&harness.url).await;
    let after = python_oauth_client(&harness.url, "research-bot").await;
    let new_token = after["access_token"].as_str().unwrap();
    assert_eq!(jwt_parts(new_token).0["kid"], provider.kid.as_str());
    assert_eq!(after["tools"], json!(["get_order_book", "get_price"]));
    assert_eq!(
        after["calls"]["get_order_book"]["isError"], false,
        "{after}"
    );
    assert_eq!(harness.simulator.tool_calls("get_order_book"), 2);

    // The retired key is no longer published, so a token it signed no longer opens a session.
    let client = harness.client().with_key(&old_token);
    let refused = client
        .post(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": common::VERSION, "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}),
        )
        .await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    let challenge = refused.headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
}
