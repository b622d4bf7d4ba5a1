//! The admin page in real headless Chromium (Debian's `chromium`, driven by playwright-core):
//! a held call appears on the page, a click approves it, and the held call completes.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use mcpgate::config::ApprovalConfig;
use serde_json::{json, Value};

#[tokio::test]
async fn a_reviewer_approves_a_held_call_on_the_page() {
    let harness = start_with(Setup {
        policy: r#"{"version": "1", "default": "deny", "tools": {
            "subscribe_to_depth_stream": {"action": "approval", "reason": "opens a stream"}}}"#
            .into(),
        approvals: ApprovalConfig {
            admin_token: Some(ADMIN_TOKEN.into()),
            hold: Duration::from_secs(60),
            ..ApprovalConfig::default()
        },
        ..Setup::default()
    })
    .await;
    let mut client = harness.client().json_only();
    client.initialize().await;
    let held = tokio::spawn(async move {
        client
            .call_tool(
                "subscribe_to_depth_stream",
                json!({"symbol": "SOLUSDT", "levels": 5}),
            )
            .await
    });

    let clients = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    assert!(
        clients.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run scripts/test"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: apt-get install chromium (or set CHROMIUM)"
    );
    let screenshot = harness.dir.path().join("admin.png");
    let output = tokio::process::Command::new("node")
        .arg(clients.join("approval_page.mjs"))
        .args([&harness.base, ADMIN_TOKEN, "subscribe_to_depth_stream"])
        .arg(&screenshot)
        .current_dir(&clients)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert_exited_ok(&output, "the browser run");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        report["argumentsShown"]
            .as_str()
            .unwrap()
            .contains("SOLUSDT"),
        "{report}"
    );
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 0);

    let answer = held.await.unwrap();
    assert!(!answer.is_tool_error(), "{}", answer.text);
    assert!(
        answer.message().contains("solusdt@depth5"),
        "{}",
        answer.text
    );
    assert_eq!(harness.simulator.tool_calls("subscribe_to_depth_stream"), 1);
    let approval = harness
        .gateway
        .approvals
        .get(report["approved"].as_str().unwrap())
        .unwrap();
    assert_eq!(approval.decision_reason.as_deref(), Some("looks right"));
}
