use super::*;
use proptest::prelude::*;

/// ctapipe's `neighbor_average_maximum` for one pixel, written plainly: `f32` sums in the
/// order of the neighbour lists, then `np.argmax` (the first NaN, else the first maximum).
fn reference_peak(
    waveforms: &[f32],
    n_samples: usize,
    pixel: usize,
    neighbors: &[u32],
    local_weight: i64,
    broken: &[bool],
) -> usize {
    let waveform = |p: usize| &waveforms[p * n_samples..(p + 1) * n_samples];
    let mut average: Vec<f32> = waveform(pixel)
        .iter()
        .map(|&s| s * local_weight as f32)
        .collect();
    for &neighbor in neighbors {
        if broken[neighbor as usize] {
            continue;
        }
        for (acc, &s) in average.iter_mut().zip(waveform(neighbor as usize)) {
            *acc += s;
        }
    }
    if let Some(nan) = average.iter().position(|v| v.is_nan()) {
        return nan;
    }
    let max = average.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    average.iter().position(|&v| v == max).unwrap_or(0)
}

/// The peaks of pixel 0 and its neighbours `1..=neighbor_samples.len()`, whose first
/// samples are `neighbor_samples` (8 samples per pixel, the rest 0).
fn peaks_of_one_pixel(neighbor_samples: &[&[f32]]) -> Vec<usize> {
    let n_samples = 8;
    let n_pixels = neighbor_samples.len() + 1;
    let mut waveforms = vec![0.0_f32; n_pixels * n_samples];
    for (pixel, samples) in (1..).zip(neighbor_samples) {
        waveforms[pixel * n_samples..pixel * n_samples + samples.len()].copy_from_slice(samples);
    }
    let mut lists = vec![(1..n_pixels as u32).collect::<Vec<_>>()];
    lists.extend((1..n_pixels).map(|_| vec![0]));
    let mut peaks = vec![9; n_pixels];
    neighbor_peak_indices(
        &waveforms,
        n_samples,
        &Neighbors::from_lists(&lists),
        0,
        &vec![false; n_pixels],
        &mut NeighborPeakScratch::default(),
        &mut peaks,
    );
    peaks
}

/// A ring of pixels, each the neighbour of the next `k` ones (both ways).
fn ring_neighbors(n_pixels: usize, k: usize) -> Neighbors {
    let lists: Vec<Vec<u32>> = (0..n_pixels)
        .map(|p| {
            let mut list: Vec<u32> = (1..=k)
                .flat_map(|d| [(p + d) % n_pixels, (p + n_pixels * d - d) % n_pixels])
                .filter(|&q| q != p)
                .map(|q| q as u32)
                .collect();
            list.sort_unstable();
            list.dedup();
            list
        })
        .collect();
    Neighbors::from_lists(&lists)
}

#[test]
fn broken_neighbours_are_skipped_and_the_own_waveform_is_weighted() {
    // 3 pixels x 4 samples: pixel 0 peaks at 0, pixel 1 at 1, pixel 2 at 3.
    let waveforms = [
        9.0_f32, 0.0, 0.0, 0.0, //
        0.0, 5.0, 0.0, 0.0, //
        0.0, 0.0, 0.0, 7.0,
    ];
    let neighbors = Neighbors::from_lists(&[vec![1, 2], vec![0], vec![0]]);
    let mut scratch = NeighborPeakScratch::default();
    let mut peaks = [0; 3];
    let mut run = |weight, broken: &[bool]| {
        neighbor_peak_indices(
            &waveforms,
            4,
            &neighbors,
            weight,
            broken,
            &mut scratch,
            &mut peaks,
        );
        peaks
    };
    assert_eq!(run(0, &[false, false, false]), [3, 0, 0]);
    assert_eq!(run(0, &[false, false, true]), [1, 0, 0]);
    assert_eq!(run(1, &[false, false, true]), [0, 0, 0]);
    assert_eq!(run(2, &[false, false, false])[2], 3);
}

// The expected peaks of the next three tests are those of ctapipe 0.28's
// `neighbor_average_maximum` (numba 0.68) on the same waveforms.

#[test]
fn the_sums_are_f32_in_ctapipes_order() {
    // Pixel 0's neighbours 1, 2, 3 hold 1e8, 1, -1e8 at sample 0 and 0.5, 0, 0 at sample
    // 1: in exact (or f64) arithmetic the sums are 1.0 and 0.5, but ctapipe's f32 sum
    // loses the 1 against 1e8 and is 0.0 at sample 0, so its peak is sample 1.
    let peaks = peaks_of_one_pixel(&[&[1e8, 0.5], &[1.0, 0.0], &[-1e8, 0.0]]);
    assert_eq!(peaks[0], 1);
}

#[test]
fn a_tie_in_f32_goes_to_the_first_sample() {
    // Samples 2 and 14 of pixel 0's six neighbours in a toy LST event (event 663,
    // telescope 2): their f32 sums in ctapipe's order are both 1.1884022, their exact
    // sums 1.18840222 and 1.18840223. ctapipe's peak is the first of the tie.
    let peaks = peaks_of_one_pixel(&[
        &[0.488_655_5, 0.301_206_05],
        &[-0.006_393_625, 0.046_971_362],
        &[-0.427_097_77, -0.082_978_67],
        &[0.295_540_24, 0.590_622_07],
        &[0.084_458_65, 0.408_303_95],
        &[0.753_239_2, -0.075_722_52],
    ]);
    assert_eq!(peaks[0], 0);
}

#[test]
fn a_nan_sum_is_the_peak() {
    // inf + -inf is NaN at sample 2; np.argmax returns the first NaN, not the 9.
    let peaks = peaks_of_one_pixel(&[
        &[1.0, 5.0, f32::INFINITY, 9.0],
        &[0.0, 0.0, f32::NEG_INFINITY],
    ]);
    assert_eq!(peaks[0], 2);
}

/// Samples that are often small integers, which make exact ties (the first maximum
/// must win) frequent.
fn tie_prone_sample() -> BoxedStrategy<f32> {
    prop_oneof![(-3i32..4).prop_map(|v| v as f32), -5.0f32..50.0].boxed()
}

/// (samples per pixel, pixels, waveforms, broken pixels).
fn events() -> impl Strategy<Value = (usize, usize, Vec<f32>, Vec<bool>)> {
    events_of(tie_prone_sample())
}

/// Events whose samples span the whole finite `f32` range, with subnormals and with
/// cancellations that `f32` gets wrong: the error bound and the exact decision among
/// candidates.
fn extreme_events() -> impl Strategy<Value = (usize, usize, Vec<f32>, Vec<bool>)> {
    let sample = prop_oneof![
        // +-2^24 swallows a 1 or 0.5 in f32: near-ties that the order of the additions
        // decides.
        6 => prop::sample::select(vec![16_777_216.0_f32, -16_777_216.0, 2.0, 1.0, 0.5, 0.0, -1.0]),
        1 => (-30i32..31, -1.0f32..1.0).prop_map(|(e, m)| m * 10f32.powi(e)),
        1 => Just(1e-40_f32),
    ];
    events_of(sample.boxed())
}

/// [`extreme_events`] with one NaN or infinite sample somewhere.
fn non_finite_events() -> impl Strategy<Value = (usize, usize, Vec<f32>, Vec<bool>)> {
    let special = prop::sample::select(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY]);
    (extreme_events(), any::<prop::sample::Index>(), special).prop_map(
        |((n_samples, n_pixels, mut waveforms, broken), at, value)| {
            let at = at.index(waveforms.len());
            waveforms[at] = value;
            (n_samples, n_pixels, waveforms, broken)
        },
    )
}

fn events_of(
    sample: BoxedStrategy<f32>,
) -> impl Strategy<Value = (usize, usize, Vec<f32>, Vec<bool>)> {
    sized_events((1usize..70, 2usize..40), sample)
}

/// Events of `(samples per pixel, pixels)` drawn from `sizes`, with 10 % of the pixels
/// broken.
fn sized_events(
    sizes: impl Strategy<Value = (usize, usize)>,
    sample: BoxedStrategy<f32>,
) -> impl Strategy<Value = (usize, usize, Vec<f32>, Vec<bool>)> {
    sizes.prop_flat_map(move |(n_samples, n_pixels)| {
        (
            Just(n_samples),
            Just(n_pixels),
            prop::collection::vec(sample.clone(), n_samples * n_pixels),
            prop::collection::vec(prop::bool::weighted(0.1), n_pixels),
        )
    })
}

proptest! {
    #[test]
    fn equals_the_per_pixel_reference(
        (n_samples, n_pixels, waveforms, broken) in events(),
        k in 1usize..4,
        local_weight in -2i64..3,
    ) {
        check_against_reference(n_samples, n_pixels, &waveforms, &broken, k, local_weight)?;
    }

    #[test]
    fn equals_the_per_pixel_reference_on_extreme_samples(
        (n_samples, n_pixels, waveforms, broken) in extreme_events(),
        k in 1usize..4,
        local_weight in -2i64..3,
    ) {
        check_against_reference(n_samples, n_pixels, &waveforms, &broken, k, local_weight)?;
    }

    #[test]
    fn equals_the_per_pixel_reference_with_non_finite_samples(
        (n_samples, n_pixels, waveforms, broken) in non_finite_events(),
        k in 1usize..4,
        local_weight in -2i64..3,
    ) {
        check_against_reference(n_samples, n_pixels, &waveforms, &broken, k, local_weight)?;
    }
}

/// One call of a sequence that shares a scratch: which of three neighbour lists,
/// samples per pixel, waveforms and broken pixels.
fn calls(n_pixels: usize) -> impl Strategy<Value = Vec<(usize, usize, Vec<f32>, Vec<bool>)>> {
    let call = (0usize..3, prop::sample::select(vec![8usize, 13, 30, 70])).prop_flat_map(
        move |(lists, n_samples)| {
            (
                Just(lists),
                Just(n_samples),
                prop::collection::vec(tie_prone_sample(), n_samples * n_pixels),
                prop::collection::vec(prop::bool::weighted(0.2), n_pixels),
            )
        },
    );
    prop::collection::vec(call, 1..6)
}

proptest! {
    #[test]
    fn a_reused_scratch_follows_every_change_of_lists_samples_and_broken_pixels(
        (n_pixels, calls) in (2usize..30).prop_flat_map(|n| (Just(n), calls(n))),
        local_weight in -1i64..2,
    ) {
        // Lists with 2 and 6 neighbours per pixel, and lists where every third pixel
        // has none (a camera with isolated pixels); the same objects for every call.
        let isolated: Vec<Vec<u32>> = (0..n_pixels)
            .map(|p| {
                let ring = ring_neighbors(n_pixels, 2);
                if p % 3 == 0 { Vec::new() } else { ring.of(p).to_vec() }
            })
            .collect();
        let lists = [
            ring_neighbors(n_pixels, 1),
            ring_neighbors(n_pixels, 3),
            Neighbors::from_lists(&isolated),
        ];
        let mut scratch = NeighborPeakScratch::default();
        for (which, n_samples, waveforms, broken) in calls {
            check_with(
                &mut scratch, n_samples, n_pixels, &waveforms, &broken, &lists[which],
                local_weight,
            )?;
        }
    }
}

/// Events of one to three tiles and a few pixels more, around the tiles' boundaries.
fn tiled_events() -> impl Strategy<Value = (usize, usize, Vec<f32>, Vec<bool>)> {
    let n_pixels = prop_oneof![
        TILE_PIXELS - 3..TILE_PIXELS + 4,
        2 * TILE_PIXELS - 1..2 * TILE_PIXELS + 2,
        2 * TILE_PIXELS..3 * TILE_PIXELS + 5,
    ];
    sized_events(
        (prop::sample::select(vec![8usize, 30, 61]), n_pixels),
        tie_prone_sample(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Neighbours cross the tiles' boundaries (the ring wraps from the last pixel to
    /// the first); every pixel is handed over once, in order, with its final peak.
    #[test]
    fn tiles_hand_over_every_pixel_once_in_order_with_its_final_peak(
        (n_samples, n_pixels, waveforms, broken) in tiled_events(),
        k in 1usize..4,
    ) {
        let neighbors = ring_neighbors(n_pixels, k);
        let mut peaks = vec![0; n_pixels];
        let mut handed_over = Vec::new();
        neighbor_peak_indices_by_tile(
            &waveforms,
            n_samples,
            &neighbors,
            0,
            &broken,
            &mut NeighborPeakScratch::default(),
            &mut peaks,
            |pixels, tile_peaks| handed_over.push((pixels, tile_peaks.to_vec())),
        );
        let mut next = 0;
        for (pixels, tile_peaks) in &handed_over {
            prop_assert_eq!(pixels.start, next);
            prop_assert!(pixels.len() <= TILE_PIXELS || handed_over.len() == 1);
            prop_assert_eq!(tile_peaks.as_slice(), &peaks[pixels.clone()]);
            next = pixels.end;
        }
        prop_assert_eq!(next, n_pixels);
        for (pixel, &peak) in peaks.iter().enumerate() {
            let expected =
                reference_peak(&waveforms, n_samples, pixel, neighbors.of(pixel), 0, &broken);
            prop_assert_eq!(peak, expected, "pixel {}", pixel);
        }
    }
}

#[cfg(target_arch = "x86_64")]
proptest! {
    /// The scans of the certified path find the largest `|sample|` when every sample is
    /// finite and at most 1e30, and nothing otherwise.
    #[test]
    fn the_magnitude_scans_find_the_largest_finite_magnitude(
        samples in prop::collection::vec(
            prop_oneof![
                8 => -1e3f32..1e3,
                1 => prop::sample::select(vec![
                    f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 2e30, -2e30, 1e30, -0.0,
                ]),
            ],
            0..100,
        ),
    ) {
        let expected = samples.iter().try_fold(0.0f32, |max, &sample| {
            (sample.is_finite() && sample.abs() <= 1e30).then(|| max.max(sample.abs()))
        });
        let bits = |magnitude: Option<f32>| magnitude.map(f32::to_bits);
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the scan needs AVX2, which the CPU has.
            #[allow(unsafe_code)]
            let found = unsafe { avx2::finite_magnitude(&samples) };
            prop_assert_eq!(bits(found), bits(expected));
        }
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the scan needs AVX-512 F, which the CPU has.
            #[allow(unsafe_code)]
            let found = unsafe { avx2::finite_magnitude_avx512(&samples) };
            prop_assert_eq!(bits(found), bits(expected));
        }
    }
}

/// The peaks of quantized samples, and the pixel ranges handed over.
fn quantized_peaks(
    quantized: QuantizedWaveforms<'_>,
    n_samples: usize,
    neighbors: &Neighbors,
    local_weight: i64,
    broken: &[bool],
) -> (Vec<usize>, Vec<Range<usize>>) {
    let mut peaks = vec![usize::MAX; broken.len()];
    let mut handed_over = Vec::new();
    neighbor_peak_indices_quantized_by_tile(
        quantized,
        n_samples,
        neighbors,
        local_weight,
        broken,
        &mut NeighborPeakScratch::default(),
        &mut peaks,
        |pixels, _| handed_over.push(pixels),
    );
    (peaks, handed_over)
}

#[test]
fn an_integer_tie_is_decided_by_ctapipes_rounding() {
    // Pixel 0's neighbours hold 3 + 0 at sample 0 and 1 + 2 at sample 1: equal integer
    // sums. With scale 3 the converted 1/3 and 2/3 round up in f32 and their exact sum
    // exceeds 1.0, but ctapipe's f32 addition rounds it to 1.0: a tie, and the first
    // sample is ctapipe's peak (ctapipe 0.28 on these waveforms).
    let n_samples = 16;
    let mut values = vec![0u16; 3 * n_samples];
    values[n_samples] = 3;
    values[n_samples + 1] = 1;
    values[2 * n_samples + 1] = 2;
    let quantized = QuantizedWaveforms {
        values: &values,
        scale: 3.0,
        offset: 0.0,
    };
    let neighbors = Neighbors::from_lists(&[vec![1, 2], vec![0], vec![0]]);
    let (peaks, _) = quantized_peaks(quantized, n_samples, &neighbors, 0, &[false; 3]);
    assert_eq!(peaks[0], 0);
    // An exact tie (scale 1: the sums are integers in f64 too): the first wins.
    let mut values = vec![1u16; 3 * n_samples];
    for at in [
        n_samples + 3,
        n_samples + 7,
        2 * n_samples + 3,
        2 * n_samples + 7,
    ] {
        values[at] = 5;
    }
    let quantized = QuantizedWaveforms {
        values: &values,
        scale: 1.0,
        offset: 0.0,
    };
    let (peaks, _) = quantized_peaks(quantized, n_samples, &neighbors, 0, &[false; 3]);
    assert_eq!(peaks[0], 3);
}

#[test]
fn saturated_integer_sums_are_decided_by_ctapipes_sums() {
    // Sample 2: 40000 + 40000, sample 9: 50000 + 20000; both saturate at u16::MAX and
    // tie, and ctapipe's sums of the converted samples find sample 2.
    let n_samples = 20;
    let mut values = vec![100u16; 3 * n_samples];
    for (pixel, sample, value) in [
        (1, 2, 40_000),
        (2, 2, 40_000),
        (1, 9, 50_000),
        (2, 9, 20_000),
    ] {
        values[pixel * n_samples + sample] = value;
    }
    let quantized = QuantizedWaveforms {
        values: &values,
        scale: 80.0,
        offset: 5.0,
    };
    let neighbors = Neighbors::from_lists(&[vec![1, 2], vec![0], vec![0]]);
    let (peaks, _) = quantized_peaks(quantized, n_samples, &neighbors, 0, &[false; 3]);
    assert_eq!(peaks[0], 2);
}

/// Stored samples: often a few values apart (ties), any value, or near `u16::MAX`
/// (saturating sums).
fn quantized_sample() -> BoxedStrategy<u16> {
    prop_oneof![4 => 398u16..404, 2 => any::<u16>(), 1 => 60_000u16..=u16::MAX].boxed()
}

/// (samples per pixel, waveforms, broken pixels, scale, offset): mostly the sizes of
/// the integer kernel, around tile boundaries too, and scales from coarse to absurd.
fn quantized_events() -> impl Strategy<Value = (usize, Vec<u16>, Vec<bool>, f32, f32)> {
    let n_samples = prop_oneof![4 => 16usize..65, 1 => 1usize..16, 1 => 65usize..80];
    let n_pixels = prop_oneof![4 => 2usize..40, 1 => TILE_PIXELS - 2..TILE_PIXELS + 3];
    // Scale 1 with an integer offset makes the converted sums integers too: exact ties.
    let scale = prop_oneof![
        3 => Just(1.0f32),
        2 => Just(80.0f32),
        2 => prop::sample::select(vec![5.0f32, 0.37, 3.0, 1000.0, 1e9]),
    ];
    let offset = prop::sample::select(vec![5.0f32, 0.0, -3.5, 60.0, 0.1]);
    (n_samples, n_pixels, scale, offset).prop_flat_map(|(n_samples, n_pixels, scale, offset)| {
        (
            Just(n_samples),
            prop::collection::vec(quantized_sample(), n_samples * n_pixels),
            prop::collection::vec(prop::bool::weighted(0.1), n_pixels),
            Just(scale),
            Just(offset),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    /// The integer kernel (and its fallbacks) gives ctapipe's peaks of the converted
    /// samples, and hands every pixel over once, in order.
    #[test]
    fn quantized_peaks_are_those_of_the_converted_samples(
        (n_samples, values, broken, scale, offset) in quantized_events(),
        k in 1usize..4,
        local_weight in prop_oneof![4 => Just(0i64), 1 => -1i64..2],
    ) {
        let n_pixels = broken.len();
        let neighbors = ring_neighbors(n_pixels, k);
        let quantized = QuantizedWaveforms { values: &values, scale, offset };
        let (peaks, handed_over) =
            quantized_peaks(quantized, n_samples, &neighbors, local_weight, &broken);
        let mut next = 0;
        for pixels in &handed_over {
            prop_assert_eq!(pixels.start, next);
            next = pixels.end;
        }
        prop_assert_eq!(next, n_pixels);
        let mut converted = Vec::new();
        quantized.convert_into(&mut converted);
        for (pixel, &peak) in peaks.iter().enumerate() {
            let expected = reference_peak(
                &converted, n_samples, pixel, neighbors.of(pixel), local_weight, &broken,
            );
            prop_assert_eq!(peak, expected, "pixel {}", pixel);
        }
    }
}

fn check_against_reference(
    n_samples: usize,
    n_pixels: usize,
    waveforms: &[f32],
    broken: &[bool],
    k: usize,
    local_weight: i64,
) -> Result<(), TestCaseError> {
    let neighbors = ring_neighbors(n_pixels, k);
    let mut scratch = NeighborPeakScratch::default();
    check_with(
        &mut scratch,
        n_samples,
        n_pixels,
        waveforms,
        broken,
        &neighbors,
        local_weight,
    )
}

/// Compares `neighbor_peak_indices` with [`reference_peak`] for every pixel.
fn check_with(
    scratch: &mut NeighborPeakScratch,
    n_samples: usize,
    n_pixels: usize,
    waveforms: &[f32],
    broken: &[bool],
    neighbors: &Neighbors,
    local_weight: i64,
) -> Result<(), TestCaseError> {
    // A prefetch hint (here: the same event) must not change any result.
    scratch.prefetch_next(waveforms);
    let mut peaks = vec![0; n_pixels];
    neighbor_peak_indices(
        waveforms,
        n_samples,
        neighbors,
        local_weight,
        broken,
        scratch,
        &mut peaks,
    );
    for (pixel, &peak) in peaks.iter().enumerate() {
        let expected = reference_peak(
            waveforms,
            n_samples,
            pixel,
            neighbors.of(pixel),
            local_weight,
            broken,
        );
        prop_assert_eq!(peak, expected, "pixel {}", pixel);
    }
    Ok(())
}
