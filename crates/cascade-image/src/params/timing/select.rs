//! The `rank`-th largest of up to 32 values, for the cuts of the C-steps (~26 sampled
//! squared residuals, tails of ~31).
//!
//! On x86-64 CPUs with AVX2 (checked at run time) the values, padded with `-inf` to 32,
//! are sorted by a fixed network of minima and maxima in eight vectors of four `f64`
//! lanes: each lane's eight values by Batcher's 19-comparator network across the vectors,
//! then the four sorted runs of eight merged bitonically (two merges into runs of 16, one
//! into 32), the comparisons two and one lane apart by permutation within a vector. No
//! branch depends on the data, where the quickselect mispredicts at every round. The
//! `unsafe` of this module: that call after the run-time check, and the loads and stores
//! of whole fixed-size arrays.

/// Values at most this many go through the sorting network.
pub(super) const MAX_VALUES: usize = 32;

/// Fewer values than this are quicker for the quickselect.
pub(super) const MIN_VALUES: usize = 9;

/// The `rank`-th largest of `values` (`1 <= rank <= values.len() <= 32`, none NaN),
/// counting equal values separately, as `np.sort(values)[-rank]`; `None` without AVX2 or
/// outside those bounds. A zero may come back with either sign when `values` holds both.
pub(super) fn kth_largest_of_few(values: &[f64], rank: usize) -> Option<f64> {
    if values.len() > MAX_VALUES || rank == 0 || rank > values.len() {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        let mut padded = [f64::NEG_INFINITY; MAX_VALUES];
        padded[..values.len()].copy_from_slice(values);
        // SAFETY: `avx2::sort` needs AVX2, which the CPU has.
        #[allow(unsafe_code)]
        let sorted = unsafe { avx2::sort(&padded) };
        return Some(sorted[MAX_VALUES - rank]);
    }
    None
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256d, _mm256_blend_pd, _mm256_loadu_pd, _mm256_max_pd, _mm256_min_pd, _mm256_permute_pd,
        _mm256_permute2f128_pd, _mm256_permute4x64_pd, _mm256_storeu_pd, _mm256_unpackhi_pd,
        _mm256_unpacklo_pd,
    };

    use super::MAX_VALUES;

    /// Compare-exchanges of the vectors `$r[i]` and `$r[j]` for each listed pair `(i, j)`
    /// (the lower index gets the minimum), written out so that the vectors stay in
    /// registers: a loop over a table of pairs keeps them on the stack instead.
    macro_rules! compare_exchange {
        ($r:ident: $(($i:literal, $j:literal))*) => {
            $(
                let (low, high) = (_mm256_min_pd($r[$i], $r[$j]), _mm256_max_pd($r[$i], $r[$j]));
                $r[$i] = low;
                $r[$j] = high;
            )*
        };
    }

    /// `values` in ascending order.
    #[target_feature(enable = "avx2")]
    #[allow(unsafe_code)]
    pub(super) fn sort(values: &[f64; MAX_VALUES]) -> [f64; MAX_VALUES] {
        // SAFETY: vector `v` reads `values[4 v..4 v + 4]`, within the 32 values.
        let mut r: [__m256d; 8] =
            std::array::from_fn(|v| unsafe { _mm256_loadu_pd(values.as_ptr().add(4 * v)) });
        // Each lane's eight values (one per vector) in ascending order: Batcher's odd-even
        // merge sort of 8 inputs, 19 comparators, in an order where each one's inputs are
        // final.
        compare_exchange!(r: (0, 1) (2, 3) (4, 5) (6, 7) (0, 2) (1, 3) (4, 6) (5, 7) (1, 2)
            (5, 6) (0, 4) (1, 5) (2, 6) (3, 7) (2, 4) (3, 5) (1, 2) (3, 4) (5, 6));
        // Lane `l` of vectors 0..8 is a sorted run: transposed, run `l` is vectors
        // `2 l` (its first four) and `2 l + 1` (its last four).
        let [a, b, c, d] = transpose(r[0], r[1], r[2], r[3]);
        let [e, f, g, h] = transpose(r[4], r[5], r[6], r[7]);
        let [a, e, b, f] = merge([a, e, b, f]);
        let [c, g, d, h] = merge([c, g, d, h]);
        let runs = merge([a, e, b, f, c, g, d, h]);
        let mut sorted = [0.0; MAX_VALUES];
        for (v, vector) in runs.into_iter().enumerate() {
            // SAFETY: vector `v` writes `sorted[4 v..4 v + 4]`, within the 32 values.
            unsafe { _mm256_storeu_pd(sorted.as_mut_ptr().add(4 * v), vector) };
        }
        sorted
    }

    /// Merges the two ascending halves of `vectors` (each of `N / 2` vectors, the halves'
    /// values in order vector after vector; `N` a power of two) into one ascending run: the
    /// second half reversed makes the whole bitonic, then compare-exchanges at halving
    /// distances. Constant bounds throughout, so the vectors stay in registers.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn merge<const N: usize>(mut vectors: [__m256d; N]) -> [__m256d; N] {
        let half = N / 2;
        vectors[half..].reverse();
        for vector in &mut vectors[half..] {
            *vector = _mm256_permute4x64_pd::<0b00_01_10_11>(*vector);
        }
        let mut distance = half;
        while distance >= 1 {
            for i in (0..N).filter(|i| i & distance == 0) {
                let (low, high) = (vectors[i], vectors[i + distance]);
                vectors[i] = _mm256_min_pd(low, high);
                vectors[i + distance] = _mm256_max_pd(low, high);
            }
            distance /= 2;
        }
        for vector in &mut vectors {
            *vector = sort_bitonic_lanes(*vector);
        }
        vectors
    }

    /// The four lanes of a bitonic vector in ascending order: compare-exchanges two lanes
    /// apart, then one lane apart.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn sort_bitonic_lanes(vector: __m256d) -> __m256d {
        let swapped = _mm256_permute2f128_pd::<1>(vector, vector);
        let vector = _mm256_blend_pd::<0b1100>(
            _mm256_min_pd(vector, swapped),
            _mm256_max_pd(vector, swapped),
        );
        let swapped = _mm256_permute_pd::<0b0101>(vector);
        _mm256_blend_pd::<0b1010>(
            _mm256_min_pd(vector, swapped),
            _mm256_max_pd(vector, swapped),
        )
    }

    /// The 4 x 4 transpose: lane `l` of the inputs becomes vector `l` of the output.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn transpose(r0: __m256d, r1: __m256d, r2: __m256d, r3: __m256d) -> [__m256d; 4] {
        let low01 = _mm256_unpacklo_pd(r0, r1); // r0[0] r1[0] r0[2] r1[2]
        let high01 = _mm256_unpackhi_pd(r0, r1); // r0[1] r1[1] r0[3] r1[3]
        let low23 = _mm256_unpacklo_pd(r2, r3);
        let high23 = _mm256_unpackhi_pd(r2, r3);
        [
            _mm256_permute2f128_pd::<0x20>(low01, low23),
            _mm256_permute2f128_pd::<0x20>(high01, high23),
            _mm256_permute2f128_pd::<0x31>(low01, low23),
            _mm256_permute2f128_pd::<0x31>(high01, high23),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn equals_the_sorted_value(
            values in prop::collection::vec(
                prop_oneof![0.0f64..100.0, (0i32..5).prop_map(f64::from), Just(f64::INFINITY)],
                1..=MAX_VALUES,
            ),
            rank in any::<prop::sample::Index>(),
        ) {
            let rank = rank.index(values.len()) + 1;
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let expected = sorted[values.len() - rank];
            #[cfg(target_arch = "x86_64")]
            let has_network = std::arch::is_x86_feature_detected!("avx2");
            #[cfg(not(target_arch = "x86_64"))]
            let has_network = false;
            let found = kth_largest_of_few(&values, rank);
            prop_assert_eq!(found, has_network.then_some(expected));
        }
    }
}
