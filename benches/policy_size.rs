//! How the policy's cost grows with its size: policies of 10, 1,000 and 10,000 tools (each with an
//! argument schema and a rate limit, as bench/policy.json's rules), and for each the time to load
//! and compile it from its file text and the time of one decision (a call to the last tool).
//! Prints one table; `bench/growth` shows it with the gateway's resident memory per policy.
//!
//! `cargo bench --bench policy_size`

use std::hint::black_box;
use std::time::{Duration, Instant};

use mcpgate::policy::{Call, CompiledPolicy, Decision};
use serde_json::{json, Map, Value};

const SIZES: [usize; 3] = [10, 1_000, 10_000];

fn policy_text(tools: usize) -> String {
    let rules: Map<String, Value> = (0..tools)
        .map(|i| {
            let rule = json!({
                "rate_limit": {"max": 100_000_000, "window": 60},
                "arguments": {
                    "type": "object",
                    "properties": {"symbol": {"type": "string", "pattern": "^[A-Z0-9]{2,20}$"}},
                    "required": ["symbol"],
                    "additionalProperties": false
                }
            });
            (format!("tool_{i:05}"), rule)
        })
        .collect();
    json!({"version": "1", "default": "deny", "tools": rules}).to_string()
}

/// The median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    println!("| tools | policy file | load + compile | decision (last tool, schema) |");
    println!("|---|---|---|---|");
    for tools in SIZES {
        let text = policy_text(tools);
        let compile = median(5, || {
            black_box(CompiledPolicy::from_json_slice(text.as_bytes()).unwrap());
        });
        let policy = CompiledPolicy::from_json_slice(text.as_bytes()).unwrap();
        let name = format!("tool_{:05}", tools - 1);
        let arguments = json!({"symbol": "BTCUSDT"});
        let call = Call {
            agent: Some("research-bot"),
            method: "tools/call",
            tool: Some(&name),
            arguments: Some(&arguments),
        };
        assert!(matches!(policy.decide(&call), Decision::Allow { .. }));
        const DECISIONS: u32 = 200_000;
        let decide = median(5, || {
            for _ in 0..DECISIONS {
                black_box(policy.decide(black_box(&call)));
            }
        }) / DECISIONS;
        println!(
            "| {tools} | {:.0} KiB | {:.2} ms | {} ns |",
            text.len() as f64 / 1024.0,
            compile.as_secs_f64() * 1e3,
            decide.as_nanos(),
        );
    }
}
