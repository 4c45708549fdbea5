//! Vector loads and stores between `f32` slices and AVX2 registers, for the extractor's
//! AVX2 kernels: the only memory access of those kernels that is not plain safe Rust.
//!
//! Each function slices first (a bounds check, which panics like an index would), then does
//! one unaligned load or store of exactly the sliced elements. They need AVX2, which every
//! caller has checked at run time before entering its `#[target_feature]` kernel.

use std::arch::x86_64::{__m128, __m256, _mm_storeu_ps, _mm256_loadu_ps, _mm256_storeu_ps};

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
