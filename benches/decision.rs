//! What the policy costs per call: `decide` by name only, `decide` with an argument schema, and
//! `RateLimiter::acquire`. Targets: ≤ 1 µs name-only, ≤ 5 µs with a schema. Then what pins and
//! result rules add: the pin check each call makes, checking a 29-tool list, and redacting a
//! result with every built-in set on.
//!
//! `cargo bench --bench decision -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use mcpgate::policy::pins::{Digest, PinWatch};
use mcpgate::policy::{Call, CompiledPolicy, Decision, RateLimiter, Subject};
use serde_json::json;

const BINANCE: &[u8] = include_bytes!("../policies/binance.json");

/// A rule with no argument schema, so that the decision reads names only.
const NAME_ONLY: &[u8] = br#"{
  "version": "1", "default": "deny", "rate_limit": { "max": 600, "window": 60 },
  "tools": { "get_price": {} },
  "agents": { "research-bot": { "tools": { "get_price": { "rate_limit": { "max": 10, "window": 1 } } } } }
}"#;

fn tool_call<'a>(tool: &'a str, arguments: Option<&'a serde_json::Value>) -> Call<'a> {
    Call {
        agent: Some("research-bot"),
        method: "tools/call",
        tool: Some(tool),
        arguments,
    }
}

fn decide(c: &mut Criterion) {
    let name_only = CompiledPolicy::from_json_slice(NAME_ONLY).unwrap();
    let binance = CompiledPolicy::from_json_slice(BINANCE).unwrap();
    let mut group = c.benchmark_group("decide");

    let call = tool_call("get_price", None);
    assert!(matches!(name_only.decide(&call), Decision::Allow { .. }));
    group.bench_function("name_only_allow", |b| {
        b.iter(|| black_box(name_only.decide(black_box(&call))))
    });

    let unknown = tool_call("place_order", None);
    assert_eq!(binance.decide(&unknown), Decision::UnknownTool);
    group.bench_function("name_only_unknown_tool", |b| {
        b.iter(|| black_box(binance.decide(black_box(&unknown))))
    });

    let method = Call {
        method: "resources/list",
        tool: None,
        ..call
    };
    group.bench_function("name_only_method", |b| {
        b.iter(|| black_box(binance.decide(black_box(&method))))
    });

    let arguments = json!({"symbol": "BTCUSDT", "depth": 50});
    let book = tool_call("get_order_book", Some(&arguments));
    assert!(matches!(binance.decide(&book), Decision::Allow { .. }));
    group.bench_function("arguments_allow", |b| {
        b.iter(|| black_box(binance.decide(black_box(&book))))
    });

    let too_deep = json!({"symbol": "BTCUSDT", "depth": 500});
    let refused = tool_call("get_order_book", Some(&too_deep));
    assert!(matches!(
        binance.decide(&refused),
        Decision::InvalidArguments { .. }
    ));
    group.bench_function("arguments_refused", |b| {
        b.iter(|| black_box(binance.decide(black_box(&refused))))
    });
    group.finish();
}

fn acquire(c: &mut Criterion) {
    let policy = CompiledPolicy::from_json_slice(NAME_ONLY).unwrap();
    let Decision::Allow { limits, .. } = policy.decide(&tool_call("get_price", None)) else {
        panic!("get_price is allowed");
    };
    let subject = Subject {
        agent: Some("research-bot".into()),
        session: "3f6c1a2e-session".into(),
        address: None,
    };
    let mut group = c.benchmark_group("rate_limiter");

    // Time moves a second per call: both limits (10/1s and 600/60s) always have room.
    let limiter = RateLimiter::new();
    let mut now = Instant::now();
    group.bench_function("acquire_two_limits", |b| {
        b.iter(|| {
            now += Duration::from_secs(1);
            black_box(limiter.acquire(black_box(&limits), &subject, now).is_ok())
        })
    });

    // Time stands still: after the burst every call is refused.
    let limiter = RateLimiter::new();
    let still = Instant::now();
    group.bench_function("acquire_refused", |b| {
        b.iter(|| {
            black_box(
                limiter
                    .acquire(black_box(&limits), &subject, still)
                    .is_err(),
            )
        })
    });
    group.finish();
}

/// A policy with every tool of a 29-tool list pinned, and result rules with every built-in set.
fn pins_and_results(c: &mut Criterion) {
    let tools: Vec<serde_json::Value> = (0..29)
        .map(|i| {
            json!({"name": format!("tool_{i}"), "description": format!("Tool number {i}: reads market data."),
                "inputSchema": {"type": "object", "properties": {"symbol": {"type": "string"}, "depth": {"type": "integer"}}}})
        })
        .collect();
    let rules: serde_json::Map<String, serde_json::Value> = tools
        .iter()
        .map(|t| {
            let pin = Digest::of_definition(t).to_string();
            (
                t["name"].as_str().unwrap().to_owned(),
                json!({ "pin": pin }),
            )
        })
        .collect();
    let policy = json!({"version": "1", "default": "deny", "tools": rules,
        "results": {"redact": ["private_keys", "cloud_keys", "api_keys", "jwts", "card_numbers"]}});
    let policy = CompiledPolicy::from_json_slice(policy.to_string().as_bytes()).unwrap();
    let watch = PinWatch::new();
    assert!(watch.observe(&policy, &tools).is_empty());
    let mut group = c.benchmark_group("pins_and_results");

    let call = tool_call("tool_7", None);
    group.bench_function("decide_and_pin_check", |b| {
        b.iter(|| {
            let decision = policy.decide(black_box(&call));
            black_box((decision, watch.broken(&policy, black_box("tool_7"))))
        })
    });
    group.bench_function("observe_29_tools", |b| {
        b.iter(|| black_box(watch.observe(&policy, black_box(&tools))))
    });

    let results = policy.result_rules(None, "tool_7").unwrap();
    let clean = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text",
        "text": "BTCUSDT bids 64000.10 x 0.5, 63999.90 x 1.2; asks 64000.20 x 0.3. ".repeat(16)}]}});
    group.bench_function("redact_clean_1k", |b| {
        b.iter(|| {
            let mut answer = clean.clone();
            black_box(results.apply(black_box(&mut answer)))
        })
    });
    let leaky = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text",
        "text": "key -----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY----- token sk-proj-Zx81mQ2v9LkP0aBcDeFgHiJkLmNoPq card 4111 1111 1111 1111"}]}});
    group.bench_function("redact_three_secrets", |b| {
        b.iter(|| {
            let mut answer = leaky.clone();
            black_box(results.apply(black_box(&mut answer)))
        })
    });
    group.finish();
}

criterion_group!(benches, decide, acquire, pins_and_results);
criterion_main!(benches);
