//! Cleaning masks and island labels equal ctapipe's exactly, for every telescope event of
//! every shared file and every parameter set of `<stem>.cleaning.parquet`.
#![allow(clippy::unwrap_used)]

mod common;

use cascade_image::cleaning::{
    CleaningWorkspace, FactParams, TailcutsParams, fact_image_cleaning, mars_cleaning_1st_pass,
    number_of_islands, tailcuts_clean,
};
use cascade_testdata::{STEMS, Table};

const TAILCUTS_SETS: [(&str, f64, f64, usize, bool); 5] = [
    ("mask_tailcuts_10_5_2_false", 10.0, 5.0, 2, false),
    ("mask_tailcuts_6_3_0_false", 6.0, 3.0, 0, false),
    ("mask_tailcuts_6_3_0_true", 6.0, 3.0, 0, true),
    ("mask_tailcuts_8_4_2_false", 8.0, 4.0, 2, false),
    ("mask_tailcuts_5_2p5_1_false", 5.0, 2.5, 1, false),
];

fn describe_difference(ours: &[bool], reference: &[bool]) -> String {
    let differing: Vec<usize> = (0..ours.len())
        .filter(|&i| ours[i] != reference[i])
        .take(10)
        .collect();
    format!(
        "{} pixels differ (first: {differing:?}); ours selects {}, ctapipe {}",
        ours.iter().zip(reference).filter(|(a, b)| a != b).count(),
        ours.iter().filter(|&&m| m).count(),
        reference.iter().filter(|&&m| m).count()
    )
}

#[test]
fn cleaning_masks_and_island_labels_equal_ctapipe_on_every_shared_file() {
    let mut workspace = CleaningWorkspace::default();
    let mut n_checked = 0;
    let mut failures = Vec::new();
    for stem in STEMS {
        let cameras = common::cameras(stem);
        let table = Table::reference(stem, "cleaning");
        let tel_ids = table.i64("tel_id");
        let event_ids = table.i64("event_id");
        let images = common::f32_lists(&table, "image");
        let peak_times = common::f32_lists(&table, "peak_time");
        let n_islands_ref = table.i64("n_islands_tailcuts_10_5_2_false");
        let labels_ref = table.list_i64("island_labels_tailcuts_10_5_2_false");
        let tailcuts_ref: Vec<_> = TAILCUTS_SETS.iter().map(|s| table.list_bool(s.0)).collect();
        let mars_ref = table.list_bool("mask_mars_10_5");
        let fact_ref = table.list_bool("mask_fact_4_2_2_5");
        for row in 0..table.n_rows() {
            let camera = &cameras[&tel_ids[row]];
            let n = camera.n_pixels();
            let image = &images[row];
            let mut mask = vec![false; n];
            let mut check = |what: &str, ours: &[bool], reference: &[bool]| {
                n_checked += 1;
                if ours != reference {
                    failures.push(format!(
                        "{stem} event {} tel {} {what}: {}",
                        event_ids[row],
                        tel_ids[row],
                        describe_difference(ours, reference)
                    ));
                }
            };
            for (set, reference) in TAILCUTS_SETS.iter().zip(&tailcuts_ref) {
                let params = TailcutsParams {
                    picture_threshold_pe: set.1,
                    boundary_threshold_pe: set.2,
                    min_number_picture_neighbors: set.3,
                    keep_isolated_pixels: set.4,
                };
                tailcuts_clean(&camera.neighbors, image, &params, &mut workspace, &mut mask)
                    .unwrap();
                check(set.0, &mask, &reference[row]);
            }
            let mars = TailcutsParams {
                picture_threshold_pe: 10.0,
                boundary_threshold_pe: 5.0,
                min_number_picture_neighbors: 0,
                keep_isolated_pixels: false,
            };
            mars_cleaning_1st_pass(&camera.neighbors, image, &mars, &mut workspace, &mut mask)
                .unwrap();
            check("mask_mars_10_5", &mask, &mars_ref[row]);
            fact_image_cleaning(
                &camera.neighbors,
                image,
                &peak_times[row],
                &FactParams::default(),
                &mut workspace,
                &mut mask,
            )
            .unwrap();
            check("mask_fact_4_2_2_5", &mask, &fact_ref[row]);

            let default_mask = &tailcuts_ref[0][row];
            let mut labels = vec![0i32; n];
            let n_islands =
                number_of_islands(&camera.neighbors, default_mask, &mut labels, &mut workspace)
                    .unwrap();
            let labels: Vec<i64> = labels.iter().map(|&l| i64::from(l)).collect();
            n_checked += 1;
            if n_islands as i64 != n_islands_ref[row] || labels != labels_ref[row] {
                failures.push(format!(
                    "{stem} event {} tel {}: islands {n_islands} vs ctapipe {}",
                    event_ids[row], tel_ids[row], n_islands_ref[row]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n_checked} masks differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(n_checked >= 480, "only {n_checked} masks checked");
}

#[test]
fn border_masks_equal_ctapipe_for_every_camera() {
    for stem in STEMS {
        for (tel_id, camera) in common::cameras(stem) {
            for (width, reference, tf_reference) in [
                (1, &camera.border_width_1, &camera.tf_border_width_1),
                (2, &camera.border_width_2, &camera.tf_border_width_2),
            ] {
                let ours = camera.neighbors.border_pixel_mask(width);
                assert_eq!(
                    &ours, reference,
                    "{stem} tel {tel_id} ({}) border width {width}",
                    camera.name
                );
                assert_eq!(
                    &ours, tf_reference,
                    "{stem} tel {tel_id} telescope-frame border width {width}"
                );
            }
        }
    }
}
