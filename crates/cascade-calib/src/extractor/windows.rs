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
//! Where the CPU has AVX-512 (F, BW, DQ and VL), the same operations run on blocks of eight
//! pixels first (`windows/avx512.rs`), and the pixels after the last such block take the
//! four-pixel kernel.
//!
//! Samples stored as `uint16` (CTAO's R1 stream) are converted as they are loaded, and for
//! the streams seen in practice every sum of a window is exact in `f64`
//! (`window_sums_are_exact` proves it from the scale and offset), so the order of the
//! additions cannot change a result: their kernel masks each pixel's samples before the
//! transposition and sums the positions as trees instead of chains. The division by the
//! scale is a multiplication by its reciprocal with one correction step wherever that has
//! been checked to give the same quotient for every `u16` value ([`ScaleDivision`]).

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
    // The pixels done eight at a time with AVX-512, then four at a time with AVX2; the
    // rest (all without AVX2) one by one.
    #[cfg(target_arch = "x86_64")]
    let first_scalar = if blocks_apply(n_samples, window_width) {
        // `kernel` on the pixels from `first` on.
        let mut from = |kernel: Blocks, first: usize| {
            // SAFETY: each kernel runs where the CPU has what it needs: AVX2 and FMA
            // (`blocks_apply`), and AVX-512 F, BW, DQ and VL for the eight-pixel one.
            #[allow(unsafe_code)]
            unsafe {
                kernel(
                    waveforms.get(first * n_samples..).unwrap_or_default(),
                    n_samples,
                    peaks.get(first..).unwrap_or_default(),
                    window_width,
                    window_shift,
                    sampling_rate_ghz,
                    image.get_mut(first..).unwrap_or_default(),
                    peak_time.get_mut(first..).unwrap_or_default(),
                )
            }
        };
        let by_eight = if crate::has_avx512() {
            from(avx512::extract_blocks, 0)
        } else {
            0
        };
        by_eight + from(avx2::extract_blocks, by_eight)
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
/// its window are converted in the vector they are loaded into (`division` remembers how
/// the scale divides them); pixels done one by one have their waveform converted into
/// `converted` first.
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
    division: &mut ScaleDivision,
) {
    #[cfg(target_arch = "x86_64")]
    let first_scalar = if blocks_apply(n_samples, window_width) {
        let exact = window_sums_are_exact(&waveforms, n_samples);
        let by_reciprocal = division.by_reciprocal(waveforms.scale);
        let (eight, four): (QuantizedBlocks, QuantizedBlocks) = if exact {
            (
                avx512::extract_exact_quantized_blocks,
                avx2::extract_exact_quantized_blocks,
            )
        } else {
            (
                avx512::extract_quantized_blocks,
                avx2::extract_quantized_blocks,
            )
        };
        // `kernel` on the pixels from `first` on.
        let values = waveforms.values;
        let mut from = |kernel: QuantizedBlocks, first: usize| {
            let rest = waveforms.slice((first * n_samples).min(values.len())..values.len());
            // SAFETY: each kernel runs where the CPU has what it needs: AVX2 and FMA
            // (`blocks_apply`), and AVX-512 F, BW, DQ and VL for the eight-pixel ones.
            #[allow(unsafe_code)]
            unsafe {
                kernel(
                    rest,
                    by_reciprocal,
                    n_samples,
                    peaks.get(first..).unwrap_or_default(),
                    window_width,
                    window_shift,
                    sampling_rate_ghz,
                    image.get_mut(first..).unwrap_or_default(),
                    peak_time.get_mut(first..).unwrap_or_default(),
                )
            }
        };
        // Eight pixels at a time where the CPU has AVX-512, the rest four at a time.
        let by_eight = if crate::has_avx512() {
            from(eight, 0)
        } else {
            0
        };
        by_eight + from(four, by_eight)
    } else {
        0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let first_scalar = {
        let _ = division;
        0
    };
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

/// How the AVX2 kernels divide quantized samples by their stream's scale: the division
/// (`vdivps`, one unit that takes several cycles per vector, a few per cent of the
/// calibration) or, where it gives the same quotient for every `u16` value, a
/// multiplication by the reciprocal `r = 1 / scale` with one correction step (the
/// remainder `u - q scale` is exact as a fused multiply-add, and `q + remainder * r` is
/// the quotient correctly rounded for most divisors; Markstein, IBM J. Res. Dev. 34,
/// 1990). Whether it does for a scale is checked on all 65,536 values (~8,200 vector
/// divisions, a few µs), once per scale.
#[derive(Debug, Clone, Default)]
pub struct ScaleDivision {
    /// The bits of the scale last checked and whether its reciprocal divides exactly.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    checked: Option<(u32, bool)>,
}

impl ScaleDivision {
    /// Whether the samples of a stream with this scale may be divided by the reciprocal;
    /// checked on the first call for a scale, remembered for the next ones.
    #[cfg(target_arch = "x86_64")]
    fn by_reciprocal(&mut self, scale: f32) -> bool {
        match self.checked {
            Some((bits, by_reciprocal)) if bits == scale.to_bits() => by_reciprocal,
            _ => {
                // SAFETY: the caller's kernels need AVX2 and FMA, which the CPU has.
                #[allow(unsafe_code)]
                let by_reciprocal = unsafe { avx2::reciprocal_divides_every_u16(scale) };
                self.checked = Some((scale.to_bits(), by_reciprocal));
                by_reciprocal
            }
        }
    }
}

/// The signature of the block kernels of `f32` samples (`avx2::extract_blocks`,
/// `avx512::extract_blocks`): they return how many pixels they did.
#[cfg(target_arch = "x86_64")]
type Blocks = unsafe fn(&[f32], usize, &[i64], i64, i64, f64, &mut [f32], &mut [f32]) -> usize;

/// The signature of the block kernels of quantized samples (with whether to divide by the
/// reciprocal of the scale).
#[cfg(target_arch = "x86_64")]
type QuantizedBlocks = unsafe fn(
    QuantizedWaveforms<'_>,
    bool,
    usize,
    &[i64],
    i64,
    i64,
    f64,
    &mut [f32],
    &mut [f32],
) -> usize;

/// Whether the four-pixel AVX2 kernel takes these windows: waveforms of at least 8
/// samples, windows of 1 to 8, a CPU with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
fn blocks_apply(n_samples: usize, window_width: i64) -> bool {
    n_samples >= 8
        && (1..=8).contains(&window_width)
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
}

/// Whether every `f64` sum that [`extract_around_peak`] forms over a window of at most 8
/// of these samples (converted as [`QuantizedWaveforms::sample`]) is exact, for waveforms
/// of `n_samples`: the charge, the sum of the positive samples and the sum of the positive
/// samples times their indices (`< n_samples`), whatever the order of the additions.
/// Exact sums are the same in any order, which lets the windows be summed as trees.
///
/// Every converted sample `v = (u / scale) - offset` (each operation rounded to `f32`) is a
/// multiple of `2^e`, `e` the exponent of the last bit of `1 / scale` (the smallest
/// non-zero `u / scale`; the last bit of larger values is no smaller) or of the offset,
/// whichever is lower: `u / scale` and the offset are such multiples, so is their exact
/// difference, and rounding it either leaves it as it is (when it fits in 24 bits above
/// `2^e`) or moves it to a coarser power-of-two grid. Every partial sum is then a multiple
/// of `2^e` below `8 M n_samples` in magnitude (`M` bounds `|v|`), which `f64` holds
/// exactly when that bound is below `2^(53 + e)`. For ctapipe_io_zfits' scale 80 and
/// offset 5, `e = -30` and the bound ~2^17.6 for 30 samples, far below `2^23`.
#[cfg(target_arch = "x86_64")]
fn window_sums_are_exact(waveforms: &QuantizedWaveforms<'_>, n_samples: usize) -> bool {
    /// Exponent of the last mantissa bit of a finite non-zero `f32`.
    fn last_bit_exponent(value: f32) -> i32 {
        match (value.to_bits() >> 23) & 0xff {
            0 => -149,
            biased => biased as i32 - 127 - 23,
        }
    }
    let Some(magnitude) = waveforms.magnitude_bound() else {
        return false;
    };
    if i32::try_from(n_samples).is_err() {
        return false;
    }
    let smallest = 1.0 / waveforms.scale;
    if smallest == 0.0 || magnitude > 2f64.powi(100) {
        return false;
    }
    let mut exponent = last_bit_exponent(smallest);
    if waveforms.offset != 0.0 {
        exponent = exponent.min(last_bit_exponent(waveforms.offset));
    }
    8.0 * magnitude * (n_samples as f64) < 2f64.powi(53 + exponent)
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

#[cfg(target_arch = "x86_64")]
mod avx512;

/// The four-pixel AVX2 kernel.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m128, __m128i, __m256, __m256d, __m256i, _CMP_GT_OQ, _mm_setr_epi32, _mm256_add_epi32,
        _mm256_add_epi64, _mm256_add_pd, _mm256_and_pd, _mm256_and_ps, _mm256_andnot_si256,
        _mm256_blendv_epi8, _mm256_blendv_pd, _mm256_castpd_si256, _mm256_castps_si256,
        _mm256_castps256_ps128, _mm256_castsi256_pd, _mm256_cmp_pd, _mm256_cmpeq_epi32,
        _mm256_cmpgt_epi64, _mm256_cvtepi32_pd, _mm256_cvtepi32_ps, _mm256_cvtepu16_epi32,
        _mm256_cvtpd_ps, _mm256_cvtps_pd, _mm256_div_pd, _mm256_div_ps, _mm256_extract_epi64,
        _mm256_extractf128_ps, _mm256_fmadd_pd, _mm256_fmadd_ps, _mm256_fnmadd_ps, _mm256_max_pd,
        _mm256_mul_pd, _mm256_mul_ps, _mm256_or_si256, _mm256_set_pd, _mm256_set1_epi32,
        _mm256_set1_epi64x, _mm256_set1_pd, _mm256_set1_ps, _mm256_setr_epi32, _mm256_setzero_pd,
        _mm256_setzero_si256, _mm256_shuffle_ps, _mm256_sub_epi64, _mm256_sub_pd, _mm256_sub_ps,
        _mm256_testz_si256, _mm256_unpackhi_ps, _mm256_unpacklo_ps, _mm256_xor_si256,
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
        by_reciprocal: bool,
        n_samples: usize,
        peaks: &[i64],
        window_width: i64,
        window_shift: i64,
        sampling_rate_ghz: f64,
        image: &mut [f32],
        peak_time: &mut [f32],
    ) -> usize {
        let convert = Conversion::of(&waveforms, by_reciprocal);
        blocks(
            move |pixel, start| {
                convert.values(load8_u16(waveforms.values, pixel * n_samples + start))
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

    /// [`extract_quantized_blocks`] for samples whose window sums are exact in `f64`
    /// (`window_sums_are_exact`), so that the order of the additions does not matter: the
    /// samples outside each pixel's window are masked to `+0.0` before the transposition
    /// (one mask per pixel, from a table by where its window starts), the sums are trees of
    /// depth 3 instead of chains of 8, and the peak-time numerator is `start * den +
    /// sum(k * positive_k)` over the positions `k` of the loaded samples (all exact, so the
    /// same as ctapipe's running sum of `positive * index`).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn extract_exact_quantized_blocks(
        waveforms: QuantizedWaveforms<'_>,
        by_reciprocal: bool,
        n_samples: usize,
        peaks: &[i64],
        window_width: i64,
        window_shift: i64,
        sampling_rate_ghz: f64,
        image: &mut [f32],
        peak_time: &mut [f32],
    ) -> usize {
        let convert = Conversion::of(&waveforms, by_reciprocal);
        let zero = _mm256_setzero_pd();
        // `masks[from + 8]`: the lanes `from <= k < from + width` of 8 loaded samples, for a
        // window starting `from` samples after the first loaded one (`-8..=8` covers every
        // window that meets the 8 samples).
        let masks: [[f32; 8]; 17] = std::array::from_fn(|entry| {
            let from = entry as i64 - 8;
            std::array::from_fn(|k| {
                let inside = (from..from + window_width).contains(&(k as i64));
                f32::from_bits(if inside { u32::MAX } else { 0 })
            })
        });
        let last_load = n_samples as i64 - 8;
        let n_pixels = (waveforms.values.len() / n_samples).min(peaks.len());
        let (peaks, _) = peaks[..n_pixels].as_chunks::<4>();
        let (image, _) = image.as_chunks_mut::<4>();
        let (peak_time, _) = peak_time.as_chunks_mut::<4>();
        let n_blocks = peaks.len().min(image.len()).min(peak_time.len());
        let positions: [__m256d; 8] = std::array::from_fn(|k| _mm256_set1_pd(k as f64));

        let accumulate = |block: usize| {
            // Per pixel: where its window starts, where its 8 loaded samples start (the
            // window's start moved back into the waveform), and those samples with the
            // ones outside the window masked.
            let window_starts = peaks[block].map(|peak| peak - window_shift);
            let starts = window_starts.map(|start| start.clamp(0, last_load));
            let lane_row = |lane: usize| {
                let from = (window_starts[lane] - starts[lane]).clamp(-8, 8);
                let mask = load8(&masks[(from + 8) as usize], 0);
                let at = (4 * block + lane) * n_samples + starts[lane] as usize;
                _mm256_and_ps(convert.values(load8_u16(waveforms.values, at)), mask)
            };
            let loaded = transpose(lane_row(0), lane_row(1), lane_row(2), lane_row(3));
            let values: [__m256d; 8] = std::array::from_fn(|k| _mm256_cvtps_pd(loaded[k]));
            // max(value, +0.0) is +0.0 for -0.0 and negative values, as ctapipe's
            // `if value > 0` (no sample is NaN).
            let positive: [__m256d; 8] = std::array::from_fn(|k| _mm256_max_pd(values[k], zero));
            let sum = tree_sum(values);
            let time_den = tree_sum(positive);
            // sum(k * positive_k) over k = 1..=7 in pairs: (p1 + 2 p2) + (3 p3 + 4 p4) + ...
            let [_, p1, p2, p3, p4, p5, p6, p7] = positive;
            let k = |k: usize| positions[k];
            let weighted = _mm256_add_pd(
                _mm256_add_pd(
                    _mm256_fmadd_pd(p2, k(2), p1),
                    _mm256_fmadd_pd(p4, k(4), _mm256_mul_pd(p3, k(3))),
                ),
                _mm256_add_pd(
                    _mm256_fmadd_pd(p6, k(6), _mm256_mul_pd(p5, k(5))),
                    _mm256_mul_pd(p7, k(7)),
                ),
            );
            // The starts are below `n_samples` (< 2^31, `window_sums_are_exact`).
            let start = _mm256_cvtepi32_pd(_mm_setr_epi32(
                starts[0] as i32,
                starts[1] as i32,
                starts[2] as i32,
                starts[3] as i32,
            ));
            let time_num = _mm256_fmadd_pd(start, time_den, weighted);
            (block, sum, time_num, time_den)
        };
        let finish = |(block, sum, time_num, time_den): (usize, __m256d, __m256d, __m256d)| {
            let times = peak_times_ns(&peaks[block], time_num, time_den, sampling_rate_ghz);
            store4(&mut image[block][..], 0, _mm256_cvtpd_ps(sum));
            store4(&mut peak_time[block][..], 0, times);
        };
        pipelined(0..n_blocks, (0, zero, zero, zero), accumulate, finish);
        n_blocks * 4
    }

    /// The conversion of eight stored `u16` values to the `f32` values they stand for.
    #[derive(Clone, Copy)]
    struct Conversion {
        scale: __m256,
        offset: __m256,
        /// `1 / scale` when it divides every `u16` value exactly (see [`super::ScaleDivision`]).
        reciprocal: Option<__m256>,
    }

    impl Conversion {
        #[inline]
        #[target_feature(enable = "avx2")]
        fn of(waveforms: &QuantizedWaveforms<'_>, by_reciprocal: bool) -> Self {
            Self {
                scale: _mm256_set1_ps(waveforms.scale),
                offset: _mm256_set1_ps(waveforms.offset),
                reciprocal: by_reciprocal.then(|| _mm256_set1_ps(1.0 / waveforms.scale)),
            }
        }

        /// `value as f32 / scale - offset` in each lane, each operation rounded as the
        /// scalar `f32` operations are.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        fn values(self, stored: __m128i) -> __m256 {
            let exact = _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(stored));
            let quotient = match self.reciprocal {
                Some(reciprocal) => divide_by_reciprocal(exact, self.scale, reciprocal),
                None => _mm256_div_ps(exact, self.scale),
            };
            _mm256_sub_ps(quotient, self.offset)
        }
    }

    /// `numerator / scale` by its reciprocal and one correction step: `q = n r`, the exact
    /// remainder `n - q scale` (one rounding of a fused multiply-add), `q + remainder * r`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn divide_by_reciprocal(numerator: __m256, scale: __m256, reciprocal: __m256) -> __m256 {
        let quotient = _mm256_mul_ps(numerator, reciprocal);
        let remainder = _mm256_fnmadd_ps(quotient, scale, numerator);
        _mm256_fmadd_ps(remainder, reciprocal, quotient)
    }

    /// Whether [`divide_by_reciprocal`] gives the quotient of `vdivps` for every `u16`
    /// numerator and this scale, bit for bit (~8,200 vectors of each).
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn reciprocal_divides_every_u16(scale: f32) -> bool {
        let (divisor, reciprocal) = (_mm256_set1_ps(scale), _mm256_set1_ps(1.0 / scale));
        let mut numerators = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mut differ = _mm256_setzero_si256();
        for _ in 0..(1 << 16) / 8 {
            let numerator = _mm256_cvtepi32_ps(numerators);
            let divided = _mm256_castps_si256(_mm256_div_ps(numerator, divisor));
            let fast = divide_by_reciprocal(numerator, divisor, reciprocal);
            let equal = _mm256_cmpeq_epi32(divided, _mm256_castps_si256(fast));
            differ = _mm256_or_si256(differ, _mm256_xor_si256(equal, _mm256_set1_epi32(-1)));
            numerators = _mm256_add_epi32(numerators, _mm256_set1_epi32(8));
        }
        _mm256_testz_si256(differ, differ) == 1
    }

    /// The sum of eight vectors as a tree of depth 3 (for exact sums only: the order of
    /// the additions is not ctapipe's).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn tree_sum(terms: [__m256d; 8]) -> __m256d {
        let pairs: [__m256d; 4] =
            std::array::from_fn(|i| _mm256_add_pd(terms[2 * i], terms[2 * i + 1]));
        _mm256_add_pd(
            _mm256_add_pd(pairs[0], pairs[1]),
            _mm256_add_pd(pairs[2], pairs[3]),
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
            let block_peaks = &peaks[first..first + 4];
            let times = peak_times_ns(block_peaks, time_num, time_den, sampling_rate_ghz);
            store4(image, first, _mm256_cvtpd_ps(sum));
            store4(peak_time, first, times);
        };
        pipelined(0..n_blocks, (0, zero, zero, zero), accumulate, finish);
        n_blocks * 4
    }

    /// The peak times (ns) of a block of four pixels (their `peaks`, at least four) from
    /// their windows' sums of positive samples times index (`time_num`) and of positive
    /// samples (`time_den`), as `extract_around_peak` finishes: the weighted mean index,
    /// or the peak's index when no sample is positive, stored as `f32` in samples, then
    /// converted to ns (`kernels::peak_time_ns`).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn peak_times_ns(
        peaks: &[i64],
        time_num: __m256d,
        time_den: __m256d,
        sampling_rate_ghz: f64,
    ) -> __m128 {
        let peak_index = _mm256_set_pd(
            peaks[3] as f64,
            peaks[2] as f64,
            peaks[1] as f64,
            peaks[0] as f64,
        );
        let weighted = _mm256_div_pd(time_num, time_den);
        let any_positive = _mm256_cmp_pd::<_CMP_GT_OQ>(time_den, _mm256_setzero_pd());
        let samples = _mm256_blendv_pd(peak_index, weighted, any_positive);
        let samples = _mm256_cvtps_pd(_mm256_cvtpd_ps(samples));
        // A power of two's reciprocal is exact, so multiplying by it rounds as dividing.
        let ns = if is_power_of_two(sampling_rate_ghz) {
            _mm256_mul_pd(samples, _mm256_set1_pd(1.0 / sampling_rate_ghz))
        } else {
            _mm256_div_pd(samples, _mm256_set1_pd(sampling_rate_ghz))
        };
        _mm256_cvtpd_ps(ns)
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
            scale in prop::sample::select(vec![80.0f32, 3.0, 0.37, 1.0, 1e9]),
            offset in prop::sample::select(vec![5.0f32, 0.0, -2.5, 1e-30]),
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
                &mut Vec::new(), &mut ScaleDivision::default(),
            );
            for pixel in 0..n_pixels {
                prop_assert_eq!(got.0[pixel].to_bits(), expected.0[pixel].to_bits());
                prop_assert_eq!(got.1[pixel].to_bits(), expected.1[pixel].to_bits());
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    mod vector_kernels {
        use super::super::avx2::{
            extract_exact_quantized_blocks, extract_quantized_blocks, reciprocal_divides_every_u16,
        };
        use super::*;

        fn has_avx2_and_fma() -> bool {
            is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
        }

        proptest! {
            /// Each quantized kernel (AVX2, and AVX-512 where the CPU has it), dividing by
            /// the scale and by its reciprocal, and the kernels of exact sums wherever
            /// `window_sums_are_exact` lets them run, gives
            /// `extract_around_peak`'s results on the converted samples for every pixel it
            /// does (the dispatch alone would exercise only one of them per stream).
            #[test]
            fn every_quantized_kernel_equals_extract_around_peak_bit_for_bit(
                (n_samples, n_pixels) in (8usize..70, 4usize..24),
                seed_values in prop::collection::vec(any::<u16>(), 70 * 24),
                peak_seed in prop::collection::vec(-12i64..80, 24),
                scale in prop::sample::select(vec![80.0f32, 3.0, 0.37, 1.0, 1e9, 12.5]),
                offset in prop::sample::select(vec![5.0f32, 0.0, -2.5, 1e-30, 800.0]),
                width in 1i64..9,
                shift in -3i64..9,
                rate in prop::sample::select(vec![1.0, 0.25, 1.6]),
            ) {
                if !has_avx2_and_fma() {
                    return Ok(());
                }
                let values = &seed_values[..n_samples * n_pixels];
                let peaks = &peak_seed[..n_pixels];
                let quantized = QuantizedWaveforms { values, scale, offset };
                let exact = window_sums_are_exact(&quantized, n_samples);
                for by_reciprocal in [false, true] {
                    if by_reciprocal {
                        // SAFETY: the CPU has AVX2 and FMA (checked above).
                        #[allow(unsafe_code)]
                        let divides = unsafe { reciprocal_divides_every_u16(scale) };
                        prop_assert!(divides, "scale {}", scale);
                    }
                    // (kernel, pixels per block)
                    let kernels: [Option<(QuantizedBlocks, usize)>; 4] = [
                        Some((extract_quantized_blocks, 4)),
                        exact.then_some((extract_exact_quantized_blocks, 4)),
                        crate::has_avx512().then_some((avx512::extract_quantized_blocks, 8)),
                        (exact && crate::has_avx512())
                            .then_some((avx512::extract_exact_quantized_blocks, 8)),
                    ];
                    for (kernel, block) in kernels.into_iter().flatten() {
                        let (mut image, mut peak_time) = (vec![0.0f32; n_pixels], vec![0.0f32; n_pixels]);
                        // SAFETY: the CPU has AVX2 and FMA (checked above), and AVX-512 F,
                        // BW, DQ and VL for the AVX-512 kernels (`crate::has_avx512`).
                        #[allow(unsafe_code)]
                        let done = unsafe {
                            kernel(
                                quantized, by_reciprocal, n_samples, peaks, width, shift, rate,
                                &mut image, &mut peak_time,
                            )
                        };
                        prop_assert_eq!(done, n_pixels / block * block);
                        for pixel in 0..done {
                            let waveform = quantized.slice(pixel * n_samples..(pixel + 1) * n_samples);
                            let mut converted = Vec::new();
                            waveform.convert_into(&mut converted);
                            let (charge, time) =
                                extract_around_peak(&converted, peaks[pixel], width, shift, rate);
                            prop_assert_eq!(image[pixel].to_bits(), charge.to_bits(), "pixel {}", pixel);
                            prop_assert_eq!(peak_time[pixel].to_bits(), time.to_bits(), "pixel {}", pixel);
                        }
                    }
                }
            }
        }

        /// The exhaustive check of the reciprocal: every `u16` divided as `vdivps` does
        /// for ctapipe_io_zfits' scale and for scales from 0.37 to 1e9, and not for a scale
        /// whose reciprocal overflows (`0 * inf` is NaN where the division gives 0).
        #[test]
        fn the_reciprocal_divides_every_u16_unless_it_overflows() {
            if !has_avx2_and_fma() {
                return;
            }
            let scalar_check = |scale: f32| {
                let reciprocal = 1.0 / scale;
                (0..=u16::MAX).all(|value| {
                    let numerator = f32::from(value);
                    let quotient = numerator * reciprocal;
                    let remainder = (-quotient).mul_add(scale, numerator);
                    let fast = remainder.mul_add(reciprocal, quotient);
                    fast.to_bits() == (numerator / scale).to_bits()
                })
            };
            for scale in [80.0f32, 0.37, 3.3, 12.5, 1e9, 1e-40] {
                // SAFETY: the CPU has AVX2 and FMA (checked above).
                #[allow(unsafe_code)]
                let divides = unsafe { reciprocal_divides_every_u16(scale) };
                assert_eq!(divides, scalar_check(scale), "scale {scale}");
                assert_eq!(divides, scale != 1e-40, "scale {scale}");
            }
        }

        /// Sums are certified exact for the streams seen in practice and not when an
        /// offset far finer than the samples' last bit could make them round.
        #[test]
        fn window_sums_are_exact_for_ctapipe_io_zfits_streams_only() {
            let values = [0_u16; 8];
            let stream = |scale, offset| QuantizedWaveforms {
                values: &values,
                scale,
                offset,
            };
            assert!(window_sums_are_exact(&stream(80.0, 5.0), 30));
            assert!(window_sums_are_exact(&stream(80.0, 5.0), 1000));
            assert!(!window_sums_are_exact(&stream(80.0, 5.0), 2000));
            assert!(window_sums_are_exact(&stream(1.0, 0.0), 64));
            assert!(!window_sums_are_exact(&stream(1e9, 1e-30), 30));
            assert!(!window_sums_are_exact(&stream(0.0, 5.0), 30));
            assert!(!window_sums_are_exact(&stream(1e-38, 0.0), 30));
        }
    }
}
