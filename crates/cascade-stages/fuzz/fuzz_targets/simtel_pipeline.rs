//! Fuzz target: the whole R0 -> DL2 pipeline of `pipelines/ctapipe_dl2.toml` (sim_telarray
//! source, calibration, cleaning, image parameters, both stereo reconstructors, Parquet and
//! instrument sinks) on arbitrary bytes as its input file. The reader's own target
//! (`parse_objects`) covers the decoding; this one covers what comes after it: instruments,
//! calibrations and events that decode but make no sense (cameras without pixels or
//! neighbours, NaN pixel positions and pedestals, sample counts that change between events,
//! ...). Seed it with the shared files cut after their first array event, then run it from
//! `crates/cascade-stages/fuzz`:
//!
//! ```sh
//! mkdir -p seeds
//! zstd -dc ../../../../shared/data/simtel/hess1u_gamma.simtel.zst | head -c 268460 > seeds/hess1u
//! zstd -dc ../../../../shared/data/simtel/lst_muons.simtel.zst | head -c 393520 > seeds/lst_muons
//! cargo +nightly fuzz run simtel_pipeline corpus/simtel_pipeline seeds -- -max_len=400000
//! ```
#![no_main]

use cascade_pipeline::{Edits, Registry, load_pipeline};
use libfuzzer_sys::fuzz_target;

/// The shipped R0 -> DL2 pipeline; the fuzz input replaces its input file and a temporary
/// directory its output directory.
const PIPELINE: &str = include_str!("../../../../pipelines/ctapipe_dl2.toml");

fuzz_target!(|data: &[u8]| {
    let Ok(directory) = tempfile::tempdir() else {
        return;
    };
    let input = directory.path().join("input.simtel");
    if std::fs::write(&input, data).is_err() {
        return;
    }
    let edits = Edits {
        inputs: vec![input.display().to_string()],
        output: Some(directory.path().join("output").display().to_string()),
        ..Edits::default()
    };
    let registry = Registry::new(cascade_stages::stages());
    // Errors (a file that does not decode, data a stage rejects) are the expected outcome
    // for most inputs; panics, hangs and huge allocations are the bugs this target looks
    // for. Rendering the errors is part of it.
    let pipeline = match load_pipeline("ctapipe_dl2.toml", PIPELINE, &registry, &edits) {
        Ok(pipeline) => pipeline,
        Err(diagnostics) => {
            let _ = diagnostics.to_string();
            return;
        }
    };
    let Ok(compiled) = pipeline.graph.compile(pipeline.run_options()) else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    if let Err(error) = runtime.block_on(compiled.run()) {
        let _ = error.to_string();
    }
});
