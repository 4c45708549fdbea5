//! The certified `f32` kernel of the peak finder (steps 1-3 of the module documentation of
//! `neighbor_peak`) for AVX2, whose scan of the samples' magnitude takes AVX-512 where the
//! CPU has it, and the buffers both AVX2 kernels keep from call to call.

use std::arch::x86_64::{
    __m256, __m256i, _CMP_GE_OQ, _mm_cvtss_f32, _mm256_add_ps, _mm256_and_si256,
    _mm256_castps_si256, _mm256_castps256_ps128, _mm256_cmp_ps, _mm256_cvtsi256_si32,
    _mm256_loadu_ps, _mm256_max_epu32, _mm256_max_ps, _mm256_movemask_epi8, _mm256_movemask_ps,
    _mm256_mul_ps, _mm256_packs_epi16, _mm256_packs_epi32, _mm256_permute_ps,
    _mm256_permute2f128_ps, _mm256_permute2x128_si256, _mm256_permutevar8x32_epi32,
    _mm256_set1_epi32, _mm256_set1_ps, _mm256_setr_epi32, _mm256_setzero_ps, _mm256_setzero_si256,
    _mm256_shuffle_epi32, _mm256_sub_ps, _mm512_and_si512, _mm512_loadu_si512, _mm512_max_epu32,
    _mm512_reduce_max_epu32, _mm512_set1_epi32, _mm512_setzero_si512,
};

use super::super::avx2::{Prefetch, load8, store8};
use super::layout::{Layouts, Members, pipelined_members};
use super::{Event, LANES, NeighborPeakScratch, Range, candidate_margin, exact_peak_among};

/// Largest `|local_weight|` of the certified path (its `f32` product stays exact
/// enough and the bound meaningful).
pub(super) const MAX_WEIGHT: i64 = 1 << 20;

/// Largest `|sample|` of the certified path: sums of many such samples stay far from
/// `f32::MAX`.
const MAX_MAGNITUDE: f32 = 1e30;

/// Reusable buffers of the AVX2 kernels (this one and the integer kernel).
#[derive(Debug, Clone, Default)]
pub(super) struct Scratch {
    /// The data of the next call, fetched during this one.
    pub(super) upcoming: Prefetch,
    /// One pixel's neighbour sum in `f32`, vector after vector.
    sum_f32: Vec<f32>,
    /// One pixel's neighbour sum as AVX2 vectors (waveforms of more than 64 samples).
    sums: Vec<__m256>,
    /// The layouts of the cameras of the last calls, most recently used first.
    pub(super) layouts: Layouts,
}

/// Writes every pixel's peak to `peaks` and returns true, or returns false without
/// writing when the event has non-finite or absurdly large samples, more than
/// `u32::MAX` samples, or neighbours outside it.
/// Needs `event.n_samples >= LANES` and `|local_weight| <= MAX_WEIGHT`.
#[target_feature(enable = "avx2,popcnt")]
pub(super) fn certified_peaks(
    event: &Event<'_>,
    scratch: &mut NeighborPeakScratch,
    peaks: &mut [usize],
    ready: &mut impl FnMut(Range<usize>, &[usize]),
) -> bool {
    let n_pixels = peaks.len();
    let n_samples = event.n_samples;
    let size = n_pixels.checked_mul(n_samples);
    let Some(waveforms) = size.and_then(|size| event.waveforms.get(..size)) else {
        return false;
    };
    let magnitude = if crate::has_avx512() {
        // SAFETY: the scan needs AVX-512 F, which the CPU has.
        #[allow(unsafe_code)]
        unsafe {
            finite_magnitude_avx512(waveforms)
        }
    } else {
        finite_magnitude(waveforms)
    };
    let Some(magnitude) = magnitude else {
        return false;
    };
    let Scratch {
        upcoming,
        sum_f32,
        sums,
        layouts,
    } = &mut scratch.avx2;
    let Some(layout) = layouts.of(event, n_pixels) else {
        return false;
    };
    let pixels = Pixels {
        event,
        waveforms,
        weight: event.local_weight as f32,
        magnitude,
    };
    let mut upcoming = std::mem::take(upcoming);
    let n_vectors = n_samples.div_ceil(LANES);
    for tile in &layout.tiles {
        for group in &layout.groups[tile.groups.clone()] {
            let group = layout.members(group);
            // Pixels without neighbours (rare) and waveforms of more than 64 samples take
            // the general loop.
            let unrolled = (group.n_neighbors > 0).then_some(n_vectors);
            match unrolled {
                Some(1) => peaks_of_group::<1>(&pixels, group, peaks, sum_f32, &mut upcoming),
                Some(2) => peaks_of_group::<2>(&pixels, group, peaks, sum_f32, &mut upcoming),
                Some(3) => peaks_of_group::<3>(&pixels, group, peaks, sum_f32, &mut upcoming),
                Some(4) => peaks_of_group::<4>(&pixels, group, peaks, sum_f32, &mut upcoming),
                Some(5) => peaks_of_group::<5>(&pixels, group, peaks, sum_f32, &mut upcoming),
                Some(6) => peaks_of_group::<6>(&pixels, group, peaks, sum_f32, &mut upcoming),
                Some(7) => peaks_of_group::<7>(&pixels, group, peaks, sum_f32, &mut upcoming),
                Some(8) => peaks_of_group::<8>(&pixels, group, peaks, sum_f32, &mut upcoming),
                _ => peaks_of_long_waveforms(&pixels, group, n_vectors, peaks, sums, sum_f32),
            }
        }
        ready(tile.pixels.clone(), &peaks[tile.pixels.clone()]);
    }
    true
}

/// What the sums of every pixel need: the event, its waveforms (`n_pixels` rows,
/// where every row of the layout lies), `local_weight` and the event's largest
/// `|sample|`.
struct Pixels<'a> {
    event: &'a Event<'a>,
    waveforms: &'a [f32],
    weight: f32,
    magnitude: f32,
}

/// Where the sums of [`Pixels`] load from, worked out once per group: the first
/// sample of the waveforms and the first of the last vector of the first row.
#[derive(Clone, Copy)]
struct Rows {
    base: *const f32,
    last: *const f32,
    n_samples: usize,
}

impl Pixels<'_> {
    /// The loads of [`Rows::sums`] for these pixels.
    fn rows(&self) -> Rows {
        let base = self.waveforms.as_ptr();
        let n_samples = self.event.n_samples;
        Rows {
            base,
            // Within the first row of `n_samples >= 8` samples (this path needs at
            // least 8); when `waveforms` holds no row, there is no pixel to load for.
            last: base.wrapping_add(n_samples - LANES),
            n_samples,
        }
    }
}

impl Rows {
    /// The `V` vectors of `pixel`'s sum (`weight` times its own waveform when
    /// `WEIGHTED`, plus the rows `rows` of its neighbours, in `f32`): vector `v < V - 1`
    /// holds samples `8 v..`, the last one the waveform's last 8 samples.
    ///
    /// # Safety
    /// `pixel` and every row must be one of the pixels of the waveforms of these
    /// `Rows`, and `V == n_samples.div_ceil(8)`.
    #[inline]
    #[target_feature(enable = "avx2")]
    #[allow(unsafe_code)]
    unsafe fn sums<const V: usize, const WEIGHTED: bool>(
        self,
        pixel: usize,
        rows: &[u32],
        weight: __m256,
    ) -> [__m256; V] {
        // SAFETY (here and below): a row start plus `n_samples` is within the
        // waveforms (the caller's contract), and every vector lies within its row:
        // vector `v` of the first `V - 1` ends at `8 v + 8 <= 8 (V - 1) < n_samples`,
        // the last one at `n_samples`.
        let load = |row: usize, v: usize| unsafe {
            if v + 1 < V {
                _mm256_loadu_ps(self.base.add(row + v * LANES))
            } else {
                _mm256_loadu_ps(self.last.add(row))
            }
        };
        let mut sums = [_mm256_setzero_ps(); V];
        if WEIGHTED {
            for (v, sum) in sums.iter_mut().enumerate() {
                *sum = _mm256_mul_ps(load(pixel * self.n_samples, v), weight);
            }
        }
        for &row in rows {
            for (v, sum) in sums.iter_mut().enumerate() {
                *sum = _mm256_add_ps(*sum, load(row as usize, v));
            }
        }
        sums
    }
}

/// The peak of every pixel of one group for waveforms of `V <= 8` vectors (the loops
/// over the vectors unroll): the sums stay in registers, and the candidates are one
/// bit mask.
#[inline]
#[target_feature(enable = "avx2,popcnt")]
fn peaks_of_group<const V: usize>(
    pixels: &Pixels<'_>,
    group: Members<'_>,
    peaks: &mut [usize],
    values: &mut Vec<f32>,
    upcoming: &mut Prefetch,
) {
    // The usual numbers of neighbours (hexagonal and square pixels) are constants
    // here, so that their loops unroll too.
    match (group.n_neighbors, pixels.weight != 0.0) {
        (4, false) => group_loop::<V, 4, false>(pixels, group, peaks, values, upcoming),
        (6, false) => group_loop::<V, 6, false>(pixels, group, peaks, values, upcoming),
        (_, false) => group_loop::<V, 0, false>(pixels, group, peaks, values, upcoming),
        (_, true) => group_loop::<V, 0, true>(pixels, group, peaks, values, upcoming),
    }
}

/// The loop of [`peaks_of_group`], for `K` neighbours per pixel (any number but 0 when
/// `K` is 0), with the pixel's own waveform weighted when `WEIGHTED`.
#[inline]
#[target_feature(enable = "avx2,popcnt")]
#[allow(unsafe_code)]
fn group_loop<const V: usize, const K: usize, const WEIGHTED: bool>(
    pixels: &Pixels<'_>,
    group: Members<'_>,
    peaks: &mut [usize],
    values: &mut Vec<f32>,
    upcoming: &mut Prefetch,
) {
    let n_samples = pixels.event.n_samples;
    let margin = candidate_margin(group.n_neighbors, pixels.weight, pixels.magnitude);
    let margin = _mm256_set1_ps(margin);
    // Bit `8 * vector + lane` of the mask; the first `overlap` lanes of the last vector
    // repeat samples of its predecessor and are left out.
    let last = (V - 1) * LANES;
    let overlap = V * LANES - n_samples;
    let fresh = (((0xff_u64 << overlap) & 0xff) << last) | ((1_u64 << last) - 1);
    let loads = pixels.rows();
    let weight = _mm256_set1_ps(pixels.weight);
    let mut sums_of = |pixel: u32, rows: &[u32]| {
        let pixel = pixel as usize;
        upcoming.two_lines();
        // SAFETY: the layout's pixels and rows are pixels of `waveforms`, and `V` is
        // the number of vectors of its waveforms (`certified_peaks`).
        let sums = unsafe { loads.sums::<V, WEIGHTED>(pixel, rows, weight) };
        (pixel, sums)
    };
    let peak_of = |(pixel, sums): (usize, [__m256; V])| {
        let threshold = _mm256_sub_ps(
            broadcast_max(tree_max(&sums, |a, b| _mm256_max_ps(a, b))),
            margin,
        );
        let candidates = candidate_bits(&sums, threshold) & fresh;
        let peak = if candidates.count_ones() == 1 {
            let bit = candidates.trailing_zeros() as usize;
            if bit >= last { bit - overlap } else { bit }
        } else {
            exact_peak_of_vectors(pixels.event, pixel, sums, threshold, values)
        };
        peaks[pixel] = peak;
    };
    // A pixel's sums are computed before the previous pixel's peak is decided, so that
    // its loads and additions overlap the other's chain of dependent operations (max,
    // compare, pack, `movemask`): 15-20 % fewer cycles than one pixel after the other.
    let empty = (0, [_mm256_setzero_ps(); V]);
    pipelined_members::<K, _>(group, empty, &mut sums_of, peak_of);
}

/// The lane-by-lane maximum of `vectors` by `max`, as a tree (a short chain of
/// dependencies).
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn tree_max<T: Copy, const V: usize>(vectors: &[T; V], max: impl Fn(T, T) -> T) -> T {
    let mut level = *vectors;
    let mut n = V;
    while n > 1 {
        for i in 0..n / 2 {
            level[i] = max(level[2 * i], level[2 * i + 1]);
        }
        if n % 2 == 1 {
            level[n / 2] = level[n - 1];
        }
        n = n.div_ceil(2);
    }
    level[0]
}

/// One bit per lane whose sum reaches `threshold` (bit `8 * vector + lane`): the
/// comparisons of four vectors packed to bytes, put back in order, one `movemask`.
#[inline]
#[target_feature(enable = "avx2")]
fn candidate_bits<const V: usize>(sums: &[__m256; V], threshold: __m256) -> u64 {
    let reached: [__m256i; V] = std::array::from_fn(|vector| {
        _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(sums[vector], threshold))
    });
    // The packs work within 128-bit halves: dword `d` of the packed bytes holds lanes
    // `4 * (d / 4)..` of vector `d % 4`, so dwords 0, 4, 1, 5, ... are in sample order.
    let in_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let none = _mm256_setzero_si256();
    let mut bits = 0;
    for (quad, vectors) in reached.chunks(4).enumerate() {
        let vector = |i: usize| vectors.get(i).copied().unwrap_or(none);
        let low = _mm256_packs_epi32(vector(0), vector(1));
        let high = _mm256_packs_epi32(vector(2), vector(3));
        let bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(low, high), in_order);
        bits |= u64::from(_mm256_movemask_epi8(bytes) as u32) << (32 * quad);
    }
    bits
}

/// Every pixel's peak of one group for waveforms of more than 64 samples, and of the
/// group without neighbours: each vector of the sum in a register while the rows are
/// added, stored to `sums`, then [`peak_of_sums`].
#[target_feature(enable = "avx2,popcnt")]
#[allow(unsafe_code)]
fn peaks_of_long_waveforms(
    pixels: &Pixels<'_>,
    group: Members<'_>,
    n_vectors: usize,
    peaks: &mut [usize],
    sums: &mut Vec<__m256>,
    values: &mut Vec<f32>,
) {
    let n_samples = pixels.event.n_samples;
    let margin = candidate_margin(group.n_neighbors, pixels.weight, pixels.magnitude);
    let base = pixels.waveforms.as_ptr();
    // SAFETY: every row (a pixel's own or a neighbour's) is one of the pixels of
    // `waveforms` (the layout's rows and pixels), and every start is at most
    // `n_samples - 8` (`vector_start`).
    let load = |row: usize, start: usize| unsafe { _mm256_loadu_ps(base.add(row + start)) };
    let weight = _mm256_set1_ps(pixels.weight);
    sums.resize(n_vectors, _mm256_setzero_ps());
    let n = group.n_neighbors;
    for (member, &pixel) in group.pixels.iter().enumerate() {
        let pixel = pixel as usize;
        let rows = &group.rows[member * n..(member + 1) * n];
        for (vector, sum) in sums.iter_mut().enumerate() {
            let start = vector_start(vector, n_samples);
            *sum = if pixels.weight != 0.0 {
                _mm256_mul_ps(load(pixel * n_samples, start), weight)
            } else {
                _mm256_setzero_ps()
            };
            for &row in rows {
                *sum = _mm256_add_ps(*sum, load(row as usize, start));
            }
        }
        peaks[pixel] = peak_of_sums(pixels.event, pixel, sums, margin, values);
    }
}

/// The peak of one pixel from its `f32` sums (steps 2-3 of the module documentation):
/// the candidates are the samples whose sum is within `margin` of the maximum.
#[inline]
#[target_feature(enable = "avx2,popcnt")]
fn peak_of_sums(
    event: &Event<'_>,
    pixel: usize,
    sums: &[__m256],
    margin: f32,
    values: &mut Vec<f32>,
) -> usize {
    let n_samples = event.n_samples;
    let mut max = _mm256_set1_ps(f32::NEG_INFINITY);
    for &sum in sums {
        max = _mm256_max_ps(max, sum);
    }
    let threshold = _mm256_sub_ps(broadcast_max(max), _mm256_set1_ps(margin));

    // One bit per lane at or above the threshold; lanes that repeat samples of the
    // previous vector are masked out.
    let mut candidates = 0;
    let mut first_candidate = 0;
    for (vector, &sum) in sums.iter().enumerate().rev() {
        let start = vector_start(vector, n_samples);
        let reached = _mm256_cmp_ps::<_CMP_GE_OQ>(sum, threshold);
        let bits = (_mm256_movemask_ps(reached) as u32) & (0xff << (vector * LANES - start));
        candidates += bits.count_ones();
        if bits != 0 {
            first_candidate = start + bits.trailing_zeros() as usize;
        }
    }
    if candidates == 1 {
        first_candidate
    } else {
        exact_peak_of_candidates(event, pixel, sums, threshold, values)
    }
}

/// [`exact_peak_of_candidates`] for sums held in registers: taking them by value keeps
/// the hot loop from storing them for every pixel.
#[cold]
#[inline(never)]
#[target_feature(enable = "avx2")]
fn exact_peak_of_vectors<const V: usize>(
    event: &Event<'_>,
    pixel: usize,
    sums: [__m256; V],
    threshold: __m256,
    values: &mut Vec<f32>,
) -> usize {
    exact_peak_of_candidates(event, pixel, &sums, threshold, values)
}

/// The peak among the samples whose `f32` sum reaches `threshold` (all lanes equal),
/// decided with ctapipe's sums in its order: ties and near-ties, rare.
#[cold]
#[inline(never)]
#[target_feature(enable = "avx2")]
fn exact_peak_of_candidates(
    event: &Event<'_>,
    pixel: usize,
    sums: &[__m256],
    threshold: __m256,
    values: &mut Vec<f32>,
) -> usize {
    let n_samples = event.n_samples;
    values.resize(sums.len() * LANES, 0.0);
    for (vector, &sum) in sums.iter().enumerate() {
        store8(values, vector * LANES, sum);
    }
    let values = &values[..];
    let threshold = _mm_cvtss_f32(_mm256_castps256_ps128(threshold));
    let samples = (0..sums.len()).flat_map(|vector| {
        let start = vector_start(vector, n_samples);
        (vector * LANES - start..LANES)
            .filter(move |&lane| values[vector * LANES + lane] >= threshold)
            .map(move |lane| start + lane)
    });
    exact_peak_among(event, pixel, samples)
}

/// First sample of vector `vector` of a waveform of `n_samples >= LANES` samples:
/// `0, 8, 16, ...`, except that the last vector ends with the waveform (it overlaps its
/// predecessor when `n_samples` is not a multiple of 8; the overlapping sums are the
/// same additions, so they agree).
#[inline]
fn vector_start(vector: usize, n_samples: usize) -> usize {
    (vector * LANES).min(n_samples - LANES)
}

/// The largest `|sample|` when every sample is finite and at most [`MAX_MAGNITUDE`].
#[target_feature(enable = "avx2")]
pub(super) fn finite_magnitude(waveforms: &[f32]) -> Option<f32> {
    // For non-negative floats the order of the bit patterns is the order of the values,
    // and infinities and NaNs have the largest patterns.
    let abs_bits = _mm256_set1_epi32(i32::MAX);
    let mut max_bits = _mm256_castps_si256(_mm256_setzero_ps());
    let mut chunks = waveforms.chunks_exact(LANES);
    for chunk in &mut chunks {
        let bits = _mm256_and_si256(_mm256_castps_si256(load8(chunk, 0)), abs_bits);
        max_bits = _mm256_max_epu32(max_bits, bits);
    }
    let max_bits = _mm256_max_epu32(max_bits, _mm256_permute2x128_si256::<1>(max_bits, max_bits));
    let max_bits = _mm256_max_epu32(max_bits, _mm256_shuffle_epi32::<0b0100_1110>(max_bits));
    let max_bits = _mm256_max_epu32(max_bits, _mm256_shuffle_epi32::<0b1011_0001>(max_bits));
    let lanes = f32::from_bits(_mm256_cvtsi256_si32(max_bits) as u32);
    bounded_magnitude(lanes, chunks.remainder())
}

/// [`finite_magnitude`] sixteen samples at a time.
#[target_feature(enable = "avx512f")]
pub(super) fn finite_magnitude_avx512(waveforms: &[f32]) -> Option<f32> {
    let abs_bits = _mm512_set1_epi32(i32::MAX);
    let mut max_bits = _mm512_setzero_si512();
    let mut chunks = waveforms.chunks_exact(16);
    for chunk in &mut chunks {
        // SAFETY: `chunk` holds the 16 `f32` that the unaligned load reads.
        #[allow(unsafe_code)]
        let values = unsafe { _mm512_loadu_si512(chunk.as_ptr().cast()) };
        max_bits = _mm512_max_epu32(max_bits, _mm512_and_si512(values, abs_bits));
    }
    let lanes = f32::from_bits(_mm512_reduce_max_epu32(max_bits));
    bounded_magnitude(lanes, chunks.remainder())
}

/// The end of both scans: the largest of `lanes` (the vectors' largest `|sample|`, as
/// bits) and the `|sample|` of the `remainder`, when every one is finite and at most
/// [`MAX_MAGNITUDE`]. For non-negative floats the order of the bit patterns is the order
/// of the values, and infinities and NaNs have the largest patterns.
fn bounded_magnitude(lanes: f32, remainder: &[f32]) -> Option<f32> {
    let magnitude = remainder
        .iter()
        .map(|sample| f32::from_bits(sample.to_bits() & 0x7fff_ffff))
        .fold(lanes, |max, magnitude| {
            if magnitude.to_bits() > max.to_bits() {
                magnitude
            } else {
                max
            }
        });
    (magnitude.to_bits() <= MAX_MAGNITUDE.to_bits()).then_some(magnitude)
}

/// The largest of the eight lanes in every lane (no NaN among them).
#[inline]
#[target_feature(enable = "avx2")]
fn broadcast_max(lanes: __m256) -> __m256 {
    let max = _mm256_max_ps(lanes, _mm256_permute2f128_ps::<1>(lanes, lanes));
    let max = _mm256_max_ps(max, _mm256_permute_ps::<0b0100_1110>(max));
    _mm256_max_ps(max, _mm256_permute_ps::<0b1011_0001>(max))
}
