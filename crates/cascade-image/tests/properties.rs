//! Property tests: invariances of the Hillas parameters, monotonicity of the cleanings,
//! and differential tests against naive implementations, on random images and on square
//! and hexagonal grids with random gaps.
#![allow(clippy::unwrap_used)]

use std::f64::consts::{FRAC_PI_2, PI};

use cascade_image::cleaning::{
    CleaningWorkspace, FactParams, TailcutsParams, TimeConstrainedParams, dilate,
    fact_image_cleaning, mars_cleaning_1st_pass, number_of_islands, tailcuts_clean,
    time_constrained_clean,
};
use cascade_image::params::{
    Frame, ImageParameters, ParameterWorkspace, ParametrizationGeometry, PixelCoordinates,
    StatisticsWorkspace, TimingParameters, TimingWorkspace, concentration_parameters,
    descriptive_statistics, hillas_parameters, image_parameters, image_parameters_of_selected,
    leakage_parameters, lts_linear_regression, morphology_parameters, passes_image_quality,
    timing_parameters,
};
use cascade_instrument::{Neighbors, PixelShape};
use proptest::prelude::*;

/// A grid camera: `hex` uses the 6-neighbourhood of an offset hexagonal grid, otherwise
/// the 4-neighbourhood of a square grid; pixels where `present` is false are gaps.
fn grid(width: usize, height: usize, hex: bool, present: &[bool]) -> Neighbors {
    let index = |r: usize, c: usize| r * width + c;
    let mut new_index = vec![u32::MAX; width * height];
    let mut n = 0;
    for (i, slot) in new_index.iter_mut().enumerate() {
        if present[i % present.len()] {
            *slot = n;
            n += 1;
        }
    }
    let mut lists = vec![Vec::new(); n as usize];
    for r in 0..height {
        for c in 0..width {
            let me = new_index[index(r, c)];
            if me == u32::MAX {
                continue;
            }
            let mut offsets: Vec<(i64, i64)> = vec![(0, -1), (0, 1), (-1, 0), (1, 0)];
            if hex {
                let shift = if r % 2 == 0 { -1 } else { 1 };
                offsets.extend([(-1, shift), (1, shift)]);
            }
            for (dr, dc) in offsets {
                let (rr, cc) = (r as i64 + dr, c as i64 + dc);
                if rr < 0 || cc < 0 || rr >= height as i64 || cc >= width as i64 {
                    continue;
                }
                let other = new_index[index(rr as usize, cc as usize)];
                if other != u32::MAX {
                    lists[me as usize].push(other);
                }
            }
        }
    }
    Neighbors::from_lists(&lists)
}

/// Naive tail cuts written directly from ctapipe's formula with dense boolean vectors.
fn naive_tailcuts(neighbors: &Neighbors, image: &[f32], p: &TailcutsParams) -> Vec<bool> {
    let n = image.len();
    let above_pic: Vec<bool> = image
        .iter()
        .map(|&v| v >= p.picture_threshold_pe as f32)
        .collect();
    let above_bnd: Vec<bool> = image
        .iter()
        .map(|&v| v >= p.boundary_threshold_pe as f32)
        .collect();
    let in_pic: Vec<bool> = (0..n)
        .map(|i| {
            if p.keep_isolated_pixels || p.min_number_picture_neighbors == 0 {
                above_pic[i]
            } else {
                above_pic[i]
                    && neighbors
                        .of(i)
                        .iter()
                        .filter(|&&j| above_pic[j as usize])
                        .count()
                        >= p.min_number_picture_neighbors
            }
        })
        .collect();
    (0..n)
        .map(|i| {
            let pic_nbr = neighbors.of(i).iter().any(|&j| in_pic[j as usize]);
            let bnd_nbr = neighbors.of(i).iter().any(|&j| above_bnd[j as usize]);
            if p.keep_isolated_pixels {
                (above_bnd[i] && pic_nbr) || in_pic[i]
            } else {
                (above_bnd[i] && pic_nbr) || (in_pic[i] && bnd_nbr)
            }
        })
        .collect()
}

/// ctapipe `mars_cleaning_1st_pass`: the last step of the tail cuts again, from their mask.
fn naive_mars(neighbors: &Neighbors, image: &[f32], p: &TailcutsParams) -> Vec<bool> {
    let tailcuts = naive_tailcuts(neighbors, image, p);
    let above_bnd = |i: usize| image[i] >= p.boundary_threshold_pe as f32;
    (0..image.len())
        .map(|i| {
            let nbrs = neighbors.of(i);
            (above_bnd(i) && nbrs.iter().any(|&j| tailcuts[j as usize]))
                || (tailcuts[i]
                    && (p.keep_isolated_pixels || nbrs.iter().any(|&j| above_bnd(j as usize))))
        })
        .collect()
}

/// ctapipe `fact_image_cleaning` written as ctapipe writes it: every step a pass over every
/// pixel.
fn naive_fact(neighbors: &Neighbors, image: &[f32], times: &[f32], p: &FactParams) -> Vec<bool> {
    let n = image.len();
    let count = |pixel: usize, mask: &[bool]| {
        neighbors
            .of(pixel)
            .iter()
            .filter(|&&j| mask[j as usize])
            .count()
    };
    let time_delta = |mask: &[bool]| -> Vec<bool> {
        (0..n)
            .map(|i| {
                mask[i]
                    && neighbors
                        .of(i)
                        .iter()
                        .filter(|&&j| {
                            mask[j as usize]
                                && (times[i] - times[j as usize]).abs() < p.time_limit_ns as f32
                        })
                        .count()
                        >= p.min_number_neighbors
            })
            .collect()
    };
    let picture: Vec<bool> = image
        .iter()
        .map(|&v| v >= p.picture_threshold_pe as f32)
        .collect();
    let seeds: Vec<bool> = (0..n)
        .map(|i| picture[i] && count(i, &picture) >= p.min_number_neighbors)
        .collect();
    let dilated: Vec<bool> = (0..n)
        .map(|i| (seeds[i] || count(i, &seeds) > 0) && image[i] >= p.boundary_threshold_pe as f32)
        .collect();
    if p.min_number_neighbors == 0 {
        return dilated;
    }
    let timed = time_delta(&dilated);
    let counted: Vec<bool> = (0..n)
        .map(|i| timed[i] && count(i, &timed) >= p.min_number_neighbors)
        .collect();
    time_delta(&counted)
}

/// ctapipe `time_constrained_clean` written as ctapipe writes it: passes over every pixel,
/// the islands of the picture pixels numbered by `number_of_islands`.
fn naive_time_constrained(
    neighbors: &Neighbors,
    image: &[f32],
    times: &[f32],
    p: &TimeConstrainedParams,
) -> Vec<bool> {
    let n = image.len();
    let min = p.min_number_picture_neighbors;
    let above: Vec<bool> = image
        .iter()
        .map(|&v| v >= p.picture_threshold_pe as f32)
        .collect();
    let picture: Vec<bool> = (0..n)
        .map(|i| {
            above[i]
                && neighbors
                    .of(i)
                    .iter()
                    .filter(|&&j| above[j as usize])
                    .count()
                    >= min
        })
        .collect();
    let mut labels = vec![0; n];
    let n_islands = number_of_islands(
        neighbors,
        &picture,
        &mut labels,
        &mut CleaningWorkspace::default(),
    )
    .unwrap();
    let mut core = picture.clone();
    if picture.iter().any(|&m| m) {
        let mut brightness = vec![0.0f64; n_islands + 1];
        for i in 0..n {
            if labels[i] > 0 {
                brightness[labels[i] as usize] += f64::from(image[i]);
            }
        }
        let brightest = (0..=n_islands).fold(0, |best, l| {
            if brightness[l] > brightness[best] {
                l
            } else {
                best
            }
        }) as i32;
        let (mut sum, mut weights) = (0.0, 0.0);
        for i in (0..n).filter(|&i| labels[i] == brightest) {
            let w = f64::from(image[i]).powi(2);
            sum += f64::from(times[i]) * w;
            weights += w;
        }
        let average = sum / weights;
        for i in 0..n {
            let limit = if f64::from(image[i]) < 2.0 * p.picture_threshold_pe {
                p.time_limit_core_ns
            } else {
                2.0 * p.time_limit_core_ns
            };
            core[i] &= (f64::from(times[i]) - average).abs() < limit;
        }
    }
    (0..n)
        .map(|i| {
            let nbrs = neighbors.of(i);
            core[i]
                || (image[i] >= p.boundary_threshold_pe as f32
                    && nbrs.iter().any(|&j| core[j as usize])
                    && nbrs
                        .iter()
                        .filter(|&&j| {
                            core[j as usize]
                                && (times[i] - times[j as usize]).abs()
                                    < p.time_limit_boundary_ns as f32
                        })
                        .count()
                        >= min)
        })
        .collect()
}

fn camera_and_image() -> impl Strategy<Value = (Neighbors, Vec<f32>)> {
    (
        2usize..14,
        2usize..14,
        any::<bool>(),
        prop::collection::vec(prop::bool::weighted(0.9), 1..20),
    )
        .prop_flat_map(|(w, h, hex, present)| {
            let neighbors = grid(w, h, hex, &present);
            let n = neighbors.n_pixels();
            (Just(neighbors), prop::collection::vec(-2.0f32..20.0, n))
        })
}

fn is_subset(small: &[bool], large: &[bool]) -> bool {
    small.iter().zip(large).all(|(&s, &l)| !s || l)
}

fn camera_frame<'a>(x: &'a [f64], y: &'a [f64], area: &'a [f64]) -> PixelCoordinates<'a> {
    PixelCoordinates {
        frame: Frame::Camera,
        x,
        y,
        area,
        shape: PixelShape::Square,
    }
}

/// A square camera of `w` x `h` pixels (coordinates in m, 1 cm pitch), a random image
/// (p.e., some negative), peak times (ns) and a random mask.
fn parametrised_camera()
-> impl Strategy<Value = (ParametrizationGeometry, Vec<f32>, Vec<f32>, Vec<bool>)> {
    (2usize..16, 2usize..16).prop_flat_map(|(w, h)| {
        let n = w * h;
        let x: Vec<f64> = (0..n).map(|i| (i % w) as f64 * 0.01).collect();
        let y: Vec<f64> = (0..n).map(|i| (i / w) as f64 * 0.01).collect();
        let geometry = ParametrizationGeometry::new(
            Frame::Camera,
            x,
            y,
            vec![1e-4; n],
            PixelShape::Square,
            grid(w, h, false, &[true]),
        )
        .unwrap();
        (
            Just(geometry),
            prop::collection::vec(-0.5f32..30.0, n),
            prop::collection::vec(0.0f32..40.0, n),
            prop::collection::vec(prop::bool::weighted(0.4), n),
        )
    })
}

/// Every column's bits, so that NaN equals NaN.
fn column_bits(params: &ImageParameters) -> Vec<u64> {
    params
        .columns()
        .iter()
        .map(|c| c.value.as_f64().to_bits())
        .collect()
}

/// Smallest difference of two axis angles modulo π.
fn axis_difference(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(PI);
    d.min(PI - d)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn tailcuts_equals_the_naive_formula((neighbors, image) in camera_and_image(),
        picture in 0.0f64..15.0, boundary in 0.0f64..10.0, min in 0usize..4, keep in any::<bool>()) {
        let params = TailcutsParams { picture_threshold_pe: picture, boundary_threshold_pe: boundary,
            min_number_picture_neighbors: min, keep_isolated_pixels: keep };
        let mut mask = vec![false; image.len()];
        tailcuts_clean(&neighbors, &image, &params, &mut CleaningWorkspace::default(), &mut mask).unwrap();
        prop_assert_eq!(mask, naive_tailcuts(&neighbors, &image, &params));
    }

    /// Shower-like images, dark but for a few bright pixels, which take the sparse path of
    /// tailcuts_clean and mars_cleaning_1st_pass (few pixels above a threshold).
    #[test]
    fn tailcuts_and_mars_equal_the_naive_formulas_on_sparse_images(
        (neighbors, image) in camera_and_image().prop_flat_map(|(neighbors, image)| {
            let n = image.len();
            let bright = prop::collection::vec(prop::bool::weighted(0.1), n);
            (Just(neighbors), Just(image), bright)
        }).prop_map(|(neighbors, image, bright)| {
            let image = image.iter().zip(&bright)
                .map(|(&v, &b)| if b { v } else { v.min(4.0) * 0.5 })
                .collect::<Vec<f32>>();
            (neighbors, image)
        }),
        picture in 4.0f64..15.0, boundary in 2.0f64..10.0, min in 0usize..4, keep in any::<bool>()) {
        let params = TailcutsParams { picture_threshold_pe: picture, boundary_threshold_pe: boundary,
            min_number_picture_neighbors: min, keep_isolated_pixels: keep };
        let mut mask = vec![true; image.len()];
        let mut workspace = CleaningWorkspace::default();
        // twice with one workspace: the sparse path must not depend on earlier calls
        for _ in 0..2 {
            tailcuts_clean(&neighbors, &image, &params, &mut workspace, &mut mask).unwrap();
            prop_assert_eq!(&mask, &naive_tailcuts(&neighbors, &image, &params));
            mars_cleaning_1st_pass(&neighbors, &image, &params, &mut workspace, &mut mask).unwrap();
            prop_assert_eq!(&mask, &naive_mars(&neighbors, &image, &params));
        }
    }

    /// FACT cleaning (lists of the pixels each step keeps) against the pass-per-step
    /// formula, twice with one workspace, on images with bright and dark pixels and arrival
    /// times often within the limit of each other.
    #[test]
    fn fact_cleaning_equals_the_naive_formula(
        (neighbors, image, times) in camera_and_image().prop_flat_map(|(neighbors, image)| {
            let n = image.len();
            (Just(neighbors), Just(image), prop::collection::vec(0.0f32..12.0, n))
        }),
        picture in 0.0f64..12.0, boundary in 0.0f64..8.0, min in 0usize..4,
        time_limit in 0.5f64..8.0) {
        let params = FactParams { picture_threshold_pe: picture, boundary_threshold_pe: boundary,
            min_number_neighbors: min, time_limit_ns: time_limit };
        let mut mask = vec![true; image.len()];
        let mut workspace = CleaningWorkspace::default();
        for _ in 0..2 {
            fact_image_cleaning(&neighbors, &image, &times, &params, &mut workspace, &mut mask).unwrap();
            prop_assert_eq!(&mask, &naive_fact(&neighbors, &image, &times, &params));
        }
    }

    /// Time-constrained cleaning (lists and sparse islands) against the pass-per-step
    /// formula, twice with one workspace.
    #[test]
    fn time_constrained_cleaning_equals_the_naive_formula(
        (neighbors, image, times) in camera_and_image().prop_flat_map(|(neighbors, image)| {
            let n = image.len();
            (Just(neighbors), Just(image), prop::collection::vec(0.0f32..12.0, n))
        }),
        picture in 0.0f64..12.0, boundary in 0.0f64..8.0, min in 0usize..4,
        core_limit in 0.5f64..8.0, boundary_limit in 0.5f64..4.0) {
        let params = TimeConstrainedParams { picture_threshold_pe: picture,
            boundary_threshold_pe: boundary, time_limit_core_ns: core_limit,
            time_limit_boundary_ns: boundary_limit, min_number_picture_neighbors: min };
        let mut mask = vec![true; image.len()];
        let mut workspace = CleaningWorkspace::default();
        for _ in 0..2 {
            time_constrained_clean(&neighbors, &image, &times, &params, &mut workspace, &mut mask)
                .unwrap();
            prop_assert_eq!(&mask, &naive_time_constrained(&neighbors, &image, &times, &params));
        }
    }

    #[test]
    fn cleaning_masks_grow_when_thresholds_drop((neighbors, image) in camera_and_image(),
        picture in 0.0f64..15.0, boundary in 0.0f64..10.0, drop_picture in 0.0f64..5.0,
        drop_boundary in 0.0f64..5.0, min in 0usize..4, keep in any::<bool>()) {
        let strict = TailcutsParams { picture_threshold_pe: picture, boundary_threshold_pe: boundary,
            min_number_picture_neighbors: min, keep_isolated_pixels: keep };
        let loose = TailcutsParams { picture_threshold_pe: picture - drop_picture,
            boundary_threshold_pe: boundary - drop_boundary,
            min_number_picture_neighbors: min.saturating_sub(1), ..strict };
        let mut workspace = CleaningWorkspace::default();
        let (mut a, mut b) = (vec![false; image.len()], vec![false; image.len()]);
        tailcuts_clean(&neighbors, &image, &strict, &mut workspace, &mut a).unwrap();
        tailcuts_clean(&neighbors, &image, &loose, &mut workspace, &mut b).unwrap();
        prop_assert!(is_subset(&a, &b));
        // MARS adds to tail cuts; dilation adds to any mask
        mars_cleaning_1st_pass(&neighbors, &image, &strict, &mut workspace, &mut b).unwrap();
        prop_assert!(is_subset(&a, &b));
        dilate(&neighbors, &a, &mut b).unwrap();
        prop_assert!(is_subset(&a, &b));
    }

    #[test]
    fn islands_are_the_connected_components((neighbors, image) in camera_and_image(), threshold in 0.0f32..15.0) {
        let mask: Vec<bool> = image.iter().map(|&v| v >= threshold).collect();
        let mut labels = vec![0; mask.len()];
        let n_islands = number_of_islands(&neighbors, &mask, &mut labels, &mut CleaningWorkspace::default()).unwrap();
        for (i, &label) in labels.iter().enumerate() {
            prop_assert_eq!(label == 0, !mask[i]);
            prop_assert!(label as usize <= n_islands);
            for &j in neighbors.of(i) {
                if mask[i] && mask[j as usize] {
                    prop_assert_eq!(label, labels[j as usize]);
                }
            }
        }
        // islands are numbered by their first pixel
        let mut next = 1;
        for &label in &labels {
            if label == next {
                next += 1;
            }
            prop_assert!(label < next);
        }
        prop_assert_eq!(next as usize - 1, n_islands);
    }

    #[test]
    fn hillas_of_a_rotated_image_rotates_psi_and_phi(
        points in prop::collection::vec((-1.0f64..1.0, -1.0f64..1.0, 0.5f64..100.0), 3..60),
        angle in -PI..PI) {
        let (x, y, weights): (Vec<f64>, Vec<f64>, Vec<f64>) = points.iter().fold(
            (vec![], vec![], vec![]), |mut acc, &(a, b, w)| { acc.0.push(a); acc.1.push(b); acc.2.push(w); acc });
        let (s, c) = angle.sin_cos();
        let xr: Vec<f64> = x.iter().zip(&y).map(|(&a, &b)| c * a - s * b).collect();
        let yr: Vec<f64> = x.iter().zip(&y).map(|(&a, &b)| s * a + c * b).collect();
        let area = vec![1.0; x.len()];
        let mask = vec![true; x.len()];
        let h = hillas_parameters(&camera_frame(&x, &y, &area), &weights, &mask).unwrap();
        let hr = hillas_parameters(&camera_frame(&xr, &yr, &area), &weights, &mask).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + a.abs());
        prop_assert!(close(h.intensity, hr.intensity));
        prop_assert!(close(h.length, hr.length));
        prop_assert!(close(h.width, hr.width));
        prop_assert!(close(h.r, hr.r));
        if h.r > 1e-6 {
            let d = (hr.phi_rad - h.phi_rad - angle).rem_euclid(2.0 * PI);
            prop_assert!(d.min(2.0 * PI - d) < 1e-6);
        }
        if h.length - h.width > 1e-3 * h.length {
            prop_assert!(axis_difference(hr.psi_rad, h.psi_rad + angle) < 1e-6);
            prop_assert!(hr.psi_rad > -FRAC_PI_2 && hr.psi_rad <= FRAC_PI_2);
            // skewness flips sign when psi wraps by pi
            prop_assert!(close(h.skewness.abs(), hr.skewness.abs()));
            prop_assert!(close(h.kurtosis, hr.kurtosis));
        }
    }

    #[test]
    fn scaling_the_image_scales_only_the_intensity(
        points in prop::collection::vec((-1.0f64..1.0, -1.0f64..1.0, 0.5f64..100.0), 3..60),
        scale in 0.01f64..100.0) {
        let x: Vec<f64> = points.iter().map(|p| p.0).collect();
        let y: Vec<f64> = points.iter().map(|p| p.1).collect();
        let image: Vec<f64> = points.iter().map(|p| p.2).collect();
        let scaled: Vec<f64> = image.iter().map(|v| v * scale).collect();
        let area = vec![1.0; x.len()];
        let mask = vec![true; x.len()];
        let pixels = PixelCoordinates { frame: Frame::Telescope, x: &x, y: &y, area: &area, shape: PixelShape::Hexagon };
        let h = hillas_parameters(&pixels, &image, &mask).unwrap();
        let hs = hillas_parameters(&pixels, &scaled, &mask).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-8 * (1.0 + a.abs());
        prop_assert!(close(h.intensity * scale, hs.intensity));
        for (a, b) in [(h.x, hs.x), (h.y, hs.y), (h.length, hs.length), (h.width, hs.width),
                       (h.psi_rad, hs.psi_rad), (h.skewness, hs.skewness), (h.kurtosis, hs.kurtosis)] {
            prop_assert!(close(a, b) || (a.is_nan() && b.is_nan()), "{a} vs {b}");
        }
    }

    /// image_parameters lists the selected pixels once; every family must equal its
    /// public mask-based function bit for bit.
    #[test]
    fn image_parameters_equal_the_mask_based_functions(
        (geometry, image, peak_time, mask) in parametrised_camera()) {
        let mut workspace = ParameterWorkspace::default();
        // an earlier image of every pixel leaves its labels (and other scratch) behind
        let every_pixel: Vec<u32> = (0..mask.len() as u32).collect();
        image_parameters_of_selected(&geometry, &image, Some(peak_time.as_slice()), &every_pixel, &mut workspace).ok();
        let ours = image_parameters(&geometry, &image, Some(peak_time.as_slice()), &mask, &mut workspace);
        let pixels = geometry.pixels();
        let expected = if passes_image_quality(&image, &mask) {
            let hillas = hillas_parameters(&pixels, &image, &mask).unwrap();
            let mut cleaning = cascade_image::cleaning::CleaningWorkspace::default();
            let mut statistics = StatisticsWorkspace::default();
            timing_parameters(&pixels, &image, &peak_time, &mask, &hillas, &mut TimingWorkspace::default())
                .map(|timing: TimingParameters| ImageParameters {
                    hillas,
                    timing,
                    leakage: leakage_parameters(geometry.border_width_1(), geometry.border_width_2(), &image, &mask).unwrap(),
                    concentration: concentration_parameters(&pixels, &image, &mask, &hillas).unwrap(),
                    morphology: morphology_parameters(geometry.neighbors(), &mask, &mut cleaning).unwrap(),
                    intensity_statistics: descriptive_statistics(&image, &mask, &mut statistics).unwrap(),
                    peak_time_statistics: descriptive_statistics(&peak_time, &mask, &mut statistics).unwrap(),
                })
        } else {
            Ok(ImageParameters::missing(Frame::Camera))
        };
        let selected: Vec<u32> = (0..mask.len() as u32).filter(|&i| mask[i as usize]).collect();
        let listed = image_parameters_of_selected(&geometry, &image, Some(peak_time.as_slice()), &selected, &mut workspace);
        match (&ours, &listed) {
            (Ok(ours), Ok(listed)) => prop_assert_eq!(column_bits(ours), column_bits(listed)),
            (Err(ours), Err(listed)) => prop_assert_eq!(ours, listed),
            (ours, listed) => prop_assert!(false, "{ours:?} vs {listed:?}"),
        }
        match (ours, expected) {
            (Ok(ours), Ok(expected)) => prop_assert_eq!(column_bits(&ours), column_bits(&expected)),
            (Err(ours), Err(expected)) => prop_assert_eq!(ours.to_string(), expected.to_string()),
            (ours, expected) => prop_assert!(false, "{ours:?} vs {expected:?}"),
        }
    }

    #[test]
    fn lts_recovers_a_line_with_few_outliers(
        slope in -10.0f64..10.0, intercept in -50.0f64..50.0,
        xs in prop::collection::vec(-1.0f64..1.0, 20..80), outliers in prop::collection::vec(50.0f64..100.0, 0..3)) {
        let mut x = xs.clone();
        let mut y: Vec<f64> = xs.iter().map(|&v| slope * v + intercept).collect();
        for (k, &o) in outliers.iter().enumerate() {
            x.push(k as f64 * 0.1);
            y.push(o);
        }
        let (beta, error) = lts_linear_regression(&x, &y, &mut TimingWorkspace::default());
        prop_assert!((beta[0] - slope).abs() < 1e-6 && (beta[1] - intercept).abs() < 1e-6, "{beta:?} {error}");
    }
}
