//! The admin page in real headless Chromium (Debian's `chromium`, driven by playwright-core):
//! a held call appears on the page, a click approves it, and the held call completes; what the
//! page shows is exactly what is forwarded.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use mcpgate::config::ApprovalConfig;
use serde_json::{json, Value};

/// Holds a call with `arguments`, then has the page (in Chromium) approve it; returns the
/// browser's report and the held call's answer.
async fn approve_on_the_page(
    harness: &Harness,
    tool: &'static str,
    arguments: Value,
) -> (Value, Answer) {
    let mut client = harness.client().json_only();
    client.initialize().await;
    let held = tokio::spawn(async move { client.call_tool(tool, arguments).await });

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
        .args([&harness.base, ADMIN_TOKEN, tool])
        .arg(&screenshot)
        .current_dir(&clients)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert_exited_ok(&output, "the browser run");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 0);
    (report, held.await.unwrap())
}

fn setup() -> Setup {
    Setup {
        policy: r#"{"version": "1", "default": "deny", "tools": {
            "subscribe_to_depth_stream": {"action": "approval", "reason": "opens a stream"}}}"#
            .into(),
        approvals: ApprovalConfig {
            admin_token: Some(ADMIN_TOKEN.into()),
            hold: Duration::from_secs(60),
            ..ApprovalConfig::default()
        },
        ..Setup::default()
    }
}

#[tokio::test]
async fn a_reviewer_approves_a_held_call_on_the_page() {
    let harness = start_with(setup()).await;
    let (report, answer) = approve_on_the_page(
        &harness,
        "subscribe_to_depth_stream",
        json!({"symbol": "SOLUSDT", "levels": 5}),
    )
    .await;
    assert!(
        report["argumentsShown"]
            .as_str()
            .unwrap()
            .contains("SOLUSDT"),
        "{report}"
    );
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
        .await
        .unwrap()
        .unwrap();
    assert_eq!(approval.decision_reason.as_deref(), Some("looks right"));
}

#[tokio::test]
async fn the_page_shows_the_exact_arguments_with_hidden_characters_escaped() {
    let harness = start_with(setup()).await;
    let arguments = json!({"symbol": "SOLUSDT", "levels": 5,
        "quantity": 9_007_199_254_740_993_u64, "note": "pay \u{202e}0001$ \u{200b}x"});
    let (report, answer) =
        approve_on_the_page(&harness, "subscribe_to_depth_stream", arguments.clone()).await;
    let shown = report["argumentsShown"].as_str().unwrap();
    assert!(shown.contains(r#""quantity": 9007199254740993"#), "{shown}");
    assert!(
        shown.contains(r#""note": "pay \u202e0001$ \u200bx""#),
        "{shown}"
    );
    assert!(!shown.contains(['\u{202e}', '\u{200b}']), "{shown}");
    assert!(!answer.is_tool_error(), "{}", answer.text);
    let forwarded = harness
        .simulator
        .received()
        .into_iter()
        .find(|m| m["method"] == "tools/call")
        .unwrap();
    assert_eq!(
        forwarded["params"]["arguments"], arguments,
        "what was shown went"
    );
}

#[tokio::test]
async fn the_page_and_the_api_forbid_inline_script_framing_sniffing_and_caching() {
    let harness = start_with(setup()).await;
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{}/admin", harness.base))
        .send()
        .await
        .unwrap();
    let api = http
        .get(format!("{}/admin/approvals", harness.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let refused = http
        .get(format!("{}/admin/approvals", harness.base))
        .send()
        .await
        .unwrap();
    let script = http
        .get(format!("{}/admin/page.js", harness.base))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    for response in [&page, &api, &refused, &script] {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let csp = header("content-security-policy");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("cache-control"), "no-store");
    }
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script src="/admin/page.js""#), "{html}");
    assert!(
        !html.contains("<script>") && !html.contains("<style>"),
        "{html}"
    );
}
