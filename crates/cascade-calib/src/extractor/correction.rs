//! Integration corrections: the factor that makes an extractor return 1 for a noise-less
//! unit pulse, computed from the camera's reference pulse shape.

use ndarray::ArrayView2;

use crate::CalibError;

/// Integration correction per gain channel for a window of `window_width` samples starting
/// `window_shift` samples before the peak (ctapipe `integration_correction`).
///
/// The reference pulse (sampled every `reference_pulse_sample_width_ns`) is re-binned into
/// waveform samples of `sample_width_ns` with `np.histogram(..., density=True)` semantics
/// (bins `[k w, (k+1) w)`, the last bin closed, only bins starting before the end of the
/// pulse), the window is placed around the first maximum of the binned pulse and clipped to
/// it, and the correction is `1 / (sum of the binned pulse in the window * sample_width_ns)`.
/// Channels whose clipped window is empty get 1.
pub fn integration_correction(
    reference_pulse_shape: ArrayView2<'_, f64>,
    reference_pulse_sample_width_ns: f64,
    sample_width_ns: f64,
    window_width: i64,
    window_shift: i64,
) -> Vec<f64> {
    reference_pulse_shape
        .rows()
        .into_iter()
        .map(|pulse_shape| {
            let pulse: Vec<f64> = pulse_shape.iter().copied().collect();
            channel_integration_correction(
                &pulse,
                reference_pulse_sample_width_ns,
                sample_width_ns,
                window_width,
                window_shift,
            )
        })
        .collect()
}

/// Integration correction per gain channel for `SlidingWindowMaxSum` (its
/// `_calculate_correction`): the window width in reference-pulse samples is
/// `round(window_width / sampling_rate_ghz / reference_pulse_sample_width_ns)` (ties to
/// even), the best window of the reference pulse is found as the extractor does, and the
/// correction is `sum(pulse) / best window sum`.
///
/// Fails where ctapipe raises: a window of zero reference samples or longer than the pulse.
pub fn sliding_window_correction(
    reference_pulse_shape: ArrayView2<'_, f64>,
    reference_pulse_sample_width_ns: f64,
    sampling_rate_ghz: f64,
    window_width: i64,
) -> Result<Vec<f64>, CalibError> {
    let width = (window_width as f64 / sampling_rate_ghz / reference_pulse_sample_width_ns)
        .round_ties_even();
    let n_reference = reference_pulse_shape.ncols();
    if !(width >= 1.0 && width <= n_reference as f64) {
        return Err(CalibError::InvalidConfig(format!(
            "SlidingWindowMaxSum: window of {window_width} samples is {width} reference \
             pulse samples, outside 1..={n_reference}"
        )));
    }
    let width = width as usize;
    Ok(reference_pulse_shape
        .rows()
        .into_iter()
        .map(|pulse| {
            let mut cumulative = Vec::with_capacity(n_reference + 1);
            let mut running = 0.0_f64;
            cumulative.push(running);
            for &value in pulse {
                running += value;
                cumulative.push(running);
            }
            let max_sum = cumulative
                .iter()
                .zip(&cumulative[width..])
                .map(|(start, end)| end - start)
                .fold(f64::NEG_INFINITY, f64::max);
            pulse.sum() / max_sum
        })
        .collect())
}

fn channel_integration_correction(
    pulse_shape: &[f64],
    reference_width_ns: f64,
    sample_width_ns: f64,
    window_width: i64,
    window_shift: i64,
) -> f64 {
    let pulse_max_sample = pulse_shape.len() as f64 * reference_width_ns;
    // np.arange(0, stop, step): ceil(stop / step) values k * step.
    let arange = |step: f64| -> Vec<f64> {
        let len = (pulse_max_sample / step).ceil().max(0.0) as usize;
        (0..len).map(|k| k as f64 * step).collect()
    };
    let pulse_x = arange(reference_width_ns);
    let edges = arange(sample_width_ns);
    if edges.len() < 2 {
        return 1.0;
    }
    let n_bins = edges.len() - 1;
    let last_edge = edges[n_bins];
    let mut histogram = vec![0.0_f64; n_bins];
    for (&x, &weight) in pulse_x.iter().zip(pulse_shape) {
        if x < edges[0] || x > last_edge {
            continue;
        }
        // Bin i holds edges[i] <= x < edges[i + 1]; x == last edge goes to the last bin.
        let bin = (edges.partition_point(|&edge| edge <= x) - 1).min(n_bins - 1);
        histogram[bin] += weight;
    }
    let total: f64 = histogram.iter().sum();
    let density: Vec<f64> = histogram
        .iter()
        .zip(edges.windows(2))
        .map(|(&count, edge)| count / (edge[1] - edge[0]) / total)
        .collect();

    let mut peak = 0;
    for (index, &value) in density.iter().enumerate() {
        if value > density[peak] {
            peak = index;
        }
    }
    let start = (peak as i64 - window_shift).max(0);
    let end = (start + window_width).min(n_bins as i64);
    if start >= end {
        return 1.0;
    }
    let integral: f64 = density[start as usize..end as usize]
        .iter()
        .map(|value| value * sample_width_ns)
        .sum();
    1.0 / integral
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    fn pulse(values: &[f64]) -> Array2<f64> {
        Array2::from_shape_vec((1, values.len()), values.to_vec()).unwrap_or_default()
    }

    #[test]
    fn box_pulse_inside_window_needs_no_correction() {
        let shape = pulse(&[0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let correction = integration_correction(shape.view(), 1.0, 1.0, 7, 3);
        assert!((correction[0] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn window_covering_half_of_a_box_doubles_the_charge() {
        let shape = pulse(&[0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
        // Peak (first maximum) at 1, window [1, 3): half of the pulse.
        let correction = integration_correction(shape.view(), 1.0, 1.0, 2, 0);
        assert!((correction[0] - 2.0).abs() < 1e-12);
    }

    #[test]
    fn finer_reference_sampling_is_rebinned() {
        // 0.25 ns reference steps, 1 ns samples: box of 2 ns fully in the window.
        let mut values = vec![0.0; 40];
        for value in &mut values[8..16] {
            *value = 3.0;
        }
        let correction = integration_correction(pulse(&values).view(), 0.25, 1.0, 4, 1);
        assert!((correction[0] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn empty_window_gives_one() {
        let shape = pulse(&[1.0, 2.0, 1.0]);
        let correction = integration_correction(shape.view(), 1.0, 1.0, 0, 0);
        assert_eq!(correction, vec![1.0]);
    }

    #[test]
    fn sliding_window_correction_of_box_is_one() {
        let shape = pulse(&[0.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        let correction = sliding_window_correction(shape.view(), 1.0, 1.0, 3);
        assert_eq!(correction, Ok(vec![1.0]));
        assert!(sliding_window_correction(shape.view(), 1.0, 1.0, 7).is_err());
    }
}
