//! Descriptive statistics of pixel values (ctapipe `descriptive_statistics`).

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
    pub fn columns(&self, prefix: &'static str) -> Vec<Column> {
        vec![
            Column::float(prefix, "max", "", self.max),
            Column::float(prefix, "min", "", self.min),
            Column::float(prefix, "mean", "", self.mean),
            Column::float(prefix, "std", "", self.std),
            Column::float(prefix, "skewness", "", self.skewness),
            Column::float(prefix, "kurtosis", "", self.kurtosis),
        ]
    }
}

/// Statistics of the values selected by `mask` (ctapipe `descriptive_statistics`,
/// `statistics.skewness`, `statistics.kurtosis` with `fisher=True`), computed in `f64`.
pub fn descriptive_statistics<T: PixelValue>(
    values: &[T],
    mask: &[bool],
) -> Result<ImageStatistics, ImageError> {
    check_len("mask", values.len(), mask.len())?;
    let selected = || {
        (0..mask.len())
            .filter(|&i| mask[i])
            .map(|i| values[i].to_f64())
    };
    let (mut n, mut sum, mut max, mut min) = (0usize, 0.0, f64::NEG_INFINITY, f64::INFINITY);
    for value in selected() {
        n += 1;
        sum += value;
        max = max.max(value);
        min = min.min(value);
    }
    if n == 0 {
        return Ok(ImageStatistics::nan());
    }
    let n = n as f64;
    let mean = sum / n;
    let variance = selected().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let std = variance.sqrt();
    let (mut m3, mut m4) = (0.0, 0.0);
    for value in selected() {
        let z = (value - mean) / std;
        let z2 = z * z;
        m3 += z2 * z;
        m4 += z2 * z2;
    }
    Ok(ImageStatistics {
        max,
        min,
        mean,
        std,
        skewness: m3 / n,
        kurtosis: m4 / n - 3.0,
    })
}
