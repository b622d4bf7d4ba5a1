//! What reading a message strictly costs, beside the floors it is built on: the bench call
//! (`bench/run`'s 113-byte `tools/call`) read by `parse_body`, the simulator's 97-byte answer
//! read by `from_upstream::read_message`; the strict check alone (`json::scan::check`: syntax,
//! escapes, duplicate keys in any letter case, no value built); and serde_json reading the same
//! text without a duplicate check, into nothing (`IgnoredAny`) and into a `Value`.
//!
//! `cargo bench --bench reading -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use mcpgate::json::scan;
use mcpgate::protocol::{from_upstream, parse_body};
use serde::de::IgnoredAny;
use serde_json::Value;

const CALL: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_price","arguments":{"symbol":"BTCUSDT"}}}"#;
const ANSWER: &str = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"65000.12"}],"isError":false}}"#;

fn reading(c: &mut Criterion) {
    let answer = Bytes::from_static(ANSWER.as_bytes());
    let mut group = c.benchmark_group("read");
    group.bench_function("call_parse_body", |b| {
        b.iter(|| black_box(parse_body(black_box(CALL.as_bytes())).unwrap()))
    });
    group.bench_function("answer_read_message", |b| {
        b.iter(|| black_box(from_upstream::read_message(black_box(&answer)).unwrap()))
    });
    for (name, text) in [("call", CALL), ("answer", ANSWER)] {
        group.bench_function(format!("{name}_strict_check"), |b| {
            b.iter(|| scan::check(black_box(text)).unwrap())
        });
        group.bench_function(format!("{name}_serde_json_syntax_only"), |b| {
            b.iter(|| black_box(serde_json::from_str::<IgnoredAny>(black_box(text)).unwrap()))
        });
        group.bench_function(format!("{name}_serde_json_value"), |b| {
            b.iter(|| black_box(serde_json::from_str::<Value>(black_box(text)).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, reading);
criterion_main!(benches);
