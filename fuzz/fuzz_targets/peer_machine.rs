#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| neo_peer::fuzzing::peer_machine(data));
