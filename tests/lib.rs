//! Support for the workspace integration tests next to this file (see Cargo.toml `[[test]]`):
//! running a pipeline file of `pipelines/` with command-line edits.

use std::path::Path;

use cascade_pipeline::{Edits, Registry, load_pipeline};
use cascade_runtime::MetricsReport;

/// Loads `pipelines/<name>` with `edits`, runs it to completion and returns its metrics.
///
/// # Panics
/// With the diagnostics or the run error: a test pipeline that does not run is a failure.
pub fn run_pipeline(name: &str, edits: &Edits) -> MetricsReport {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../pipelines")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let registry = Registry::new(cascade_stages::stages());
    let pipeline = load_pipeline(name, &text, &registry, edits).unwrap_or_else(|d| panic!("{d}"));
    let compiled = pipeline
        .graph
        .compile(pipeline.run_options())
        .unwrap_or_else(|e| panic!("{e:?}"));
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    runtime
        .block_on(compiled.run())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}
