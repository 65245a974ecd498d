//! Fuzz target: `berth::fuzzing::content_range` (see its doc comment).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| berth::fuzzing::content_range(data));
