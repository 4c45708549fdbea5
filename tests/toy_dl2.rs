//! Direction reconstruction on toy gamma rays with known truth (`pipelines/toy_dl2.toml`):
//! the 68 % containment radius of events seen by at least three telescopes must be small.
//! The toy's shower model is simple, so this checks the geometry of the whole chain (camera
//! frames, Hillas, join, HillasReconstructor), not the physics performance of an array.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use cascade_pipeline::Edits;
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
