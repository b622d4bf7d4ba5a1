//! The command line: `policy check`, `policy explain`, `policy schema`, and `serve` failing closed.

mod common;

use std::process::Command;

use common::*;

fn mcpgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mcpgate"))
}

fn repo_file(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn policy_check_accepts_the_shipped_policy() {
    let output = mcpgate()
        .args(["policy", "check", &repo_file("policies/binance.json")])
        .output()
        .unwrap();
    assert_exited_ok(&output, "mcpgate policy check");
    assert!(String::from_utf8_lossy(&output.stdout).contains("valid"));
}

#[test]
fn policy_check_lists_every_error_with_its_path_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    std::fs::write(
        &file,
        r#"{"version": "1", "default": "maybe", "tools": {"a": {"rate_limit": {"max": 0, "window": 60}}, "b": {"colour": "red"}}}"#,
    )
    .unwrap();
    let output = mcpgate()
        .args(["policy", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let errors = String::from_utf8_lossy(&output.stderr);
    for path in ["/default", "/tools/a/rate_limit/max", "/tools/b"] {
        assert!(errors.contains(path), "names {path}: {errors}");
    }
}

#[test]
fn policy_check_warns_about_a_maximum_without_a_type_as_the_readme_had_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("untyped.json");
    std::fs::write(
        &file,
        r#"{"version": "1", "default": "deny", "tools": {"get_order_book": {"arguments":
            {"type": "object", "properties": {"depth": {"maximum": 100}}}}}}"#,
    )
    .unwrap();
    let output = mcpgate()
        .args(["policy", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert_exited_ok(&output, "mcpgate policy check");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        out.contains("warning: /tools/get_order_book/arguments/properties/depth: \"maximum\" constrain only numbers (add \"type\": \"integer\""),
        "{out}"
    );
}

#[test]
fn the_readmes_policy_examples_give_a_maximum_a_type() {
    for readme in ["README.md", "src/policy/README.md"] {
        let text = std::fs::read_to_string(repo_file(readme)).unwrap();
        assert!(
            text.contains(r#""depth": { "type": "integer", "maximum": 100 }"#),
            "{readme}"
        );
        assert!(!text.contains(r#""depth": { "maximum": 100 }"#), "{readme}");
    }
}

#[tokio::test]
async fn policy_check_with_an_upstream_warns_about_uncovered_tools_and_stray_rules() {
    let (_simulator, url) = start_simulator(Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.json");
    std::fs::write(
        &file,
        r#"{"version": "1", "default": "deny", "tools": {"get_price": {}, "place_order": {}}}"#,
    )
    .unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .args(["policy", "check"])
        .arg(&file)
        .args(["--upstream", &url])
        .output()
        .await
        .unwrap();
    assert_exited_ok(&output, "mcpgate policy check");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(r#"rule for tool "place_order", which the upstream does not have"#),
        "{text}"
    );
    assert!(
        text.contains(r#"upstream tool "get_order_book" has no rule: the default (deny) applies"#),
        "{text}"
    );
    assert!(!text.contains(r#"upstream tool "get_price""#), "{text}");
}

/// `mcpgate policy explain` of a call to `tool` with `arguments` under the shipped policy.
fn explain(tool: &str, arguments: &str) -> std::process::Output {
    let policy = repo_file("policies/binance.json");
    mcpgate()
        .args(["policy", "explain", &policy, tool, arguments])
        .output()
        .unwrap()
}

#[test]
fn policy_explain_prints_the_decision_and_the_rule() {
    let allowed = explain("get_price", r#"{"symbol":"BTCUSDT"}"#);
    let text = String::from_utf8_lossy(&allowed.stdout);
    assert!(
        text.contains("allow") && text.contains("tools.get_price"),
        "{text}"
    );

    let refused = explain("get_order_book", r#"{"symbol":"BTCUSDT","depth":5000}"#);
    let text = String::from_utf8_lossy(&refused.stdout);
    assert!(
        text.contains("tools.get_order_book") && text.contains("depth"),
        "{text}"
    );

    let bad = explain("get_price", "[1]");
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("JSON object"));
}

#[test]
fn policy_schema_prints_the_committed_schema() {
    let output = mcpgate().args(["policy", "schema"]).output().unwrap();
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo_file("policies/schema.json")).unwrap())
            .unwrap();
    assert_eq!(printed, committed);
}

#[test]
fn serve_refuses_to_start_without_a_valid_policy() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.json");
    std::fs::write(&file, "{ not json").unwrap();
    let output = mcpgate()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:9/mcp",
            "--policy",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(
        errors.contains("is invalid; nothing is served until it loads"),
        "{errors}"
    );

    let missing = mcpgate()
        .args([
            "serve",
            "--upstream",
            "http://127.0.0.1:9/mcp",
            "--policy",
            "/nonexistent/policy.json",
        ])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read policy file"));
}

#[test]
fn every_serve_flag_can_come_from_the_environment() {
    let output = mcpgate()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("MCPGATE_UPSTREAM", "http://127.0.0.1:9/mcp")
        .env("MCPGATE_POLICY", "/nonexistent/from-env.json")
        .output()
        .unwrap();
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(
        errors.contains("/nonexistent/from-env.json"),
        "the policy path came from MCPGATE_POLICY: {errors}"
    );
    let help = mcpgate().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for variable in [
        "MCPGATE_LISTEN",
        "MCPGATE_UPSTREAM",
        "MCPGATE_POLICY",
        "MCPGATE_AUDIT",
        "MCPGATE_MAX_SESSIONS",
        "MCPGATE_WORKER_THREADS",
        "MCPGATE_MAX_PENDING_APPROVALS",
        "MCPGATE_MAX_HELD_CALL_BYTES",
        "MCPGATE_ANONYMOUS_RATE_LIMITS",
    ] {
        assert!(help.contains(variable), "--help names {variable}");
    }
}

#[tokio::test]
async fn serve_logs_json_audits_and_stops_cleanly_on_sigterm() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let (_simulator, upstream) = start_simulator(Default::default()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .args([
            "serve",
            "--log-format",
            "json",
            "--drain-delay-secs",
            "0",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args([
            "--upstream",
            &upstream,
            "--policy",
            &repo_file("policies/binance.json"),
        ])
        .args(["--audit", audit.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().expect("a log line");
    let line: serde_json::Value = serde_json::from_str(&first).expect("logs are JSON lines");
    assert_eq!(line["message"], "mcpgate serving MCP on /mcp", "{first}");
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let initialize = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .json(
            &serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "cli-test", "version": "1"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(initialize.status(), 200);

    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .expect("the gateway stops after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    let records = std::fs::read_to_string(&audit).unwrap();
    let record: serde_json::Value = serde_json::from_str(records.trim()).unwrap();
    assert_eq!(record["method"], "initialize", "{records}");
}
