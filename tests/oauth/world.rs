//! The world the OAuth tests run in: an authorization server started by the test (its metadata
//! and JWKS served over a real socket, its keys generated here), tokens minted by the test, and
//! the gateway as the resource server in front of the simulator (or an upstream of the test's).
//! Its gateways share one session key, so a second one (`World::replica`) resumes the first's
//! sessions as another replica would.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use binance_sim::{Simulator, SimulatorOptions};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcpgate::oauth::OAuthConfig;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::common::{self, Client, Setup};

/// research-bot (named by the token's `client_id`) may read the order book with the `orders`
/// scope; everyone may read prices. key-bot is an agent key beside the tokens.
pub const POLICY: &str = r#"{"version": "1", "default": "deny",
  "tools": {"get_price": {}},
  "agents": {"research-bot": {"default": "deny", "tools": {"get_price": {}, "get_order_book": {"scopes": ["orders"]}}}}}"#;

/// The agent key of key-bot.
pub const KEY_BOT: &str = "k-key-bot";

/// A signing key of the test's authorization server.
pub struct SigningKey {
    pub kid: String,
    pkcs8: Vec<u8>,
    pub public: Vec<u8>,
}

impl SigningKey {
    pub fn generate(kid: &str) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .unwrap()
            .as_ref()
            .to_vec();
        let public = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        Self {
            kid: kid.into(),
            pkcs8,
            public,
        }
    }

    pub fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
            "kid": self.kid, "x": URL_SAFE_NO_PAD.encode(&self.public)})
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&self.pkcs8)).unwrap()
    }
}

/// The test's authorization server: RFC 8414 metadata and a JWKS that the test can rotate.
pub struct AuthServer {
    pub issuer: String,
    pub keys: Arc<Mutex<Vec<Value>>>,
    pub jwks_fetches: Arc<Mutex<usize>>,
}

impl AuthServer {
    pub async fn start(first: &SigningKey) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let keys = Arc::new(Mutex::new(vec![first.jwk()]));
        let jwks_fetches = Arc::new(Mutex::new(0));
        let metadata = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks"),
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token")});
        let (served, fetches) = (keys.clone(), jwks_fetches.clone());
        let app = axum::Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(move || async move { Json(metadata) }),
            )
            .route(
                "/jwks",
                get(move || async move {
                    *fetches.lock().unwrap() += 1;
                    let keys = served.lock().unwrap().clone();
                    Json(json!({ "keys": keys }))
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            issuer,
            keys,
            jwks_fetches,
        }
    }

    pub fn rotate_to(&self, key: &SigningKey) {
        *self.keys.lock().unwrap() = vec![key.jwk()];
    }
}

/// The simulator behind a layer that remembers every `Authorization` header it was sent.
pub async fn upstream_recording_authorization() -> (Simulator, String, Arc<Mutex<Vec<String>>>) {
    let simulator = Simulator::new(SimulatorOptions {
        record: true,
        ..SimulatorOptions::default()
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = simulator.router().layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let record = record.clone();
            async move {
                if let Some(value) = request.headers().get("authorization") {
                    record
                        .lock()
                        .unwrap()
                        .push(value.to_str().unwrap().to_owned());
                }
                next.run(request).await
            }
        },
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (simulator, url, seen)
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub struct World {
    pub harness: common::Harness,
    pub server: AuthServer,
    pub key: SigningKey,
    pub simulator: Simulator,
    pub forwarded_authorization: Arc<Mutex<Vec<String>>>,
    pub public_url: String,
    /// The `--session-key` every gateway of this world is given.
    pub session_key: String,
}

impl World {
    pub async fn start() -> Self {
        let (simulator, upstream, forwarded_authorization) =
            upstream_recording_authorization().await;
        Self::in_front_of(upstream, simulator, forwarded_authorization).await
    }

    /// The world in front of `upstream` (its simulator is then unused).
    pub async fn start_with_upstream(upstream: String) -> Self {
        let simulator = Simulator::new(SimulatorOptions::default());
        Self::in_front_of(upstream, simulator, Arc::default()).await
    }

    async fn in_front_of(
        upstream: String,
        simulator: Simulator,
        forwarded_authorization: Arc<Mutex<Vec<String>>>,
    ) -> Self {
        let key = SigningKey::generate("key-1");
        let server = AuthServer::start(&key).await;
        let public_url = "https://gateway.example/mcp".to_owned();
        let session_key = mcpgate::session_token::new_key();
        let harness =
            common::start_with(gateway_setup(&server, &public_url, &session_key, upstream)).await;
        Self {
            harness,
            server,
            key,
            simulator,
            forwarded_authorization,
            public_url,
            session_key,
        }
    }

    /// Another gateway as the first is configured, in front of the same upstream and with the
    /// same session key: a replica that has seen none of the first one's sessions.
    pub async fn replica(&self) -> common::Harness {
        let setup = gateway_setup(
            &self.server,
            &self.public_url,
            &self.session_key,
            self.harness.upstream_url.clone(),
        );
        common::start_with(setup).await
    }

    pub fn claims(&self) -> Value {
        json!({"iss": self.server.issuer, "aud": self.public_url, "sub": "user-7",
            "client_id": "research-bot", "scope": "mcp orders", "iat": now(),
            "exp": now() + 300})
    }

    pub fn token(&self) -> String {
        self.key.sign(&self.claims())
    }

    /// A valid token naming `agent` (its `client_id`) and granting `scope` (space-separated).
    pub fn token_for(&self, agent: &str, scope: &str) -> String {
        let mut claims = self.claims();
        claims["client_id"] = json!(agent);
        claims["scope"] = json!(scope);
        self.key.sign(&claims)
    }

    pub fn client(&self, token: &str) -> Client {
        self.harness.client().with_key(token)
    }

    /// An initialize with this credential: its status and the `WWW-Authenticate` it came with.
    pub async fn try_initialize(&self, token: Option<&str>) -> common::Answer {
        let mut client = self.harness.client();
        client.key = token.map(str::to_owned);
        client
            .post(
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": common::VERSION, "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}}}),
            )
            .await
    }
}

fn gateway_setup(
    server: &AuthServer,
    public_url: &str,
    session_key: &str,
    upstream: String,
) -> Setup {
    Setup {
        policy: POLICY.into(),
        upstream: Some(upstream),
        audit: true,
        agents: vec![format!(
            "key-bot=sha256:{}",
            hex::encode(mcpgate::auth::digest_of(KEY_BOT))
        )],
        oauth: Some(OAuthConfig {
            issuers: vec![server.issuer.parse().unwrap()],
            public_url: public_url.parse().unwrap(),
            scopes: vec!["mcp".into()],
            agent_claim: None,
            jwks_min_refresh: Duration::ZERO,
        }),
        replicas: mcpgate::config::ReplicaConfig {
            session_key: Some(session_key.to_owned()),
            ..Default::default()
        },
        ..Setup::default()
    }
}

pub fn challenge(answer: &common::Answer) -> String {
    answer
        .headers
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}
