//! The gathering pass of a C-step: the squared residuals of every point from a line, and
//! those above a cut written, in index order, to the front of the tail buffers.
//!
//! On x86-64 CPUs with AVX2 (checked at run time) four points go at a time: residuals and
//! comparisons in four `f64` lanes (a multiplication and an addition, not a fused
//! multiply-add, so every value is the scalar loop's), and the lanes above the cut moved
//! to the front of the vector with a permutation looked up from their 4-bit mask. With
//! AVX-512 (F and VL) eight go at a time, and `vcompresspd` moves the lanes above the cut.
//! The `unsafe` of this module: those calls after the run-time checks, and the loads and
//! stores (each of a slice bounds-checked first).

/// Writes the indices and squared residuals `(y - (x * beta[0] + beta[1]))^2` of the points
/// above `cut` (every point for `None`) to the front of `tail_index` and `tail_squares`,
/// in index order; returns how many, and whether a squared residual is NaN (a NaN is never
/// above a cut; its sign and payload may differ between the two passes). Both tails hold
/// at least `x.len()` entries; past the returned length they hold anything.
pub(super) fn gather_above(
    x: &[f64],
    y: &[f64],
    beta: [f64; 2],
    cut: Option<f64>,
    tail_index: &mut [u32],
    tail_squares: &mut [f64],
) -> (usize, bool) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vl")
    {
        // SAFETY: `avx512::gather_above` needs AVX-512 F and VL, which the CPU has.
        #[allow(unsafe_code)]
        return unsafe { avx512::gather_above(x, y, beta, cut, tail_index, tail_squares) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `avx2::gather_above` needs AVX2, which the CPU has.
        #[allow(unsafe_code)]
        return unsafe { avx2::gather_above(x, y, beta, cut, tail_index, tail_squares) };
    }
    gather_from(x, y, beta, cut, (0, 0, false), tail_index, tail_squares)
}

/// The scalar pass from point `first` on, with `len` points gathered and `nan` seen so far.
/// Branch-free: each point is written, the length grows only for those above the cut.
fn gather_from(
    x: &[f64],
    y: &[f64],
    beta: [f64; 2],
    cut: Option<f64>,
    (first, mut len, mut nan): (usize, usize, bool),
    tail_index: &mut [u32],
    tail_squares: &mut [f64],
) -> (usize, bool) {
    let n = x.len().min(y.len());
    let (tail_index, tail_squares) = (&mut tail_index[..n], &mut tail_squares[..n]);
    // an absent cut keeps every point: comparing with it is always true
    let (cut, all) = match cut {
        Some(cut) => (cut, false),
        None => (0.0, true),
    };
    for (i, (&xi, &yi)) in x.iter().zip(y).enumerate().take(n).skip(first) {
        let residual = yi - (xi * beta[0] + beta[1]);
        let square = residual * residual;
        nan |= square.is_nan();
        tail_index[len] = i as u32;
        tail_squares[len] = square;
        len += usize::from(all | (square > cut));
    }
    (len, nan)
}

/// The four-point AVX2 pass.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m128i, __m256d, __m256i, _CMP_GT_OQ, _CMP_UNORD_Q, _mm_storeu_si128, _mm256_add_epi32,
        _mm256_add_pd, _mm256_castpd_ps, _mm256_castps_pd, _mm256_castsi256_si128, _mm256_cmp_pd,
        _mm256_loadu_pd, _mm256_loadu_si256, _mm256_movemask_pd, _mm256_mul_pd,
        _mm256_permutevar8x32_epi32, _mm256_permutevar8x32_ps, _mm256_set1_epi32, _mm256_set1_pd,
        _mm256_setr_epi32, _mm256_storeu_pd, _mm256_sub_pd,
    };

    use super::gather_from;

    /// For each 4-bit mask of lanes, the 32-bit lanes that move the selected 64-bit lanes
    /// to the front, in order (lane `j` is 32-bit lanes `2j`, `2j + 1`).
    const PAIR_ORDER: [[i32; 8]; 16] = front_order(2);
    /// The same for 32-bit lanes (point indices).
    const SINGLE_ORDER: [[i32; 8]; 16] = front_order(1);

    /// The permutations of [`PAIR_ORDER`] (`width` 2) and [`SINGLE_ORDER`] (`width` 1).
    const fn front_order(width: usize) -> [[i32; 8]; 16] {
        let mut orders = [[0; 8]; 16];
        let mut mask = 0;
        while mask < 16 {
            let mut to = 0;
            let mut lane = 0;
            while lane < 4 {
                if mask & (1 << lane) != 0 {
                    let mut part = 0;
                    while part < width {
                        orders[mask][to] = (lane * width + part) as i32;
                        to += 1;
                        part += 1;
                    }
                }
                lane += 1;
            }
            mask += 1;
        }
        orders
    }

    /// [`super::gather_above`], four points at a time.
    #[target_feature(enable = "avx2")]
    pub(super) fn gather_above(
        x: &[f64],
        y: &[f64],
        beta: [f64; 2],
        cut: Option<f64>,
        tail_index: &mut [u32],
        tail_squares: &mut [f64],
    ) -> (usize, bool) {
        let n = x.len().min(y.len());
        let (slope, intercept) = (_mm256_set1_pd(beta[0]), _mm256_set1_pd(beta[1]));
        let cut_lanes = _mm256_set1_pd(cut.unwrap_or(0.0));
        let mut indices = _mm256_setr_epi32(0, 1, 2, 3, 0, 0, 0, 0);
        let four = _mm256_set1_epi32(4);
        let (mut len, mut nan_lanes) = (0, 0);
        let n_chunks = n / 4;
        for chunk in 0..n_chunks {
            let at = chunk * 4;
            let predicted = _mm256_add_pd(_mm256_mul_pd(load4(x, at), slope), intercept);
            let residual = _mm256_sub_pd(load4(y, at), predicted);
            let square = _mm256_mul_pd(residual, residual);
            nan_lanes |= _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_UNORD_Q>(square, square));
            let above = match cut {
                Some(_) => _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_GT_OQ>(square, cut_lanes)),
                None => 0b1111,
            } as usize;
            // `len <= at`, so the four lanes stored from `len` fit before `at + 4 <= n`.
            let squares =
                _mm256_permutevar8x32_ps(_mm256_castpd_ps(square), order(&PAIR_ORDER[above]));
            store4(tail_squares, len, _mm256_castps_pd(squares));
            let moved = _mm256_permutevar8x32_epi32(indices, order(&SINGLE_ORDER[above]));
            store4_u32(tail_index, len, _mm256_castsi256_si128(moved));
            len += above.count_ones() as usize;
            indices = _mm256_add_epi32(indices, four);
        }
        gather_from(
            x,
            y,
            beta,
            cut,
            (n_chunks * 4, len, nan_lanes != 0),
            tail_index,
            tail_squares,
        )
    }

    /// The eight 32-bit lanes of `order`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn order(order: &[i32; 8]) -> __m256i {
        // SAFETY: `order` holds the 8 `i32` that the unaligned load reads.
        #[allow(unsafe_code)]
        unsafe {
            _mm256_loadu_si256(order.as_ptr().cast())
        }
    }

    /// The four values `values[at..at + 4]`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn load4(values: &[f64], at: usize) -> __m256d {
        let values = &values[at..at + 4];
        // SAFETY: `values` holds the 4 `f64` that the unaligned load reads.
        #[allow(unsafe_code)]
        unsafe {
            _mm256_loadu_pd(values.as_ptr())
        }
    }

    /// Stores four lanes to `values[at..at + 4]`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn store4(values: &mut [f64], at: usize, lanes: __m256d) {
        let values = &mut values[at..at + 4];
        // SAFETY: `values` holds the 4 `f64` that the unaligned store writes.
        #[allow(unsafe_code)]
        unsafe {
            _mm256_storeu_pd(values.as_mut_ptr(), lanes)
        }
    }

    /// Stores four 32-bit lanes to `values[at..at + 4]`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn store4_u32(values: &mut [u32], at: usize, lanes: __m128i) {
        let values = &mut values[at..at + 4];
        // SAFETY: `values` holds the 4 `u32` that the unaligned store writes.
        #[allow(unsafe_code)]
        unsafe {
            _mm_storeu_si128(values.as_mut_ptr().cast(), lanes)
        }
    }
}

/// The eight-point AVX-512 pass.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __m256i, __m512d, _CMP_GT_OQ, _CMP_UNORD_Q, _mm256_add_epi32, _mm256_maskz_compress_epi32,
        _mm256_set1_epi32, _mm256_setr_epi32, _mm256_storeu_si256, _mm512_add_pd,
        _mm512_cmp_pd_mask, _mm512_loadu_pd, _mm512_maskz_compress_pd, _mm512_mul_pd,
        _mm512_set1_pd, _mm512_storeu_pd, _mm512_sub_pd,
    };

    use super::gather_from;

    /// [`super::gather_above`], eight points at a time.
    #[target_feature(enable = "avx512f,avx512vl")]
    pub(super) fn gather_above(
        x: &[f64],
        y: &[f64],
        beta: [f64; 2],
        cut: Option<f64>,
        tail_index: &mut [u32],
        tail_squares: &mut [f64],
    ) -> (usize, bool) {
        let n = x.len().min(y.len());
        let (slope, intercept) = (_mm512_set1_pd(beta[0]), _mm512_set1_pd(beta[1]));
        let cut_lanes = _mm512_set1_pd(cut.unwrap_or(0.0));
        let mut indices = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let eight = _mm256_set1_epi32(8);
        let (mut len, mut nan_lanes) = (0, 0);
        let n_chunks = n / 8;
        for chunk in 0..n_chunks {
            let at = chunk * 8;
            let predicted = _mm512_add_pd(_mm512_mul_pd(load8(x, at), slope), intercept);
            let residual = _mm512_sub_pd(load8(y, at), predicted);
            let square = _mm512_mul_pd(residual, residual);
            nan_lanes |= _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(square, square);
            let above = match cut {
                Some(_) => _mm512_cmp_pd_mask::<_CMP_GT_OQ>(square, cut_lanes),
                None => u8::MAX,
            };
            // `len <= at`, so the eight lanes stored from `len` fit before `at + 8 <= n`.
            store8(tail_squares, len, _mm512_maskz_compress_pd(above, square));
            store8_u32(tail_index, len, _mm256_maskz_compress_epi32(above, indices));
            len += above.count_ones() as usize;
            indices = _mm256_add_epi32(indices, eight);
        }
        gather_from(
            x,
            y,
            beta,
            cut,
            (n_chunks * 8, len, nan_lanes != 0),
            tail_index,
            tail_squares,
        )
    }

    /// The eight values `values[at..at + 8]`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn load8(values: &[f64], at: usize) -> __m512d {
        let values = &values[at..at + 8];
        // SAFETY: `values` holds the 8 `f64` that the unaligned load reads.
        #[allow(unsafe_code)]
        unsafe {
            _mm512_loadu_pd(values.as_ptr())
        }
    }

    /// Stores eight lanes to `values[at..at + 8]`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn store8(values: &mut [f64], at: usize, lanes: __m512d) {
        let values = &mut values[at..at + 8];
        // SAFETY: `values` holds the 8 `f64` that the unaligned store writes.
        #[allow(unsafe_code)]
        unsafe {
            _mm512_storeu_pd(values.as_mut_ptr(), lanes)
        }
    }

    /// Stores eight 32-bit lanes to `values[at..at + 8]`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn store8_u32(values: &mut [u32], at: usize, lanes: __m256i) {
        let values = &mut values[at..at + 8];
        // SAFETY: `values` holds the 8 `u32` that the unaligned store writes.
        #[allow(unsafe_code)]
        unsafe {
            _mm256_storeu_si256(values.as_mut_ptr().cast(), lanes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn values() -> impl Strategy<Value = f64> {
        prop_oneof![
            8 => -10.0f64..10.0,
            1 => prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0]),
        ]
    }

    /// The signature of the passes.
    type Pass = fn(&[f64], &[f64], [f64; 2], Option<f64>, &mut [u32], &mut [f64]) -> (usize, bool);

    /// The pass the CPU takes, and on x86-64 the AVX2 pass too where the CPU takes the
    /// AVX-512 one.
    fn vector_passes() -> Vec<Pass> {
        #[allow(unused_mut)]
        let mut passes: Vec<Pass> = vec![gather_above];
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the pass needs AVX2, which the CPU has.
            #[allow(unsafe_code)]
            passes.push(|x, y, beta, cut, index, squares| unsafe {
                avx2::gather_above(x, y, beta, cut, index, squares)
            });
        }
        passes
    }

    proptest! {
        /// Each vector pass (where the CPU has one) gathers exactly what the scalar pass
        /// gathers, NaN and infinite points included.
        #[test]
        fn equals_the_scalar_pass(
            points in prop::collection::vec((values(), values()), 0..40),
            beta in (values(), values()),
            cut in prop::option::of(0.0f64..50.0),
        ) {
            let (x, y): (Vec<f64>, Vec<f64>) = points.into_iter().unzip();
            let n = x.len();
            let beta = [beta.0, beta.1];
            let (mut scalar_index, mut scalar_squares) = (vec![0; n], vec![0.0; n]);
            let (scalar_len, scalar_nan) = gather_from(
                &x, &y, beta, cut, (0, 0, false), &mut scalar_index, &mut scalar_squares,
            );
            for pass in vector_passes() {
                let (mut index, mut squares) = (vec![0; n], vec![0.0; n]);
                let (len, nan) = pass(&x, &y, beta, cut, &mut index, &mut squares);
                prop_assert_eq!((len, nan), (scalar_len, scalar_nan));
                prop_assert_eq!(&index[..len], &scalar_index[..len]);
                // Equal bits, or both NaN: the sign and payload of a NaN made by arithmetic
                // depend on the order of the operands, which Rust leaves to the compiler.
                let same =
                    |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
                for (&ours, &scalar) in squares[..len].iter().zip(&scalar_squares[..len]) {
                    prop_assert!(same(ours, scalar), "{} != {}", ours, scalar);
                }
            }
        }
    }
}
