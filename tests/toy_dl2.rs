//! Direction reconstruction on toy gamma rays with known truth (`pipelines/toy_dl2.toml`):
//! the 68 % containment radius of events seen by at least three telescopes must be small.
//! The toy's shower model is simple, so this checks the geometry of the whole chain (camera
//! frames, Hillas, join, HillasReconstructor), not the physics performance of an array.
//! The join's bounded memory, completeness and late-row accounting are checked on longer
//! toy runs with small windows.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;

use cascade_pipeline::Edits;
use cascade_runtime::MetricsReport;
use cascade_testdata::Table;
use cascade_tests::run_pipeline;

fn angular_distance_deg(alt1: f64, az1: f64, alt2: f64, az2: f64) -> f64 {
    let (a1, z1, a2, z2) = (
        alt1.to_radians(),
        az1.to_radians(),
        alt2.to_radians(),
        az2.to_radians(),
    );
    let cosine = a1.sin() * a2.sin() + a1.cos() * a2.cos() * (z1 - z2).cos();
    cosine.clamp(-1.0, 1.0).acos().to_degrees()
}

#[test]
fn toy_gammas_are_reconstructed_close_to_their_true_direction() {
    let output = tempfile::tempdir().unwrap();
    let edits = Edits {
        sets: vec!["sources.events.n_events=120".into()],
        output: Some(output.path().display().to_string()),
        ..Edits::default()
    };
    run_pipeline("toy_dl2.toml", &edits);

    let dl2 = Table::read(&output.path().join("dl2_shower/part-00000.parquet"));
    assert_eq!(dl2.n_rows(), 120);
    let (alt, az, true_alt, true_az) = (
        dl2.f64("alt"),
        dl2.f64("az"),
        dl2.f64("true_alt"),
        dl2.f64("true_az"),
    );
    let (valid, telescopes) = (dl2.bool("is_valid"), dl2.list_i64("telescopes"));
    let mut distances: Vec<f64> = (0..dl2.n_rows())
        .filter(|&i| valid[i] && telescopes[i].len() >= 3)
        .map(|i| angular_distance_deg(alt[i], az[i], true_alt[i], true_az[i]))
        .collect();
    assert!(
        distances.len() >= 15,
        "only {} events with 3+ telescopes",
        distances.len()
    );
    distances.sort_by(f64::total_cmp);
    let containment_68 = distances[(0.68 * distances.len() as f64) as usize];
    assert!(
        containment_68 < 0.2,
        "68 % containment {containment_68} deg"
    );
}

/// Runs `toy_dl2.toml` on eight telescopes of three types with the given settings.
fn run_small_array(
    output: &Path,
    n_events: u64,
    batch_size: usize,
    window: usize,
) -> MetricsReport {
    let edits = Edits {
        sets: vec![
            format!("sources.events.n_events={n_events}"),
            "sources.events.tel_ids=[1, 2, 5, 6, 7, 13, 14, 15]".into(),
            format!("pipeline.batch_size={batch_size}"),
            format!("stages.stereo.window_events={window}"),
        ],
        output: Some(output.display().to_string()),
        ..Edits::default()
    };
    run_pipeline("toy_dl2.toml", &edits)
}

/// A stage's rows and its own counter `name` (0 when absent).
fn stage_counts(report: &MetricsReport, stage: &str, name: &str) -> (u64, u64) {
    let stage = report.stages.iter().find(|s| s.name == stage).unwrap();
    let counter = stage.metrics.counters.get(name).copied().unwrap_or(0);
    (stage.metrics.rows, counter)
}

#[test]
fn long_toy_run_joins_every_event_complete_within_a_small_window() {
    // Many more array events than the window holds; the source interleaves three telescope
    // types in batches of 8, so few events are open at once.
    let (n_events, window) = (600, 32);
    let output = tempfile::tempdir().unwrap();
    let report = run_small_array(output.path(), n_events, 8, window);
    let counter = |name: &str| stage_counts(&report, "stereo", name).1;
    let (rows, peak) = stage_counts(&report, "stereo", "peak_open_events");
    assert_eq!(rows, n_events, "one array event per toy shower");
    assert!(
        (1..=window as u64).contains(&peak),
        "peak open events {peak} outside 1..={window}"
    );
    assert_eq!(counter("events_complete"), n_events);
    for name in [
        "events_incomplete",
        "missing_telescopes",
        "late_rows",
        "late_events",
    ] {
        assert_eq!(counter(name), 0, "{name}");
    }
    let dl2 = Table::read(&output.path().join("dl2_shower/part-00000.parquet"));
    assert!(dl2.bool("join_complete").iter().all(|&c| c));
    let joined: i64 = dl2.i64("n_tels_joined").iter().sum();
    assert_eq!(joined as u64, stage_counts(&report, "parameters", "").0);
    assert_eq!(dl2.i64("n_tels_joined"), dl2.i64("n_tels_expected"));
}

#[test]
fn a_window_smaller_than_the_interleaving_flags_and_counts_late_rows_without_dropping_any() {
    // Batches of 16 events per telescope type but a window of 2 array events: most events
    // are emitted before their other telescope types arrive.
    let output = tempfile::tempdir().unwrap();
    let report = run_small_array(output.path(), 120, 16, 2);
    let counter = |name: &str| stage_counts(&report, "stereo", name).1;
    let dl2 = Table::read(&output.path().join("dl2_shower/part-00000.parquet"));
    let (late, complete) = (dl2.bool("join_late"), dl2.bool("join_complete"));
    let (joined, missing) = (dl2.i64("n_tels_joined"), dl2.i64("n_tels_missing"));
    let first_rows = late.iter().filter(|&&l| !l).count() as u64;
    assert_eq!(first_rows, 120, "one first row per array event");
    assert!(counter("late_rows") > 0 && counter("events_incomplete") > 0);
    assert_eq!(
        counter("late_events"),
        late.iter().filter(|&&l| l).count() as u64
    );
    assert_eq!(
        counter("events_incomplete"),
        (0..dl2.n_rows())
            .filter(|&i| !late[i] && !complete[i])
            .count() as u64
    );
    let late_rows: i64 = (0..dl2.n_rows())
        .filter(|&i| late[i])
        .map(|i| joined[i])
        .sum();
    assert_eq!(late_rows as u64, counter("late_rows"));
    let first_missing: i64 = (0..dl2.n_rows())
        .filter(|&i| !late[i])
        .map(|i| missing[i])
        .sum();
    assert_eq!(first_missing as u64, counter("missing_telescopes"));
    // Never dropped: every telescope row is in exactly one array-event row.
    let total: i64 = joined.iter().sum();
    assert_eq!(total as u64, stage_counts(&report, "parameters", "").0);
    assert!(stage_counts(&report, "stereo", "peak_open_events").1 <= 2);
}
