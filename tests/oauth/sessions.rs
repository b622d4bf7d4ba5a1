//! Sessions opened with an access token on streamable HTTP: what its tools/list shows, and who
//! may open its GET stream or end it with DELETE.

use reqwest::header::{ACCEPT, AUTHORIZATION};
use reqwest::Method;
use serde_json::json;

use crate::common::{SESSION, VERSION};
use crate::world::World;

/// GET or DELETE of `session` with `token` at the gateway at `url`, answered as far as the
/// status line.
pub async fn session_request(
    url: &str,
    method: Method,
    token: &str,
    session: &str,
) -> reqwest::Response {
    reqwest::Client::new()
        .request(method, url)
        .header(ACCEPT, "text/event-stream")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(SESSION, session)
        .header("mcp-protocol-version", VERSION)
        .send()
        .await
        .unwrap()
}

pub fn www_authenticate(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn tools_list_hides_a_tool_whose_rule_needs_a_scope_the_token_lacks() {
    let world = World::start().await;
    let wide = world.token_for("research-bot", "mcp orders");
    let mut client = world.client(&wide).initialized().await;
    let mut names = client.tool_names().await;
    names.sort();
    assert_eq!(names, ["get_order_book", "get_price"]);

    // get_order_book needs `orders`: a call would be refused, so it is not offered.
    let narrow = world.token_for("research-bot", "mcp");
    let mut client = world.client(&narrow).initialized().await;
    assert_eq!(client.tool_names().await, ["get_price"]);
}

#[tokio::test]
async fn get_and_delete_of_a_session_need_its_agent_and_its_scopes() {
    let world = World::start().await;
    let owner_token = world.token();
    let mut owner = world.client(&owner_token).initialized().await;
    let session = owner.session.clone().unwrap();
    let refusals = [
        // Narrower than the token that opened the session: the rules judged it by `orders`.
        (
            "narrower",
            world.token_for("research-bot", "mcp"),
            403,
            r#"error="insufficient_scope", scope="mcp""#,
        ),
        // Without the gateway's required `--oauth-scope`.
        (
            "without mcp",
            world.token_for("research-bot", "orders"),
            403,
            r#"error="insufficient_scope""#,
        ),
        // Another agent's token: the session is not its, and does not exist for it.
        (
            "other agent",
            world.token_for("other-bot", "mcp orders"),
            404,
            "",
        ),
    ];
    for method in [Method::GET, Method::DELETE] {
        for (case, token, status, challenge) in &refusals {
            let response =
                session_request(&world.harness.url, method.clone(), token, &session).await;
            assert_eq!(response.status(), *status, "{method} with the {case} token");
            assert!(
                www_authenticate(&response).contains(challenge),
                "{method} with the {case} token: {}",
                www_authenticate(&response)
            );
        }
    }

    // None of that ended the session; its own token opens its stream (or learns there is none
    // upstream) and ends it.
    let answer = owner
        .call_tool("get_order_book", json!({"symbol": "BTCUSDT"}))
        .await;
    assert!(!answer.is_tool_error(), "{}", answer.text);
    let stream = session_request(&world.harness.url, Method::GET, &owner_token, &session).await;
    assert!(
        [200, 405].contains(&stream.status().as_u16()),
        "{}",
        stream.status()
    );
    drop(stream);
    let ended = session_request(&world.harness.url, Method::DELETE, &owner_token, &session).await;
    assert_eq!(ended.status(), 204);
    let gone = owner
        .call_tool("get_price", json!({"symbol": "BTCUSDT"}))
        .await;
    assert_eq!(gone.status, 404, "{}", gone.text);
}
