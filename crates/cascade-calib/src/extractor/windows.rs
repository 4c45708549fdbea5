//! Charge and peak time of every pixel's window around its peak (ctapipe
//! `extract_around_peak` over a whole camera), the last step of `FixedWindowSum`,
//! `GlobalPeakWindowSum`, `LocalPeakWindowSum` and `NeighborPeakWindowSum`.
//!
//! The results are those of [`extract_around_peak`] pixel by pixel, bit for bit. On x86-64
//! CPUs with AVX2 and FMA (checked at run time), windows of at most 8 samples in waveforms
//! of at least 8 samples are done four pixels at a time: each pixel's 8 samples around its
//! window are loaded as one vector, the 4 x 8 block is transposed so that a vector holds
//! one window position of four pixels, and the `f64` sums run over the 8 positions in
//! sample order, with the samples outside a pixel's window masked to `+0.0` (adding `+0.0`
//! leaves every partial sum as it is: the sums start at `+0.0` and never become `-0.0`).
//! Where each pixel's samples start and which are in its window is worked out for the four
//! pixels at once, in 64-bit lanes. The peak-time numerator uses fused multiply-adds, which
//! round as ctapipe's separate product and sum do because the product of an `f32` and a
//! sample index is exact in `f64`. The sums of a block are computed before the previous
//! block's division and conversions, so that the two chains of dependent operations overlap.

use super::kernels::extract_around_peak;
use crate::QuantizedWaveforms;

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
    let first_scalar = if blocks_apply(n_samples, window_width) {
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
    one_by_one(first_scalar, peaks, image, peak_time, |pixel, peak| {
        let waveform = &waveforms[pixel * n_samples..(pixel + 1) * n_samples];
        extract_around_peak(
            waveform,
            peak,
            window_width,
            window_shift,
            sampling_rate_ghz,
        )
    });
}

/// [`extract_windows`] for samples stored as `uint16` with a scale and an offset: the
/// results of [`extract_windows`] on the converted samples
/// ([`QuantizedWaveforms::sample`]), bit for bit. With AVX2 each pixel's 8 samples around
/// its window are converted in the vector they are loaded into; pixels done one by one
/// have their waveform converted into `converted` first.
#[allow(clippy::too_many_arguments)]
pub fn extract_windows_quantized(
    waveforms: QuantizedWaveforms<'_>,
    n_samples: usize,
    peaks: &[i64],
    window_width: i64,
    window_shift: i64,
    sampling_rate_ghz: f64,
    image: &mut [f32],
    peak_time: &mut [f32],
    converted: &mut Vec<f32>,
) {
    #[cfg(target_arch = "x86_64")]
    let first_scalar = if blocks_apply(n_samples, window_width) {
        // SAFETY: `extract_quantized_blocks` needs AVX2 and FMA, which the CPU has.
        #[allow(unsafe_code)]
        unsafe {
            avx2::extract_quantized_blocks(
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
    one_by_one(first_scalar, peaks, image, peak_time, |pixel, peak| {
        waveforms
            .slice(pixel * n_samples..(pixel + 1) * n_samples)
            .convert_into(converted);
        extract_around_peak(
            converted,
            peak,
            window_width,
            window_shift,
            sampling_rate_ghz,
        )
    });
}

/// Whether the four-pixel AVX2 kernel takes these windows: waveforms of at least 8
/// samples, windows of 1 to 8, a CPU with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
fn blocks_apply(n_samples: usize, window_width: i64) -> bool {
    n_samples >= 8
        && (1..=8).contains(&window_width)
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
}

/// The pixels from `first` on, one by one: `extract(pixel, peak)` gives a pixel's charge
/// and peak time.
fn one_by_one(
    first: usize,
    peaks: &[i64],
    image: &mut [f32],
    peak_time: &mut [f32],
    mut extract: impl FnMut(usize, i64) -> (f32, f32),
) {
    let outputs = image.iter_mut().zip(peak_time.iter_mut()).zip(peaks);
    for (pixel, ((charge, time), &peak)) in outputs.enumerate().skip(first) {
        (*charge, *time) = extract(pixel, peak);
    }
}

/// The four-pixel AVX2 kernel.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m128, __m256, __m256d, __m256i, _CMP_GT_OQ, _mm256_add_epi64, _mm256_add_pd,
        _mm256_and_pd, _mm256_andnot_si256, _mm256_blendv_epi8, _mm256_blendv_pd,
        _mm256_castpd_si256, _mm256_castps256_ps128, _mm256_castsi256_pd, _mm256_cmp_pd,
        _mm256_cmpgt_epi64, _mm256_cvtepi32_ps, _mm256_cvtepu16_epi32, _mm256_cvtpd_ps,
        _mm256_cvtps_pd, _mm256_div_pd, _mm256_div_ps, _mm256_extract_epi64, _mm256_extractf128_ps,
        _mm256_fmadd_pd, _mm256_max_pd, _mm256_mul_pd, _mm256_or_si256, _mm256_set_pd,
        _mm256_set1_epi64x, _mm256_set1_pd, _mm256_set1_ps, _mm256_setzero_pd,
        _mm256_setzero_si256, _mm256_shuffle_ps, _mm256_sub_epi64, _mm256_sub_pd, _mm256_sub_ps,
        _mm256_unpackhi_ps, _mm256_unpacklo_ps,
    };

    use super::super::avx2::{load4_i64, load8, load8_u16, pipelined, store4};
    use super::super::kernels::is_power_of_two;
    use super::QuantizedWaveforms;

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
        blocks(
            move |pixel, start| load8(waveforms, pixel * n_samples + start),
            n_samples,
            peaks,
            window_width,
            window_shift,
            sampling_rate_ghz,
            image,
            peak_time,
        )
    }

    /// [`extract_blocks`] of quantized samples, converted as loaded: `f32` conversion
    /// (exact for `u16`), division by the scale, subtraction of the offset, each rounded
    /// as the scalar `f32` operations are.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn extract_quantized_blocks(
        waveforms: QuantizedWaveforms<'_>,
        n_samples: usize,
        peaks: &[i64],
        window_width: i64,
        window_shift: i64,
        sampling_rate_ghz: f64,
        image: &mut [f32],
        peak_time: &mut [f32],
    ) -> usize {
        let scale = _mm256_set1_ps(waveforms.scale);
        let offset = _mm256_set1_ps(waveforms.offset);
        blocks(
            move |pixel, start| {
                let stored = load8_u16(waveforms.values, pixel * n_samples + start);
                let exact = _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(stored));
                _mm256_sub_ps(_mm256_div_ps(exact, scale), offset)
            },
            n_samples,
            peaks,
            window_width,
            window_shift,
            sampling_rate_ghz,
            image,
            peak_time,
        )
    }

    /// The kernel of [`extract_blocks`]: `row(pixel, start)` loads pixel `pixel`'s 8 sample
    /// values from sample `start` on.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn blocks(
        row: impl Fn(usize, usize) -> __m256,
        n_samples: usize,
        peaks: &[i64],
        window_width: i64,
        window_shift: i64,
        sampling_rate_ghz: f64,
        image: &mut [f32],
        peak_time: &mut [f32],
    ) -> usize {
        let inverse_rate = is_power_of_two(sampling_rate_ghz).then(|| 1.0 / sampling_rate_ghz);
        let zero = _mm256_setzero_pd();
        let one = _mm256_set1_pd(1.0);
        let shift = _mm256_set1_epi64x(window_shift);
        let width = _mm256_set1_epi64x(window_width);
        let last_load = _mm256_set1_epi64x((n_samples - 8) as i64);
        let lane_positions: [__m256i; 8] = std::array::from_fn(|k| _mm256_set1_epi64x(k as i64));
        let n_blocks = peaks.len().min(image.len()).min(peak_time.len()) / 4;
        // The sums of a block of four pixels, then (`finish`) their charges and peak times:
        // the sums of one block are computed before the previous block's divisions and
        // conversions, so that the two chains overlap (software pipelining).
        let accumulate = |block: usize| {
            let first = block * 4;
            // Per pixel (one per 64-bit lane): where its 8 loaded samples start (the window's
            // first sample, moved back into the waveform) and which of them are the window
            // (lanes `from <= k < to`, the window clipped to the waveform).
            let window_start = _mm256_sub_epi64(load4_i64(peaks, first), shift);
            let load_start = clamp_i64(window_start, _mm256_setzero_si256(), last_load);
            let from = _mm256_sub_epi64(window_start, load_start);
            let to = _mm256_add_epi64(from, width);
            let starts = [
                _mm256_extract_epi64::<0>(load_start),
                _mm256_extract_epi64::<1>(load_start),
                _mm256_extract_epi64::<2>(load_start),
                _mm256_extract_epi64::<3>(load_start),
            ];
            let lane_row = |lane: usize| row(first + lane, starts[lane] as usize);
            let positions = transpose(lane_row(0), lane_row(1), lane_row(2), lane_row(3));

            let mut index = small_i64_to_f64(load_start);
            let mut sum = zero;
            let mut time_num = zero;
            let mut time_den = zero;
            for (&samples, &position) in positions.iter().zip(&lane_positions) {
                // +0.0 outside the window: !(from > position) & (to > position)
                let inside = _mm256_andnot_si256(
                    _mm256_cmpgt_epi64(from, position),
                    _mm256_cmpgt_epi64(to, position),
                );
                let value = _mm256_and_pd(_mm256_cvtps_pd(samples), _mm256_castsi256_pd(inside));
                sum = _mm256_add_pd(sum, value);
                // max(value, +0.0) is +0.0 for NaN, -0.0 and negative values, as ctapipe's
                // `if value > 0`. The product of an f32 and a sample index is exact in f64,
                // so the fused multiply-add rounds once, as ctapipe's add of the product.
                let positive = _mm256_max_pd(value, zero);
                time_num = _mm256_fmadd_pd(positive, index, time_num);
                time_den = _mm256_add_pd(time_den, positive);
                index = _mm256_add_pd(index, one);
            }
            (first, sum, time_num, time_den)
        };
        let finish = |(first, sum, time_num, time_den): (usize, __m256d, __m256d, __m256d)| {
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
        };
        pipelined(0..n_blocks, (0, zero, zero, zero), accumulate, finish);
        n_blocks * 4
    }

    /// `values` clamped lane by lane to `low..=high` (64-bit signed lanes).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn clamp_i64(values: __m256i, low: __m256i, high: __m256i) -> __m256i {
        let below_high = _mm256_blendv_epi8(values, high, _mm256_cmpgt_epi64(values, high));
        _mm256_blendv_epi8(below_high, low, _mm256_cmpgt_epi64(low, below_high))
    }

    /// The 64-bit lanes, each in `0..2^52`, as `f64` (exact): the lanes' bits put in the
    /// mantissa of `2^52`, then `2^52` subtracted.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn small_i64_to_f64(lanes: __m256i) -> __m256d {
        let two_52 = _mm256_set1_pd(4_503_599_627_370_496.0);
        let bits = _mm256_or_si256(lanes, _mm256_castpd_si256(two_52));
        _mm256_sub_pd(_mm256_castsi256_pd(bits), two_52)
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

        #[test]
        fn quantized_samples_give_the_results_of_the_converted_ones_bit_for_bit(
            (n_samples, n_pixels) in (1usize..40, 1usize..15),
            seed_values in prop::collection::vec(any::<u16>(), 40 * 15),
            peak_seed in prop::collection::vec(-10i64..50, 15),
            scale in prop::sample::select(vec![80.0f32, 3.0, 0.37, 1.0]),
            offset in prop::sample::select(vec![5.0f32, 0.0, -2.5]),
            width in 1i64..11,
            shift in -3i64..6,
        ) {
            let values = &seed_values[..n_samples * n_pixels];
            let peaks = &peak_seed[..n_pixels];
            let quantized = QuantizedWaveforms { values, scale, offset };
            let mut converted = Vec::new();
            quantized.convert_into(&mut converted);
            let mut expected = (vec![0.0; n_pixels], vec![0.0; n_pixels]);
            extract_windows(
                &converted, n_samples, peaks, width, shift, 1.0, &mut expected.0, &mut expected.1,
            );
            let mut got = (vec![0.0; n_pixels], vec![0.0; n_pixels]);
            extract_windows_quantized(
                quantized, n_samples, peaks, width, shift, 1.0, &mut got.0, &mut got.1,
                &mut Vec::new(),
            );
            for pixel in 0..n_pixels {
                prop_assert_eq!(got.0[pixel].to_bits(), expected.0[pixel].to_bits());
                prop_assert_eq!(got.1[pixel].to_bits(), expected.1[pixel].to_bits());
            }
        }
    }
}
