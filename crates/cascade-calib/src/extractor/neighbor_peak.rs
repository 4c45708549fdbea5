//! Peak positions of `NeighborPeakWindowSum`: for every pixel, the first maximum of the sum
//! of its neighbours' waveforms (ctapipe `neighbor_average_maximum`, ctapipe 0.28).
//!
//! ctapipe computes, per pixel, `waveform * local_weight` and adds the waveforms of the
//! neighbours that are not broken, in the order of the sparse neighbour matrix; the peak is
//! `np.argmax` of that sum: its first maximum, or its first NaN. All of it is `f32`: numba
//! (0.68, ctapipe 0.28's) types an `f32` array times an `int64` scalar as `f32`, as NumPy
//! does, so the weight is rounded to `f32` and every addition is an `f32` one (sums that
//! are equal in `f32` but not in exact arithmetic are ties, and the first one wins). The
//! peaks here are identical to ctapipe's. On x86-64 CPUs with AVX2 (checked at run time,
//! so the binary stays portable) they are found with eight-lane `f32` arithmetic in
//! another order and a certificate:
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
//! 2. the rounding errors of that sum and of ctapipe's sum in its order are both bounded by
//!    `E = K * A * 2^-23` with `K` the number of terms and `A = (|local_weight| + k) * M` a
//!    bound on the sum of their magnitudes (`k` neighbours, `M` the event's largest
//!    `|sample|`; Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §4.2:
//!    `|error| <= gamma_{K-1} * sum |x_i|`), so ctapipe's peak is among the samples whose
//!    `f32` sum is within `2E` of the `f32` maximum (the kernel takes `3E`, see
//!    `candidate_margin`, and one bound per number of neighbours for the whole event);
//! 3. when that is one sample it is the peak; otherwise (ties, near-ties) the sums of the
//!    candidate samples alone are computed exactly as ctapipe does, in its order.
//!
//! Without AVX2, and for events with non-finite samples, fewer than eight samples, an
//! absurd `local_weight` or more than `u32::MAX` samples, every sample is summed as
//! ctapipe does.
//!
//! Samples stored as `uint16` with a scale and an offset (CTAO's R1 stream, see
//! [`QuantizedWaveforms`]) take an integer kernel on the same camera layout: exact sums of
//! the stored values, sixteen samples per vector, and ctapipe's sums for ties only
//! ([`neighbor_peak_indices_quantized_by_tile`]).
//!
//! This file holds the public functions and ctapipe's plain computation; the submodules
//! the x86-64 kernels: `layout` (the pixels by tile and number of neighbours, with their
//! neighbours' rows, kept from event to event), `avx2` (the certified `f32` kernel and the
//! scans of the samples' magnitude) and `quantized` (the `uint16` kernel).
//!
//! The `unsafe` of this module: the calls of the AVX2 kernels (and of the AVX-512 scan of
//! the samples' magnitude) after the run-time checks that the CPU has them, the loads of
//! the neighbour sums, whose rows the layout checked once, and those of that scan, from
//! whole chunks of the samples (the other loads and stores are in `extractor::avx2`).

use std::ops::Range;

use cascade_instrument::Neighbors;

use super::kernels::argmax_f32;
use crate::QuantizedWaveforms;

/// Samples per `f32` vector.
#[cfg(target_arch = "x86_64")]
const LANES: usize = 8;

/// Reusable buffers of [`neighbor_peak_indices`].
#[derive(Debug, Clone, Default)]
pub struct NeighborPeakScratch {
    /// One pixel's neighbour sum (plain path).
    sum: Vec<f32>,
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
/// A pixel whose sum has a NaN sample peaks at the first of them, as `np.argmax`.
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
    scratch.sum.resize(n_samples, 0.0);
    for (pixel, peak) in peaks.iter_mut().enumerate() {
        *peak = plain_peak(&event, pixel, &mut scratch.sum);
    }
    ready(0..peaks.len(), peaks);
}

/// [`neighbor_peak_indices_by_tile`] for samples stored as `uint16` with a scale and an
/// offset: the peaks of the `f32` waveforms they stand for
/// ([`QuantizedWaveforms::sample`]), bit for bit.
///
/// With AVX2, `local_weight == 0` (ctapipe's default) and 16 to 64 samples, the sums are
/// the exact integer sums of the stored values, sixteen samples per vector, where the
/// `f32` kernel needs a certificate and eight per vector. ctapipe's `f32` sum of the
/// converted values `F` and the integer sum `S` of the same `K` terms satisfy
/// `|F - (S / scale - K * offset)| <= E` with `E = K (K + 5) A 2^-25` (`A` bounds every
/// `|value / scale|` and every `|sample|`: two roundings of at most `A 2^-24` per term,
/// and the `j`-th addition's of at most `j A 2^-24`), so a sample whose integer sum is
/// more than `m = floor(3 E scale)` below the largest cannot hold ctapipe's peak: with the
/// usual scales `m` is 0, and a pixel whose largest integer sum is unique is done. Ties
/// are decided with ctapipe's sums of the converted samples of the tied samples alone.
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
        && (quantized::LANES..=quantized::MAX_VECTORS * quantized::LANES).contains(&n_samples)
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
        let done =
            unsafe { quantized::certified_quantized_peaks(&event, scratch, peaks, &mut ready) };
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

/// ctapipe's computation for one pixel, every sample.
fn plain_peak(event: &Event<'_>, pixel: usize, sum: &mut [f32]) -> usize {
    let n_samples = event.n_samples;
    let waveform = |pixel: usize| &event.waveforms[pixel * n_samples..(pixel + 1) * n_samples];
    let weight = event.local_weight as f32;
    for (acc, &sample) in sum.iter_mut().zip(waveform(pixel)) {
        *acc = sample * weight;
    }
    for &neighbor in event.neighbors.of(pixel) {
        if !event.broken_pixels[neighbor as usize] {
            for (acc, &sample) in sum.iter_mut().zip(waveform(neighbor as usize)) {
                *acc += sample;
            }
        }
    }
    argmax_f32(sum)
}

/// ctapipe's sum of one sample of one pixel: `f32`, in the order of the neighbour matrix.
#[cfg(target_arch = "x86_64")]
fn exact_sum(event: &Event<'_>, pixel: usize, sample: usize) -> f32 {
    let n_samples = event.n_samples;
    let mut sum = event.waveforms[pixel * n_samples + sample] * event.local_weight as f32;
    for &neighbor in event.neighbors.of(pixel) {
        let neighbor = neighbor as usize;
        if !event.broken_pixels[neighbor] {
            sum += event.waveforms[neighbor * n_samples + sample];
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
    let mut best: Option<(usize, f32)> = None;
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
/// rounding. Each sum, ours and ctapipe's, rounds the weighted term and its `K - 1`
/// additions, each by at most `2^-24 * A`: `2E` covers both sums' errors; the third `E`
/// covers the rounding of `max - margin` in `f32`, which is at most
/// `2^-24 * (A + 3E) <= E`.
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

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod layout;
#[cfg(target_arch = "x86_64")]
mod quantized;
#[cfg(test)]
mod tests;
