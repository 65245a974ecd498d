//! Fuzz target: `berth::fuzzing::challenge` (see its doc comment).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| berth::fuzzing::challenge(data));
