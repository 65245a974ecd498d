//! Fuzz target: `berth::fuzzing::htpasswd` (see its doc comment).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| berth::fuzzing::htpasswd(data));
