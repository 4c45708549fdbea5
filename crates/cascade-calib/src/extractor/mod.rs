//! Charge and peak-time extraction (R1 -> DL1 image), following `ctapipe.image.extractor`.
//!
//! [`ImageExtractor`] is an [`ImageExtractorConfig`] prepared for one camera: options
//! checked and the integration correction computed once from the camera's reference pulse
//! shape. [`ImageExtractor::extract`] turns one gain-selected telescope event
//! `[pixel][sample]` into `image` (waveform units times the correction, p.e. for R1 input)
//! and `peak_time` (ns), allocating nothing (scratch space in [`ExtractorScratch`]).

#[cfg(target_arch = "x86_64")]
mod avx2;
mod config;
mod correction;
pub mod kernels;
pub mod neighbor_peak;
pub mod windows;

pub use config::{
    FixedWindowSum, FullWaveformSum, GlobalPeakWindowSum, ImageExtractorConfig, LocalPeakWindowSum,
    NeighborPeakWindowSum, SlidingWindowMaxSum,
};
pub use correction::{integration_correction, sliding_window_correction};

use cascade_instrument::Neighbors;

use crate::{CalibError, CameraReadout, QuantizedWaveforms};
use kernels::{argmax_f32, extract_sliding_window};
use neighbor_peak::{
    NeighborPeakScratch, neighbor_peak_indices_by_tile, neighbor_peak_indices_quantized_by_tile,
};
use windows::{ScaleDivision, extract_windows, extract_windows_quantized};

/// An image extractor prepared for one camera type.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageExtractor {
    config: ImageExtractorConfig,
    sampling_rate_ghz: f64,
    /// Integration correction per gain channel (empty when not applied).
    correction: Vec<f64>,
}

/// Reusable scratch space of [`ImageExtractor::extract`]; one per thread.
#[derive(Debug, Clone, Default)]
pub struct ExtractorScratch {
    neighbor_peak: NeighborPeakScratch,
    peaks: Vec<usize>,
    /// The peak index of every pixel's window (samples).
    window_peaks: Vec<i64>,
    global_sum: Vec<f32>,
    brightest: Vec<(f32, usize)>,
    /// Quantized samples converted to `f32`: a pixel's, or the event's for the extractors
    /// without an integer path.
    converted: Vec<f32>,
    /// How the window sums divide quantized samples by their scale.
    division: ScaleDivision,
}

impl ExtractorScratch {
    /// Called before an extraction: names the data of the extraction that follows it
    /// (`values`), which this one then fetches into the cache while it computes. A hint
    /// for speed only; no result depends on it.
    pub fn prefetch_next<T>(&mut self, values: &[T]) {
        self.neighbor_peak.prefetch_next(values);
    }
}

impl ImageExtractor {
    /// Prepares `config` for a camera with this readout: checks the options and computes
    /// the integration correction the way the ctapipe extractor's `_calculate_correction`
    /// does.
    pub fn new(config: &ImageExtractorConfig, readout: &CameraReadout) -> Result<Self, CalibError> {
        config.validate()?;
        readout.validate()?;
        let pulse = readout.reference_pulse_shape.view();
        let window_correction = |width: i64, shift: i64| {
            integration_correction(
                pulse,
                readout.reference_pulse_sample_width_ns,
                readout.sample_width_ns(),
                width,
                shift,
            )
        };
        let correction = match config {
            ImageExtractorConfig::FullWaveformSum(_) => Vec::new(),
            ImageExtractorConfig::FixedWindowSum(c) if c.apply_integration_correction => {
                window_correction(c.window_width, c.window_shift)
            }
            ImageExtractorConfig::GlobalPeakWindowSum(c) if c.apply_integration_correction => {
                window_correction(c.window_width, c.window_shift)
            }
            ImageExtractorConfig::LocalPeakWindowSum(c) if c.apply_integration_correction => {
                window_correction(c.window_width, c.window_shift)
            }
            ImageExtractorConfig::NeighborPeakWindowSum(c) if c.apply_integration_correction => {
                window_correction(c.window_width, c.window_shift)
            }
            ImageExtractorConfig::SlidingWindowMaxSum(c) if c.apply_integration_correction => {
                sliding_window_correction(
                    pulse,
                    readout.reference_pulse_sample_width_ns,
                    readout.sampling_rate_ghz,
                    c.window_width,
                )?
            }
            _ => Vec::new(),
        };
        Ok(Self {
            config: config.clone(),
            sampling_rate_ghz: readout.sampling_rate_ghz,
            correction,
        })
    }

    /// The configuration this extractor was built from.
    pub fn config(&self) -> &ImageExtractorConfig {
        &self.config
    }

    /// Integration correction per gain channel (dimensionless); empty when none is applied.
    pub fn integration_correction(&self) -> &[f64] {
        &self.correction
    }

    /// Sampling rate (GHz) used to convert peak times to ns.
    pub fn sampling_rate_ghz(&self) -> f64 {
        self.sampling_rate_ghz
    }

    /// Checks that waveforms of `n_samples` samples and the given gain channels can be
    /// extracted (window fits for `SlidingWindowMaxSum`, a correction for every channel).
    pub fn check(&self, n_samples: usize, n_channels: usize) -> Result<(), CalibError> {
        if let ImageExtractorConfig::SlidingWindowMaxSum(c) = &self.config
            && n_samples > 1
            && c.window_width as usize > n_samples
        {
            return Err(CalibError::InvalidConfig(format!(
                "SlidingWindowMaxSum: window_width {} exceeds the {n_samples} samples",
                c.window_width
            )));
        }
        if !self.correction.is_empty() && self.correction.len() < n_channels {
            return Err(CalibError::InvalidConfig(format!(
                "reference pulse shape has {} channel(s), the data {n_channels}",
                self.correction.len()
            )));
        }
        Ok(())
    }

    /// Extracts one gain-selected telescope event.
    ///
    /// `waveforms` is `[pixel][sample]` (R1, p.e.); `selected_gain_channel` selects the
    /// integration correction of each pixel; `broken_pixels` are left out of the neighbour
    /// sum (`NeighborPeakWindowSum`) and the camera average (`GlobalPeakWindowSum`).
    /// Writes `image` (p.e.) and `peak_time` (ns), one value per pixel. Call
    /// [`ImageExtractor::check`] once for the shapes first; bad shapes panic here.
    #[allow(clippy::too_many_arguments)]
    pub fn extract(
        &self,
        waveforms: &[f32],
        n_samples: usize,
        selected_gain_channel: &[i8],
        broken_pixels: &[bool],
        neighbors: &Neighbors,
        scratch: &mut ExtractorScratch,
        image: &mut [f32],
        peak_time: &mut [f32],
    ) {
        let rate = self.sampling_rate_ghz;
        let pixels = waveforms.chunks_exact(n_samples);
        let n_pixels = image.len();
        let ExtractorScratch {
            neighbor_peak,
            peaks: neighbor_peaks,
            window_peaks: peaks,
            global_sum,
            brightest,
            ..
        } = scratch;
        peaks.clear();
        // (window width, window shift) around `peaks`; `None` when the image is done.
        let window = match &self.config {
            ImageExtractorConfig::FullWaveformSum(_) => {
                peaks.resize(n_pixels, 0);
                Some((n_samples as i64, 0))
            }
            ImageExtractorConfig::FixedWindowSum(c) => {
                peaks.resize(n_pixels, c.peak_index);
                Some((c.window_width, c.window_shift))
            }
            ImageExtractorConfig::GlobalPeakWindowSum(c) => {
                let peak = global_peak_index(
                    waveforms,
                    n_samples,
                    broken_pixels,
                    c,
                    global_sum,
                    brightest,
                );
                peaks.resize(n_pixels, peak as i64);
                Some((c.window_width, c.window_shift))
            }
            ImageExtractorConfig::LocalPeakWindowSum(c) => {
                peaks.extend(pixels.map(|waveform| argmax_f32(waveform) as i64));
                Some((c.window_width, c.window_shift))
            }
            ImageExtractorConfig::NeighborPeakWindowSum(c) => {
                // The windows of each tile of pixels as soon as its peaks are known, while
                // its waveforms are still in the cache.
                neighbor_peaks.resize(n_pixels, 0);
                neighbor_peak_indices_by_tile(
                    waveforms,
                    n_samples,
                    neighbors,
                    c.local_weight,
                    broken_pixels,
                    neighbor_peak,
                    neighbor_peaks,
                    |tile, tile_peaks| {
                        peaks.clear();
                        peaks.extend(tile_peaks.iter().map(|&peak| peak as i64));
                        extract_windows(
                            &waveforms[tile.start * n_samples..tile.end * n_samples],
                            n_samples,
                            peaks,
                            c.window_width,
                            c.window_shift,
                            rate,
                            &mut image[tile.clone()],
                            &mut peak_time[tile],
                        );
                    },
                );
                None
            }
            ImageExtractorConfig::SlidingWindowMaxSum(c) => {
                let width = c.window_width as usize;
                let outputs = image.iter_mut().zip(peak_time.iter_mut());
                for (waveform, (charge, time)) in pixels.zip(outputs) {
                    (*charge, *time) = extract_sliding_window(waveform, width, rate);
                }
                None
            }
        };
        if let Some((width, shift)) = window {
            extract_windows(
                waveforms, n_samples, peaks, width, shift, rate, image, peak_time,
            );
        }
        self.apply_correction(image, selected_gain_channel);
    }

    /// [`ImageExtractor::extract`] for samples stored as `uint16` with a scale and an offset
    /// (CTAO's R1 event stream, see [`QuantizedWaveforms`]): the results of `extract` on
    /// the converted samples, bit for bit. `NeighborPeakWindowSum` finds its peaks on the
    /// integers and converts only the samples of each window; the other extractors run on
    /// the converted event.
    #[allow(clippy::too_many_arguments)]
    pub fn extract_quantized(
        &self,
        waveforms: QuantizedWaveforms<'_>,
        n_samples: usize,
        selected_gain_channel: &[i8],
        broken_pixels: &[bool],
        neighbors: &Neighbors,
        scratch: &mut ExtractorScratch,
        image: &mut [f32],
        peak_time: &mut [f32],
    ) {
        let n_pixels = image.len();
        let ImageExtractorConfig::NeighborPeakWindowSum(c) = &self.config else {
            let mut converted = std::mem::take(&mut scratch.converted);
            waveforms
                .slice(0..n_pixels * n_samples)
                .convert_into(&mut converted);
            self.extract(
                &converted,
                n_samples,
                selected_gain_channel,
                broken_pixels,
                neighbors,
                scratch,
                image,
                peak_time,
            );
            scratch.converted = converted;
            return;
        };
        let ExtractorScratch {
            neighbor_peak,
            peaks: neighbor_peaks,
            window_peaks: peaks,
            converted,
            division,
            ..
        } = scratch;
        neighbor_peaks.resize(n_pixels, 0);
        neighbor_peak_indices_quantized_by_tile(
            waveforms,
            n_samples,
            neighbors,
            c.local_weight,
            broken_pixels,
            neighbor_peak,
            neighbor_peaks,
            |tile, tile_peaks| {
                peaks.clear();
                peaks.extend(tile_peaks.iter().map(|&peak| peak as i64));
                extract_windows_quantized(
                    waveforms.slice(tile.start * n_samples..tile.end * n_samples),
                    n_samples,
                    peaks,
                    c.window_width,
                    c.window_shift,
                    self.sampling_rate_ghz,
                    &mut image[tile.clone()],
                    &mut peak_time[tile],
                    converted,
                    division,
                );
            },
        );
        self.apply_correction(image, selected_gain_channel);
    }

    /// Multiplies every pixel's charge by the integration correction of its selected gain
    /// channel.
    fn apply_correction(&self, image: &mut [f32], selected_gain_channel: &[i8]) {
        // ctapipe `ImageExtractor._apply_correction`: f32 charge times the f64 correction of
        // the selected channel, stored as f32; the usual one or two gain channels as a
        // select, which vectorises.
        let pixels = image.iter_mut().zip(selected_gain_channel);
        match *self.correction.as_slice() {
            [] => {}
            [high] => {
                for (charge, _) in pixels {
                    *charge = (f64::from(*charge) * high) as f32;
                }
            }
            [high, low] => {
                for (charge, &channel) in pixels {
                    let correction = if channel == 0 { high } else { low };
                    *charge = (f64::from(*charge) * correction) as f32;
                }
            }
            ref corrections => {
                for (charge, &channel) in pixels {
                    *charge = (f64::from(*charge) * corrections[channel as usize]) as f32;
                }
            }
        }
    }
}

/// Peak index of the camera-average waveform (ctapipe `GlobalPeakWindowSum.__call__`).
///
/// With `pixel_fraction == 1`: mean over the pixels that are not broken, accumulated in
/// `f32` pixel by pixel as numpy does for `waveforms.mean(axis=-2, where=...)`. Otherwise
/// the `int(pixel_fraction * n_pixels)` pixels with the largest maximum sample (broken
/// pixels count as `-inf`; ties go to the higher pixel index, as `heapq.nlargest`) are
/// averaged. The first maximum of the average is the peak.
fn global_peak_index(
    waveforms: &[f32],
    n_samples: usize,
    broken_pixels: &[bool],
    options: &GlobalPeakWindowSum,
    sum: &mut Vec<f32>,
    ranking: &mut Vec<(f32, usize)>,
) -> usize {
    let n_pixels = waveforms.len() / n_samples;
    sum.clear();
    sum.resize(n_samples, 0.0);
    let mut add = |pixel: usize| {
        let waveform = &waveforms[pixel * n_samples..(pixel + 1) * n_samples];
        for (acc, &sample) in sum.iter_mut().zip(waveform) {
            *acc += sample;
        }
    };
    let count = if options.pixel_fraction == 1.0 {
        let mut count = 0;
        for pixel in (0..n_pixels).filter(|&pixel| !broken_pixels[pixel]) {
            add(pixel);
            count += 1;
        }
        count
    } else {
        let n_brightest = (options.pixel_fraction * n_pixels as f64) as usize;
        ranking.clear();
        ranking.extend(
            waveforms
                .chunks_exact(n_samples)
                .enumerate()
                .map(|(pixel, wf)| {
                    let max = if broken_pixels[pixel] {
                        f32::NEG_INFINITY
                    } else {
                        wf.iter().copied().fold(f32::NEG_INFINITY, f32::max)
                    };
                    (max, pixel)
                }),
        );
        ranking.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
        for &(_, pixel) in ranking.iter().take(n_brightest) {
            add(pixel);
        }
        n_brightest
    };
    if count == 0 {
        return 0;
    }
    // numpy divides by the `where` count in f64 and by a plain count in f32.
    let mean = |total: f32| {
        if options.pixel_fraction == 1.0 {
            (f64::from(total) / count as f64) as f32
        } else {
            total / count as f32
        }
    };
    let mut best = 0;
    let mut best_value = f32::NEG_INFINITY;
    for (index, &total) in sum.iter().enumerate() {
        let mean = mean(total);
        if mean > best_value {
            best_value = mean;
            best = index;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    #[test]
    fn correction_follows_the_selected_gain_channel() {
        // High gain: box of 2 samples (window of 1 sample sees half); low gain: 1 sample.
        let mut pulse = Array2::<f64>::zeros((2, 6));
        pulse[[0, 2]] = 1.0;
        pulse[[0, 3]] = 1.0;
        pulse[[1, 2]] = 1.0;
        let readout = CameraReadout {
            sampling_rate_ghz: 1.0,
            reference_pulse_shape: pulse,
            reference_pulse_sample_width_ns: 1.0,
        };
        let config = ImageExtractorConfig::LocalPeakWindowSum(LocalPeakWindowSum {
            window_width: 1,
            window_shift: 0,
            apply_integration_correction: true,
        });
        let extractor = ImageExtractor::new(&config, &readout).expect("valid");
        assert_eq!(extractor.integration_correction(), &[2.0, 1.0]);
        let waveforms = [0.0_f32, 3.0, 0.0, 0.0, 3.0, 0.0];
        let (mut image, mut time) = ([0.0; 2], [0.0; 2]);
        extractor.extract(
            &waveforms,
            3,
            &[0, 1],
            &[false, false],
            &Neighbors::from_lists(&[vec![1], vec![0]]),
            &mut ExtractorScratch::default(),
            &mut image,
            &mut time,
        );
        assert_eq!(image, [6.0, 3.0]);
        assert_eq!(time, [1.0, 1.0]);
    }
}
