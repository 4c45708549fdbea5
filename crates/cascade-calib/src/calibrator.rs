//! The whole R0 -> DL1 chain of one camera, over batches of telescope events, following
//! ctapipe's `CameraCalibrator._calibrate_dl1` (with `NullDataVolumeReducer`, the default):
//!
//! ```text
//! R0 [event][channel][pixel][sample] u16
//!   -> r1::r0_to_r1_event         gain selection, pedestal, dc_to_pe  -> R1 [pixel][sample] f32
//!   -> ImageExtractor::extract    charge * integration correction, peak time (ns)
//!   -> peak_time -= time_shift[selected channel]                 (apply_peak_time_shift)
//!   -> invalid_pixels::neighbor_average                          (broken pixels)
//! ```
//! Cameras with a single sample per pixel skip extraction: the image is the R1 sample and
//! the peak time 0, as in ctapipe. Events are processed in parallel with rayon; every
//! worker reuses its scratch space.

use cascade_instrument::Neighbors;
use ndarray::{ArrayView2, ArrayView3, ArrayView4, ArrayViewMut2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::extractor::{ExtractorScratch, ImageExtractor, ImageExtractorConfig};
use crate::invalid_pixels::{InvalidPixelHandler, neighbor_average};
use crate::r1::{R1Config, TelescopeCalibration, check_shape, r0_to_r1_event};
use crate::{CalibError, CameraReadout};

/// Options of the calibration chain (ctapipe `SimTelEventSource` R1 options plus
/// `CameraCalibrator`). Every field has ctapipe's default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalibrationConfig {
    /// R0 -> R1 options (gain selector, calib_scale, calib_shift).
    pub r1: R1Config,
    /// The image extractor. Default `NeighborPeakWindowSum` with its defaults.
    pub image_extractor: ImageExtractorConfig,
    /// Treatment of broken pixels. Default `NeighborAverage`.
    pub invalid_pixel_handler: InvalidPixelHandler,
    /// Subtract the per-pixel time shift of the selected channel from the peak time.
    /// Default true.
    pub apply_peak_time_shift: bool,
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        Self {
            r1: R1Config::default(),
            image_extractor: ImageExtractorConfig::default(),
            invalid_pixel_handler: InvalidPixelHandler::default(),
            apply_peak_time_shift: true,
        }
    }
}

/// The calibration chain prepared for one camera type.
#[derive(Debug, Clone)]
pub struct CameraCalibrator {
    r1: R1Config,
    extractor: ImageExtractor,
    invalid_pixel_handler: InvalidPixelHandler,
    apply_peak_time_shift: bool,
    neighbors: Neighbors,
}

/// Per-worker scratch space of [`CameraCalibrator`].
#[derive(Debug, Default)]
struct Scratch {
    extractor: ExtractorScratch,
    r1: Vec<f32>,
}

impl CameraCalibrator {
    /// Prepares the chain for a camera with this readout and these pixel neighbours.
    pub fn new(
        config: &CalibrationConfig,
        readout: &CameraReadout,
        neighbors: &Neighbors,
    ) -> Result<Self, CalibError> {
        let n_pixels = neighbors.n_pixels();
        if let Some(&bad) = neighbors
            .indices()
            .iter()
            .find(|&&i| i as usize >= n_pixels)
        {
            return Err(CalibError::InvalidConfig(format!(
                "neighbour index {bad} outside the camera's {n_pixels} pixels"
            )));
        }
        Ok(Self {
            r1: config.r1.clone(),
            extractor: ImageExtractor::new(&config.image_extractor, readout)?,
            invalid_pixel_handler: config.invalid_pixel_handler,
            apply_peak_time_shift: config.apply_peak_time_shift,
            neighbors: neighbors.clone(),
        })
    }

    /// The prepared image extractor (e.g. to read its integration correction).
    pub fn extractor(&self) -> &ImageExtractor {
        &self.extractor
    }

    /// R0 -> DL1 for a batch of telescope events of this camera, keeping R1 only in
    /// per-worker scratch space.
    ///
    /// Shapes: `r0` `[event][channel][pixel][sample]` (ADC counts); outputs
    /// `selected_gain_channel` `[event][pixel]`, `image` `[event][pixel]` (p.e.),
    /// `peak_time` `[event][pixel]` (ns); all contiguous in standard layout.
    pub fn r0_to_dl1(
        &self,
        r0: ArrayView4<'_, u16>,
        calibration: &TelescopeCalibration,
        mut selected_gain_channel: ArrayViewMut2<'_, i8>,
        mut image: ArrayViewMut2<'_, f32>,
        mut peak_time: ArrayViewMut2<'_, f32>,
    ) -> Result<(), CalibError> {
        let (n_events, _, _, n_samples) = r0.dim();
        let n_pixels = self.check_calibration(calibration, n_samples)?;
        check_shape(
            "r0",
            r0.shape(),
            &[n_events, calibration.n_channels(), n_pixels, n_samples],
        )?;
        let r0 = r0
            .as_slice()
            .ok_or(CalibError::NotContiguous { what: "r0" })?;
        let gains = as_event_slice(
            "selected_gain_channel",
            &mut selected_gain_channel,
            n_events,
            n_pixels,
        )?;
        let image = as_event_slice("image", &mut image, n_events, n_pixels)?;
        let peak_time = as_event_slice("peak_time", &mut peak_time, n_events, n_pixels)?;
        if n_events == 0 || n_pixels == 0 || n_samples == 0 {
            return Ok(());
        }
        r0.par_chunks_exact(r0.len() / n_events)
            .zip(gains.par_chunks_exact_mut(n_pixels))
            .zip(image.par_chunks_exact_mut(n_pixels))
            .zip(peak_time.par_chunks_exact_mut(n_pixels))
            .for_each_init(Scratch::default, |scratch, (((r0, gains), image), time)| {
                let mut r1 = std::mem::take(&mut scratch.r1);
                r1.resize(n_pixels * n_samples, 0.0);
                r0_to_r1_event(r0, n_samples, calibration, &self.r1, &mut r1, gains);
                self.dl1_event(&r1, n_samples, gains, calibration, scratch, image, time);
                scratch.r1 = r1;
            });
        Ok(())
    }

    /// R1 -> DL1 for a batch of gain-selected telescope events of this camera.
    ///
    /// Shapes: `r1` `[event][pixel][sample]` (p.e.), `selected_gain_channel`
    /// `[event][pixel]`; outputs `image` (p.e.) and `peak_time` (ns) `[event][pixel]`.
    pub fn r1_to_dl1(
        &self,
        r1: ArrayView3<'_, f32>,
        selected_gain_channel: ArrayView2<'_, i8>,
        calibration: &TelescopeCalibration,
        mut image: ArrayViewMut2<'_, f32>,
        mut peak_time: ArrayViewMut2<'_, f32>,
    ) -> Result<(), CalibError> {
        let (n_events, _, n_samples) = r1.dim();
        let n_pixels = self.check_calibration(calibration, n_samples)?;
        check_shape("r1", r1.shape(), &[n_events, n_pixels, n_samples])?;
        check_shape(
            "selected_gain_channel",
            selected_gain_channel.shape(),
            &[n_events, n_pixels],
        )?;
        let r1 = r1
            .as_slice()
            .ok_or(CalibError::NotContiguous { what: "r1" })?;
        let gains = selected_gain_channel
            .as_slice()
            .ok_or(CalibError::NotContiguous {
                what: "selected_gain_channel",
            })?;
        let n_channels = calibration.n_channels();
        if let Some(index) = gains
            .iter()
            .position(|&g| g < 0 || g as usize >= n_channels)
        {
            return Err(CalibError::InvalidGainChannel {
                pixel: index % n_pixels.max(1),
                channel: gains[index],
                n_channels,
            });
        }
        let image = as_event_slice("image", &mut image, n_events, n_pixels)?;
        let peak_time = as_event_slice("peak_time", &mut peak_time, n_events, n_pixels)?;
        if n_events == 0 || n_pixels == 0 || n_samples == 0 {
            return Ok(());
        }
        r1.par_chunks_exact(n_pixels * n_samples)
            .zip(gains.par_chunks_exact(n_pixels))
            .zip(image.par_chunks_exact_mut(n_pixels))
            .zip(peak_time.par_chunks_exact_mut(n_pixels))
            .for_each_init(Scratch::default, |scratch, (((r1, gains), image), time)| {
                self.dl1_event(r1, n_samples, gains, calibration, scratch, image, time);
            });
        Ok(())
    }

    /// Checks the calibration against the camera and the extractor; returns `n_pixels`.
    fn check_calibration(
        &self,
        calibration: &TelescopeCalibration,
        n_samples: usize,
    ) -> Result<usize, CalibError> {
        calibration.validate()?;
        let n_pixels = self.neighbors.n_pixels();
        check_shape("calibration pixels", &[calibration.n_pixels()], &[n_pixels])?;
        self.extractor.check(n_samples, calibration.n_channels())?;
        Ok(n_pixels)
    }

    /// R1 -> DL1 of one telescope event (ctapipe `CameraCalibrator._calibrate_dl1`).
    #[allow(clippy::too_many_arguments)]
    fn dl1_event(
        &self,
        r1: &[f32],
        n_samples: usize,
        selected_gain_channel: &[i8],
        calibration: &TelescopeCalibration,
        scratch: &mut Scratch,
        image: &mut [f32],
        peak_time: &mut [f32],
    ) {
        if n_samples == 1 {
            image.copy_from_slice(r1);
            peak_time.fill(0.0);
        } else {
            self.extractor.extract(
                r1,
                n_samples,
                selected_gain_channel,
                &calibration.broken_pixels,
                &self.neighbors,
                &mut scratch.extractor,
                image,
                peak_time,
            );
            if let (true, Some(shift)) = (self.apply_peak_time_shift, &calibration.time_shift_ns) {
                for (pixel, (time, &channel)) in
                    peak_time.iter_mut().zip(selected_gain_channel).enumerate()
                {
                    *time -= shift[[channel as usize, pixel]];
                }
            }
        }
        if self.invalid_pixel_handler == InvalidPixelHandler::NeighborAverage
            && calibration.broken_pixels.iter().any(|&broken| broken)
        {
            neighbor_average(
                image,
                peak_time,
                &calibration.broken_pixels,
                &self.neighbors,
            );
        }
    }
}

fn as_event_slice<'a, T>(
    what: &'static str,
    array: &'a mut ArrayViewMut2<'_, T>,
    n_events: usize,
    n_pixels: usize,
) -> Result<&'a mut [T], CalibError> {
    check_shape(what, array.shape(), &[n_events, n_pixels])?;
    array
        .as_slice_mut()
        .ok_or(CalibError::NotContiguous { what })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_ctapipe_defaults() {
        let config = CalibrationConfig::default();
        assert!(config.apply_peak_time_shift);
        assert_eq!(
            config.invalid_pixel_handler,
            InvalidPixelHandler::NeighborAverage
        );
        assert_eq!(config.image_extractor.name(), "NeighborPeakWindowSum");
        let parsed: Result<CalibrationConfig, _> = toml::from_str("");
        assert_eq!(parsed.ok(), Some(config));
    }

    #[test]
    fn nested_tables_select_extractor_and_gain_selector() {
        let text = r#"
            apply_peak_time_shift = false
            invalid_pixel_handler = "None"
            [r1]
            calib_scale = 1.0
            [r1.gain_selector]
            type = "ThresholdGainSelector"
            threshold = 3000.0
            [image_extractor]
            extractor = "LocalPeakWindowSum"
            window_width = 5
        "#;
        let config: Result<CalibrationConfig, _> = toml::from_str(text);
        let config = config.expect("valid config");
        assert!(!config.apply_peak_time_shift);
        assert_eq!(config.invalid_pixel_handler, InvalidPixelHandler::Off);
        assert_eq!(config.image_extractor.name(), "LocalPeakWindowSum");
        assert!(toml::from_str::<CalibrationConfig>("typo = 1").is_err());
    }
}
