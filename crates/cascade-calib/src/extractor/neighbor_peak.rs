//! Peak positions of `NeighborPeakWindowSum`: for every pixel, the first maximum of the sum
//! of its neighbours' waveforms (ctapipe `neighbor_average_maximum`, ctapipe 0.28).
//!
//! ctapipe computes, per pixel, `waveform * local_weight` (numba promotes the `f32`
//! waveform times the `int64` weight to `f64`) and adds the waveforms of the neighbours that
//! are not broken, in the order of the sparse neighbour matrix, in `f64`; the peak is the
//! first maximum of that sum. The peaks here are identical to ctapipe's. On x86-64 CPUs
//! with AVX2 (checked at run time, so the binary stays portable) they are found with
//! eight-lane `f32` arithmetic and a certificate instead of `f64` sums of every sample:
//!
//! 1. every pixel's sum is computed in `f32`, eight samples per AVX2 vector, straight from
//!    the event's rows (a row whose length is not a multiple of eight ends with a vector
//!    that overlaps the previous one, so nothing is copied or padded), and kept in
//!    registers for steps 2 and 3. The pixels go tile by tile ([`TILE_PIXELS`]
//!    consecutive pixels, whose peaks [`neighbor_peak_indices_by_tile`] hands over as
//!    soon as they are known) and within a tile group by group of equal numbers of
//!    neighbours (a layout of the camera kept in the scratch space from event to event),
//!    so that the loop of each group has a fixed number of additions and no check per
//!    pixel, and each pixel's sums are computed before the previous pixel's peak is
//!    decided, so that the two overlap;
//! 2. the rounding errors of that sum and of ctapipe's `f64` sum are both bounded by
//!    `E = K * A * 2^-23` with `K` the number of terms and `A = (|local_weight| + k) * M` a
//!    bound on the sum of their magnitudes (`k` neighbours, `M` the event's largest
//!    `|sample|`; Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §4.2:
//!    `|error| <= gamma_{K-1} * sum |x_i|`), so ctapipe's peak is among the samples whose
//!    `f32` sum is within `2E` of the `f32` maximum (the kernel takes `3E`, see
//!    `candidate_margin`, and one bound per number of neighbours for the whole event);
//! 3. when that is one sample it is the peak; otherwise (ties, near-ties) the `f64` sums
//!    of the candidate samples alone are computed exactly as ctapipe does, in its order.
//!
//! Without AVX2, and for events with non-finite samples, fewer than eight samples, an
//! absurd `local_weight` or more than `u32::MAX` samples, every sample is summed in `f64`
//! as ctapipe does.
//!
//! Samples stored as `uint16` with a scale and an offset (CTAO's R1 stream, see
//! [`QuantizedWaveforms`]) take an integer kernel on the same camera layout: exact sums of
//! the stored values, sixteen samples per vector, and ctapipe's `f64` sums for ties only
//! ([`neighbor_peak_indices_quantized_by_tile`]).
//!
//! The `unsafe` of this module: the calls of the AVX2 kernels (and of the AVX-512 scan of
//! the samples' magnitude) after the run-time checks that the CPU has them, the loads of
//! the neighbour sums, whose rows the layout checked once, and those of that scan, from
//! whole chunks of the samples (the other loads and stores are in `extractor::avx2`).

use std::ops::Range;

use cascade_instrument::Neighbors;

use super::kernels::argmax_f64;
use crate::QuantizedWaveforms;

/// Samples per `f32` vector.
#[cfg(target_arch = "x86_64")]
const LANES: usize = 8;

/// Reusable buffers of [`neighbor_peak_indices`].
#[derive(Debug, Clone, Default)]
pub struct NeighborPeakScratch {
    /// One pixel's neighbour sum in `f64` (plain path).
    sum_f64: Vec<f64>,
    /// Quantized samples converted to `f32` (when the integer kernel cannot take them).
    converted: Vec<f32>,
    /// The buffers of the AVX2 kernel.
    #[cfg(target_arch = "x86_64")]
    avx2: avx2::Scratch,
}

impl NeighborPeakScratch {
    /// Called before [`neighbor_peak_indices`]: names the data of the call that follows it
    /// (`values`, the next event), which this call then fetches into the cache while it
    /// computes (two cache lines per pixel). A hint for speed only; no result depends on
    /// it.
    pub fn prefetch_next<T>(&mut self, values: &[T]) {
        #[cfg(target_arch = "x86_64")]
        {
            self.avx2.upcoming = super::avx2::Prefetch::of(values);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = values;
    }
}

/// Writes to `peaks` the peak index of every pixel of one gain-selected event
/// (`waveforms` is `[pixel][sample]`, `n_samples >= 1` samples per pixel).
///
/// `local_weight` weighs the pixel's own waveform; neighbours flagged in `broken_pixels`
/// are left out (the pixel's own waveform counts even when it is broken, as in ctapipe).
/// NaN sums are skipped when looking for the maximum (0 when every sum is NaN).
///
/// # Panics
/// When `waveforms` holds fewer than `peaks.len() * n_samples` values, or `neighbors` and
/// `broken_pixels` describe fewer pixels than `peaks` has (callers check the event's shape
/// against the camera first, as `CameraCalibrator` does).
pub fn neighbor_peak_indices(
    waveforms: &[f32],
    n_samples: usize,
    neighbors: &Neighbors,
    local_weight: i64,
    broken_pixels: &[bool],
    scratch: &mut NeighborPeakScratch,
    peaks: &mut [usize],
) {
    neighbor_peak_indices_by_tile(
        waveforms,
        n_samples,
        neighbors,
        local_weight,
        broken_pixels,
        scratch,
        peaks,
        |_, _| {},
    );
}

/// Pixels per tile of [`neighbor_peak_indices_by_tile`] (a multiple of 4, the block of the
/// window sums).
pub const TILE_PIXELS: usize = 512;

/// [`neighbor_peak_indices`], handing over the peaks tile by tile as soon as they are
/// final: `ready(pixels, peaks)` is called for consecutive ranges of pixels that cover all
/// of them in order (tiles of [`TILE_PIXELS`] pixels with AVX2, one range of all pixels
/// otherwise), with their peaks, so that the caller can use them while those pixels'
/// waveforms are still in the cache.
///
/// # Panics
/// As [`neighbor_peak_indices`].
#[allow(clippy::too_many_arguments)]
pub fn neighbor_peak_indices_by_tile(
    waveforms: &[f32],
    n_samples: usize,
    neighbors: &Neighbors,
    local_weight: i64,
    broken_pixels: &[bool],
    scratch: &mut NeighborPeakScratch,
    peaks: &mut [usize],
    mut ready: impl FnMut(Range<usize>, &[usize]),
) {
    let event = Event {
        waveforms,
        n_samples,
        neighbors,
        local_weight,
        broken_pixels,
    };
    #[cfg(target_arch = "x86_64")]
    if n_samples >= LANES
        && local_weight.abs() <= avx2::MAX_WEIGHT
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("popcnt")
    {
        // SAFETY: `certified_peaks` needs AVX2 and POPCNT, which the CPU has.
        #[allow(unsafe_code)]
        let done = unsafe { avx2::certified_peaks(&event, scratch, peaks, &mut ready) };
        if done {
            return;
        }
    }
    scratch.sum_f64.resize(n_samples, 0.0);
    for (pixel, peak) in peaks.iter_mut().enumerate() {
        *peak = plain_peak(&event, pixel, &mut scratch.sum_f64);
    }
    ready(0..peaks.len(), peaks);
}

/// [`neighbor_peak_indices_by_tile`] for samples stored as `uint16` with a scale and an
/// offset: the peaks of the `f32` waveforms they stand for
/// ([`QuantizedWaveforms::sample`]), bit for bit.
///
/// With AVX2, `local_weight == 0` (ctapipe's default) and 16 to 64 samples, the sums are
/// the exact integer sums of the stored values, sixteen samples per vector, where the
/// `f32` kernel needs a certificate and eight per vector. ctapipe's `f64` sum of the
/// converted values `F` and the integer sum `S` of the same `K` terms satisfy
/// `|F - (S / scale - K * offset)| <= E` with `E = K * A * 2^-23` (`A` bounds every
/// `|value / scale|` and every `|sample|`: two roundings of at most `A * 2^-24` per term,
/// and the `f64` additions far below that), so a sample whose integer sum is more than
/// `m = floor(3 E scale)` below the largest cannot hold ctapipe's peak: with the usual
/// scales `m` is 0, and a pixel whose largest integer sum is unique is done. Ties are
/// decided with ctapipe's `f64` sums of the converted samples of the tied samples alone.
/// The vector additions saturate at `u16::MAX`: a sum that does is at least as large as
/// every sum that does not, and two that do tie, so the peak is never lost. Otherwise
/// (other weights, sample counts, CPUs) the samples are converted and the `f32` kernel
/// runs on them.
///
/// # Panics
/// As [`neighbor_peak_indices`].
#[allow(clippy::too_many_arguments)]
pub fn neighbor_peak_indices_quantized_by_tile(
    waveforms: QuantizedWaveforms<'_>,
    n_samples: usize,
    neighbors: &Neighbors,
    local_weight: i64,
    broken_pixels: &[bool],
    scratch: &mut NeighborPeakScratch,
    peaks: &mut [usize],
    mut ready: impl FnMut(Range<usize>, &[usize]),
) {
    #[cfg(target_arch = "x86_64")]
    if local_weight == 0
        && (avx2::QUANTIZED_LANES..=avx2::QUANTIZED_MAX_VECTORS * avx2::QUANTIZED_LANES)
            .contains(&n_samples)
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("popcnt")
    {
        let event = Event {
            waveforms: &waveforms,
            n_samples,
            neighbors,
            local_weight,
            broken_pixels,
        };
        // SAFETY: `certified_quantized_peaks` needs AVX2 and POPCNT, which the CPU has.
        #[allow(unsafe_code)]
        let done = unsafe { avx2::certified_quantized_peaks(&event, scratch, peaks, &mut ready) };
        if done {
            return;
        }
    }
    let mut converted = std::mem::take(&mut scratch.converted);
    let size = (peaks.len() * n_samples).min(waveforms.values.len());
    waveforms.slice(0..size).convert_into(&mut converted);
    neighbor_peak_indices_by_tile(
        &converted,
        n_samples,
        neighbors,
        local_weight,
        broken_pixels,
        scratch,
        peaks,
        &mut ready,
    );
    scratch.converted = converted;
}

/// The inputs of one call, with the event's samples as `f32` waveforms or as
/// [`QuantizedWaveforms`].
struct Event<'a, S: ?Sized = [f32]> {
    waveforms: &'a S,
    n_samples: usize,
    neighbors: &'a Neighbors,
    local_weight: i64,
    broken_pixels: &'a [bool],
}

/// ctapipe's computation for one pixel, every sample in `f64`.
fn plain_peak(event: &Event<'_>, pixel: usize, sum: &mut [f64]) -> usize {
    let n_samples = event.n_samples;
    let waveform = |pixel: usize| &event.waveforms[pixel * n_samples..(pixel + 1) * n_samples];
    let weight = event.local_weight as f64;
    for (acc, &sample) in sum.iter_mut().zip(waveform(pixel)) {
        *acc = f64::from(sample) * weight;
    }
    for &neighbor in event.neighbors.of(pixel) {
        if !event.broken_pixels[neighbor as usize] {
            for (acc, &sample) in sum.iter_mut().zip(waveform(neighbor as usize)) {
                *acc += f64::from(sample);
            }
        }
    }
    argmax_f64(sum)
}

/// ctapipe's sum of one sample of one pixel: `f64` in the order of the neighbour matrix.
#[cfg(target_arch = "x86_64")]
fn exact_sum(event: &Event<'_>, pixel: usize, sample: usize) -> f64 {
    let n_samples = event.n_samples;
    let mut sum =
        f64::from(event.waveforms[pixel * n_samples + sample]) * event.local_weight as f64;
    for &neighbor in event.neighbors.of(pixel) {
        let neighbor = neighbor as usize;
        if !event.broken_pixels[neighbor] {
            sum += f64::from(event.waveforms[neighbor * n_samples + sample]);
        }
    }
    sum
}

/// The first maximum of ctapipe's sums over `samples` (ascending; all sums finite).
#[cfg(target_arch = "x86_64")]
fn exact_peak_among(
    event: &Event<'_>,
    pixel: usize,
    samples: impl Iterator<Item = usize>,
) -> usize {
    let mut best: Option<(usize, f64)> = None;
    for sample in samples {
        let sum = exact_sum(event, pixel, sample);
        if best.is_none_or(|(_, best_sum)| sum > best_sum) {
            best = Some((sample, sum));
        }
    }
    best.map_or(0, |(sample, _)| sample)
}

/// How far below the `f32` maximum of a pixel's sum ctapipe's peak can be: `3E` rounded up
/// to an `f32`, with `E = K * (A * 2^-23 + 2^-126)` the bound of the module documentation
/// for `k` neighbours (`K` terms, magnitudes summing to at most `A`) plus subnormal
/// rounding. `2E` covers both sums' errors; the third `E` covers the rounding of
/// `max - margin` in `f32`, which is at most `2^-24 * (A + 3E) <= E`.
#[cfg(target_arch = "x86_64")]
fn candidate_margin(k: usize, weight: f32, magnitude: f32) -> f32 {
    let terms = (k + usize::from(weight != 0.0)) as f64;
    let magnitude_sum = (f64::from(weight.abs()) + k as f64) * f64::from(magnitude);
    let margin = 3.0 * terms * (magnitude_sum * 2f64.powi(-23) + f64::from(f32::MIN_POSITIVE));
    let rounded = margin as f32;
    if f64::from(rounded) < margin {
        rounded.next_up()
    } else {
        rounded
    }
}

/// The certified `f32` kernel (steps 1-3 of the module documentation) for AVX2, whose scan
/// of the samples' magnitude takes AVX-512 where the CPU has it.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256, __m256i, _CMP_GE_OQ, _mm_cvtss_f32, _mm_max_epu16, _mm_shuffle_epi32,
        _mm_srli_epi32, _mm256_add_ps, _mm256_adds_epu16, _mm256_and_si256,
        _mm256_broadcastw_epi16, _mm256_castps_si256, _mm256_castps256_ps128,
        _mm256_castsi256_si128, _mm256_cmp_ps, _mm256_cmpeq_epi16, _mm256_cvtsi256_si32,
        _mm256_extracti128_si256, _mm256_loadu_ps, _mm256_loadu_si256, _mm256_max_epu16,
        _mm256_max_epu32, _mm256_max_ps, _mm256_movemask_epi8, _mm256_movemask_ps, _mm256_mul_ps,
        _mm256_packs_epi16, _mm256_packs_epi32, _mm256_permute_ps, _mm256_permute2f128_ps,
        _mm256_permute2x128_si256, _mm256_permute4x64_epi64, _mm256_permutevar8x32_epi32,
        _mm256_set1_epi16, _mm256_set1_epi32, _mm256_set1_ps, _mm256_setr_epi32, _mm256_setzero_ps,
        _mm256_setzero_si256, _mm256_shuffle_epi32, _mm256_sub_ps, _mm256_subs_epu16,
        _mm512_and_si512, _mm512_loadu_si512, _mm512_max_epu32, _mm512_reduce_max_epu32,
        _mm512_set1_epi32, _mm512_setzero_si512,
    };

    use cascade_instrument::NeighborsId;

    use super::super::avx2::{Prefetch, load8, pipelined, store8};
    use super::{
        Event, LANES, NeighborPeakScratch, QuantizedWaveforms, Range, TILE_PIXELS,
        candidate_margin, exact_peak_among,
    };

    /// Largest `|local_weight|` of the certified path (its `f32` product stays exact
    /// enough and the bound meaningful).
    pub(super) const MAX_WEIGHT: i64 = 1 << 20;

    /// Largest `|sample|` of the certified path: sums of many such samples stay far from
    /// `f32::MAX`.
    const MAX_MAGNITUDE: f32 = 1e30;

    /// Reusable buffers of the kernel.
    #[derive(Debug, Clone, Default)]
    pub(super) struct Scratch {
        /// The data of the next call, fetched during this one.
        pub(super) upcoming: Prefetch,
        /// One pixel's neighbour sum in `f32`, vector after vector (decisions in `f64`).
        sum_f32: Vec<f32>,
        /// One pixel's neighbour sum as AVX2 vectors (waveforms of more than 64 samples).
        sums: Vec<__m256>,
        /// The layouts of the cameras of the last calls, most recently used first.
        layouts: Layouts,
    }

    /// The [`Layout`]s of up to [`Layouts::CAPACITY`] telescopes (cameras, waveform
    /// lengths and sets of broken pixels), most recently used first: the batches of a file
    /// with several camera types alternate between them, and every telescope has its own
    /// broken pixels, so that the telescopes of one batch alternate too. Rebuilding a
    /// layout at each change cost 8 % of the calibration of `gamma_prod6_lst_nectarcam`
    /// (2 cameras) and 18 % of `proton_north_alpha_run201` (9 telescopes). A layout of an
    /// 1855-pixel camera takes ~55 kB; finding one compares the broken-pixel flags of the
    /// kept layouts of the same camera (a few ns each, most differ early).
    #[derive(Debug, Clone, Default)]
    struct Layouts(Vec<Layout>);

    impl Layouts {
        const CAPACITY: usize = 64;

        /// The layout of `event` with `n_pixels` pixels, built unless one of the kept
        /// layouts is it; `None` when the event cannot have one (see [`Layout::build`]).
        fn of<S: ?Sized>(&mut self, event: &Event<'_, S>, n_pixels: usize) -> Option<&Layout> {
            let layouts = &mut self.0;
            match layouts
                .iter()
                .position(|layout| layout.is_of(event, n_pixels))
            {
                Some(used) => layouts[..=used].rotate_right(1),
                None => {
                    if layouts.len() < Self::CAPACITY {
                        layouts.push(Layout::default());
                    }
                    // The new or least recently used one becomes the first.
                    layouts.rotate_right(1);
                    if !layouts[0].build(event, n_pixels) {
                        return None;
                    }
                }
            }
            layouts.first()
        }
    }

    /// The pixels of a camera in tiles of [`TILE_PIXELS`] and, within a tile, grouped by
    /// their number of usable neighbours (those not broken), with where each neighbour's
    /// row starts in an event's waveforms: built for one set of neighbour lists, broken
    /// pixels, number of pixels and waveform length, and reused as long as the calls have
    /// the same. Pixels of a group are done by one loop whose number of additions is
    /// fixed, so that nothing in it is checked per pixel.
    #[derive(Debug, Clone, Default)]
    struct Layout {
        /// What the layout was built for: the neighbour lists, samples per pixel and
        /// pixels; `None` before the first build.
        key: Option<(NeighborsId, usize, usize)>,
        /// The broken pixels it was built for (the first `n_pixels` flags).
        broken: Vec<bool>,
        /// Every pixel once, tile after tile, group after group within a tile, ascending
        /// within a group.
        pixels: Vec<u32>,
        /// The rows of the neighbours of `pixels`, in the same order, `n_neighbors` per
        /// pixel: the index in the waveforms of each neighbour's first sample. Every
        /// neighbour is one of the `n_pixels` pixels.
        rows: Vec<u32>,
        /// Tile after tile, by number of neighbours within a tile.
        groups: Vec<Group>,
        tiles: Vec<Tile>,
    }

    /// The pixels `pixels` of the camera (`TILE_PIXELS` of them but in the last tile),
    /// whose groups are `groups[groups]`.
    #[derive(Debug, Clone)]
    struct Tile {
        pixels: Range<usize>,
        groups: Range<usize>,
    }

    /// The pixels of a [`Layout`] that have `n_neighbors` neighbours:
    /// `pixels[first_pixel..first_pixel + n]`, their rows from `rows[first_row]` on.
    #[derive(Debug, Clone, Copy)]
    struct Group {
        n_neighbors: usize,
        first_pixel: usize,
        n: usize,
        first_row: usize,
    }

    impl Layout {
        /// Whether this is the layout of `event` with `n_pixels` pixels.
        fn is_of<S: ?Sized>(&self, event: &Event<'_, S>, n_pixels: usize) -> bool {
            self.key == Some((event.neighbors.id(), event.n_samples, n_pixels))
                && event.broken_pixels.get(..n_pixels) == Some(&self.broken[..])
        }

        /// Makes the layout that of `event` with `n_pixels` pixels; false when its
        /// neighbours include pixels beyond `n_pixels`, it has fewer broken-pixel flags
        /// than pixels, or it has more than `u32::MAX` samples (those take the plain path).
        fn build<S: ?Sized>(&mut self, event: &Event<'_, S>, n_pixels: usize) -> bool {
            let n_samples = event.n_samples;
            let Some(broken) = event.broken_pixels.get(..n_pixels) else {
                return false;
            };
            let key = (event.neighbors.id(), n_samples, n_pixels);
            self.key = None;
            if n_pixels
                .checked_mul(n_samples)
                .is_none_or(|size| u32::try_from(size).is_err())
                || event.neighbors.n_pixels() < n_pixels
            {
                return false;
            }
            let usable = |pixel: usize| {
                let neighbors = event.neighbors.of(pixel).iter().map(|&n| n as usize);
                neighbors.filter(|&neighbor| neighbor >= n_pixels || !broken[neighbor])
            };
            if (0..n_pixels).any(|pixel| usable(pixel).any(|neighbor| neighbor >= n_pixels)) {
                return false;
            }
            // Group by tile, then by number of neighbours (a counting sort on both): the
            // groups' sizes, their places, then every pixel in the next free place of its
            // group.
            let counts: Vec<usize> = (0..n_pixels).map(|pixel| usable(pixel).count()).collect();
            let n_counts = counts.iter().copied().max().unwrap_or(0) + 1;
            let group_of = |pixel: usize| pixel / TILE_PIXELS * n_counts + counts[pixel];
            let mut sizes = vec![0; n_pixels.div_ceil(TILE_PIXELS) * n_counts];
            for pixel in 0..n_pixels {
                sizes[group_of(pixel)] += 1;
            }
            self.groups.clear();
            self.tiles.clear();
            let mut free = vec![(0, 0); sizes.len()];
            let (mut first_pixel, mut first_row) = (0, 0);
            for (tile, tile_sizes) in sizes.chunks_exact(n_counts).enumerate() {
                let first_group = self.groups.len();
                for (n_neighbors, &n) in tile_sizes.iter().enumerate().filter(|(_, n)| **n > 0) {
                    free[tile * n_counts + n_neighbors] = (first_pixel, first_row);
                    self.groups.push(Group {
                        n_neighbors,
                        first_pixel,
                        n,
                        first_row,
                    });
                    first_pixel += n;
                    first_row += n * n_neighbors;
                }
                self.tiles.push(Tile {
                    pixels: tile * TILE_PIXELS..((tile + 1) * TILE_PIXELS).min(n_pixels),
                    groups: first_group..self.groups.len(),
                });
            }
            self.pixels.clear();
            self.pixels.resize(n_pixels, 0);
            self.rows.clear();
            self.rows.resize(first_row, 0);
            for (pixel, &count) in counts.iter().enumerate() {
                let (place, first_row) = &mut free[group_of(pixel)];
                self.pixels[*place] = pixel as u32;
                let rows = &mut self.rows[*first_row..*first_row + count];
                for (row, neighbor) in rows.iter_mut().zip(usable(pixel)) {
                    // No overflow: below `n_pixels * n_samples <= u32::MAX`.
                    *row = (neighbor * n_samples) as u32;
                }
                *place += 1;
                *first_row += count;
            }
            self.broken.clear();
            self.broken.extend_from_slice(broken);
            self.key = Some(key);
            true
        }
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
            for &group in &layout.groups[tile.groups.clone()] {
                let members = &layout.pixels[group.first_pixel..group.first_pixel + group.n];
                let rows =
                    &layout.rows[group.first_row..group.first_row + group.n * group.n_neighbors];
                let group = Members {
                    pixels: members,
                    rows,
                    n_neighbors: group.n_neighbors,
                };
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

    /// One group of a [`Layout`]: its pixels, and their neighbours' rows, `n_neighbors`
    /// per pixel.
    #[derive(Clone, Copy)]
    struct Members<'a> {
        pixels: &'a [u32],
        rows: &'a [u32],
        n_neighbors: usize,
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

    /// [`pipelined`] over the pixels of `group` and their neighbours' rows: `start(pixel,
    /// rows)` then `finish`, with `K` rows per pixel when `K > 0` (a constant, so that the
    /// loops over them unroll), `group.n_neighbors` (at least one) otherwise.
    #[inline(always)]
    fn pipelined_members<'a, const K: usize, T: Copy>(
        group: Members<'a>,
        empty: T,
        start: &mut impl FnMut(u32, &'a [u32]) -> T,
        finish: impl FnMut(T),
    ) {
        if K > 0 {
            let members = group.pixels.iter().zip(group.rows.as_chunks::<K>().0);
            pipelined(members, empty, |(&pixel, rows)| start(pixel, rows), finish);
        } else {
            let rows = group.rows.chunks_exact(group.n_neighbors);
            let members = group.pixels.iter().zip(rows);
            pipelined(members, empty, |(&pixel, rows)| start(pixel, rows), finish);
        }
    }

    /// The lane-by-lane maximum of `vectors` by `max`, as a tree (a short chain of
    /// dependencies).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn tree_max<T: Copy, const V: usize>(vectors: &[T; V], max: impl Fn(T, T) -> T) -> T {
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
    /// decided with ctapipe's `f64` sums: ties and near-ties, rare.
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
        let max_bits =
            _mm256_max_epu32(max_bits, _mm256_permute2x128_si256::<1>(max_bits, max_bits));
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

    // The integer kernel of `neighbor_peak_indices_quantized_by_tile`: the same layout and
    // software pipelining as the `f32` kernel above, on sixteen `u16` sums per vector.

    /// Samples per `u16` vector.
    pub(super) const QUANTIZED_LANES: usize = 16;

    /// Most vectors per waveform of the integer kernel (64 samples).
    pub(super) const QUANTIZED_MAX_VECTORS: usize = 4;

    /// Largest integer margin of the integer kernel (only absurd scales need more; their
    /// events take the `f32` kernel).
    const MAX_QUANTIZED_MARGIN: f64 = 256.0;

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
        let n_vectors = n_samples.div_ceil(QUANTIZED_LANES);
        if event.local_weight != 0
            || n_samples < QUANTIZED_LANES
            || n_vectors > QUANTIZED_MAX_VECTORS
        {
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
            last: values.as_ptr().wrapping_add(n_samples - QUANTIZED_LANES),
        };
        let mut upcoming = std::mem::take(upcoming);
        for tile in &layout.tiles {
            for &group in &layout.groups[tile.groups.clone()] {
                let members = &layout.pixels[group.first_pixel..group.first_pixel + group.n];
                let group_rows =
                    &layout.rows[group.first_row..group.first_row + group.n * group.n_neighbors];
                let group = Members {
                    pixels: members,
                    rows: group_rows,
                    n_neighbors: group.n_neighbors,
                };
                // Checked above for the largest number of neighbours, so it exists.
                let margin = quantized_margin(group.n_neighbors, quantized.scale, magnitude)
                    .unwrap_or(u16::MAX);
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
                        for &pixel in members {
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
    /// `floor(3 E scale)` with `E = k * (A * 2^-23 + 2^-126)` (the subnormal term as in
    /// [`candidate_margin`]); `2E` bounds the two sums' errors, the third `E` is slack for
    /// the `f64` additions. `None` beyond [`MAX_QUANTIZED_MARGIN`].
    fn quantized_margin(k: usize, scale: f32, magnitude: f64) -> Option<u16> {
        let error = k as f64 * (magnitude * 2f64.powi(-23) + f64::from(f32::MIN_POSITIVE));
        let margin = (3.0 * error * f64::from(scale)).floor();
        (margin <= MAX_QUANTIZED_MARGIN).then_some(margin as u16)
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
                    _mm256_loadu_si256(self.base.add(row + v * QUANTIZED_LANES).cast())
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
        /// when `K` is 0), pipelined as the `f32` kernel's [`group_loop`].
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
            let last = (V - 1) * QUANTIZED_LANES;
            let overlap = V * QUANTIZED_LANES - n_samples;
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
            let bytes =
                _mm256_permute4x64_epi64::<0b1101_1000>(_mm256_packs_epi16(vectors[0], second));
            bits |= u64::from(_mm256_movemask_epi8(bytes) as u32) << (32 * pair);
        }
        bits
    }

    /// The peak of one pixel decided with ctapipe's `f64` sums of the converted samples,
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
        let mut best: Option<(usize, f64)> = None;
        let mut remaining = candidates;
        while remaining != 0 {
            let sample = sample_of(remaining.trailing_zeros() as usize);
            remaining &= remaining - 1;
            let sum = rows.iter().fold(0.0, |sum, &row| {
                sum + f64::from(values.sample(row as usize + sample))
            });
            if best.is_none_or(|(_, best_sum)| sum > best_sum) {
                best = Some((sample, sum));
            }
        }
        best.map_or(0, |(sample, _)| sample)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// ctapipe's `neighbor_average_maximum` for one pixel, written plainly.
    fn reference_peak(
        waveforms: &[f32],
        n_samples: usize,
        pixel: usize,
        neighbors: &[u32],
        local_weight: i64,
        broken: &[bool],
    ) -> usize {
        let waveform = |p: usize| &waveforms[p * n_samples..(p + 1) * n_samples];
        let mut average: Vec<f64> = waveform(pixel)
            .iter()
            .map(|&s| f64::from(s) * local_weight as f64)
            .collect();
        for &neighbor in neighbors {
            if broken[neighbor as usize] {
                continue;
            }
            for (acc, &s) in average.iter_mut().zip(waveform(neighbor as usize)) {
                *acc += f64::from(s);
            }
        }
        let max = average.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        average.iter().position(|&v| v == max).unwrap_or(0)
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

    #[test]
    fn a_near_tie_that_f32_gets_wrong_is_decided_in_f64() {
        // Pixel 0's neighbours 1, 2, 3 hold 1e8, 1, -1e8 at sample 0 and 0.5, 0, 0 at
        // sample 1: ctapipe's f64 sums are 1.0 and 0.5 (peak 0), while f32 loses the 1
        // against 1e8 and would give 0.0 and 0.5 (peak 1).
        let n_samples = 8;
        let mut waveforms = vec![0.0_f32; 4 * n_samples];
        for (pixel, samples) in [(1, [1e8, 0.5]), (2, [1.0, 0.0]), (3, [-1e8, 0.0])] {
            waveforms[pixel * n_samples..pixel * n_samples + 2].copy_from_slice(&samples);
        }
        let neighbors = Neighbors::from_lists(&[vec![1, 2, 3], vec![0], vec![0], vec![0]]);
        let mut peaks = [9; 4];
        neighbor_peak_indices(
            &waveforms,
            n_samples,
            &neighbors,
            0,
            &[false; 4],
            &mut NeighborPeakScratch::default(),
            &mut peaks,
        );
        assert_eq!(peaks, [0, 0, 0, 0]);
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
            // +-2^24 swallows a 1 or 0.5 in f32 but not in f64: near-ties f32 decides wrongly.
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
        // sums, but with scale 3 the converted 1/3 and 2/3 round up in f32 and sample 1's
        // sum exceeds 1.0, so it is ctapipe's peak and not the first of the tie.
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
        assert_eq!(peaks[0], 1);
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
    fn saturated_integer_sums_are_decided_in_f64() {
        // Sample 2: 40000 + 40000, sample 9: 50000 + 20000; both saturate at u16::MAX and
        // tie, and the f64 sums find sample 2.
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
        (n_samples, n_pixels, scale, offset).prop_flat_map(
            |(n_samples, n_pixels, scale, offset)| {
                (
                    Just(n_samples),
                    prop::collection::vec(quantized_sample(), n_samples * n_pixels),
                    prop::collection::vec(prop::bool::weighted(0.1), n_pixels),
                    Just(scale),
                    Just(offset),
                )
            },
        )
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
}
