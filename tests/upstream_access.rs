//! Reaching the upstream: its URL's secrets stay out of what anyone is shown, the gateway's own
//! credentials go in `--upstream-header`s (never an agent's headers), and `--upstream-ca` trusts
//! an internal CA.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use bytes::Bytes;
use common::upstream::FakeUpstream;
use common::*;
use http_body_util::{BodyExt, Full};
use mcpgate::config::UpstreamAccess;
use serde_json::{json, Value};
use tokio::net::TcpListener;

const SECRETS: [&str; 3] = ["PASSWORD", "SECRETKEY", "user:"];

/// `url` with a user, a password and an API key in its query, as operators write them.
fn with_secrets(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    format!("http://user:PASSWORD@{rest}?api_key=SECRETKEY")
}

fn assert_no_secrets(text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} shown: {text}");
    }
}

#[tokio::test]
async fn upstream_url_secrets_are_never_in_the_502_or_readyz() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let shown = format!("http://{}/mcp", closed.local_addr().unwrap());
    drop(closed);
    let harness = start_with(Setup {
        upstream: Some(with_secrets(&shown)),
        ..Setup::default()
    })
    .await;
    let mut client = harness.client();
    let answer = client
        .request(
            "initialize",
            json!({"protocolVersion": VERSION,
        "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        )
        .await;
    answer.assert_error(502, -32000, &shown);
    assert_no_secrets(&answer.text);
    let ready = reqwest::get(format!("{}/readyz", harness.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let text = ready.text().await.unwrap();
    assert!(text.contains(&shown), "{text}");
    assert_no_secrets(&text);
}

/// An upstream that keeps the headers of every request it gets.
async fn header_recording_upstream() -> (String, Arc<Mutex<Vec<HeaderMap>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    let url = FakeUpstream::start_with_headers(move |headers, _| {
        kept.lock().unwrap().push(headers);
        async { None }
    })
    .await;
    (url, seen)
}

#[tokio::test]
async fn upstream_headers_are_sent_on_every_request_and_agent_headers_never() {
    let (url, seen) = header_recording_upstream().await;
    let harness = start_with(Setup {
        upstream: Some(url),
        upstream_access: UpstreamAccess {
            headers: vec![
                "X-Api-Key: gateway-key".into(),
                "Authorization: Bearer gateway-token".into(),
            ],
            ca: None,
        },
        ..Setup::default()
    })
    .await;
    let client = harness.client();
    let mut headers = client.headers();
    headers.insert("x-api-key", "agent-key".parse().unwrap());
    headers.insert("cookie", "agent=1".parse().unwrap());
    headers.insert("x-agent-secret", "agent".parse().unwrap());
    let answer = client
        .post_raw(
            headers,
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": VERSION, "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}}})
            .to_string(),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let mut client = client;
    client.session = Some(answer.headers[SESSION].to_str().unwrap().to_owned());
    client.request("tools/list", json!({})).await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    for headers in seen.iter() {
        let keys: Vec<_> = headers.get_all("x-api-key").iter().collect();
        assert_eq!(keys, ["gateway-key"], "{headers:?}");
        assert_eq!(headers["authorization"], "Bearer gateway-token");
        assert!(headers.get("cookie").is_none(), "{headers:?}");
        assert!(headers.get("x-agent-secret").is_none(), "{headers:?}");
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// An MCP server over HTTPS with a certificate from the test CA (`tests/fixtures/tls`), that
/// answers initialize.
async fn https_upstream() -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certificates = CertificateDer::pem_file_iter(fixture("upstream.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("upstream.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return; // the gateway did not trust the certificate
                };
                let service = hyper::service::service_fn(answer_initialize);
                let io = hyper_util::rt::TokioIo::new(tls);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    url
}

async fn answer_initialize(
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, hyper::Error> {
    let body = request.into_body().collect().await?.to_bytes();
    let message: Value = serde_json::from_slice(&body).unwrap_or_default();
    let answer = json!({"jsonrpc": "2.0", "id": message["id"], "result": {
        "protocolVersion": VERSION, "capabilities": {"tools": {}},
        "serverInfo": {"name": "https-upstream", "version": "1"}}});
    Ok(hyper::Response::builder()
        .header("content-type", "application/json")
        .header(SESSION, "https-1")
        .body(Full::new(Bytes::from(answer.to_string())))
        .unwrap())
}

async fn initialize_through(upstream: &str, ca: Option<PathBuf>) -> Answer {
    let harness = start_with(Setup {
        upstream: Some(upstream.to_owned()),
        upstream_access: UpstreamAccess {
            headers: Vec::new(),
            ca,
        },
        ..Setup::default()
    })
    .await;
    harness
        .client()
        .request(
            "initialize",
            json!({"protocolVersion": VERSION,
            "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        )
        .await
}

#[tokio::test]
async fn an_https_upstream_signed_by_an_internal_ca_is_trusted_only_with_upstream_ca() {
    let upstream = https_upstream().await;
    let untrusted = initialize_through(&upstream, None).await;
    untrusted.assert_error(502, -32000, "certificate");
    let trusted = initialize_through(&upstream, Some(fixture("ca.pem"))).await;
    assert_eq!(trusted.status, 200, "{}", trusted.text);
    assert_eq!(
        trusted.body["result"]["serverInfo"]["name"],
        "https-upstream"
    );
}

#[tokio::test]
async fn serve_logs_the_upstream_url_redacted_and_sends_headers_read_from_the_environment() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let (url, seen) = header_recording_upstream().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let policy = format!("{}/policies/binance.json", env!("CARGO_MANIFEST_DIR"));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .args(["serve", "--log-format", "json"])
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--policy",
            &policy,
        ])
        .args(["--upstream", &with_secrets(&url)])
        .args([
            "--upstream-header",
            "X-Api-Key: env:MCPGATE_TEST_UPSTREAM_KEY",
        ])
        .env("MCPGATE_TEST_UPSTREAM_KEY", "key-from-the-environment")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().expect("a log line");
    let line: Value = serde_json::from_str(&first).expect("logs are JSON lines");
    assert_eq!(line["message"], "mcpgate serving MCP on /mcp", "{first}");
    assert_eq!(line["upstream"], url, "{first}");
    assert_no_secrets(&first);
    let initialize = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": VERSION, "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(initialize.status(), 200);
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0]["x-api-key"], "key-from-the-environment");
}
