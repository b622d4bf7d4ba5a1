//! `cargo fuzz run policy_decide`: see `mcpgate_fuzz::policy_decide` for the input and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpgate_fuzz::policy_decide(data));
