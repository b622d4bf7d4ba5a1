//! What the policy costs per call: `decide` by name only, `decide` with an argument schema, and
//! `RateLimiter::acquire`. Targets: ≤ 1 µs name-only, ≤ 5 µs with a schema.
//!
//! `cargo bench --bench decision -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
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

criterion_group!(benches, decide, acquire);
criterion_main!(benches);
