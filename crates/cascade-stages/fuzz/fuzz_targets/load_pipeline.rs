//! Fuzz target: loading a pipeline file (TOML parsing, validation with line and column,
//! did-you-mean suggestions, per-telescope overrides, `--set` edits, building every stage
//! kind) on arbitrary text. Run with `cargo +nightly fuzz run load_pipeline` from
//! `crates/cascade-stages/fuzz`; `pipelines/` and `tests/invalid/` make a good seed corpus.
#![no_main]

use cascade_pipeline::{Edits, Registry, load_pipeline};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The text up to the first NUL is the pipeline file, each later NUL-separated part a
    // `--set key.path=value` edit.
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let file = parts.next().unwrap_or_default();
    let edits = Edits {
        sets: parts.map(str::to_string).collect(),
        ..Edits::default()
    };
    // Every stage kind but the sim_telarray source, which would read the files it names.
    let stages: Vec<_> = cascade_stages::stages()
        .into_iter()
        .filter(|factory| factory.kind() != "simtel")
        .collect();
    // Diagnostics are the expected outcome for most inputs; panics, hangs and huge
    // allocations are the bugs this target looks for. Rendering them is part of it.
    if let Err(diagnostics) = load_pipeline("fuzz.toml", file, &Registry::new(stages), &edits) {
        let _ = diagnostics.to_string();
    }
});
