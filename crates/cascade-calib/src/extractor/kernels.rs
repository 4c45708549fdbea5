//! Per-waveform kernels of the image extractors: window sums, peak times and peak finders.
//!
//! Each function reproduces one numba kernel of `ctapipe.image.extractor` (ctapipe 0.28)
//! including its floating-point types, so results agree with ctapipe to the last bit or
//! nearly so: waveforms are `f32`, sums are accumulated in `f64` and rounded to `f32`.

/// Charge (sum of samples, waveform units) and peak time (ns) in the window
/// `[peak_index - window_shift, peak_index - window_shift + window_width)`, clipped to the
/// waveform.
///
/// ctapipe `extract_around_peak`: the peak time is the mean sample index weighted by the
/// positive samples inside the window, or `peak_index` when no sample is positive, divided
/// by the sampling rate (GHz).
#[inline]
pub fn extract_around_peak(
    waveform: &[f32],
    peak_index: i64,
    window_width: i64,
    window_shift: i64,
    sampling_rate_ghz: f64,
) -> (f32, f32) {
    let n_samples = waveform.len() as i64;
    let start = (peak_index - window_shift).max(0);
    let end = (peak_index - window_shift + window_width).min(n_samples);
    let mut sum = 0.0_f64;
    let mut time_num = 0.0_f64;
    let mut time_den = 0.0_f64;
    if start < end {
        // The sample index as an f64 counter (exact for any waveform length): cheaper than
        // converting an integer per sample.
        let mut index = start as f64;
        for &sample in &waveform[start as usize..end as usize] {
            let value = f64::from(sample);
            sum += value;
            // Without a branch: adding +0.0 leaves the (never negative) time sums as they are.
            let positive = if value > 0.0 { value } else { 0.0 };
            time_num += positive * index;
            time_den += positive;
            index += 1.0;
        }
    }
    let peak_time_samples = if time_den > 0.0 {
        time_num / time_den
    } else {
        peak_index as f64
    };
    (
        sum as f32,
        peak_time_ns(peak_time_samples, sampling_rate_ghz),
    )
}

/// Charge (waveform units) and peak time (ns) of the `window_width` consecutive samples
/// with the largest sum.
///
/// ctapipe `extract_sliding_window`: window sums are differences of the cumulative sum
/// (`np.cumsum`), all in `f64`: the gufunc's first loop takes `float64` waveforms, and
/// NumPy casts `float32` ones to it rather than take the `float32` loop after it. The
/// first maximal window wins; the peak time is the mean sample index weighted by the
/// positive samples of that window, or the window centre `start + width / 2` when none is
/// positive. `window_width` must be in `1..=waveform.len()`.
#[inline]
pub fn extract_sliding_window(
    waveform: &[f32],
    window_width: usize,
    sampling_rate_ghz: f64,
) -> (f32, f32) {
    debug_assert!(window_width >= 1 && window_width <= waveform.len());
    // Running f64 prefix sums at the window's end (`cumsum_end`) and start (`cumsum_start`).
    let mut cumsum_end = 0.0_f64;
    for &sample in &waveform[..window_width] {
        cumsum_end += f64::from(sample);
    }
    let mut cumsum_start = 0.0_f64;
    let mut best_sum = cumsum_end;
    let mut best_start = 0;
    for start in 1..=waveform.len() - window_width {
        cumsum_end += f64::from(waveform[start + window_width - 1]);
        cumsum_start += f64::from(waveform[start - 1]);
        let window_sum = cumsum_end - cumsum_start;
        if best_sum.is_nan() {
            // np.argmax: the first NaN wins
            break;
        }
        if window_sum > best_sum || window_sum.is_nan() {
            best_sum = window_sum;
            best_start = start;
        }
    }
    let mut time_num = 0.0_f64;
    let mut time_den = 0.0_f64;
    for (offset, &sample) in waveform[best_start..best_start + window_width]
        .iter()
        .enumerate()
    {
        if sample > 0.0 {
            let value = f64::from(sample);
            time_num += value * (best_start + offset) as f64;
            time_den += value;
        }
    }
    let peak_time_samples = if time_den > 0.0 {
        time_num / time_den
    } else {
        best_start as f64 + 0.5 * window_width as f64
    };
    (
        best_sum as f32,
        peak_time_ns(peak_time_samples, sampling_rate_ghz),
    )
}

/// Index of the first maximum of a waveform, or of its first NaN (`np.argmax`, also in
/// numba); 0 for an empty waveform.
///
/// Two passes that vectorise: the maximum over independent lanes (exact, so the order
/// does not matter) and whether a sample is NaN, then the first position holding the
/// maximum, or the first NaN.
#[inline]
pub fn argmax_f32(waveform: &[f32]) -> usize {
    const LANES: usize = 8;
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut nan_lanes = [false; LANES];
    let chunks = waveform.chunks_exact(LANES);
    let mut max = f32::NEG_INFINITY;
    let mut nan = false;
    for &value in chunks.remainder() {
        max = if value > max { value } else { max };
        nan |= value.is_nan();
    }
    for chunk in chunks {
        for ((lane, nan_lane), &value) in lanes.iter_mut().zip(&mut nan_lanes).zip(chunk) {
            *lane = if value > *lane { value } else { *lane };
            *nan_lane |= value.is_nan();
        }
    }
    for (lane, nan_lane) in lanes.into_iter().zip(nan_lanes) {
        max = if lane > max { lane } else { max };
        nan |= nan_lane;
    }
    let position = if nan {
        waveform.iter().position(|value| value.is_nan())
    } else {
        waveform.iter().position(|&value| value == max)
    };
    position.unwrap_or(0)
}

/// Converts a peak time in samples to ns with ctapipe's rounding: the time is stored as
/// `f32` in samples, then divided by the sampling rate (GHz) and stored as `f32` again.
///
/// A rate that is a power of two (1 GHz, 0.25 GHz, ...) has an exact reciprocal, and
/// multiplying by it rounds exactly as dividing does, without the division's latency.
#[inline]
fn peak_time_ns(peak_time_samples: f64, sampling_rate_ghz: f64) -> f32 {
    let samples = f64::from(peak_time_samples as f32);
    let ns = if is_power_of_two(sampling_rate_ghz) {
        samples * (1.0 / sampling_rate_ghz)
    } else {
        samples / sampling_rate_ghz
    };
    ns as f32
}

/// Whether `value` is a power of two whose reciprocal is a normal number (so both are
/// exact and multiplying by the reciprocal rounds exactly as dividing does).
#[inline]
pub(crate) fn is_power_of_two(value: f64) -> bool {
    const MANTISSA: u64 = (1 << 52) - 1;
    value.is_normal() && (1.0 / value).is_normal() && value.to_bits() & MANTISSA == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_clipped_at_both_ends() {
        let waveform = [1.0_f32, 2.0, 3.0, 4.0];
        assert_eq!(extract_around_peak(&waveform, 0, 7, 3, 1.0).0, 10.0);
        assert_eq!(extract_around_peak(&waveform, 3, 2, 0, 1.0).0, 4.0);
    }

    #[test]
    fn window_outside_waveform_gives_zero_and_peak_index_time() {
        let waveform = [1.0_f32, 2.0, 3.0];
        let (charge, time) = extract_around_peak(&waveform, 10, 3, 0, 2.0);
        assert_eq!(charge, 0.0);
        assert_eq!(time, 5.0);
    }

    #[test]
    fn negative_samples_count_in_charge_not_in_time() {
        let waveform = [-5.0_f32, 2.0, 2.0, -1.0];
        let (charge, time) = extract_around_peak(&waveform, 0, 4, 0, 1.0);
        assert_eq!(charge, -2.0);
        assert_eq!(time, 1.5);
    }

    #[test]
    fn sliding_window_finds_first_largest_window() {
        let waveform = [0.0_f32, 1.0, 5.0, 1.0, 0.0, 5.0, 1.0, 1.0];
        let (charge, time) = extract_sliding_window(&waveform, 3, 1.0);
        assert_eq!(charge, 7.0);
        assert!((time - 2.0).abs() < 1e-6);
    }

    /// LSTCam pixel 39 of `gamma_prod6_lst_nectarcam` event 100, telescope 1 (its R1):
    /// the windows of 5 at 33 and 34 have the same samples but for 0.0088626575 at either
    /// end. The `f64` cumulative sum, ctapipe's, keeps them tied and the first wins
    /// (ctapipe 0.28: peak time 35.51776 samples); an `f32` one would make the second
    /// larger (35.56853).
    #[test]
    fn sliding_window_sums_in_f64_as_ctapipe() {
        let waveform = [
            0.20254211_f32,
            0.1379823,
            -0.09873703,
            0.019622628,
            0.22406204,
            0.20254211,
            0.030382596,
            -0.13101694,
            -0.034177218,
            -0.15253688,
            0.0088626575,
            0.051902536,
            -0.0018973114,
            -0.0018973114,
            -0.02341725,
            0.030382596,
            0.062662505,
            -0.06645713,
            -0.16329685,
            -0.08797707,
            -0.04493719,
            -0.15253688,
            -0.16329685,
            -0.15253688,
            -0.1417769,
            -0.20633672,
            -0.109497,
            -0.109497,
            -0.1848168,
            -0.120256975,
            -0.1848168,
            -0.17405681,
            -0.22785667,
            0.0088626575,
            0.15950222,
            0.28862187,
            0.20254211,
            0.21330208,
            0.0088626575,
            -0.06645713,
        ];
        let (charge, time) = extract_sliding_window(&waveform, 5, 1.0);
        assert!((time - 35.517_76).abs() < 1e-5, "{time}");
        assert!((charge - 0.872_830_9).abs() < 1e-6, "{charge}");
    }

    #[test]
    fn sliding_window_peaks_at_the_first_nan_window() {
        let waveform = [0.0_f32, 1.0, 5.0, f32::NAN, 9.0, 9.0, 9.0];
        let (charge, time) = extract_sliding_window(&waveform, 2, 1.0);
        assert!(charge.is_nan());
        // window [2, 4): only sample 2 is positive
        assert_eq!(time, 2.0);
    }

    #[test]
    fn sliding_window_without_positive_samples_uses_window_centre() {
        let waveform = [-1.0_f32; 10];
        let (_, time) = extract_sliding_window(&waveform, 4, 0.5);
        assert_eq!(time, 4.0);
    }

    #[test]
    fn peak_time_by_a_power_of_two_rate_equals_the_division() {
        for rate in [1.0, 0.25, 2.0, 0.5, 1.6, 0.3, 5e-310] {
            for samples in [0.0, 1.0, 3.7, 12.345_678, 29.999, -2.5, 1e-40] {
                let expected = (f64::from(samples as f32) / rate) as f32;
                assert_eq!(peak_time_ns(samples, rate).to_bits(), expected.to_bits());
            }
        }
    }

    #[test]
    fn argmax_returns_first_maximum() {
        assert_eq!(argmax_f32(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax_f32(&[0.0, 0.0]), 0);
        assert_eq!(argmax_f32(&[f32::NEG_INFINITY; 3]), 0);
        assert_eq!(argmax_f32(&[]), 0);
    }

    /// `np.argmax` (and numba's) returns the first NaN when there is one, wherever the
    /// maximum is; nine samples put one in the vectorised lanes and one in the rest.
    #[test]
    fn argmax_returns_first_nan() {
        let mut waveform = [1.0, 9.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        waveform[6] = f32::NAN;
        assert_eq!(argmax_f32(&waveform), 6);
        waveform[0] = f32::NAN;
        assert_eq!(argmax_f32(&waveform), 0);
        assert_eq!(argmax_f32(&[1.0, f32::INFINITY, f32::NAN]), 2);
    }
}
