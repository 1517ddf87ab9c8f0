#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::ids_and_slugs(data));
