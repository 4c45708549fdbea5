//! ctapipe's charge extractors other than its default against ctapipe 0.28:
//! `tests/golden/extractors.parquet` (made by `tests/golden/make_extractors_golden.py`, see
//! `tests/golden/README.md`) holds ctapipe's DL1 image and peak time with each
//! `ImageExtractor` of `CameraCalibrator`, options included, on LSTCam, NectarCam, HESS-I
//! and FlashCam events; the shared references hold only the default's.
//!
//! `pipelines/ctapipe_dl1.toml` with `stages.calibrate.image_extractor` set to the same
//! extractor (the golden's metadata holds the option as cascade spells it) must give, for
//! every golden telescope event, the image (p.e.) and peak time (ns) within 1e-3 absolute
//! or 1e-4 relative (the DL1 tolerances of `dl1_conformance.rs`).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use cascade_pipeline::Edits;
use cascade_testdata::{Table, simtel_path};
use cascade_tests::{assert_dl1_image_close, parquet_metadata, rows_by_tel_event, run_pipeline};

fn golden_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/extractors.parquet")
}

/// Configuration name -> cascade's `image_extractor` option, from the golden's metadata.
fn golden_options() -> HashMap<String, String> {
    parquet_metadata(&golden_path())
        .into_iter()
        .filter_map(|(key, value)| Some((key.strip_prefix("cascade_")?.to_string(), value)))
        .collect()
}

#[test]
fn every_extractor_matches_ctapipe() {
    let golden = Table::read(&golden_path());
    let options = golden_options();
    let (configs, files) = (golden.str("config"), golden.str("file"));
    let (obs, events, tels) = (
        golden.i64("obs_id"),
        golden.i64("event_id"),
        golden.i64("tel_id"),
    );
    let (images, times) = (golden.list_f64("image"), golden.list_f64("peak_time"));
    // Every extractor class of ctapipe but the default configuration, on four cameras.
    assert_eq!(options.len(), 7, "{options:?}");
    assert_eq!(golden.n_rows(), 28);

    let runs: BTreeSet<(&String, &String)> = configs.iter().zip(files.iter()).collect();
    let mut checked = 0;
    for (config, stem) in runs {
        let output = tempfile::tempdir().unwrap();
        let edits = Edits {
            inputs: vec![simtel_path(stem).display().to_string()],
            output: Some(output.path().display().to_string()),
            sets: vec![format!(
                "stages.calibrate.image_extractor = {}",
                options[config]
            )],
        };
        run_pipeline("ctapipe_dl1.toml", &edits);
        let ours = Table::read(&output.path().join("dl1_images/part-00000.parquet"));
        let our_rows = rows_by_tel_event(&ours);
        let (our_images, our_times) = (ours.list_f64("image"), ours.list_f64("peak_time"));
        for g in (0..golden.n_rows()).filter(|&g| configs[g] == *config && files[g] == *stem) {
            let key = (obs[g], events[g], tels[g]);
            let o = *our_rows.get(&key).unwrap_or_else(|| {
                panic!("{config} {stem} {key:?}: no such telescope event from cascade")
            });
            assert_dl1_image_close(
                &format!("{config} {stem} {key:?}"),
                (&images[g], &times[g]),
                (&our_images[o], &our_times[o]),
            );
            checked += 1;
        }
    }
    assert_eq!(checked, golden.n_rows());
}
