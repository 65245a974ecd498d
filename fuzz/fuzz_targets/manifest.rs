//! Fuzz target: `berth::fuzzing::manifest` (see its doc comment).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| berth::fuzzing::manifest(data));
