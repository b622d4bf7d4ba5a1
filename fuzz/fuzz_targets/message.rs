//! `cargo fuzz run message`: see `mcpgate_fuzz::message` for the input and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpgate_fuzz::message(data));
