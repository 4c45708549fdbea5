//! The low-gain / gain-selection path against ctapipe 0.28: `tests/golden/low_gain.parquet`
//! (made by `tests/golden/make_low_gain_golden.py`, see `tests/golden/README.md`) holds
//! ctapipe's selected gain channel, image and peak time with `ThresholdGainSelector`'s
//! threshold lowered so that many pixels select the low gain, which no pixel of the shared
//! files does with the default threshold (4000 ADC counts).
//!
//! `pipelines/ctapipe_dl1.toml` with the golden's threshold must give, for every golden
//! telescope event, the same selected gain per pixel exactly, and the image (p.e.) and peak
//! time (ns) within 1e-3 absolute or 1e-4 relative (the DL1 tolerances of
//! `dl1_conformance.rs`); so must `pipelines/ctapipe_dl1_with_r1.toml`, where the
//! `r0_to_r1` stage selects the gains and `calibrate` starts from its R1.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cascade_pipeline::Edits;
use cascade_testdata::{Table, simtel_path};
use cascade_tests::{assert_dl1_image_close, parquet_metadata, rows_by_tel_event, run_pipeline};

fn golden_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/low_gain.parquet")
}

/// The `ThresholdGainSelector.threshold` ctapipe used, from the golden's metadata.
fn golden_threshold() -> f64 {
    parquet_metadata(&golden_path())["gain_selector_threshold"]
        .parse()
        .unwrap()
}

#[test]
fn low_gain_selection_and_dl1_match_ctapipe() {
    let golden = Table::read(&golden_path());
    let threshold = golden_threshold();
    let files = golden.str("file");
    let cameras = golden.str("camera_name");
    let (gains, images, times) = (
        golden.list_i64("selected_gain_channel"),
        golden.list_f64("image"),
        golden.list_f64("peak_time"),
    );
    let (obs, events, tels) = (
        golden.i64("obs_id"),
        golden.i64("event_id"),
        golden.i64("tel_id"),
    );

    // The golden must exercise the low gain on both camera types.
    let mut low_per_camera: BTreeMap<&str, usize> = BTreeMap::new();
    for (camera, gains) in cameras.iter().zip(&gains) {
        let camera = if camera.starts_with("LST") {
            "LSTCam"
        } else {
            "NectarCam"
        };
        *low_per_camera.entry(camera).or_default() += gains.iter().filter(|&&g| g == 1).count();
    }
    assert_eq!(golden.n_rows(), 13);
    assert!(low_per_camera["LSTCam"] >= 3000, "{low_per_camera:?}");
    assert!(low_per_camera["NectarCam"] >= 20, "{low_per_camera:?}");

    let mut stems: Vec<&String> = files.iter().collect();
    stems.dedup();
    // the pipeline, and the stage that selects the gains in it
    for (pipeline, selector) in [
        ("ctapipe_dl1.toml", "calibrate"),
        ("ctapipe_dl1_with_r1.toml", "r0_to_r1"),
    ] {
        let mut checked = 0;
        for &stem in &stems {
            let output = tempfile::tempdir().unwrap();
            let edits = Edits {
                inputs: vec![simtel_path(stem).display().to_string()],
                output: Some(output.path().display().to_string()),
                sets: vec![format!(
                    "stages.{selector}.gain_selector = {{ type = \"ThresholdGainSelector\", threshold = {threshold:?} }}"
                )],
            };
            run_pipeline(pipeline, &edits);
            let ours = Table::read(&output.path().join("dl1_images/part-00000.parquet"));
            let our_rows = rows_by_tel_event(&ours);
            let (our_gains, our_images, our_times) = (
                ours.list_i64("selected_gain_channel"),
                ours.list_f64("image"),
                ours.list_f64("peak_time"),
            );
            for g in (0..golden.n_rows()).filter(|&g| files[g] == *stem) {
                let key = (obs[g], events[g], tels[g]);
                let o = *our_rows.get(&key).unwrap_or_else(|| {
                    panic!("{pipeline} {stem} {key:?}: no such telescope event from cascade")
                });
                assert_eq!(
                    gains[g], our_gains[o],
                    "{pipeline} {stem} {key:?}: selected_gain_channel"
                );
                assert_dl1_image_close(
                    &format!("{pipeline} {stem} {key:?}"),
                    (&images[g], &times[g]),
                    (&our_images[o], &our_times[o]),
                );
                checked += 1;
            }
        }
        assert_eq!(checked, golden.n_rows(), "{pipeline}");
    }
}
