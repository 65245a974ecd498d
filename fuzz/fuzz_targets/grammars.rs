//! Fuzz target: `berth::fuzzing::grammars` (see its doc comment).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| berth::fuzzing::grammars(data));
