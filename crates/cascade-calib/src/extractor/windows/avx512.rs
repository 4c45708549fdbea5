//! The eight-pixel AVX-512 kernels of [`super`] (x86-64 CPUs with AVX-512 F, BW, DQ and
//! VL, checked at run time): the AVX2 kernels' operations, in the same order, on eight
//! pixels per block instead of four, one `f64` lane per pixel. Two pixels' samples are
//! loaded (and converted, for quantized samples) in one vector, the four vectors of a
//! block are transposed by eight two-source permutations, and the samples outside each
//! window are zeroed under a mask register.
//!
//! The `unsafe` of this module: loads and stores of whole fixed-size arrays (the samples'
//! loads are `extractor::avx2`'s, each of a slice bounds-checked first); the kernels are
//! called from `super` after the run-time check of the CPU's extensions.

use std::arch::x86_64::{
    __m256, __m256i, __m512, __m512d, __m512i, _CMP_GT_OQ, _mm_cvtsi128_si64,
    _mm256_castsi128_si256, _mm256_inserti128_si256, _mm256_storeu_ps, _mm512_add_epi64,
    _mm512_add_pd, _mm512_castps256_ps512, _mm512_castps512_ps256, _mm512_cmp_pd_mask,
    _mm512_cmpgt_epi64_mask, _mm512_cvtepi32_ps, _mm512_cvtepi64_epi8, _mm512_cvtepi64_pd,
    _mm512_cvtepu16_epi32, _mm512_cvtpd_ps, _mm512_cvtps_pd, _mm512_div_pd, _mm512_div_ps,
    _mm512_extractf32x8_ps, _mm512_fmadd_pd, _mm512_fmadd_ps, _mm512_fnmadd_ps, _mm512_insertf32x8,
    _mm512_loadu_epi32, _mm512_loadu_epi64, _mm512_mask_blend_pd, _mm512_maskz_cvtps_pd,
    _mm512_maskz_sub_ps, _mm512_max_epi64, _mm512_max_pd, _mm512_min_epi64, _mm512_mul_pd,
    _mm512_mul_ps, _mm512_permutex2var_ps, _mm512_set1_epi64, _mm512_set1_pd, _mm512_set1_ps,
    _mm512_setzero_pd, _mm512_setzero_si512, _mm512_sllv_epi64, _mm512_srlv_epi64,
    _mm512_storeu_epi64, _mm512_sub_epi64,
};

use super::super::avx2::{load8, load8_u16, pipelined};
use super::super::kernels::is_power_of_two;
use super::QuantizedWaveforms;

/// `avx2::extract_blocks` eight pixels at a time; returns how many pixels it did (whole
/// blocks of eight), with the same results bit for bit.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
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
        move |pixel, [first, second]| {
            let first = load8(waveforms, pixel * n_samples + first);
            let second = load8(waveforms, (pixel + 1) * n_samples + second);
            _mm512_insertf32x8::<1>(_mm512_castps256_ps512(first), second)
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

/// `avx2::extract_quantized_blocks` eight pixels at a time; returns how many pixels it did
/// (whole blocks of eight), with the same results bit for bit.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
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
        move |pixel, [first, second]| {
            let first = pixel * n_samples + first;
            let second = (pixel + 1) * n_samples + second;
            convert.values(load_pair_u16(waveforms.values, first, second), u16::MAX)
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

/// `avx2::extract_exact_quantized_blocks` eight pixels at a time; returns how many pixels
/// it did (whole blocks of eight), with the same results bit for bit.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
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
    let zero = _mm512_setzero_pd();
    let shift = _mm512_set1_epi64(window_shift);
    let last_load = _mm512_set1_epi64(n_samples as i64 - 8);
    // `width` ones (`window_width` is 1 to 8).
    let window_ones = _mm512_set1_epi64((1 << window_width) - 1);
    let n_pixels = (waveforms.values.len() / n_samples).min(peaks.len());
    let (peaks, _) = peaks[..n_pixels].as_chunks::<8>();
    let (image, _) = image.as_chunks_mut::<8>();
    let (peak_time, _) = peak_time.as_chunks_mut::<8>();
    let n_blocks = peaks.len().min(image.len()).min(peak_time.len());
    let positions: [__m512d; 8] = std::array::from_fn(|k| _mm512_set1_pd(k as f64));
    let transpose = Transpose::new();

    let accumulate = |block: usize| {
        // Per pixel (one per 64-bit lane): where its window starts, where its 8 loaded
        // samples start (the window's start moved back into the waveform), and which of
        // them are in it: bits `from <= k < from + width` of the 8, the window's ones
        // shifted up by `from` (down when it is negative; a shift of 64 or more gives 0),
        // of which the byte each pixel's lane is narrowed to keeps the first 8.
        let window_start = _mm512_sub_epi64(load_i64(&peaks[block]), shift);
        let load_start = _mm512_max_epi64(
            _mm512_min_epi64(window_start, last_load),
            _mm512_setzero_si512(),
        );
        let from = _mm512_sub_epi64(window_start, load_start);
        let up = _mm512_sllv_epi64(window_ones, _mm512_max_epi64(from, _mm512_setzero_si512()));
        let down = _mm512_max_epi64(
            _mm512_sub_epi64(_mm512_setzero_si512(), from),
            _mm512_setzero_si512(),
        );
        let inside = _mm_cvtsi128_si64(_mm512_cvtepi64_epi8(_mm512_srlv_epi64(up, down))) as u64;
        let starts = lanes_i64(load_start);
        let pair = |lane: usize| {
            let at = |lane: usize| (8 * block + lane) * n_samples + starts[lane] as usize;
            let stored = load_pair_u16(waveforms.values, at(lane), at(lane + 1));
            // The bytes of pixels `lane` and `lane + 1`.
            convert.values(stored, (inside >> (8 * lane)) as u16)
        };
        let loaded = transpose.apply([pair(0), pair(2), pair(4), pair(6)]);
        let values: [__m512d; 8] = std::array::from_fn(|k| _mm512_cvtps_pd(loaded[k]));
        // max(value, +0.0) is +0.0 for -0.0 and negative values, as ctapipe's
        // `if value > 0` (no sample is NaN).
        let positive: [__m512d; 8] = std::array::from_fn(|k| _mm512_max_pd(values[k], zero));
        let sum = tree_sum(values);
        let time_den = tree_sum(positive);
        // sum(k * positive_k) over k = 1..=7 in pairs, as the AVX2 kernel (exact sums).
        let [_, p1, p2, p3, p4, p5, p6, p7] = positive;
        let k = |k: usize| positions[k];
        let weighted = _mm512_add_pd(
            _mm512_add_pd(
                _mm512_fmadd_pd(p2, k(2), p1),
                _mm512_fmadd_pd(p4, k(4), _mm512_mul_pd(p3, k(3))),
            ),
            _mm512_add_pd(
                _mm512_fmadd_pd(p6, k(6), _mm512_mul_pd(p5, k(5))),
                _mm512_mul_pd(p7, k(7)),
            ),
        );
        // The starts are below `n_samples`, exact in `f64`.
        let start = _mm512_cvtepi64_pd(load_start);
        let time_num = _mm512_fmadd_pd(start, time_den, weighted);
        (block, sum, time_num, time_den)
    };
    let finish = |(block, sum, time_num, time_den): (usize, __m512d, __m512d, __m512d)| {
        let times = peak_times_ns(&peaks[block], time_num, time_den, sampling_rate_ghz);
        store8(&mut image[block], _mm512_cvtpd_ps(sum));
        store8(&mut peak_time[block], times);
    };
    pipelined(0..n_blocks, (0, zero, zero, zero), accumulate, finish);
    n_blocks * 8
}

/// The kernel of [`extract_blocks`] (`avx2::blocks` on eight pixels): `pair(pixel,
/// starts)` loads the 8 sample values of pixels `pixel` and `pixel + 1` from their
/// `starts` on, in lanes 0-7 and 8-15.
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn blocks(
    pair: impl Fn(usize, [usize; 2]) -> __m512,
    n_samples: usize,
    peaks: &[i64],
    window_width: i64,
    window_shift: i64,
    sampling_rate_ghz: f64,
    image: &mut [f32],
    peak_time: &mut [f32],
) -> usize {
    let zero = _mm512_setzero_pd();
    let one = _mm512_set1_pd(1.0);
    let shift = _mm512_set1_epi64(window_shift);
    let width = _mm512_set1_epi64(window_width);
    let last_load = _mm512_set1_epi64((n_samples - 8) as i64);
    let lane_positions: [__m512i; 8] = std::array::from_fn(|k| _mm512_set1_epi64(k as i64));
    let (peaks, _) = peaks.as_chunks::<8>();
    let (image, _) = image.as_chunks_mut::<8>();
    let (peak_time, _) = peak_time.as_chunks_mut::<8>();
    let n_blocks = peaks.len().min(image.len()).min(peak_time.len());
    let transpose = Transpose::new();
    let accumulate = |block: usize| {
        // Per pixel (one per 64-bit lane): where its 8 loaded samples start (the window's
        // first sample, moved back into the waveform) and which of them are the window
        // (lanes `from <= k < to`, the window clipped to the waveform).
        let window_start = _mm512_sub_epi64(load_i64(&peaks[block]), shift);
        let load_start = _mm512_max_epi64(
            _mm512_min_epi64(window_start, last_load),
            _mm512_setzero_si512(),
        );
        let from = _mm512_sub_epi64(window_start, load_start);
        let to = _mm512_add_epi64(from, width);
        let starts = lanes_i64(load_start).map(|start| start as usize);
        // Written out: a closure with vector arguments that `array::map` calls is not
        // inlined.
        let row = |lane: usize| pair(8 * block + lane, [starts[lane], starts[lane + 1]]);
        let rows = [row(0), row(2), row(4), row(6)];
        let positions = transpose.apply(rows);

        // The loaded samples' indices (exact: below 2^31).
        let mut index = _mm512_cvtepi64_pd(load_start);
        let mut sum = zero;
        let mut time_num = zero;
        let mut time_den = zero;
        for (&samples, &position) in positions.iter().zip(&lane_positions) {
            // +0.0 outside the window: !(from > position) & (to > position)
            let inside =
                _mm512_cmpgt_epi64_mask(to, position) & !_mm512_cmpgt_epi64_mask(from, position);
            let value = _mm512_maskz_cvtps_pd(inside, samples);
            sum = _mm512_add_pd(sum, value);
            // As in the AVX2 kernel: `max` gives +0.0 for NaN, -0.0 and negative values,
            // and the fused multiply-add rounds once, as ctapipe's add of the exact product.
            let positive = _mm512_max_pd(value, zero);
            time_num = _mm512_fmadd_pd(positive, index, time_num);
            time_den = _mm512_add_pd(time_den, positive);
            index = _mm512_add_pd(index, one);
        }
        (block, sum, time_num, time_den)
    };
    let finish = |(block, sum, time_num, time_den): (usize, __m512d, __m512d, __m512d)| {
        let times = peak_times_ns(&peaks[block], time_num, time_den, sampling_rate_ghz);
        store8(&mut image[block], _mm512_cvtpd_ps(sum));
        store8(&mut peak_time[block], times);
    };
    pipelined(0..n_blocks, (0, zero, zero, zero), accumulate, finish);
    n_blocks * 8
}

/// The conversion of sixteen stored `u16` values to the `f32` values they stand for, as
/// `avx2::Conversion` converts eight.
#[derive(Clone, Copy)]
struct Conversion {
    scale: __m512,
    offset: __m512,
    /// `1 / scale` when it divides every `u16` value exactly (see `super::ScaleDivision`).
    reciprocal: Option<__m512>,
}

impl Conversion {
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn of(waveforms: &QuantizedWaveforms<'_>, by_reciprocal: bool) -> Self {
        Self {
            scale: _mm512_set1_ps(waveforms.scale),
            offset: _mm512_set1_ps(waveforms.offset),
            reciprocal: by_reciprocal.then(|| _mm512_set1_ps(1.0 / waveforms.scale)),
        }
    }

    /// `value as f32 / scale - offset` in the lanes of `keep`, +0.0 in the others, each
    /// operation rounded as the scalar `f32` operations are.
    #[inline]
    #[target_feature(enable = "avx512f,fma")]
    fn values(self, stored: __m256i, keep: u16) -> __m512 {
        let exact = _mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(stored));
        let quotient = match self.reciprocal {
            // `avx2::divide_by_reciprocal`: `q = n r`, the exact remainder, `q + rem r`.
            Some(reciprocal) => {
                let quotient = _mm512_mul_ps(exact, reciprocal);
                let remainder = _mm512_fnmadd_ps(quotient, self.scale, exact);
                _mm512_fmadd_ps(remainder, reciprocal, quotient)
            }
            None => _mm512_div_ps(exact, self.scale),
        };
        _mm512_maskz_sub_ps(keep, quotient, self.offset)
    }
}

/// The eight `u16` values from `first` on and the eight from `second` on, in one vector.
#[inline]
#[target_feature(enable = "avx2")]
fn load_pair_u16(values: &[u16], first: usize, second: usize) -> __m256i {
    _mm256_inserti128_si256::<1>(
        _mm256_castsi128_si256(load8_u16(values, first)),
        load8_u16(values, second),
    )
}

/// The eight values of `values` in the lanes of a vector.
#[inline]
#[target_feature(enable = "avx512f")]
#[allow(unsafe_code)]
fn load_i64(values: &[i64; 8]) -> __m512i {
    // SAFETY: `values` holds the 8 `i64` that the unaligned load reads.
    unsafe { _mm512_loadu_epi64(values.as_ptr()) }
}

/// The eight lanes of a vector.
#[inline]
#[target_feature(enable = "avx512f")]
#[allow(unsafe_code)]
fn lanes_i64(vector: __m512i) -> [i64; 8] {
    let mut lanes = [0; 8];
    // SAFETY: `lanes` holds the 8 `i64` that the unaligned store writes.
    unsafe { _mm512_storeu_epi64(lanes.as_mut_ptr(), vector) };
    lanes
}

/// The vector whose lane `i` is `lane(i)`.
#[inline]
#[target_feature(enable = "avx512f")]
#[allow(unsafe_code)]
fn index_vector(lane: impl Fn(i32) -> i32) -> __m512i {
    let lanes: [i32; 16] = std::array::from_fn(|i| lane(i as i32));
    // SAFETY: `lanes` holds the 16 `i32` that the unaligned load reads.
    unsafe { _mm512_loadu_epi32(lanes.as_ptr()) }
}

/// The transposition of a block's samples: from four vectors holding two pixels' 8
/// samples each (pixel `2i` in lanes 0-7 of vector `i`, pixel `2i + 1` in lanes 8-15) to
/// eight vectors holding one sample position of the eight pixels each.
#[derive(Clone, Copy)]
struct Transpose {
    /// Samples 0-3 (then 4-7) of four pixels, lane `4k + p` for sample `k` of pixel `p`,
    /// from the two vectors that hold them.
    first_half: __m512i,
    second_half: __m512i,
    /// Sample positions `2j` and `2j + 1` of the eight pixels (lanes 0-7, 8-15), from the
    /// two vectors of the first step that hold pixels 0-3 and 4-7.
    pairs: [__m512i; 2],
}

impl Transpose {
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn new() -> Self {
        // Input lane `16 (p / 2) + 8 (p % 2) + k` holds sample `k` of pixel `p` (lanes of
        // the second source count from 16); output lane `i` of the first step holds
        // sample `first + i / 4` of pixel `i % 4`.
        let gather = |first: i32| {
            index_vector(|i| {
                let (k, p) = (i / 4, i % 4);
                16 * (p / 2) + 8 * (p % 2) + first + k
            })
        };
        // Output lane `i` of the second step holds sample `2 pair + i / 8` of pixel `q =
        // i % 8`: pixels 0-3 from the first source (lane `4 sample + q`), 4-7 from the
        // second.
        let pair = |pair: i32| {
            index_vector(|i| {
                let (j, q) = (i / 8, i % 8);
                16 * (q / 4) + 4 * (2 * pair + j) + q % 4
            })
        };
        Self {
            first_half: gather(0),
            second_half: gather(4),
            pairs: [pair(0), pair(1)],
        }
    }

    /// `positions[k]` holds sample `k` of pixels 0-7 in its lanes 0-7.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    fn apply(self, rows: [__m512; 4]) -> [__m256; 8] {
        let low = |a, b| _mm512_permutex2var_ps(a, self.first_half, b);
        let high = |a, b| _mm512_permutex2var_ps(a, self.second_half, b);
        // Samples 0-3 and 4-7 of pixels 0-3 and of pixels 4-7.
        let (low03, high03) = (low(rows[0], rows[1]), high(rows[0], rows[1]));
        let (low47, high47) = (low(rows[2], rows[3]), high(rows[2], rows[3]));
        let pair = |pair: usize, a, b| _mm512_permutex2var_ps(a, self.pairs[pair], b);
        let pairs = [
            pair(0, low03, low47),
            pair(1, low03, low47),
            pair(0, high03, high47),
            pair(1, high03, high47),
        ];
        std::array::from_fn(|k| {
            let pair = pairs[k / 2];
            if k % 2 == 0 {
                _mm512_castps512_ps256(pair)
            } else {
                _mm512_extractf32x8_ps::<1>(pair)
            }
        })
    }
}

/// The sum of eight vectors as a tree of depth 3 (for exact sums only).
#[inline]
#[target_feature(enable = "avx512f")]
fn tree_sum(terms: [__m512d; 8]) -> __m512d {
    let pairs: [__m512d; 4] =
        std::array::from_fn(|i| _mm512_add_pd(terms[2 * i], terms[2 * i + 1]));
    _mm512_add_pd(
        _mm512_add_pd(pairs[0], pairs[1]),
        _mm512_add_pd(pairs[2], pairs[3]),
    )
}

/// The peak times (ns) of a block of eight pixels, as `avx2::peak_times_ns` computes
/// those of four.
#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
fn peak_times_ns(
    peaks: &[i64; 8],
    time_num: __m512d,
    time_den: __m512d,
    sampling_rate_ghz: f64,
) -> __m256 {
    // Rounded to nearest as `peak as f64` is.
    let peak_index = _mm512_cvtepi64_pd(load_i64(peaks));
    let weighted = _mm512_div_pd(time_num, time_den);
    let any_positive = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(time_den, _mm512_setzero_pd());
    let samples = _mm512_mask_blend_pd(any_positive, peak_index, weighted);
    let samples = _mm512_cvtps_pd(_mm512_cvtpd_ps(samples));
    let ns = if is_power_of_two(sampling_rate_ghz) {
        _mm512_mul_pd(samples, _mm512_set1_pd(1.0 / sampling_rate_ghz))
    } else {
        _mm512_div_pd(samples, _mm512_set1_pd(sampling_rate_ghz))
    };
    _mm512_cvtpd_ps(ns)
}

/// Stores eight lanes to `values`.
#[inline]
#[target_feature(enable = "avx")]
#[allow(unsafe_code)]
fn store8(values: &mut [f32; 8], lanes: __m256) {
    // SAFETY: `values` holds the 8 `f32` that the unaligned store writes.
    unsafe { _mm256_storeu_ps(values.as_mut_ptr(), lanes) }
}
