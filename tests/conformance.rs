//! The official MCP conformance suite (`@modelcontextprotocol/conformance` 0.1.16), every server
//! scenario, run against a fixture server written with the TypeScript SDK
//! (`tests/clients/conformance_server.mjs`) directly and through the gateway: each scenario's
//! checks must come out the same both ways, and pass directly.
//!
//! The table (scenario | direct | through the gateway) is printed; to see it:
//! `scripts/conformance`, or `cargo test --test conformance -- --nocapture`.
//!
//! Needs the clients installed by `scripts/test` (tests/clients/node_modules, with the suite
//! patched for Node 20).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::node::{clients_dir, node_module, start_fixture_server};
use common::*;
use serde_json::Value;
use tokio::process::Command;

const SUITE: &str = "@modelcontextprotocol/conformance/dist/index.js";

/// The whole suite takes seconds; this bounds a hang on a loaded machine.
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);

/// One check a scenario made: its id, its status (SUCCESS, FAILURE, WARNING or INFO) and what
/// went wrong. Two runs agree when their checks' ids and statuses do, in order.
#[derive(Debug)]
struct Check {
    id: String,
    status: String,
    error: Option<String>,
}

impl PartialEq for Check {
    fn eq(&self, other: &Self) -> bool {
        (&self.id, &self.status) == (&other.id, &other.status)
    }
}

/// Every server scenario the suite knows, from `conformance list --server`.
async fn server_scenarios() -> Vec<String> {
    let output = Command::new("node")
        .arg(node_module(SUITE))
        .args(["list", "--server"])
        .output()
        .await
        .expect("the conformance CLI runs");
    assert_exited_ok(&output, "conformance list");
    // Lines look like `  - tools-list [2025-06-18,2025-11-25]`.
    let scenarios: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    assert!(
        scenarios.len() >= 30,
        "the suite lists its scenarios: {scenarios:?}"
    );
    scenarios
}

/// Runs every server scenario (`--suite all`, pending ones included) against `url`, one after
/// another in one process, and returns each scenario's checks in the order it made them.
async fn run_suite(url: &str, out: &Path) -> BTreeMap<String, Vec<Check>> {
    let run = Command::new("node")
        .arg(node_module(SUITE))
        .args(["server", "--suite", "all", "--url", url, "-o"])
        .arg(out)
        .current_dir(clients_dir())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(SUITE_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| {
            panic!("the conformance suite against {url} ran over {SUITE_TIMEOUT:?}")
        })
        .expect("the conformance CLI runs");
    // It exits 1 when a check fails: the checks themselves say which, and are compared below.
    let said = || {
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    let entries = std::fs::read_dir(out)
        .unwrap_or_else(|e| panic!("no results against {url} ({e}):\n{}", said()));
    let mut results = BTreeMap::new();
    for entry in entries {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Some(scenario) = scenario_of(&name) else {
            panic!("an unexpected result directory {name}");
        };
        let checks: Value =
            serde_json::from_slice(&std::fs::read(dir.join("checks.json")).unwrap()).unwrap();
        let checks = checks
            .as_array()
            .unwrap_or_else(|| panic!("{name}/checks.json is a list"))
            .iter()
            .map(|c| Check {
                id: text(&c["id"]),
                status: text(&c["status"]),
                error: c["errorMessage"].as_str().map(str::to_owned),
            })
            .collect();
        assert!(
            results.insert(scenario.to_owned(), checks).is_none(),
            "{scenario} ran twice against {url}"
        );
    }
    assert!(
        !results.is_empty(),
        "no scenario ran against {url}:\n{}",
        said()
    );
    results
}

/// `server-tools-list-2026-11-30T00-01-06-561Z` → `tools-list`: the suite names each result
/// directory `server-SCENARIO-TIMESTAMP`, the timestamp an ISO time with `:` and `.` as `-`.
fn scenario_of(directory: &str) -> Option<&str> {
    const STAMP: usize = "-2026-11-30T00-01-06-561Z".len();
    let rest = directory.strip_prefix("server-")?;
    rest.get(..rest.len().checked_sub(STAMP)?)
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or("?").to_owned()
}

fn count(checks: &[Check], status: &str) -> usize {
    checks.iter().filter(|c| c.status == status).count()
}

/// What the failed and warned checks said, for a failing assertion.
fn failures(checks: &[Check]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| c.status == "FAILURE" || c.status == "WARNING")
        .map(|c| {
            format!(
                "{} {}: {}",
                c.status,
                c.id,
                c.error.as_deref().unwrap_or("")
            )
        })
        .collect()
}

/// How a scenario went, as the suite's own summary says it: `2 passed, 0 failed` (and warnings).
fn summary(checks: Option<&Vec<Check>>) -> String {
    let Some(checks) = checks else {
        return "did not run".into();
    };
    let mut line = format!(
        "{} passed, {} failed",
        count(checks, "SUCCESS"),
        count(checks, "FAILURE")
    );
    let warnings = count(checks, "WARNING");
    if warnings > 0 {
        line.push_str(&format!(", {warnings} warnings"));
    }
    line
}

#[tokio::test]
async fn every_conformance_scenario_comes_out_the_same_through_the_gateway() {
    let scenarios = server_scenarios().await;
    let (_fixture, upstream) = start_fixture_server("conformance_server.mjs").await;
    let policy = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conformance-policy.json"),
    )
    .unwrap();
    let harness = start_with(Setup {
        policy,
        upstream: Some(upstream.clone()),
        ..Setup::default()
    })
    .await;

    let out = tempfile::tempdir().unwrap();
    let direct = run_suite(&upstream, &out.path().join("direct")).await;
    let gated = run_suite(&harness.url, &out.path().join("gateway")).await;

    println!("\n| scenario | direct | through the gateway |\n|---|---|---|");
    for scenario in &scenarios {
        println!(
            "| {scenario} | {} | {} |",
            summary(direct.get(scenario)),
            summary(gated.get(scenario))
        );
    }
    for scenario in &scenarios {
        let (Some(direct), Some(gated)) = (direct.get(scenario), gated.get(scenario)) else {
            panic!("{scenario} did not run both ways");
        };
        assert_eq!(
            count(direct, "FAILURE"),
            0,
            "{scenario} fails against the fixture itself: {:?}",
            failures(direct)
        );
        assert_eq!(
            gated,
            direct,
            "{scenario}: the gateway changed the checks; through it: {:?}",
            failures(gated)
        );
    }
    assert_eq!(direct.len(), scenarios.len(), "{:?}", direct.keys());
}
