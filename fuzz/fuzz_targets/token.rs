//! Fuzz target: `berth::fuzzing::token` (see its doc comment).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| berth::fuzzing::token(data));
