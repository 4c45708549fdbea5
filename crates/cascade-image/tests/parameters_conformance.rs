//! Image parameters from ctapipe's reference image and mask agree with ctapipe's DL1
//! parameters (`<stem>.dl1.parquet`) within 1e-4 relative or 1e-6 absolute, NaN exactly
//! where ctapipe has NaN; timing only where ctapipe's own result does not depend on its
//! random seed (`diag_timing_seed_stable`).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use cascade_image::params::{
    ColumnValue, Frame, ParameterWorkspace, hillas_parameters, image_parameters,
    passes_image_quality,
};
use cascade_testdata::{STEMS, Table};

/// Compares every column; returns the failures.
fn compare(
    label: &str,
    columns: &[(String, ColumnValue)],
    reference: &HashMap<String, Vec<f64>>,
    row: usize,
    skip_timing: bool,
    failures: &mut Vec<String>,
) -> usize {
    let mut n = 0;
    for (name, value) in columns {
        if skip_timing && name.starts_with("timing_") {
            continue;
        }
        let expected = reference[name][row];
        let ok = match value {
            ColumnValue::Int(v) => *v as f64 == expected,
            ColumnValue::Float(v) => common::agrees(*v, expected),
        };
        n += 1;
        if !ok {
            failures.push(format!(
                "{label} {name}: ours {value:?}, ctapipe {expected}"
            ));
        }
    }
    n
}

#[test]
fn image_parameters_agree_with_ctapipe_on_every_shared_file() {
    let mut workspace = ParameterWorkspace::default();
    let mut failures = Vec::new();
    let (mut n_values, mut n_timing_checked, mut n_unstable_agreeing, mut n_unstable) =
        (0, 0, 0, 0);
    for stem in STEMS {
        let cameras = common::cameras(stem);
        let geometries: HashMap<i64, _> = cameras
            .iter()
            .map(|(&tel, camera)| {
                (
                    tel,
                    (
                        camera.geometry(Frame::Telescope),
                        camera.geometry(Frame::Camera),
                    ),
                )
            })
            .collect();
        let table = Table::reference(stem, "dl1");
        let tel_ids = table.i64("tel_id");
        let event_ids = table.i64("event_id");
        let images = common::f32_lists(&table, "image");
        let peak_times = common::f32_lists(&table, "peak_time");
        let masks = table.list_bool("image_mask");
        let stable = table.bool("diag_timing_seed_stable");
        let mut reference: HashMap<String, Vec<f64>> = HashMap::new();
        for name in table.column_names() {
            let family = [
                "hillas_",
                "timing_",
                "leakage_",
                "concentration_",
                "morphology_",
                "intensity_",
                "peak_time_",
                "camhillas_",
            ];
            if family.iter().any(|f| name.starts_with(f)) && name != "peak_time" {
                reference.insert(name.clone(), table.f64(&name));
            }
        }
        for row in 0..table.n_rows() {
            let (tf_geometry, cam_geometry) = &geometries[&tel_ids[row]];
            let (image, peak_time, mask) = (&images[row], &peak_times[row], &masks[row]);
            let label = format!("{stem} event {} tel {}", event_ids[row], tel_ids[row]);
            let params = image_parameters(
                tf_geometry,
                image,
                Some(peak_time.as_slice()),
                mask,
                &mut workspace,
            )
            .unwrap();
            let columns: Vec<(String, ColumnValue)> = params
                .columns()
                .iter()
                .map(|c| (c.full_name(), c.value))
                .collect();
            n_values += compare(
                &label,
                &columns,
                &reference,
                row,
                !stable[row],
                &mut failures,
            );
            if stable[row] {
                n_timing_checked += 1;
            } else if params.timing.slope.is_finite() {
                n_unstable += 1;
                let agree = ["timing_slope", "timing_intercept", "timing_deviation"]
                    .iter()
                    .zip([
                        params.timing.slope,
                        params.timing.intercept,
                        params.timing.deviation,
                    ])
                    .all(|(name, v)| common::agrees(v, reference[*name][row]));
                n_unstable_agreeing += usize::from(agree);
            }

            // camera frame, like ctapipe's hillas_parameters(geom, image * mask)
            let camhillas = if passes_image_quality(image, mask) {
                hillas_parameters(&cam_geometry.pixels(), image, mask).unwrap()
            } else {
                cascade_image::params::HillasParameters::nan(Frame::Camera)
            };
            let columns: Vec<(String, ColumnValue)> = camhillas
                .columns()
                .iter()
                .map(|c| (format!("camhillas_{}", c.name), c.value))
                .collect();
            n_values += compare(&label, &columns, &reference, row, false, &mut failures);
        }
    }
    println!(
        "{n_values} values compared; timing checked on {n_timing_checked} seed-stable images; \
         on {n_unstable} seed-dependent images cascade equals ctapipe's seed-0 result {n_unstable_agreeing} times"
    );
    assert!(
        failures.is_empty(),
        "{} of {n_values} values differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        n_timing_checked > 10,
        "only {n_timing_checked} timing results checked"
    );
}
