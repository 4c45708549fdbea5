//! Support for the workspace integration tests next to this file (see Cargo.toml `[[test]]`):
//! running a pipeline file of `pipelines/` with command-line edits, reading the goldens, and
//! the tolerances of the comparisons with ctapipe.

use std::collections::HashMap;
use std::path::Path;

use cascade_pipeline::{Edits, Registry, load_pipeline};
use cascade_runtime::MetricsReport;
use cascade_testdata::Table;
use parquet::file::reader::{FileReader, SerializedFileReader};

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

/// The key-value metadata of a Parquet file (the goldens keep their options there).
///
/// # Panics
/// When the file cannot be read or has no key-value metadata.
pub fn parquet_metadata(path: &Path) -> HashMap<String, String> {
    let file =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let reader = SerializedFileReader::new(file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let metadata = reader.metadata().file_metadata().key_value_metadata();
    metadata
        .unwrap_or_else(|| panic!("{} has no key-value metadata", path.display()))
        .iter()
        .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?)))
        .collect()
}

/// Row of every telescope event of a DL1 table, by (obs_id, event_id, tel_id).
pub fn rows_by_tel_event(table: &Table) -> HashMap<(i64, i64, i64), usize> {
    let (obs, events, tels) = (
        table.i64("obs_id"),
        table.i64("event_id"),
        table.i64("tel_id"),
    );
    (0..table.n_rows())
        .map(|i| ((obs[i], events[i], tels[i]), i))
        .collect()
}

/// Whether `ours` agrees with `reference` within `abs` or `rel * |reference|`, NaN exactly
/// where the reference is NaN.
pub fn close(reference: f64, ours: f64, abs: f64, rel: f64) -> bool {
    if reference.is_nan() || ours.is_nan() {
        return reference.is_nan() && ours.is_nan();
    }
    (reference - ours).abs() <= abs.max(rel * reference.abs())
}

/// Asserts that the per-pixel values `found` (cascade's) are those of `expected`
/// (ctapipe's) within the DL1 tolerances of issue 4, 1e-3 absolute (p.e., ns) or 1e-4
/// relative, naming `context` and the first pixel that is not.
///
/// # Panics
/// When the lengths differ or a pixel is not [`close`].
pub fn assert_dl1_pixels_close(context: &str, expected: &[f64], found: &[f64]) {
    assert_eq!(expected.len(), found.len(), "{context}: number of pixels");
    for (pixel, (&e, &f)) in expected.iter().zip(found).enumerate() {
        assert!(
            close(e, f, 1e-3, 1e-4),
            "{context}[{pixel}]: ctapipe {e}, cascade {f}"
        );
    }
}

/// Asserts that cascade's DL1 `image` (p.e.) and `peak_time` (ns) of one telescope event,
/// `found`, are ctapipe's, `expected`, within the DL1 tolerances
/// ([`assert_dl1_pixels_close`]), naming `context` and the column.
pub fn assert_dl1_image_close(context: &str, expected: (&[f64], &[f64]), found: (&[f64], &[f64])) {
    assert_dl1_pixels_close(&format!("{context} image"), expected.0, found.0);
    assert_dl1_pixels_close(&format!("{context} peak_time"), expected.1, found.1);
}
