//! The full R0 -> DL1 chain (`pipelines/ctapipe_dl1.toml`) on every shared sim_telarray file
//! against ctapipe 0.28's reference (`../shared/data/reference/*.dl1.parquet`).
//!
//! Tolerances: image 1e-3 p.e. and peak_time 1e-3 ns absolute, or 1e-4 relative; cleaning
//! masks exactly; every ctapipe parameter column 1e-4 relative or 1e-6 absolute, with NaN
//! exactly where the reference has NaN; timing_* only where the reference's
//! `diag_timing_seed_stable` is true (ctapipe's fit depends on a process-global RNG).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::HashMap;
use std::path::Path;

use cascade_pipeline::Edits;
use cascade_testdata::{STEMS, Table, simtel_path};
use cascade_tests::run_pipeline;

fn run_dl1(stem: &str, output: &Path) {
    let edits = Edits {
        inputs: vec![simtel_path(stem).display().to_string()],
        output: Some(output.display().to_string()),
        sets: Vec::new(),
    };
    run_pipeline("ctapipe_dl1.toml", &edits);
}

/// Row index by (event_id, tel_id).
fn rows(table: &Table) -> HashMap<(i64, i64), usize> {
    let events = table.i64("event_id");
    let tels = table.i64("tel_id");
    events
        .into_iter()
        .zip(tels)
        .enumerate()
        .map(|(i, key)| (key, i))
        .collect()
}

fn close(reference: f64, ours: f64, abs: f64, rel: f64) -> bool {
    if reference.is_nan() || ours.is_nan() {
        return reference.is_nan() && ours.is_nan();
    }
    (reference - ours).abs() <= abs.max(rel * reference.abs())
}

#[test]
fn r0_to_dl1_matches_ctapipe_on_every_shared_file() {
    for stem in STEMS {
        let output = tempfile::tempdir().unwrap();
        run_dl1(stem, output.path());
        let reference = Table::reference(stem, "dl1");
        let images = Table::read(&output.path().join("dl1_images/part-00000.parquet"));
        let parameters = Table::read(&output.path().join("dl1_parameters/part-00000.parquet"));
        let (ref_rows, image_rows, parameter_rows) =
            (rows(&reference), rows(&images), rows(&parameters));
        let mut keys: Vec<_> = ref_rows.keys().copied().collect();
        keys.sort();
        let mut ours: Vec<_> = image_rows.keys().copied().collect();
        ours.sort();
        assert_eq!(keys, ours, "{stem}: telescope events differ");

        for (column, abs) in [("image", 1e-3), ("peak_time", 1e-3)] {
            let (expected, found) = (reference.list_f64(column), images.list_f64(column));
            for key in &keys {
                let (e, f) = (&expected[ref_rows[key]], &found[image_rows[key]]);
                assert_eq!(e.len(), f.len());
                for (pixel, (&e, &f)) in e.iter().zip(f).enumerate() {
                    assert!(
                        close(e, f, abs, 1e-4),
                        "{stem} {key:?} {column}[{pixel}]: ctapipe {e}, cascade {f}"
                    );
                }
            }
        }
        let (expected, found) = (
            reference.list_bool("image_mask"),
            images.list_bool("image_mask"),
        );
        for key in &keys {
            assert_eq!(
                expected[ref_rows[key]], found[image_rows[key]],
                "{stem} {key:?}: image_mask"
            );
        }

        let stable = reference.bool("diag_timing_seed_stable");
        let parameter_columns: Vec<String> = parameters
            .column_names()
            .into_iter()
            .filter(|c| {
                [
                    "hillas_",
                    "timing_",
                    "leakage_",
                    "concentration_",
                    "morphology_",
                    "intensity_",
                    "peak_time_",
                ]
                .iter()
                .any(|p| c.starts_with(p))
            })
            .collect();
        assert!(
            parameter_columns.len() >= 38,
            "{stem}: only {parameter_columns:?}"
        );
        for column in &parameter_columns {
            assert!(
                reference.has(column),
                "the reference has no column {column}"
            );
            let (expected, found) = (reference.f64(column), parameters.f64(column));
            for key in &keys {
                let r = ref_rows[key];
                if column.starts_with("timing_") && !stable[r] {
                    continue;
                }
                let (e, f) = (expected[r], found[parameter_rows[key]]);
                assert!(
                    close(e, f, 1e-6, 1e-4),
                    "{stem} {key:?} {column}: ctapipe {e}, cascade {f}"
                );
            }
        }
    }
}
