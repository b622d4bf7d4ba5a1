//! `cargo fuzz run upstream_answer`: see `mcpgate_fuzz::upstream_answer` for the input and what
//! is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpgate_fuzz::upstream_answer(data));
