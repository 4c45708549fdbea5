//! Vector loads and stores between `f32` slices and AVX2 registers, for the extractor's
//! AVX2 kernels: the only memory access of those kernels that is not plain safe Rust.
//!
//! Each function slices first (a bounds check, which panics like an index would), then does
//! one unaligned load or store of exactly the sliced elements; [`NeighborRows`], whose
//! loads are the inner loop of the neighbour sums, checks every row once per event instead.
//! They need AVX2, which every caller has checked at run time before entering its
//! `#[target_feature]` kernel.

use std::arch::x86_64::{
    __m128, __m256, __m256i, _MM_HINT_T1, _mm_prefetch, _mm_storeu_ps, _mm256_add_ps,
    _mm256_loadu_ps, _mm256_loadu_si256, _mm256_storeu_ps,
};

/// The eight values `values[at..at + 8]`.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn load8(values: &[f32], at: usize) -> __m256 {
    let values = &values[at..at + 8];
    // SAFETY: `values` holds the 8 `f32` that the unaligned load reads.
    #[allow(unsafe_code)]
    unsafe {
        _mm256_loadu_ps(values.as_ptr())
    }
}

/// The four values `values[at..at + 4]`.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn load4_i64(values: &[i64], at: usize) -> __m256i {
    let values = &values[at..at + 4];
    // SAFETY: `values` holds the 4 `i64` that the unaligned load reads.
    #[allow(unsafe_code)]
    unsafe {
        _mm256_loadu_si256(values.as_ptr().cast())
    }
}

/// Stores eight lanes to `values[at..at + 8]`.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn store8(values: &mut [f32], at: usize, lanes: __m256) {
    let values = &mut values[at..at + 8];
    // SAFETY: `values` holds the 8 `f32` that the unaligned store writes.
    #[allow(unsafe_code)]
    unsafe {
        _mm256_storeu_ps(values.as_mut_ptr(), lanes)
    }
}

/// Stores four lanes to `values[at..at + 4]`.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn store4(values: &mut [f32], at: usize, lanes: __m128) {
    let values = &mut values[at..at + 4];
    // SAFETY: `values` holds the 4 `f32` that the unaligned store writes.
    #[allow(unsafe_code)]
    unsafe {
        _mm_storeu_ps(values.as_mut_ptr(), lanes)
    }
}

/// The rows of every pixel's neighbours in one event's waveforms, for sums eight samples at
/// a time: the neighbour lists are turned into row starts and checked once per event, so
/// that the loads of the sums need no bounds check each.
pub(super) struct NeighborRows<'a> {
    /// `[pixel][sample]`.
    waveforms: &'a [f32],
    n_samples: usize,
    /// Pixel `p`'s neighbours are `row_starts[offsets[p]..offsets[p + 1]]`.
    offsets: &'a [u32],
    /// The index in `waveforms` of each neighbour's first sample; every row lies within
    /// `waveforms` (checked in [`NeighborRows::new`]).
    row_starts: &'a [u32],
}

impl<'a> NeighborRows<'a> {
    /// The rows of the neighbour lists in compressed sparse row form (`offsets`, pixel
    /// indices `neighbors`), with `row_starts` as the buffer of their starts; `None` when a
    /// neighbour has no row of `n_samples` samples in `waveforms` or `waveforms` holds more
    /// than `u32::MAX` samples.
    pub(super) fn new(
        waveforms: &'a [f32],
        n_samples: usize,
        offsets: &'a [u32],
        neighbors: &[u32],
        row_starts: &'a mut Vec<u32>,
    ) -> Option<Self> {
        u32::try_from(waveforms.len()).ok()?;
        let n_rows = waveforms.len().checked_div(n_samples)?;
        let max_neighbor = neighbors.iter().copied().max().unwrap_or(0) as usize;
        if !neighbors.is_empty() && max_neighbor >= n_rows {
            return None;
        }
        // No overflow: every product is below `n_rows * n_samples <= u32::MAX`.
        let n_samples_u32 = n_samples as u32;
        row_starts.clear();
        row_starts.extend(neighbors.iter().map(|&neighbor| neighbor * n_samples_u32));
        Some(Self {
            waveforms,
            n_samples,
            offsets,
            row_starts,
        })
    }

    /// Adds the `N` vectors starting at the samples `starts` of every neighbour's row of
    /// `pixel` to `sums`, in `f32`, and returns the number of neighbours.
    ///
    /// # Panics
    /// When a start is beyond `n_samples - 8` (a bug of the caller), or `pixel` has no
    /// neighbour list.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn add_to<const N: usize>(
        &self,
        pixel: usize,
        starts: [usize; N],
        sums: &mut [__m256; N],
    ) -> usize {
        assert!(starts.iter().all(|&start| start + 8 <= self.n_samples));
        let rows = &self.row_starts[self.offsets[pixel] as usize..self.offsets[pixel + 1] as usize];
        let base = self.waveforms.as_ptr();
        let load = |row: u32, start: usize| {
            // SAFETY: the row of `n_samples` samples from `row` lies within `waveforms`
            // (checked in `new`) and `start + 8 <= n_samples` (asserted above).
            #[allow(unsafe_code)]
            unsafe {
                _mm256_loadu_ps(base.add(row as usize + start))
            }
        };
        for &row in rows {
            for (sum, &start) in sums.iter_mut().zip(&starts) {
                *sum = _mm256_add_ps(*sum, load(row, start));
            }
        }
        rows.len()
    }
}

/// The cache lines of data the next event will read, fetched a few at a time while the
/// current event computes, so that its first pass finds them in the cache instead of
/// waiting for memory.
#[derive(Debug, Clone, Copy, Default)]
pub struct Prefetch {
    /// Address of the next line to fetch.
    next: usize,
    /// Address just past the data.
    end: usize,
}

impl Prefetch {
    /// The lines of `values`.
    pub fn of<T>(values: &[T]) -> Self {
        let start = values.as_ptr() as usize;
        Self {
            next: start,
            end: start + std::mem::size_of_val(values),
        }
    }

    /// Fetches the next `n` lines (fewer at the end of the data).
    #[inline]
    pub fn lines(&mut self, n: usize) {
        for _ in 0..n {
            if self.next >= self.end {
                return;
            }
            // SAFETY: a prefetch reads nothing and never faults, whatever the address.
            #[allow(unsafe_code)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T1>(self.next as *const i8)
            };
            self.next += 64;
        }
    }
}
