//! Charge and peak time of every pixel's window around its peak (ctapipe
//! `extract_around_peak` over a whole camera), the last step of `FixedWindowSum`,
//! `GlobalPeakWindowSum`, `LocalPeakWindowSum` and `NeighborPeakWindowSum`.
//!
//! The results are those of [`extract_around_peak`] pixel by pixel, bit for bit. On x86-64
//! CPUs with AVX2 and FMA (checked at run time), windows of at most 8 samples in waveforms
//! of at least 8 samples are done four pixels at a time: each pixel's 8 samples around its
//! window are loaded as one vector, the 4 x 8 block is transposed so that a vector holds
//! one window position of four pixels, and the `f64` sums run over the 8 positions in
//! sample order, with the samples outside a pixel's window masked to `+0.0` before the
//! transposition (adding `+0.0` leaves every partial sum as it is: the sums start at `+0.0`
//! and never become `-0.0`). The peak-time numerator uses fused multiply-adds, which round
//! as ctapipe's separate product and sum do because the product of an `f32` and a sample
//! index is exact in `f64`.

use super::kernels::extract_around_peak;

/// Writes `image` (waveform units) and `peak_time` (ns) of every pixel of `waveforms`
/// (`[pixel][sample]`, `n_samples >= 1`) for the window of `window_width` samples starting
/// `window_shift` samples before the pixel's entry in `peaks`, clipped to the waveform.
#[allow(clippy::too_many_arguments)]
pub fn extract_windows(
    waveforms: &[f32],
    n_samples: usize,
    peaks: &[i64],
    window_width: i64,
    window_shift: i64,
    sampling_rate_ghz: f64,
    image: &mut [f32],
    peak_time: &mut [f32],
) {
    // The pixels done four at a time with AVX2; the rest (all without AVX2) one by one.
    #[cfg(target_arch = "x86_64")]
    let first_scalar = if n_samples >= 8
        && (1..=8).contains(&window_width)
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        // SAFETY: `extract_blocks` needs AVX2 and FMA, which the CPU has.
        #[allow(unsafe_code)]
        unsafe {
            avx2::extract_blocks(
                waveforms,
                n_samples,
                peaks,
                window_width,
                window_shift,
                sampling_rate_ghz,
                image,
                peak_time,
            )
        }
    } else {
        0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let first_scalar = 0;
    for (pixel, ((charge, time), &peak)) in image
        .iter_mut()
        .zip(peak_time.iter_mut())
        .zip(peaks)
        .enumerate()
        .skip(first_scalar)
    {
        let waveform = &waveforms[pixel * n_samples..(pixel + 1) * n_samples];
        (*charge, *time) = extract_around_peak(
            waveform,
            peak,
            window_width,
            window_shift,
            sampling_rate_ghz,
        );
    }
}

/// The four-pixel AVX2 kernel.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m128, __m256, _CMP_GT_OQ, _mm256_add_pd, _mm256_and_ps, _mm256_blendv_pd,
        _mm256_castps256_ps128, _mm256_cmp_pd, _mm256_cvtpd_ps, _mm256_cvtps_pd, _mm256_div_pd,
        _mm256_extractf128_ps, _mm256_fmadd_pd, _mm256_max_pd, _mm256_mul_pd, _mm256_set_pd,
        _mm256_set1_pd, _mm256_setzero_pd, _mm256_setzero_ps, _mm256_shuffle_ps,
        _mm256_unpackhi_ps, _mm256_unpacklo_ps,
    };

    use super::super::avx2::{load8, store4};
    use super::super::kernels::is_power_of_two;

    /// Bit masks of lanes `l >= from` (`LANES_FROM[8 - from..16 - from]`) and `l < to`
    /// (`LANES_BELOW[8 - to..16 - to]`) of an eight-lane vector.
    const LANES_FROM: [f32; 16] = lane_masks(false);
    const LANES_BELOW: [f32; 16] = lane_masks(true);

    /// Eight all-ones `f32` bit patterns after eight zeros (`low_ones` false), or before.
    const fn lane_masks(low_ones: bool) -> [f32; 16] {
        let mut masks = [0.0; 16];
        let mut i = 0;
        while i < 16 {
            if (i < 8) == low_ones {
                masks[i] = f32::from_bits(u32::MAX);
            }
            i += 1;
        }
        masks
    }

    /// Extracts the pixels in whole blocks of four; returns how many pixels it did.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn extract_blocks(
        waveforms: &[f32],
        n_samples: usize,
        peaks: &[i64],
        window_width: i64,
        window_shift: i64,
        sampling_rate_ghz: f64,
        image: &mut [f32],
        peak_time: &mut [f32],
    ) -> usize {
        let last_load = (n_samples - 8) as i64;
        let inverse_rate = is_power_of_two(sampling_rate_ghz).then(|| 1.0 / sampling_rate_ghz);
        let zero = _mm256_setzero_pd();
        let one = _mm256_set1_pd(1.0);
        let n_blocks = peaks.len().min(image.len()).min(peak_time.len()) / 4;
        for block in 0..n_blocks {
            let first = block * 4;
            let rows = &waveforms[first * n_samples..(first + 4) * n_samples];
            // Per pixel: where its 8 loaded samples start (the window's first sample, moved
            // back into the waveform), and which of them are the window (lanes `from..to`;
            // the window clipped to the waveform is clipped to the 8 lanes the same way).
            let mut load_start = [0_i64; 4];
            let mut inside = [_mm256_setzero_ps(); 4];
            for lane in 0..4 {
                let window_start = peaks[first + lane] - window_shift;
                load_start[lane] = window_start.clamp(0, last_load);
                let from = window_start - load_start[lane];
                let to = from + window_width;
                let (from, to) = (from.clamp(0, 8) as usize, to.clamp(0, 8) as usize);
                inside[lane] =
                    _mm256_and_ps(load8(&LANES_FROM, 8 - from), load8(&LANES_BELOW, 8 - to));
            }
            // Each pixel's 8 samples, those outside its window set to +0.0.
            let row = |lane: usize| {
                let samples = load8(rows, lane * n_samples + load_start[lane] as usize);
                _mm256_and_ps(samples, inside[lane])
            };
            let positions = transpose(row(0), row(1), row(2), row(3));

            let mut index = _mm256_set_pd(
                load_start[3] as f64,
                load_start[2] as f64,
                load_start[1] as f64,
                load_start[0] as f64,
            );
            let mut sum = zero;
            let mut time_num = zero;
            let mut time_den = zero;
            for &samples in &positions {
                let value = _mm256_cvtps_pd(samples);
                sum = _mm256_add_pd(sum, value);
                // max(value, +0.0) is +0.0 for NaN, -0.0 and negative values, as ctapipe's
                // `if value > 0`. The product of an f32 and a sample index is exact in f64,
                // so the fused multiply-add rounds once, as ctapipe's add of the product.
                let positive = _mm256_max_pd(value, zero);
                time_num = _mm256_fmadd_pd(positive, index, time_num);
                time_den = _mm256_add_pd(time_den, positive);
                index = _mm256_add_pd(index, one);
            }

            store4(image, first, _mm256_cvtpd_ps(sum));
            let peak_index = _mm256_set_pd(
                peaks[first + 3] as f64,
                peaks[first + 2] as f64,
                peaks[first + 1] as f64,
                peaks[first] as f64,
            );
            let weighted = _mm256_div_pd(time_num, time_den);
            let any_positive = _mm256_cmp_pd::<_CMP_GT_OQ>(time_den, zero);
            let samples = _mm256_blendv_pd(peak_index, weighted, any_positive);
            // As `kernels::peak_time_ns`: stored as f32 in samples, then converted to ns.
            let samples = _mm256_cvtps_pd(_mm256_cvtpd_ps(samples));
            let ns = match inverse_rate {
                Some(inverse) => _mm256_mul_pd(samples, _mm256_set1_pd(inverse)),
                None => _mm256_div_pd(samples, _mm256_set1_pd(sampling_rate_ghz)),
            };
            store4(peak_time, first, _mm256_cvtpd_ps(ns));
        }
        n_blocks * 4
    }

    /// The 8 positions of four pixels' loaded samples: `positions[k]` holds sample `k` of
    /// rows 0, 1, 2, 3 in its lanes 0, 1, 2, 3.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn transpose(row0: __m256, row1: __m256, row2: __m256, row3: __m256) -> [__m128; 8] {
        let low01 = _mm256_unpacklo_ps(row0, row1); // 0: r0 r1 r0 r1 (samples 0 1 | 4 5)
        let high01 = _mm256_unpackhi_ps(row0, row1); // samples 2 3 | 6 7
        let low23 = _mm256_unpacklo_ps(row2, row3);
        let high23 = _mm256_unpackhi_ps(row2, row3);
        let s04 = _mm256_shuffle_ps::<0x44>(low01, low23);
        let s15 = _mm256_shuffle_ps::<0xee>(low01, low23);
        let s26 = _mm256_shuffle_ps::<0x44>(high01, high23);
        let s37 = _mm256_shuffle_ps::<0xee>(high01, high23);
        [
            _mm256_castps256_ps128(s04),
            _mm256_castps256_ps128(s15),
            _mm256_castps256_ps128(s26),
            _mm256_castps256_ps128(s37),
            _mm256_extractf128_ps::<1>(s04),
            _mm256_extractf128_ps::<1>(s15),
            _mm256_extractf128_ps::<1>(s26),
            _mm256_extractf128_ps::<1>(s37),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (samples per pixel, waveforms, peaks) with peaks also outside the waveform.
    fn cameras() -> impl Strategy<Value = (usize, Vec<f32>, Vec<i64>)> {
        (1usize..40, 1usize..15).prop_flat_map(|(n_samples, n_pixels)| {
            let sample = prop_oneof![
                -5.0f32..50.0,
                (-3i32..4).prop_map(|v| v as f32),
                Just(-0.0f32),
                Just(f32::NAN),
            ];
            (
                Just(n_samples),
                prop::collection::vec(sample, n_samples * n_pixels),
                prop::collection::vec(-10i64..n_samples as i64 + 10, n_pixels),
            )
        })
    }

    proptest! {
        #[test]
        fn equals_extract_around_peak_bit_for_bit(
            (n_samples, waveforms, peaks) in cameras(),
            width in 1i64..11,
            shift in -3i64..6,
            rate in prop::sample::select(vec![1.0, 0.25, 1.6, 0.3]),
        ) {
            let n_pixels = peaks.len();
            let mut image = vec![0.0; n_pixels];
            let mut peak_time = vec![0.0; n_pixels];
            extract_windows(
                &waveforms, n_samples, &peaks, width, shift, rate, &mut image, &mut peak_time,
            );
            for (pixel, waveform) in waveforms.chunks_exact(n_samples).enumerate() {
                let (charge, time) = extract_around_peak(waveform, peaks[pixel], width, shift, rate);
                prop_assert_eq!(image[pixel].to_bits(), charge.to_bits(), "pixel {}", pixel);
                prop_assert_eq!(peak_time[pixel].to_bits(), time.to_bits(), "pixel {}", pixel);
            }
        }
    }
}
