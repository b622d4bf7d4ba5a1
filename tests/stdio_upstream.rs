//! `--upstream-command`: the upstream as a program speaking MCP on stdio (the Python SDK's
//! server), one process per session, policed like any upstream.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::json;

async fn gateway(policy: &str) -> Harness {
    start_with(Setup {
        policy: policy.into(),
        upstream_command: Some(stdio_fixture()),
        ..Setup::default()
    })
    .await
}

async fn pid_of(client: &mut Client) -> u32 {
    let answer = client.call_tool("whoami", json!({})).await;
    answer
        .message()
        .parse()
        .unwrap_or_else(|_| panic!("{}", answer.text))
}

#[tokio::test]
async fn each_session_gets_a_process_of_its_own_and_calls_go_through() {
    let harness = gateway(ALLOW_ALL).await;
    let mut first = harness.client().initialized().await;
    let mut second = harness.client().initialized().await;
    let tools = first.tool_names().await;
    assert_eq!(tools, ["whoami", "echo", "environment", "crash"]);
    assert_ne!(pid_of(&mut first).await, pid_of(&mut second).await);
    let echoed = second
        .call_tool("echo", json!({"text": "through stdio"}))
        .await;
    assert_eq!(echoed.message(), "through stdio", "{}", echoed.text);
}

#[tokio::test]
async fn a_denied_call_never_reaches_the_process() {
    let harness = gateway(
        r#"{"version": "1", "default": "allow", "tools": {
            "crash": {"action": "deny", "reason": "not in tests"}}}"#,
    )
    .await;
    let mut client = harness.client().initialized().await;
    let before = pid_of(&mut client).await;
    let refused = client.call_tool("crash", json!({})).await;
    assert!(refused.is_tool_error(), "{}", refused.text);
    assert!(
        refused.message().contains("not in tests"),
        "{}",
        refused.text
    );
    assert_eq!(
        pid_of(&mut client).await,
        before,
        "the process was not crashed"
    );
}

#[tokio::test]
async fn a_process_that_dies_mid_call_is_an_error_for_its_session_not_a_hang() {
    let harness = gateway(ALLOW_ALL).await;
    let mut client = harness.client().initialized().await;
    let crashed = client.call_tool("crash", json!({})).await;
    assert_eq!(crashed.body["error"]["code"], -32000, "{}", crashed.text);
    assert!(
        crashed.message().contains("exited") && crashed.message().contains("before it answered"),
        "{}",
        crashed.text
    );
    let after = client.call_tool("whoami", json!({})).await;
    after.assert_error(404, -32001, "session not found");
}

#[tokio::test]
async fn delete_stops_the_sessions_process() {
    let harness = gateway(ALLOW_ALL).await;
    let mut client = harness.client().initialized().await;
    let pid = pid_of(&mut client).await;
    assert!(PathBuf::from(format!("/proc/{pid}")).exists());
    let ended = client
        .http
        .delete(&harness.url)
        .headers(client.headers())
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 204);
    assert!(
        !PathBuf::from(format!("/proc/{pid}")).exists(),
        "process {pid} was stopped and reaped before DELETE answered"
    );
}

#[tokio::test]
async fn the_process_sees_path_and_upstream_env_but_not_the_gateways_environment() {
    let harness = gateway(ALLOW_ALL).await;
    let mut client = harness.client().initialized().await;
    for (name, expected) in [
        ("GIVEN", Some("by --upstream-env")),
        ("PATH", None),
        ("CARGO_MANIFEST_DIR", Some("absent")),
    ] {
        let seen = client.call_tool("environment", json!({"name": name})).await;
        match expected {
            Some(expected) => assert_eq!(seen.message(), expected, "{name}"),
            None => assert_ne!(seen.message(), "absent", "{name}"),
        }
    }
}
