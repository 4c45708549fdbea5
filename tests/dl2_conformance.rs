//! The full R0 -> DL2 chain (`pipelines/ctapipe_dl2.toml`) on every shared sim_telarray file
//! against ctapipe 0.28's reference (`../shared/data/reference/*.dl2.parquet`).
//!
//! For every array event: the telescopes used equal ctapipe's; validity equals ctapipe's;
//! where valid, alt/az within 0.001 deg, core within 0.1 m, h_max within 1 m or 1e-4
//! relative, every telescope's impact distance within 1 mm or 1e-6 relative (NaN where
//! ctapipe's is). Both HillasReconstructor and HillasIntersection. The join waited for exactly
//! ctapipe's telescopes with data and emitted every event complete, and the array pointing
//! the source carries is ctapipe's `event.pointing.array_altitude/azimuth`.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::HashMap;
use std::path::Path;

use cascade_pipeline::Edits;
use cascade_testdata::{STEMS, Table, simtel_path};
use cascade_tests::run_pipeline;

fn run_dl2(stem: &str, output: &Path) {
    let edits = Edits {
        inputs: vec![simtel_path(stem).display().to_string()],
        output: Some(output.display().to_string()),
        sets: Vec::new(),
    };
    run_pipeline("ctapipe_dl2.toml", &edits);
}

#[test]
fn r0_to_dl2_matches_ctapipe_on_every_shared_file() {
    let mut valid_events = 0;
    for stem in STEMS {
        let output = tempfile::tempdir().unwrap();
        run_dl2(stem, output.path());
        let reference = Table::reference(stem, "dl2");
        check_array_pointing(stem, output.path(), &reference);
        let dl1 = Table::reference(stem, "dl1");
        let ref_rows: HashMap<i64, usize> = reference
            .i64("event_id")
            .into_iter()
            .enumerate()
            .map(|(i, e)| (e, i))
            .collect();
        for (dataset, prefix) in [
            ("dl2_shower", "HillasReconstructor"),
            ("dl2_shower_intersection", "HillasIntersection"),
        ] {
            let ours = Table::read(&output.path().join(dataset).join("part-00000.parquet"));
            assert_eq!(
                ours.n_rows(),
                reference.n_rows(),
                "{stem} {prefix}: array events"
            );
            let column = |name: &str| reference.f64(&format!("{prefix}_{name}"));
            let (alt, az, core_x, core_y, h_max) = (
                column("alt_deg"),
                column("az_deg"),
                column("core_x_m"),
                column("core_y_m"),
                column("h_max_m"),
            );
            let valid = reference.bool(&format!("{prefix}_is_valid"));
            let used = reference.list_i64(&format!("{prefix}_telescopes"));
            let (our_alt, our_az, our_x, our_y, our_h) = (
                ours.f64("alt"),
                ours.f64("az"),
                ours.f64("core_x"),
                ours.f64("core_y"),
                ours.f64("h_max"),
            );
            let (our_valid, our_used) = (ours.bool("is_valid"), ours.list_i64("telescopes"));
            let with_data = reference.list_i64("tels_with_data");
            let (expected, joined, missing) = (
                ours.i64("n_tels_expected"),
                ours.i64("n_tels_joined"),
                ours.i64("n_tels_missing"),
            );
            let (complete, late) = (ours.bool("join_complete"), ours.bool("join_late"));
            let (joined_telescopes, impacts) = (
                ours.list_i64("joined_telescopes"),
                ours.list_f64("tel_impact_distance"),
            );
            // ctapipe's impact distance of every telescope event, by (event_id, tel_id).
            let reference_impact: HashMap<(i64, i64), f64> = dl1
                .i64("event_id")
                .into_iter()
                .zip(dl1.i64("tel_id"))
                .zip(dl1.f64(&format!("{prefix}_tel_impact_distance_m")))
                .collect();
            for (row, event_id) in ours.i64("event_id").into_iter().enumerate() {
                let r = ref_rows[&event_id];
                let what = format!("{stem} {prefix} event {event_id}");
                let n_with_data = with_data[r].len() as i64;
                assert_eq!(
                    (expected[row], joined[row], missing[row]),
                    (n_with_data, n_with_data, 0),
                    "{what}: telescopes expected, joined, missing"
                );
                assert!(complete[row] && !late[row], "{what}: join flags");
                let mut tels_with_data = with_data[r].clone();
                tels_with_data.sort();
                assert_eq!(joined_telescopes[row], tels_with_data, "{what}: joined");
                for (tel_id, &distance) in joined_telescopes[row].iter().zip(&impacts[row]) {
                    let expected = reference_impact[&(event_id, *tel_id)];
                    assert!(
                        (distance.is_nan() && expected.is_nan())
                            || (distance - expected).abs() < 1e-3_f64.max(1e-6 * expected.abs()),
                        "{what}: impact distance of telescope {tel_id}: {distance} vs {expected}"
                    );
                }
                let mut expected = used[r].clone();
                expected.sort();
                let mut found = our_used[row].clone();
                found.sort();
                assert_eq!(found, expected, "{what}: telescopes used");
                assert_eq!(our_valid[row], valid[r], "{what}: is_valid");
                if !valid[r] {
                    continue;
                }
                valid_events += 1;
                let direction = format!("{what}: direction");
                assert_alt_az_close(
                    &direction,
                    (our_alt[row], our_az[row]),
                    (alt[r], az[r]),
                    1e-3,
                );
                assert!(
                    (our_x[row] - core_x[r]).abs() < 0.1 && (our_y[row] - core_y[r]).abs() < 0.1,
                    "{what}: core"
                );
                if h_max[r].is_finite() {
                    assert!(
                        (our_h[row] - h_max[r]).abs() < 1.0_f64.max(1e-4 * h_max[r].abs()),
                        "{what}: h_max {} vs {}",
                        our_h[row],
                        h_max[r]
                    );
                }
            }
        }
    }
    assert!(
        valid_events >= 10,
        "only {valid_events} valid reconstructions were compared"
    );
}

/// Every telescope row carries ctapipe's array pointing and its event's telescopes with data.
fn check_array_pointing(stem: &str, output: &Path, reference: &Table) {
    let rows = Table::read(&output.join("dl1_parameters").join("part-00000.parquet"));
    let ref_rows: HashMap<i64, usize> = reference
        .i64("event_id")
        .into_iter()
        .enumerate()
        .map(|(i, e)| (e, i))
        .collect();
    let (alt, az) = (
        reference.f64("pointing_alt_deg"),
        reference.f64("pointing_az_deg"),
    );
    let with_data = reference.list_i64("tels_with_data");
    let (our_alt, our_az) = (
        rows.f64("array_pointing_alt"),
        rows.f64("array_pointing_az"),
    );
    let triggered = rows.list_i64("tels_with_trigger");
    for (row, event_id) in rows.i64("event_id").into_iter().enumerate() {
        let r = ref_rows[&event_id];
        let what = format!("{stem} event {event_id}");
        let pointing = format!("{what}: array pointing");
        assert_alt_az_close(
            &pointing,
            (our_alt[row], our_az[row]),
            (alt[r], az[r]),
            1e-6,
        );
        let mut expected = with_data[r].clone();
        expected.sort();
        assert_eq!(triggered[row], expected, "{what}: tels_with_trigger");
    }
}

/// Asserts that two (alt, az) directions (deg) agree within `tolerance_deg` in each angle,
/// azimuth compared modulo 360 deg.
fn assert_alt_az_close(what: &str, ours: (f64, f64), reference: (f64, f64), tolerance_deg: f64) {
    assert!(
        (ours.0 - reference.0).abs() < tolerance_deg,
        "{what}: alt {} vs {}",
        ours.0,
        reference.0
    );
    let daz = ((ours.1 - reference.1 + 540.0) % 360.0 - 180.0).abs();
    assert!(
        daz < tolerance_deg,
        "{what}: az {} vs {}",
        ours.1,
        reference.1
    );
}
