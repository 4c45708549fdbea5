//! The full R0 -> DL1 chain (`pipelines/ctapipe_dl1.toml`) on every shared sim_telarray file
//! against ctapipe 0.28's reference (`../shared/data/reference/*.dl1.parquet`).
//!
//! Tolerances: image 1e-3 p.e. and peak_time 1e-3 ns absolute, or 1e-4 relative; cleaning
//! masks exactly; every ctapipe parameter column 1e-4 relative or 1e-6 absolute, with NaN
//! exactly where the reference has NaN; timing_* only where the reference's
//! `diag_timing_seed_stable` is true (ctapipe's fit depends on a process-global RNG).
//!
//! The other image cleaners of the `clean` stage (`image_cleaner_type`) against the masks of
//! ctapipe's cleaner classes in `tests/golden/cleaners.parquet` (made by
//! `tests/golden/make_cleaners_golden.py`): exactly.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::HashMap;
use std::path::Path;

use cascade_pipeline::Edits;
use cascade_testdata::{STEMS, Table, simtel_path};
use cascade_tests::{assert_dl1_image_close, close, rows_by_tel_event, run_pipeline};

fn run_dl1(stem: &str, output: &Path) {
    run_dl1_with(stem, output, Vec::new());
}

/// `pipelines/ctapipe_dl1.toml` on the shared file `stem` with the `--set` edits `sets`.
fn run_dl1_with(stem: &str, output: &Path, sets: Vec<String>) {
    let edits = Edits {
        inputs: vec![simtel_path(stem).display().to_string()],
        output: Some(output.display().to_string()),
        sets,
    };
    run_pipeline("ctapipe_dl1.toml", &edits);
}

#[test]
fn every_image_cleaner_matches_ctapipe_s_cleaner_class() {
    let golden =
        Table::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/cleaners.parquet"));
    let files = golden.str("file");
    let golden_rows: HashMap<(String, i64, i64), usize> = files
        .iter()
        .zip(golden.i64("event_id").into_iter().zip(golden.i64("tel_id")))
        .enumerate()
        .map(|(i, (file, (event, tel)))| ((file.clone(), event, tel), i))
        .collect();
    let mut stems: Vec<&String> = files.iter().collect();
    stems.dedup();
    assert_eq!(stems.len(), 4, "four files, four camera types");
    let cleaners = [
        "TailcutsImageCleaner",
        "MARSImageCleaner",
        "FACTImageCleaner",
        "TimeConstrainedImageCleaner",
    ];
    let masks: Vec<Vec<Vec<bool>>> = cleaners
        .iter()
        .map(|cleaner| golden.list_bool(&format!("mask_{cleaner}")))
        .collect();
    // The cleaners must disagree on the golden images, or this test could not tell them apart.
    for (i, a) in masks.iter().enumerate() {
        for b in &masks[i + 1..] {
            assert_ne!(a, b, "two cleaners give the same masks");
        }
    }
    for (cleaner, expected) in cleaners.iter().zip(&masks) {
        let mut checked = 0;
        for &stem in &stems {
            let output = tempfile::tempdir().unwrap();
            let set = format!("stages.clean.image_cleaner_type = \"{cleaner}\"");
            run_dl1_with(stem, output.path(), vec![set]);
            let images = Table::read(&output.path().join("dl1_images/part-00000.parquet"));
            let found = images.list_bool("image_mask");
            for (row, key) in images
                .i64("event_id")
                .into_iter()
                .zip(images.i64("tel_id"))
                .enumerate()
            {
                let Some(&g) = golden_rows.get(&(stem.clone(), key.0, key.1)) else {
                    continue;
                };
                assert_eq!(found[row], expected[g], "{cleaner} {stem} {key:?}");
                checked += 1;
            }
        }
        assert_eq!(
            checked,
            golden.n_rows(),
            "{cleaner}: telescope events checked"
        );
    }
}

#[test]
fn r0_to_dl1_matches_ctapipe_on_every_shared_file() {
    for stem in STEMS {
        let output = tempfile::tempdir().unwrap();
        run_dl1(stem, output.path());
        check_instrument(stem, output.path());
        let reference = Table::reference(stem, "dl1");
        let images = Table::read(&output.path().join("dl1_images/part-00000.parquet"));
        let parameters = Table::read(&output.path().join("dl1_parameters/part-00000.parquet"));
        let (ref_rows, image_rows, parameter_rows) = (
            rows_by_tel_event(&reference),
            rows_by_tel_event(&images),
            rows_by_tel_event(&parameters),
        );
        let mut keys: Vec<_> = ref_rows.keys().copied().collect();
        keys.sort();
        let mut ours: Vec<_> = image_rows.keys().copied().collect();
        ours.sort();
        assert_eq!(keys, ours, "{stem}: telescope events differ");

        let (expected_images, found_images) =
            (reference.list_f64("image"), images.list_f64("image"));
        let (expected_times, found_times) = (
            reference.list_f64("peak_time"),
            images.list_f64("peak_time"),
        );
        for key in &keys {
            let (r, i) = (ref_rows[key], image_rows[key]);
            assert_dl1_image_close(
                &format!("{stem} {key:?}"),
                (&expected_images[r], &expected_times[r]),
                (&found_images[i], &found_times[i]),
            );
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

/// `pipelines/ctapipe_dl1_with_r1.toml` (R0 -> R1 by the `r0_to_r1` stage, then R1 -> DL1)
/// gives exactly the DL1 of `ctapipe_dl1.toml` (R0 -> DL1 in one stage) on the file with two
/// camera types, broken pixels and time shifts, and writes R1 with the `r1` schema.
#[test]
fn r1_written_by_its_own_stage_gives_the_same_dl1() {
    let stem = "gamma_prod6_lst_nectarcam";
    let (direct, via_r1) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run_dl1(stem, direct.path());
    let edits = Edits {
        inputs: vec![simtel_path(stem).display().to_string()],
        output: Some(via_r1.path().display().to_string()),
        sets: Vec::new(),
    };
    run_pipeline("ctapipe_dl1_with_r1.toml", &edits);

    let images = |dir: &Path| Table::read(&dir.join("dl1_images/part-00000.parquet"));
    let (expected, found) = (images(direct.path()), images(via_r1.path()));
    let (expected_rows, found_rows) = (rows_by_tel_event(&expected), rows_by_tel_event(&found));
    let mut keys: Vec<_> = expected_rows.keys().copied().collect();
    keys.sort();
    assert!(keys.len() >= 5, "{} telescope events", keys.len());
    assert_eq!(found_rows.len(), keys.len());
    for column in ["image", "peak_time"] {
        let (e, f) = (expected.list_f64(column), found.list_f64(column));
        for key in &keys {
            let (e, f) = (&e[expected_rows[key]], &f[found_rows[key]]);
            let same =
                e.len() == f.len() && e.iter().zip(f).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{stem} {key:?}: {column} differs through R1");
        }
    }
    let (e, f) = (
        expected.list_i64("selected_gain_channel"),
        found.list_i64("selected_gain_channel"),
    );
    for key in &keys {
        assert_eq!(e[expected_rows[key]], f[found_rows[key]], "{key:?}");
    }

    let r1_path = via_r1.path().join("r1_waveforms/part-00000.parquet");
    let file = std::fs::File::open(&r1_path).unwrap();
    let schema = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .schema()
        .clone();
    // names, types, nullability and descriptions (field metadata)
    assert_eq!(schema.fields(), cascade_schema::Level::R1.schema().fields());
    let r1 = Table::read(&r1_path);
    assert_eq!(r1.n_rows(), keys.len());
    let (r1_rows, waveforms, n_samples) = (
        rows_by_tel_event(&r1),
        r1.list_f64("waveform"),
        r1.i64("n_samples"),
    );
    for key in &keys {
        let r = r1_rows[key];
        let n_pixels = e[expected_rows[key]].len();
        assert_eq!(
            waveforms[r].len(),
            n_pixels * n_samples[r] as usize,
            "{key:?}"
        );
    }
}

/// The instrument tables the pipeline wrote beside the DL1 data against ctapipe's camera
/// geometry of every telescope (`<stem>.geometry.parquet`): every telescope with its
/// camera and pixel count, every pixel's position, area and shape within 1e-9, its
/// neighbours equal.
fn check_instrument(stem: &str, output: &Path) {
    let instrument = output.join("instrument");
    let subarray = Table::read(&instrument.join("subarray/part-00000.parquet"));
    let cameras = Table::read(&instrument.join("camera_geometry/part-00000.parquet"));
    let reference = Table::reference(stem, "geometry");

    let camera_of: HashMap<i64, (String, i64)> = subarray
        .i64("tel_id")
        .into_iter()
        .zip(subarray.str("camera_name"))
        .zip(subarray.i64("n_pixels"))
        .map(|((tel, camera), n)| (tel, (camera, n)))
        .collect();
    let ref_tels: std::collections::BTreeSet<i64> = reference.i64("tel_id").into_iter().collect();
    let our_tels: std::collections::BTreeSet<i64> = camera_of.keys().copied().collect();
    assert_eq!(
        our_tels, ref_tels,
        "{stem}: telescopes of the subarray table"
    );

    let pixel_row: HashMap<(String, i64), usize> = cameras
        .str("camera_name")
        .into_iter()
        .zip(cameras.i64("pix_id"))
        .enumerate()
        .map(|(row, key)| (key, row))
        .collect();
    let (x, y, area) = (
        cameras.f64("pix_x"),
        cameras.f64("pix_y"),
        cameras.f64("pix_area"),
    );
    let (shape, neighbors) = (cameras.str("pix_type"), cameras.list_i64("neighbors"));
    let (ref_x, ref_y, ref_area) = (
        reference.f64("pix_x_m"),
        reference.f64("pix_y_m"),
        reference.f64("pix_area_m2"),
    );
    let (ref_shape, ref_neighbors) = (reference.str("pix_type"), reference.list_i64("neighbors"));
    let (ref_tel, ref_camera, ref_pixel) = (
        reference.i64("tel_id"),
        reference.str("camera_name"),
        reference.i64("pix_id"),
    );
    let mut n_pixels: HashMap<i64, i64> = HashMap::new();
    for r in 0..reference.n_rows() {
        let (camera, expected_pixels) = &camera_of[&ref_tel[r]];
        assert_eq!(
            camera, &ref_camera[r],
            "{stem} telescope {}: camera",
            ref_tel[r]
        );
        *n_pixels.entry(ref_tel[r]).or_default() += 1;
        let what = format!("{stem} {camera} pixel {}", ref_pixel[r]);
        let row = pixel_row[&(camera.clone(), ref_pixel[r])];
        for (ours, theirs, name) in [(x[row], ref_x[r], "x"), (y[row], ref_y[r], "y")] {
            assert!(
                (ours - theirs).abs() < 1e-9,
                "{what}: {name} {ours} vs {theirs}"
            );
        }
        assert!(
            (area[row] - ref_area[r]).abs() <= 1e-9 * ref_area[r].abs(),
            "{what}: area {} vs {}",
            area[row],
            ref_area[r]
        );
        assert_eq!(shape[row], ref_shape[r], "{what}: shape");
        let (mut ours, mut theirs) = (neighbors[row].clone(), ref_neighbors[r].clone());
        ours.sort_unstable();
        theirs.sort_unstable();
        assert_eq!(ours, theirs, "{what}: neighbours");
        assert!(*expected_pixels > ref_pixel[r], "{what}: beyond n_pixels");
    }
    for (tel, n) in n_pixels {
        assert_eq!(camera_of[&tel].1, n, "{stem} telescope {tel}: n_pixels");
    }
}
