//! The fuzz targets' inputs, replayed as ordinary tests: every file under
//! `fuzz/regressions/<target>/` (an input that once crashed the target, kept after the fix) and
//! every seed under `fuzz/corpus/<target>/` goes through the same check the fuzz target runs
//! (`fuzz/src/lib.rs`, included here as a module), which must return. No libFuzzer or nightly
//! flags needed; see `fuzz/README.md` for running the fuzzers themselves.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

#[path = "../fuzz/src/lib.rs"]
mod fuzz_checks;

/// Runs `check` on every kept input of `target`; fails naming each input that panicked.
fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = Vec::new();
    for kind in ["regressions", "corpus"] {
        let Ok(entries) = fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        inputs.extend(entries.map(|entry| entry.unwrap().path()));
    }
    inputs.sort();
    assert!(
        !inputs.is_empty(),
        "no kept inputs for fuzz target {target}"
    );
    let failed: Vec<String> = inputs
        .iter()
        .filter(|path| {
            let data = fs::read(path).unwrap();
            panic::catch_unwind(AssertUnwindSafe(|| check(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} kept inputs of fuzz target {target} panicked (messages above):\n{}",
        failed.len(),
        inputs.len(),
        failed.join("\n")
    );
}

#[test]
fn kept_message_bodies_are_classified_and_forwarded_canonically() {
    replay("message", fuzz_checks::message);
}

#[test]
fn kept_policy_files_load_or_fail_with_located_errors() {
    replay("policy_load", fuzz_checks::policy_load);
}

#[test]
fn kept_calls_are_decided_consistently_with_tools_list() {
    replay("policy_decide", fuzz_checks::policy_decide);
}

#[test]
fn kept_upstream_answers_are_read_strictly_and_filtered() {
    replay("upstream_answer", fuzz_checks::upstream_answer);
}
