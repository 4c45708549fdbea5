//! Descriptive statistics of pixel values (ctapipe `descriptive_statistics`).
//!
//! ctapipe computes these on the `float32` DL1 image and peak times: numpy's `mean` and
//! `std` sum in `float32` with pairwise summation, and the numba-compiled `skewness` and
//! `kurtosis` accumulate `float32` powers sequentially. For peak times (large mean, small
//! spread) this rounding moves the skewness by ~1e-5, more than the conformance tolerance,
//! so `f32` input reproduces that arithmetic step by step; other inputs use `f64`.

use super::columns::Column;
use crate::error::{ImageError, check_len};
use crate::value::PixelValue;

/// Max, min, mean, standard deviation (population, `ddof=0`), skewness and excess
/// (Fisher) kurtosis of the selected pixel values; in the unit of the values (p.e. for
/// `intensity_*`, ns for `peak_time_*`; ctapipe writes them unitless). NaN when empty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageStatistics {
    /// Largest value.
    pub max: f64,
    /// Smallest value.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Standard deviation (`ddof = 0`).
    pub std: f64,
    /// Skewness: mean of the cubed standardised values.
    pub skewness: f64,
    /// Excess kurtosis: mean of the fourth power of the standardised values minus 3.
    pub kurtosis: f64,
}

impl ImageStatistics {
    /// ctapipe's prefix of the statistics of the image (`IntensityStatisticsContainer`).
    pub const INTENSITY_PREFIX: &'static str = "intensity";
    /// ctapipe's prefix of the statistics of the peak times (`PeakTimeStatisticsContainer`).
    pub const PEAK_TIME_PREFIX: &'static str = "peak_time";

    /// All-NaN statistics (ctapipe's default container).
    pub fn nan() -> Self {
        let nan = f64::NAN;
        Self {
            max: nan,
            min: nan,
            mean: nan,
            std: nan,
            skewness: nan,
            kurtosis: nan,
        }
    }

    /// Columns in ctapipe's order with the given prefix (all unitless in ctapipe).
    pub fn columns(&self, prefix: &'static str) -> [Column; 6] {
        [
            Column::float(prefix, "max", "", self.max),
            Column::float(prefix, "min", "", self.min),
            Column::float(prefix, "mean", "", self.mean),
            Column::float(prefix, "std", "", self.std),
            Column::float(prefix, "skewness", "", self.skewness),
            Column::float(prefix, "kurtosis", "", self.kurtosis),
        ]
    }
}

/// Reusable scratch memory of [`descriptive_statistics`].
#[derive(Debug, Default, Clone)]
pub struct StatisticsWorkspace {
    values: Vec<f32>,
    squares: Vec<f32>,
}

/// Statistics of the values selected by `mask` (ctapipe `descriptive_statistics`,
/// `statistics.skewness`, `statistics.kurtosis` with `fisher=True`). `f32` values follow
/// ctapipe's `float32` arithmetic (module docs); others are computed in `f64`.
pub fn descriptive_statistics<T: PixelValue>(
    values: &[T],
    mask: &[bool],
    workspace: &mut StatisticsWorkspace,
) -> Result<ImageStatistics, ImageError> {
    check_len("mask", values.len(), mask.len())?;
    Ok(statistics_of_selected(
        values,
        (0..mask.len()).filter(|&i| mask[i]),
        workspace,
    ))
}

/// [`descriptive_statistics`] of the values at the indices `selected` yields (ascending,
/// within `values`).
pub(super) fn statistics_of_selected<T: PixelValue>(
    values: &[T],
    selected: impl Iterator<Item = usize> + Clone,
    workspace: &mut StatisticsWorkspace,
) -> ImageStatistics {
    if selected.clone().next().is_none() {
        return ImageStatistics::nan();
    }
    if T::SINGLE_PRECISION {
        workspace.values.clear();
        workspace
            .values
            .extend(selected.map(|i| values[i].to_f64() as f32));
        return float32_statistics(&workspace.values, &mut workspace.squares);
    }
    let selected = || selected.clone().map(|i| values[i].to_f64());
    let (mut n, mut sum, mut max, mut min) = (0usize, 0.0, f64::NEG_INFINITY, f64::INFINITY);
    for value in selected() {
        n += 1;
        sum += value;
        max = max.max(value);
        min = min.min(value);
    }
    let n = n as f64;
    let mean = sum / n;
    let std = (selected().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    let (mut m3, mut m4) = (0.0, 0.0);
    for value in selected() {
        let z = (value - mean) / std;
        m3 += z.powi(3);
        m4 += z.powi(4);
    }
    ImageStatistics {
        max,
        min,
        mean,
        std,
        skewness: m3 / n,
        kurtosis: m4 / n - 3.0,
    }
}

/// ctapipe's statistics of a non-empty `float32` array, operation by operation:
/// numpy `mean`/`std` (pairwise `float32` sums), then numba `skewness`/`kurtosis`
/// (`float32` standardised powers summed sequentially in `float32`, divided in `f64`).
fn float32_statistics(values: &[f32], squares: &mut Vec<f32>) -> ImageStatistics {
    let n = values.len();
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let min = values.iter().copied().fold(f32::INFINITY, f32::min);
    let mean = numpy_pairwise_sum(values) / n as f32;
    squares.clear();
    squares.extend(values.iter().map(|&v| (v - mean) * (v - mean)));
    let std = (numpy_pairwise_sum(squares) / n as f32).sqrt();
    let (mut m3, mut m4) = (0f32, 0f32);
    for &value in values {
        let z = f64::from((value - mean) / std);
        m3 += z.powi(3) as f32;
        m4 += z.powi(4) as f32;
    }
    ImageStatistics {
        max: f64::from(max),
        min: f64::from(min),
        mean: f64::from(mean),
        std: f64::from(std),
        skewness: f64::from(m3) / n as f64,
        kurtosis: f64::from(m4) / n as f64 - 3.0,
    }
}

/// numpy's pairwise summation of a contiguous `float32` array (`FLOAT_pairwise_sum`:
/// sequential below 8 values, 8 interleaved accumulators up to 128, halving above).
fn numpy_pairwise_sum(values: &[f32]) -> f32 {
    const BLOCK: usize = 128;
    let n = values.len();
    if n < 8 {
        values.iter().fold(0.0, |sum, &v| sum + v)
    } else if n <= BLOCK {
        let mut r = [0f32; 8];
        r.copy_from_slice(&values[..8]);
        let full = n - n % 8;
        for chunk in values[8..full].chunks_exact(8) {
            for (acc, &v) in r.iter_mut().zip(chunk) {
                *acc += v;
            }
        }
        let mut sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &values[full..] {
            sum += v;
        }
        sum
    } else {
        let half = n / 2;
        let half = half - half % 8;
        numpy_pairwise_sum(&values[..half]) + numpy_pairwise_sum(&values[half..])
    }
}
