//! The integer kernel of `neighbor_peak_indices_quantized_by_tile`: the same camera layout
//! and software pipelining as the `f32` kernel (`avx2`), on sixteen `u16` sums per vector.

use std::arch::x86_64::{
    __m256i, _mm_max_epu16, _mm_shuffle_epi32, _mm_srli_epi32, _mm256_adds_epu16,
    _mm256_broadcastw_epi16, _mm256_castsi256_si128, _mm256_cmpeq_epi16, _mm256_extracti128_si256,
    _mm256_loadu_si256, _mm256_max_epu16, _mm256_movemask_epi8, _mm256_packs_epi16,
    _mm256_permute4x64_epi64, _mm256_set1_epi16, _mm256_setzero_si256, _mm256_subs_epu16,
};

use super::super::avx2::Prefetch;
use super::avx2::{Scratch, tree_max};
use super::layout::{Members, pipelined_members};
use super::{Event, NeighborPeakScratch, QuantizedWaveforms, Range};

/// Samples per `u16` vector.
pub(super) const LANES: usize = 16;

/// Most vectors per waveform of the integer kernel (64 samples).
pub(super) const MAX_VECTORS: usize = 4;

/// Largest integer margin of the integer kernel (only absurd scales need more; their
/// events take the `f32` kernel).
const MAX_MARGIN: f64 = 256.0;

/// Writes every pixel's peak to `peaks` and returns true, or returns false without
/// writing (nor calling `ready`) when the event does not suit the integer kernel: a
/// `local_weight` other than 0, fewer than 16 or more than 64 samples, a scale or
/// offset that is not finite (or a scale so large that the margin is absurd), more
/// than `u32::MAX` samples, or neighbours outside it.
#[target_feature(enable = "avx2,popcnt")]
pub(super) fn certified_quantized_peaks(
    event: &Event<'_, QuantizedWaveforms<'_>>,
    scratch: &mut NeighborPeakScratch,
    peaks: &mut [usize],
    ready: &mut impl FnMut(Range<usize>, &[usize]),
) -> bool {
    let n_pixels = peaks.len();
    let n_samples = event.n_samples;
    let n_vectors = n_samples.div_ceil(LANES);
    if event.local_weight != 0 || n_samples < LANES || n_vectors > MAX_VECTORS {
        return false;
    }
    let quantized = event.waveforms;
    let size = n_pixels.checked_mul(n_samples);
    let Some(values) = size.and_then(|size| quantized.values.get(..size)) else {
        return false;
    };
    let Some(magnitude) = quantized.magnitude_bound() else {
        return false;
    };
    let Scratch {
        upcoming, layouts, ..
    } = &mut scratch.avx2;
    let Some(layout) = layouts.of(event, n_pixels) else {
        return false;
    };
    let most_neighbors = layout.groups.iter().map(|g| g.n_neighbors).max();
    if quantized_margin(most_neighbors.unwrap_or(0), quantized.scale, magnitude).is_none() {
        return false;
    }
    let rows = QuantizedRows {
        base: values.as_ptr(),
        last: values.as_ptr().wrapping_add(n_samples - LANES),
    };
    let mut upcoming = std::mem::take(upcoming);
    for tile in &layout.tiles {
        for group in &layout.groups[tile.groups.clone()] {
            let group = layout.members(group);
            // Checked above for the largest number of neighbours, so it exists.
            let margin =
                quantized_margin(group.n_neighbors, quantized.scale, magnitude).unwrap_or(u16::MAX);
            let run = QuantizedGroup {
                event,
                rows,
                group,
                margin,
            };
            match n_vectors {
                _ if group.n_neighbors == 0 => {
                    // ctapipe's sum is `waveform * 0`, zero (of either sign) at every
                    // sample: the first maximum is sample 0.
                    for &pixel in group.pixels {
                        peaks[pixel as usize] = 0;
                    }
                }
                1 => run.peaks::<1>(peaks, &mut upcoming),
                2 => run.peaks::<2>(peaks, &mut upcoming),
                3 => run.peaks::<3>(peaks, &mut upcoming),
                _ => run.peaks::<4>(peaks, &mut upcoming),
            }
        }
        ready(tile.pixels.clone(), &peaks[tile.pixels.clone()]);
    }
    true
}

/// The integer margin of `neighbor_peak_indices_quantized_by_tile` for `k` neighbours:
/// `floor(3 E scale)` with `E = k (k + 5) A 2^-25 + k 2^-126` (the bound of ctapipe's
/// `f32` sum there, the subnormal term as in [`candidate_margin`](super::candidate_margin));
/// `2E` separates two integer sums whose order rounding cannot swap, the third `E` is
/// slack. `None` beyond [`MAX_MARGIN`].
fn quantized_margin(k: usize, scale: f32, magnitude: f64) -> Option<u16> {
    let k_f64 = k as f64;
    let error =
        k_f64 * (k_f64 + 5.0) * magnitude * 2f64.powi(-25) + k_f64 * f64::from(f32::MIN_POSITIVE);
    let margin = (3.0 * error * f64::from(scale)).floor();
    (margin <= MAX_MARGIN).then_some(margin as u16)
}

/// Where the integer sums load from: the first stored value of the event's waveforms,
/// and the first of the last vector of its first row.
#[derive(Clone, Copy)]
struct QuantizedRows {
    base: *const u16,
    last: *const u16,
}

impl QuantizedRows {
    /// The `V` vectors of the integer sum of the rows `rows` (at least one), added with
    /// saturation: vector `v < V - 1` holds samples `16 v..`, the last one the
    /// waveform's last 16 samples.
    ///
    /// # Safety
    /// Every row must start a pixel's waveform within the event these `QuantizedRows`
    /// were made from, and `V == n_samples.div_ceil(16)`.
    #[inline]
    #[target_feature(enable = "avx2")]
    #[allow(unsafe_code)]
    unsafe fn sums<const V: usize>(self, rows: &[u32]) -> [__m256i; V] {
        // SAFETY (here and below): a row start plus `n_samples` is within the values
        // (the caller's contract), and every vector lies within its row: vector
        // `v < V - 1` ends at `16 v + 16 <= 16 (V - 1) < n_samples`, the last one at
        // `n_samples`.
        let load = |row: u32, v: usize| unsafe {
            let row = row as usize;
            if v + 1 < V {
                _mm256_loadu_si256(self.base.add(row + v * LANES).cast())
            } else {
                _mm256_loadu_si256(self.last.add(row).cast())
            }
        };
        let mut sums = [_mm256_setzero_si256(); V];
        if let Some((&first, rest)) = rows.split_first() {
            for (v, sum) in sums.iter_mut().enumerate() {
                *sum = load(first, v);
            }
            for &row in rest {
                for (v, sum) in sums.iter_mut().enumerate() {
                    *sum = _mm256_adds_epu16(*sum, load(row, v));
                }
            }
        }
        sums
    }
}

/// One group of pixels with the same number (at least one) of neighbours, and the
/// integer margin for that number.
struct QuantizedGroup<'a> {
    event: &'a Event<'a, QuantizedWaveforms<'a>>,
    rows: QuantizedRows,
    group: Members<'a>,
    margin: u16,
}

impl<'a> QuantizedGroup<'a> {
    /// The peak of every pixel of the group, for waveforms of `V` vectors.
    #[inline]
    #[target_feature(enable = "avx2,popcnt")]
    fn peaks<const V: usize>(&self, peaks: &mut [usize], upcoming: &mut Prefetch) {
        // The usual numbers of neighbours as constants, so that their loops unroll.
        // A margin of 0 (integer sums decide alone, e.g. ctapipe_io_zfits' scale 80):
        // the candidates are the lanes equal to the maximum, one comparison each.
        match (self.group.n_neighbors, self.margin == 0) {
            (4, true) => self.group_loop::<V, 4, true>(peaks, upcoming),
            (6, true) => self.group_loop::<V, 6, true>(peaks, upcoming),
            (4, false) => self.group_loop::<V, 4, false>(peaks, upcoming),
            (6, false) => self.group_loop::<V, 6, false>(peaks, upcoming),
            (_, _) => self.group_loop::<V, 0, false>(peaks, upcoming),
        }
    }

    /// The loop of [`QuantizedGroup::peaks`] for `K` neighbours per pixel (any number
    /// when `K` is 0), pipelined as the `f32` kernel's `group_loop` (`avx2`).
    #[inline]
    #[target_feature(enable = "avx2,popcnt")]
    #[allow(unsafe_code)]
    fn group_loop<const V: usize, const K: usize, const ZERO_MARGIN: bool>(
        &self,
        peaks: &mut [usize],
        upcoming: &mut Prefetch,
    ) {
        let event = self.event;
        let n_samples = event.n_samples;
        // Bit `16 * vector + lane` of the mask; the first `overlap` lanes of the last
        // vector repeat samples of its predecessor and are left out.
        let last = (V - 1) * LANES;
        let overlap = V * LANES - n_samples;
        let fresh = (((0xffff_u64 << overlap) & 0xffff) << last) | ((1_u64 << last) - 1);
        let margin = _mm256_set1_epi16(self.margin as i16);
        let rows = self.rows;
        let sample_of = |bit: usize| if bit >= last { bit - overlap } else { bit };
        let mut sums_of = |pixel: u32, neighbor_rows: &'a [u32]| {
            upcoming.two_lines();
            // SAFETY: the layout's rows are pixels of the event's values, and `V` is
            // the number of vectors of its waveforms (`certified_quantized_peaks`).
            let sums = unsafe { rows.sums::<V>(neighbor_rows) };
            (pixel as usize, neighbor_rows, sums)
        };
        let peak_of = |(pixel, neighbor_rows, sums): (usize, &[u32], [__m256i; V])| {
            let max = broadcast_max_u16(tree_max(&sums, |a, b| _mm256_max_epu16(a, b)));
            let candidates = if ZERO_MARGIN {
                equal_bits(&sums, max) & fresh
            } else {
                reaching_bits(&sums, _mm256_subs_epu16(max, margin)) & fresh
            };
            peaks[pixel] = if candidates.count_ones() == 1 {
                sample_of(candidates.trailing_zeros() as usize)
            } else {
                exact_quantized_peak(event.waveforms, neighbor_rows, candidates, sample_of)
            };
        };
        let empty = (0, &[][..], [_mm256_setzero_si256(); V]);
        pipelined_members::<K, _>(self.group, empty, &mut sums_of, peak_of);
    }
}

/// The largest of the sixteen unsigned lanes in every lane.
#[inline]
#[target_feature(enable = "avx2")]
fn broadcast_max_u16(lanes: __m256i) -> __m256i {
    let max = _mm_max_epu16(
        _mm256_castsi256_si128(lanes),
        _mm256_extracti128_si256::<1>(lanes),
    );
    let max = _mm_max_epu16(max, _mm_shuffle_epi32::<0b0100_1110>(max));
    let max = _mm_max_epu16(max, _mm_shuffle_epi32::<0b1011_0001>(max));
    let max = _mm_max_epu16(max, _mm_srli_epi32::<16>(max));
    _mm256_broadcastw_epi16(max)
}

/// One bit per lane whose sum reaches `threshold` (bit `16 * vector + lane`).
#[inline]
#[target_feature(enable = "avx2")]
fn reaching_bits<const V: usize>(sums: &[__m256i; V], threshold: __m256i) -> u64 {
    // `max(sum, threshold) == sum` is `sum >= threshold` for unsigned lanes.
    lane_bits::<V>(std::array::from_fn(|vector| {
        let sum = sums[vector];
        _mm256_cmpeq_epi16(_mm256_max_epu16(sum, threshold), sum)
    }))
}

/// One bit per lane whose sum equals `max` (bit `16 * vector + lane`).
#[inline]
#[target_feature(enable = "avx2")]
fn equal_bits<const V: usize>(sums: &[__m256i; V], max: __m256i) -> u64 {
    lane_bits::<V>(std::array::from_fn(|vector| {
        _mm256_cmpeq_epi16(sums[vector], max)
    }))
}

/// One bit per lane of 16-bit comparisons (bit `16 * vector + lane`, each lane all
/// ones or zeros): two vectors packed to bytes, put back in order, one `movemask`.
#[inline]
#[target_feature(enable = "avx2")]
fn lane_bits<const V: usize>(reached: [__m256i; V]) -> u64 {
    let none = _mm256_setzero_si256();
    let mut bits = 0;
    for (pair, vectors) in reached.chunks(2).enumerate() {
        let second = vectors.get(1).copied().unwrap_or(none);
        // The pack works within 128-bit halves: its quadwords hold samples 0-7 of the
        // first vector, 0-7 of the second, 8-15 of the first, 8-15 of the second.
        let bytes = _mm256_permute4x64_epi64::<0b1101_1000>(_mm256_packs_epi16(vectors[0], second));
        bits |= u64::from(_mm256_movemask_epi8(bytes) as u32) << (32 * pair);
    }
    bits
}

/// The peak of one pixel decided with ctapipe's `f32` sums of the converted samples,
/// among its `candidates` (bits of the samples whose integer sum is within the margin
/// of the largest, `sample_of` maps them to samples in ascending order): ties and
/// saturated sums. `rows` are the starts of its neighbours' waveforms, those that are
/// not broken in the order of the neighbour lists, which is ctapipe's order; its own
/// waveform counts `0.0` times (`local_weight` 0), which adds nothing.
#[cold]
#[inline(never)]
fn exact_quantized_peak(
    values: &QuantizedWaveforms<'_>,
    rows: &[u32],
    candidates: u64,
    sample_of: impl Fn(usize) -> usize,
) -> usize {
    let mut best: Option<(usize, f32)> = None;
    let mut remaining = candidates;
    while remaining != 0 {
        let sample = sample_of(remaining.trailing_zeros() as usize);
        remaining &= remaining - 1;
        let sum = rows.iter().fold(0.0f32, |sum, &row| {
            sum + values.sample(row as usize + sample)
        });
        if best.is_none_or(|(_, best_sum)| sum > best_sum) {
            best = Some((sample, sum));
        }
    }
    best.map_or(0, |(sample, _)| sample)
}
