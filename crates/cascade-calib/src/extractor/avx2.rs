//! Vector loads and stores between `f32` slices and AVX2 registers, for the extractor's
//! AVX2 kernels: the only memory access of those kernels that is not plain safe Rust.
//!
//! Each function slices first (a bounds check, which panics like an index would), then does
//! one unaligned load or store of exactly the sliced elements. They need AVX2, which every
//! caller has checked at run time before entering its `#[target_feature]` kernel.

use std::arch::x86_64::{
    __m128, __m128i, __m256, __m256i, _MM_HINT_T1, _mm_loadu_si128, _mm_prefetch, _mm_storeu_ps,
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

/// The eight `u16` values `values[at..at + 8]`.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn load8_u16(values: &[u16], at: usize) -> __m128i {
    let values = &values[at..at + 8];
    // SAFETY: `values` holds the 8 `u16` (16 bytes) that the unaligned load reads.
    #[allow(unsafe_code)]
    unsafe {
        _mm_loadu_si128(values.as_ptr().cast())
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

    /// Fetches the next two lines (none past the end of the data).
    #[inline]
    pub fn two_lines(&mut self) {
        if self.next >= self.end {
            return;
        }
        for line in [self.next, self.next + 64] {
            // SAFETY: a prefetch reads nothing and never faults, whatever the address (the
            // second line may lie just past the data).
            #[allow(unsafe_code)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T1>(line as *const i8)
            };
        }
        self.next += 128;
    }
}

/// Software pipelining: `start` of an item runs before `finish` of the previous one, so
/// that the work of one item overlaps the chain of dependent operations that ends the
/// previous one (out-of-order execution sees both in a window of a few hundred
/// instructions).
///
/// `start` is called from one place only, so that the compiler inlines it however large
/// it is: called from two places (the first item before the loop, the others in it), the
/// sums of a pixel's eight vectors or of a block of window positions stayed a function,
/// whose every call reloaded what it captured and returned its vectors through memory
/// (16-20 % more instructions for waveforms of 50-60 samples). `empty` stands for the
/// item before the first; it never reaches `finish`.
#[inline(always)]
pub(super) fn pipelined<I, T: Copy>(
    items: impl Iterator<Item = I>,
    empty: T,
    mut start: impl FnMut(I) -> T,
    mut finish: impl FnMut(T),
) {
    let mut started = empty;
    let mut any = false;
    for item in items {
        let next = start(item);
        if any {
            finish(started);
        }
        any = true;
        started = next;
    }
    if any {
        finish(started);
    }
}
