//! Small hand-checked cases of the cleanings the reference files do not cover (time
//! average, time constrained, island selection), on a row of pixels.
#![allow(clippy::unwrap_used)]

use cascade_image::ImageError;
use cascade_image::cleaning::{
    CleaningWorkspace, TimeAverageParams, TimeConstrainedParams, apply_time_average_cleaning,
    apply_time_delta_cleaning, brightest_island, largest_island, number_of_island_sizes,
    time_constrained_clean,
};
use cascade_instrument::Neighbors;

/// `n` pixels in a row, each the neighbour of the next.
fn row(n: usize) -> Neighbors {
    let lists: Vec<Vec<u32>> = (0..n)
        .map(|i| {
            let mut list = Vec::new();
            if i > 0 {
                list.push(i as u32 - 1);
            }
            if i + 1 < n {
                list.push(i as u32 + 1);
            }
            list
        })
        .collect();
    Neighbors::from_lists(&lists)
}

#[test]
fn time_delta_cleaning_drops_pixels_without_coincident_neighbours() {
    let mut cleaned = [false; 3];
    apply_time_delta_cleaning(
        &row(3),
        &[true; 3],
        &[0.0f32, 1.0, 10.0],
        1,
        5.0,
        &mut cleaned,
    )
    .unwrap();
    assert_eq!(cleaned, [true, true, false]);
}

#[test]
fn time_average_cleaning_drops_late_pixels() {
    let params = TimeAverageParams {
        picture_threshold_pe: 7.0,
        time_limit_ns: 4.5,
    };
    let mut cleaned = [false; 3];
    apply_time_average_cleaning(
        &row(3),
        &[true; 3],
        &[20.0f32, 20.0, 5.0],
        &[10.0f32, 12.0, 30.0],
        &params,
        &mut CleaningWorkspace::default(),
        &mut cleaned,
    )
    .unwrap();
    assert_eq!(cleaned, [true, true, false]);
}

#[test]
fn time_constrained_cleaning_keeps_coincident_boundary_pixels() {
    let params = TimeConstrainedParams::default();
    let image = [20.0f32, 20.0, 6.0, 20.0, 6.0];
    let mut workspace = CleaningWorkspace::default();
    let mut mask = [false; 5];
    let in_time = [10.0f32, 12.0, 12.5, 11.0, 11.0];
    time_constrained_clean(
        &row(5),
        &image,
        &in_time,
        &params,
        &mut workspace,
        &mut mask,
    )
    .unwrap();
    // pixel 3 is above the picture threshold but has no picture neighbour
    assert_eq!(mask, [true, true, true, false, false]);
    let late = [10.0f32, 12.0, 20.0, 11.0, 11.0];
    time_constrained_clean(&row(5), &image, &late, &params, &mut workspace, &mut mask).unwrap();
    assert_eq!(mask, [true, true, false, false, false]);
}

#[test]
fn island_selection_and_sizes_follow_ctapipe() {
    let labels = [1, 1, 0, 2, 2, 2, 0, 3];
    let mut workspace = CleaningWorkspace::default();
    let mut mask = [false; 8];
    largest_island(&labels, &mut workspace, &mut mask).unwrap();
    assert_eq!(mask, [false, false, false, true, true, true, false, false]);
    let image = [50.0f32, 50.0, 0.0, 1.0, 1.0, 1.0, 0.0, 2.0];
    brightest_island(3, &labels, &image, &mut workspace, &mut mask).unwrap();
    assert_eq!(mask, [true, true, false, false, false, false, false, false]);
    let sizes = number_of_island_sizes(&labels, &mut workspace);
    assert_eq!((sizes.small, sizes.medium, sizes.large), (2, 1, 0));
    largest_island(&[0; 8], &mut workspace, &mut mask).unwrap();
    assert_eq!(mask, [false; 8]);
}

#[test]
fn wrong_lengths_are_reported() {
    let mut cleaned = [false; 2];
    let error = apply_time_delta_cleaning(&row(3), &[true; 3], &[0.0f32; 3], 1, 5.0, &mut cleaned)
        .unwrap_err();
    assert_eq!(
        error,
        ImageError::LengthMismatch {
            what: "cleaned mask",
            expected: 3,
            got: 2
        }
    );
}
