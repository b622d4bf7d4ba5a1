//! OAuth 2.1 access tokens: an authorization server started by the test (its metadata and JWKS
//! served over a real socket, its keys generated here), tokens minted by the test, and the
//! gateway as the resource server in front of the simulator (`world.rs`). Sessions opened with a
//! token, on streamable HTTP (`sessions.rs`) and the legacy HTTP+SSE transport (`legacy.rs`),
//! resumed by another replica (`replicas.rs`); MCP 2026-07-28 requests, which have no session
//! (`modern.rs`).
//! A real OpenID Connect provider and the Python SDK's OAuth client are in tests/oidc.rs.

#[path = "../common/mod.rs"]
mod common;
mod legacy;
mod modern;
mod replicas;
mod sessions;
mod world;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use world::{challenge, now, SigningKey, World, KEY_BOT};

#[tokio::test]
async fn a_request_without_a_token_learns_where_the_metadata_is() {
    let world = World::start().await;
    let answer = world.try_initialize(None).await;
    assert_eq!(answer.status, 401, "{}", answer.text);
    let metadata_url = format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        world.harness.base
    );
    assert_eq!(
        challenge(&answer),
        r#"Bearer resource_metadata="https://gateway.example/.well-known/oauth-protected-resource/mcp""#
    );
    for url in [
        metadata_url,
        format!(
            "{}/.well-known/oauth-protected-resource",
            world.harness.base
        ),
    ] {
        let document: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        assert_eq!(document["resource"], "https://gateway.example/mcp");
        assert_eq!(
            document["authorization_servers"],
            json!([world.server.issuer])
        );
        assert_eq!(document["scopes_supported"], json!(["mcp"]));
    }
    assert_eq!(world.simulator.received().len(), 0);
}

#[tokio::test]
async fn a_valid_token_calls_as_its_agent_and_is_never_forwarded() {
    let world = World::start().await;
    let token = world.token();
    let mut client = world.client(&token).initialized().await;
    // research-bot's section allows get_order_book; the global rules do not.
    let answer = client
        .call_tool("get_order_book", json!({"symbol": "BTCUSDT"}))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(!answer.is_tool_error(), "{}", answer.text);
    assert_eq!(world.simulator.tool_calls("get_order_book"), 1);
    assert!(
        world.forwarded_authorization.lock().unwrap().is_empty(),
        "the agent's token reached the upstream"
    );
    let audited = world.harness.audit_lines();
    assert!(audited
        .iter()
        .any(|r| r["agent"] == "research-bot" && r["tool"] == "get_order_book"));
    // The session is research-bot's: an agent key presenting its id gets 404.
    let mut other = world.client(KEY_BOT);
    other.session = client.session.clone();
    let stolen = other
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    assert_eq!(stolen.status, 404, "{}", stolen.text);
}

#[tokio::test]
async fn keys_and_tokens_work_side_by_side() {
    let world = World::start().await;
    let mut keyed = world.client(KEY_BOT).initialized().await;
    let answer = keyed
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    assert!(!answer.is_tool_error(), "{}", answer.text);
    let unknown = world.try_initialize(Some("not-a-key")).await;
    assert_eq!(unknown.status, 401);
    assert!(challenge(&unknown).contains(r#"error="invalid_token""#));
}

#[tokio::test]
async fn bad_tokens_are_refused_and_nothing_reaches_the_upstream() {
    let world = World::start().await;
    let mut claims = world.claims();
    let with = |field: &str, value: Value| {
        let mut claims = claims.clone();
        claims[field] = value;
        world.key.sign(&claims)
    };
    let header = |alg: &str| {
        URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT", "kid": "key-1"}).to_string())
    };
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let hs256_with_public_key = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("key-1".into());
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(&world.key.public),
        )
        .unwrap()
    };
    let other_key = SigningKey::generate("key-1");
    let cases = [
        (
            "wrong audience",
            with("aud", json!("https://elsewhere.example/mcp")),
        ),
        ("wrong issuer", with("iss", json!("https://evil.example"))),
        ("expired", with("exp", json!(now() - 3600))),
        ("not yet valid", with("nbf", json!(now() + 3600))),
        ("alg none", format!("{}.{payload}.", header("none"))),
        ("HS256 with the public key", hs256_with_public_key),
        ("signed by another key", other_key.sign(&claims)),
        ("garbage", "a.b.c".to_owned()),
    ];
    for (case, token) in cases {
        let answer = world.try_initialize(Some(&token)).await;
        assert_eq!(answer.status, 401, "{case}: {}", answer.text);
        assert!(
            challenge(&answer).contains(r#"error="invalid_token""#),
            "{case}: {}",
            challenge(&answer)
        );
    }
    claims["scope"] = json!("orders");
    let narrow = world.key.sign(&claims);
    let answer = world.try_initialize(Some(&narrow)).await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    assert!(challenge(&answer).contains(r#"error="insufficient_scope", scope="mcp""#));
    assert!(
        world.simulator.received().is_empty(),
        "a refused token reached the upstream"
    );
    let refusals = world
        .harness
        .audit_lines()
        .into_iter()
        .filter(|r| r["decision"] == "unauthorized")
        .count();
    assert_eq!(refusals, 9);
}

#[tokio::test]
async fn a_rotated_provider_key_is_picked_up_without_restart() {
    let world = World::start().await;
    let mut client = world.client(&world.token()).initialized().await;
    assert_eq!(*world.server.jwks_fetches.lock().unwrap(), 1);
    let next = SigningKey::generate("key-2");
    world.server.rotate_to(&next);
    // The gateway still holds key-1 and needs no fetch for tokens it signed.
    let answer = client
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    assert!(!answer.is_tool_error(), "{}", answer.text);
    assert_eq!(*world.server.jwks_fetches.lock().unwrap(), 1);
    // A token naming key-2 makes it fetch the set again.
    client.key = Some(next.sign(&world.claims()));
    let answer = client
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    assert!(!answer.is_tool_error(), "{}", answer.text);
    assert_eq!(*world.server.jwks_fetches.lock().unwrap(), 2);
    let _ = &world.server.keys;
}

#[tokio::test]
async fn a_rule_that_requires_a_scope_refuses_tokens_without_it() {
    let world = World::start().await;
    let mut claims = world.claims();
    claims["scope"] = json!("mcp");
    let narrow = world.key.sign(&claims);
    let mut client = world.client(&narrow).initialized().await;
    let refused = client
        .call_tool("get_order_book", json!({"symbol": "BTCUSDT"}))
        .await;
    assert!(refused.is_tool_error(), "{}", refused.text);
    assert!(
        refused.message().contains("lacks the scope orders"),
        "{}",
        refused.text
    );
    let allowed = client
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    assert!(!allowed.is_tool_error(), "{}", allowed.text);
    assert_eq!(world.simulator.tool_calls("get_order_book"), 0);

    // A session opened with the wider token cannot be used with the narrower one.
    let mut wide = world.client(&world.token()).initialized().await;
    let answer = wide
        .call_tool("get_order_book", json!({"symbol": "BTCUSDT"}))
        .await;
    assert!(!answer.is_tool_error(), "{}", answer.text);
    wide.key = Some(narrow);
    let answer = wide
        .call_tool("get_order_book", json!({"symbol": "BTCUSDT"}))
        .await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    assert_eq!(world.simulator.tool_calls("get_order_book"), 1);
}

#[tokio::test]
async fn a_token_granting_more_scopes_than_a_session_can_carry_is_refused() {
    let world = World::start().await;
    // A session carries its token's scopes sealed in its id, which must stay short enough to
    // open: such a token would open a session that no later request could use.
    let many: Vec<String> = (0..200).map(|i| format!("scope-number-{i:04}")).collect();
    let token = world.token_for("research-bot", &format!("mcp {}", many.join(" ")));
    let answer = world.try_initialize(Some(&token)).await;
    assert_eq!(answer.status, 401, "{}", answer.text);
    assert!(challenge(&answer).contains(r#"error="invalid_token""#));
    assert!(answer.text.contains("bytes of scopes"), "{}", answer.text);
    assert!(world.simulator.received().is_empty());
}
