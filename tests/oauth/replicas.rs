//! A session opened with an access token, used on other gateways sharing the session key (as
//! replicas behind a balancer are): they resume it from its sealed id, scopes included.

use reqwest::Method;
use serde_json::json;

use crate::common::Client;
use crate::sessions::{session_request, www_authenticate};
use crate::world::World;

/// `client`'s session, at the gateway at `url`, with `token`.
fn elsewhere(client: &Client, url: &str, token: &str) -> Client {
    let mut moved = Client::new(url).with_key(token);
    moved.session = client.session.clone();
    moved
}

#[tokio::test]
async fn a_session_resumed_on_another_replica_keeps_its_scopes() {
    let world = World::start().await;
    let wide_token = world.token_for("research-bot", "mcp orders");
    let narrow_token = world.token_for("research-bot", "mcp");
    let opened = world.client(&wide_token).initialized().await;

    // B has never seen the session: it is rebuilt from its id, and judged by `orders`.
    let b = world.replica().await;
    let mut wide = elsewhere(&opened, &b.url, &wide_token);
    let mut names = wide.tool_names().await;
    names.sort();
    assert_eq!(names, ["get_order_book", "get_price"]);
    let answer = wide
        .call_tool("get_order_book", json!({"symbol": "BTCUSDT"}))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(!answer.is_tool_error(), "{}", answer.text);
    assert_eq!(world.simulator.tool_calls("get_order_book"), 1);

    // C has never seen it either: the first thing it gets is the narrower token, refused on
    // every route of the session, and nothing reaches the upstream.
    let c = world.replica().await;
    let received = world.simulator.received().len();
    let mut narrow = elsewhere(&opened, &c.url, &narrow_token);
    let refused = narrow
        .call_tool("get_order_book", json!({"symbol": "BTCUSDT"}))
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    for method in [Method::GET, Method::DELETE] {
        let session = opened.session.as_deref().unwrap();
        let response = session_request(&c.url, method.clone(), &narrow_token, session).await;
        assert_eq!(response.status(), 403, "{method}");
        assert!(
            www_authenticate(&response).contains(r#"error="insufficient_scope""#),
            "{method}: {}",
            www_authenticate(&response)
        );
    }
    assert_eq!(
        world.simulator.received().len(),
        received,
        "a refused request reached the upstream"
    );

    // The session was not ended by any of that: its own token still calls through C.
    let mut wide = elsewhere(&opened, &c.url, &wide_token);
    let answer = wide
        .call_tool("get_order_book", json!({"symbol": "BTCUSDT"}))
        .await;
    assert!(!answer.is_tool_error(), "{}", answer.text);
    assert_eq!(world.simulator.tool_calls("get_order_book"), 2);
}

#[tokio::test]
async fn a_narrow_session_resumed_elsewhere_is_still_refused_what_it_lacks() {
    let world = World::start().await;
    let narrow_token = world.token_for("research-bot", "mcp");
    let opened = world.client(&narrow_token).initialized().await;
    let b = world.replica().await;
    // Even a wider token does not widen the session: it is judged by the scopes it opened with.
    let wide_token = world.token_for("research-bot", "mcp orders");
    let mut wide = elsewhere(&opened, &b.url, &wide_token);
    assert_eq!(wide.tool_names().await, ["get_price"]);
    let refused = wide
        .call_tool("get_order_book", json!({"symbol": "BTCUSDT"}))
        .await;
    assert!(refused.is_tool_error(), "{}", refused.text);
    assert!(
        refused.message().contains("lacks the scope orders"),
        "{}",
        refused.text
    );
    assert_eq!(world.simulator.tool_calls("get_order_book"), 0);
}
