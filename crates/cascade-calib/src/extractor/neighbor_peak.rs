//! Peak positions of `NeighborPeakWindowSum`: for every pixel, the first maximum of the sum
//! of its neighbours' waveforms (ctapipe `neighbor_average_maximum`, ctapipe 0.28).
//!
//! ctapipe computes, per pixel, `waveform * local_weight` (numba promotes the `f32`
//! waveform times the `int64` weight to `f64`) and adds the waveforms of the neighbours that
//! are not broken, in the order of the sparse neighbour matrix, in `f64`. The same
//! additions in the same order are done here, so the peaks are identical to ctapipe's; only
//! their arrangement differs, for speed:
//!
//! * the event's waveforms are copied once into rows padded with zeros to a multiple of
//!   [`BLOCK`] samples, so every pixel's sum runs over whole blocks (fixed-size loops that
//!   vectorise completely); the rows stay `f32` (half the memory traffic of `f64`: the
//!   rows of neighbouring pixels stay in the L1 cache) and are widened to `f64` in
//!   registers;
//! * a block of [`BLOCK`] samples is summed over all neighbours in registers before it is
//!   stored (the additions of different samples are independent, so their order across
//!   samples does not matter);
//! * on x86-64 CPUs with AVX2 (checked at run time, so the binary stays portable) the same
//!   code is compiled for 4-lane `f64` vectors instead of SSE2's 2 lanes.
//!
//! This is the one place of the crate with `unsafe`: the call of the AVX2 instance of the
//! kernel, after the run-time check that the CPU has AVX2.

use cascade_instrument::Neighbors;

use super::kernels::argmax_f64;

/// Samples summed together in registers (4 AVX2 vectors of 4 `f64`).
const BLOCK: usize = 16;

/// Reusable buffers of [`neighbor_peak_indices`].
#[derive(Debug, Clone, Default)]
pub struct NeighborPeakScratch {
    /// The event's waveforms, `[pixel][padded sample]`.
    waveforms: Vec<f32>,
    /// One pixel's neighbour sum, padded.
    average: Vec<f64>,
}

/// Writes to `peaks` the peak index of every pixel of one gain-selected event
/// (`waveforms` is `[pixel][sample]`, `n_samples >= 1` samples per pixel).
///
/// `local_weight` weighs the pixel's own waveform; neighbours flagged in `broken_pixels`
/// are left out (the pixel's own waveform counts even when it is broken, as in ctapipe).
pub fn neighbor_peak_indices(
    waveforms: &[f32],
    n_samples: usize,
    neighbors: &Neighbors,
    local_weight: i64,
    broken_pixels: &[bool],
    scratch: &mut NeighborPeakScratch,
    peaks: &mut [usize],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `neighbor_peak_indices_avx2` only needs AVX2, which the CPU has.
        #[allow(unsafe_code)]
        unsafe {
            neighbor_peak_indices_avx2(
                waveforms,
                n_samples,
                neighbors,
                local_weight,
                broken_pixels,
                scratch,
                peaks,
            );
        }
        return;
    }
    neighbor_peak_indices_portable(
        waveforms,
        n_samples,
        neighbors,
        local_weight,
        broken_pixels,
        scratch,
        peaks,
    );
}

/// [`neighbor_peak_indices_portable`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn neighbor_peak_indices_avx2(
    waveforms: &[f32],
    n_samples: usize,
    neighbors: &Neighbors,
    local_weight: i64,
    broken_pixels: &[bool],
    scratch: &mut NeighborPeakScratch,
    peaks: &mut [usize],
) {
    neighbor_peak_indices_portable(
        waveforms,
        n_samples,
        neighbors,
        local_weight,
        broken_pixels,
        scratch,
        peaks,
    );
}

/// The kernel, inlined into each instruction-set instance.
#[inline(always)]
fn neighbor_peak_indices_portable(
    waveforms: &[f32],
    n_samples: usize,
    neighbors: &Neighbors,
    local_weight: i64,
    broken_pixels: &[bool],
    scratch: &mut NeighborPeakScratch,
    peaks: &mut [usize],
) {
    let stride = n_samples.div_ceil(BLOCK) * BLOCK;
    let n_pixels = peaks.len();
    let padded = &mut scratch.waveforms;
    padded.clear();
    padded.resize(n_pixels * stride, 0.0);
    for (row, waveform) in padded
        .chunks_exact_mut(stride)
        .zip(waveforms.chunks_exact(n_samples))
    {
        row[..n_samples].copy_from_slice(waveform);
    }
    let average = &mut scratch.average;
    average.resize(stride, 0.0);
    let weight = local_weight as f64;
    let padded = &scratch.waveforms;
    for (pixel, peak) in peaks.iter_mut().enumerate() {
        for start in (0..stride).step_by(BLOCK) {
            let mut block = [0.0_f64; BLOCK];
            let own = &padded[pixel * stride + start..pixel * stride + start + BLOCK];
            for (acc, &sample) in block.iter_mut().zip(own) {
                *acc = f64::from(sample) * weight;
            }
            for &neighbor in neighbors.of(pixel) {
                let neighbor = neighbor as usize;
                if broken_pixels[neighbor] {
                    continue;
                }
                let row = &padded[neighbor * stride + start..neighbor * stride + start + BLOCK];
                for (acc, &sample) in block.iter_mut().zip(row) {
                    *acc += f64::from(sample);
                }
            }
            average[start..start + BLOCK].copy_from_slice(&block);
        }
        *peak = argmax_f64(&average[..n_samples]);
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

    /// (samples per pixel, pixels, waveforms, broken pixels). Small integers make exact
    /// ties (the first maximum must win) frequent.
    fn events() -> impl Strategy<Value = (usize, usize, Vec<f32>, Vec<bool>)> {
        (1usize..70, 2usize..40).prop_flat_map(|(n_samples, n_pixels)| {
            let sample = prop_oneof![(-3i32..4).prop_map(|v| v as f32), -5.0f32..50.0];
            (
                Just(n_samples),
                Just(n_pixels),
                prop::collection::vec(sample, n_samples * n_pixels),
                prop::collection::vec(prop::bool::weighted(0.1), n_pixels),
            )
        })
    }

    proptest! {
        #[test]
        fn equals_the_per_pixel_reference(
            (n_samples, n_pixels, waveforms, broken) in events(),
            k in 1usize..4,
            local_weight in 0i64..3,
        ) {
            let neighbors = ring_neighbors(n_pixels, k);
            let mut scratch = NeighborPeakScratch::default();
            let mut peaks = vec![0; n_pixels];
            neighbor_peak_indices(
                &waveforms, n_samples, &neighbors, local_weight, &broken, &mut scratch, &mut peaks,
            );
            for (pixel, &peak) in peaks.iter().enumerate() {
                let expected = reference_peak(
                    &waveforms, n_samples, pixel, neighbors.of(pixel), local_weight, &broken,
                );
                prop_assert_eq!(peak, expected, "pixel {}", pixel);
            }
        }
    }
}
