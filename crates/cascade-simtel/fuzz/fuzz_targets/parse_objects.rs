//! Fuzz target: the EventIO framing and every sim_telarray decoder on arbitrary bytes.
//! Run with `cargo +nightly fuzz run parse_objects` from `crates/cascade-simtel/fuzz`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Errors are the expected outcome for most inputs; panics, hangs and huge
    // allocations are the bugs this target looks for.
    let _ = cascade_simtel::parse_objects_for_fuzzing(data);
});
