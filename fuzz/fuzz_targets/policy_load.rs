//! `cargo fuzz run policy_load`: see `mcpgate_fuzz::policy_load` for the input and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpgate_fuzz::policy_load(data));
