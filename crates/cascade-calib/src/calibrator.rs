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
//! the peak time 0, as in ctapipe. Batches are processed in parallel over events with
//! rayon; every worker thread reuses its [`CalibrationScratch`] ([`with_thread_scratch`])
//! from call to call, so nothing is allocated per event and the layouts the extractors
//! derive from a camera are built once per thread. The per-event functions
//! ([`CameraCalibrator::r0_to_dl1_event`], [`CameraCalibrator::r1_to_dl1_event`]) take the
//! scratch space from the caller, for callers that iterate over events themselves.

use std::cell::RefCell;

use cascade_instrument::Neighbors;
use ndarray::{Array2, ArrayView2, ArrayView3, ArrayView4, ArrayViewMut2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::extractor::{ExtractorScratch, ImageExtractor, ImageExtractorConfig};
use crate::invalid_pixels::{InvalidPixelHandler, any_broken, neighbor_average};
use crate::r1::{R1Config, TelescopeCalibration, check_shape, r0_to_r1_event};
use crate::{CalibError, CameraReadout, QuantizedWaveforms};

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

/// Scratch space of [`CameraCalibrator`] (R1 waveforms, extractor buffers), reused from
/// event to event; one per thread.
#[derive(Debug, Clone, Default)]
pub struct CalibrationScratch {
    extractor: ExtractorScratch,
    r1: Vec<f32>,
}

thread_local! {
    /// The scratch space of [`with_thread_scratch`].
    static THREAD_SCRATCH: RefCell<CalibrationScratch> = RefCell::default();
}

/// Runs `f` with this thread's scratch space, kept for the life of the thread (rayon's
/// workers live as long as their pool), so that its buffers and the camera layouts of the
/// extractors are built once per thread rather than per call or per rayon job; with a new
/// one when this thread's is already in use (a call from inside `f`).
pub fn with_thread_scratch<R>(f: impl FnOnce(&mut CalibrationScratch) -> R) -> R {
    THREAD_SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        Err(_) => f(&mut CalibrationScratch::default()),
    })
}

impl CalibrationScratch {
    /// Called before calibrating an event: names the waveforms of the event that follows
    /// it (`values`), which this calibration then fetches into the cache while it
    /// computes. A hint for speed only; no result depends on it.
    pub fn prefetch_next<T>(&mut self, values: &[T]) {
        self.extractor.prefetch_next(values);
    }
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
        let event_size = r0.len() / n_events;
        r0.par_chunks_exact(event_size)
            .zip(gains.par_chunks_exact_mut(n_pixels))
            .zip(image.par_chunks_exact_mut(n_pixels))
            .zip(peak_time.par_chunks_exact_mut(n_pixels))
            .enumerate()
            .for_each(|(event, (((r0_event, gains), image), time))| {
                let next = r0.get((event + 1) * event_size..(event + 2) * event_size);
                with_thread_scratch(|scratch| {
                    scratch.prefetch_next(next.unwrap_or_default());
                    self.r0_event(
                        r0_event,
                        n_samples,
                        calibration,
                        scratch,
                        gains,
                        image,
                        time,
                    );
                });
            });
        Ok(())
    }

    /// R0 -> DL1 for one telescope event, with the caller's scratch space.
    ///
    /// `r0` is `[channel][pixel][sample]` (ADC counts) with `n_samples` samples; outputs
    /// `selected_gain_channel`, `image` (p.e.) and `peak_time` (ns), one value per pixel.
    #[allow(clippy::too_many_arguments)]
    pub fn r0_to_dl1_event(
        &self,
        r0: &[u16],
        n_samples: usize,
        calibration: &TelescopeCalibration,
        scratch: &mut CalibrationScratch,
        selected_gain_channel: &mut [i8],
        image: &mut [f32],
        peak_time: &mut [f32],
    ) -> Result<(), CalibError> {
        let n_pixels = self.check_calibration(calibration, n_samples)?;
        check_shape(
            "r0",
            &[r0.len()],
            &[calibration.n_channels() * n_pixels * n_samples],
        )?;
        for (what, len) in [
            ("selected_gain_channel", selected_gain_channel.len()),
            ("image", image.len()),
            ("peak_time", peak_time.len()),
        ] {
            check_shape(what, &[len], &[n_pixels])?;
        }
        if n_pixels > 0 && n_samples > 0 {
            self.r0_event(
                r0,
                n_samples,
                calibration,
                scratch,
                selected_gain_channel,
                image,
                peak_time,
            );
        }
        Ok(())
    }

    /// R0 -> R1 -> DL1 of one event whose shapes were checked.
    #[allow(clippy::too_many_arguments)]
    fn r0_event(
        &self,
        r0: &[u16],
        n_samples: usize,
        calibration: &TelescopeCalibration,
        scratch: &mut CalibrationScratch,
        gains: &mut [i8],
        image: &mut [f32],
        peak_time: &mut [f32],
    ) {
        let mut r1 = std::mem::take(&mut scratch.r1);
        r1.resize(image.len() * n_samples, 0.0);
        r0_to_r1_event(r0, n_samples, calibration, &self.r1, &mut r1, gains);
        self.dl1_event(
            R1Event::Float(&r1),
            n_samples,
            gains,
            calibration,
            scratch,
            image,
            peak_time,
        );
        scratch.r1 = r1;
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
        check_gains(gains, n_pixels, calibration.n_channels())?;
        let image = as_event_slice("image", &mut image, n_events, n_pixels)?;
        let peak_time = as_event_slice("peak_time", &mut peak_time, n_events, n_pixels)?;
        if n_events == 0 || n_pixels == 0 || n_samples == 0 {
            return Ok(());
        }
        let event_size = n_pixels * n_samples;
        r1.par_chunks_exact(event_size)
            .zip(gains.par_chunks_exact(n_pixels))
            .zip(image.par_chunks_exact_mut(n_pixels))
            .zip(peak_time.par_chunks_exact_mut(n_pixels))
            .enumerate()
            .for_each(|(event, (((r1_event, gains), image), time))| {
                let next = r1.get((event + 1) * event_size..(event + 2) * event_size);
                with_thread_scratch(|scratch| {
                    scratch.prefetch_next(next.unwrap_or_default());
                    self.dl1_event(
                        R1Event::Float(r1_event),
                        n_samples,
                        gains,
                        calibration,
                        scratch,
                        image,
                        time,
                    );
                });
            });
        Ok(())
    }

    /// R1 -> DL1 for one gain-selected telescope event, with the caller's scratch space.
    ///
    /// `r1` is `[pixel][sample]` (p.e.) with `n_samples` samples; `selected_gain_channel`
    /// one channel per pixel; outputs `image` (p.e.) and `peak_time` (ns) per pixel.
    #[allow(clippy::too_many_arguments)]
    pub fn r1_to_dl1_event(
        &self,
        r1: &[f32],
        n_samples: usize,
        selected_gain_channel: &[i8],
        calibration: &TelescopeCalibration,
        scratch: &mut CalibrationScratch,
        image: &mut [f32],
        peak_time: &mut [f32],
    ) -> Result<(), CalibError> {
        self.checked_dl1_event(
            R1Event::Float(r1),
            n_samples,
            selected_gain_channel,
            calibration,
            scratch,
            image,
            peak_time,
        )
    }

    /// [`CameraCalibrator::r1_to_dl1_event`] for R1 samples stored as `uint16` with their
    /// stream's scale and offset (CTAO's R1 event stream, see [`QuantizedWaveforms`]): the
    /// results of `r1_to_dl1_event` on the converted samples, bit for bit, with the default
    /// extractor's peaks found on the integers.
    #[allow(clippy::too_many_arguments)]
    pub fn r1_quantized_to_dl1_event(
        &self,
        r1: QuantizedWaveforms<'_>,
        n_samples: usize,
        selected_gain_channel: &[i8],
        calibration: &TelescopeCalibration,
        scratch: &mut CalibrationScratch,
        image: &mut [f32],
        peak_time: &mut [f32],
    ) -> Result<(), CalibError> {
        if r1.magnitude_bound().is_none() {
            return Err(CalibError::InvalidQuantization {
                scale: r1.scale,
                offset: r1.offset,
            });
        }
        self.checked_dl1_event(
            R1Event::Quantized(r1),
            n_samples,
            selected_gain_channel,
            calibration,
            scratch,
            image,
            peak_time,
        )
    }

    /// [`CameraCalibrator::dl1_event`] after checking the shapes of its arguments.
    #[allow(clippy::too_many_arguments)]
    fn checked_dl1_event(
        &self,
        r1: R1Event<'_>,
        n_samples: usize,
        selected_gain_channel: &[i8],
        calibration: &TelescopeCalibration,
        scratch: &mut CalibrationScratch,
        image: &mut [f32],
        peak_time: &mut [f32],
    ) -> Result<(), CalibError> {
        let n_pixels = self.check_calibration(calibration, n_samples)?;
        let r1_len = match r1 {
            R1Event::Float(samples) => samples.len(),
            R1Event::Quantized(samples) => samples.values.len(),
        };
        check_shape("r1", &[r1_len], &[n_pixels * n_samples])?;
        check_gains(selected_gain_channel, n_pixels, calibration.n_channels())?;
        check_shape("image", &[image.len()], &[n_pixels])?;
        check_shape("peak_time", &[peak_time.len()], &[n_pixels])?;
        if n_pixels > 0 && n_samples > 0 {
            self.dl1_event(
                r1,
                n_samples,
                selected_gain_channel,
                calibration,
                scratch,
                image,
                peak_time,
            );
        }
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
        r1: R1Event<'_>,
        n_samples: usize,
        selected_gain_channel: &[i8],
        calibration: &TelescopeCalibration,
        scratch: &mut CalibrationScratch,
        image: &mut [f32],
        peak_time: &mut [f32],
    ) {
        let (broken, neighbors) = (&calibration.broken_pixels, &self.neighbors);
        let extractor = &mut scratch.extractor;
        match r1 {
            _ if n_samples == 1 => {
                for (pixel, value) in image.iter_mut().enumerate() {
                    *value = match r1 {
                        R1Event::Float(samples) => samples[pixel],
                        R1Event::Quantized(samples) => samples.sample(pixel),
                    };
                }
                peak_time.fill(0.0);
            }
            R1Event::Float(samples) => self.extractor.extract(
                samples,
                n_samples,
                selected_gain_channel,
                broken,
                neighbors,
                extractor,
                image,
                peak_time,
            ),
            R1Event::Quantized(samples) => self.extractor.extract_quantized(
                samples,
                n_samples,
                selected_gain_channel,
                broken,
                neighbors,
                extractor,
                image,
                peak_time,
            ),
        }
        if let (true, true, Some(shift)) = (
            n_samples > 1,
            self.apply_peak_time_shift,
            &calibration.time_shift_ns,
        ) {
            subtract_time_shift(peak_time, selected_gain_channel, shift);
        }
        if self.invalid_pixel_handler == InvalidPixelHandler::NeighborAverage
            && any_broken(&calibration.broken_pixels)
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

/// One telescope event's R1 samples, as `f32` values or as stored `uint16`.
#[derive(Clone, Copy)]
enum R1Event<'a> {
    Float(&'a [f32]),
    Quantized(QuantizedWaveforms<'a>),
}

/// `peak_time[pixel] -= shift[[channel, pixel]]` with each pixel's selected `channel`
/// (ctapipe `CameraCalibrator._calibrate_dl1`, `time_shift`); the usual one or two gain
/// channels as a select between two rows, which vectorises.
fn subtract_time_shift(peak_time: &mut [f32], channels: &[i8], shift: &Array2<f32>) {
    let rows = (1..=2).contains(&shift.nrows()).then(|| {
        let high = shift.row(0).to_slice();
        let low = shift.row(shift.nrows() - 1).to_slice();
        high.zip(low)
    });
    if let Some(Some((high, low))) = rows {
        let shifts = high.iter().zip(low);
        for ((time, &channel), (&high, &low)) in peak_time.iter_mut().zip(channels).zip(shifts) {
            // A select on the bits (channel 0: high, else low), which vectorises where an
            // `if` does not.
            let low_mask = u32::from(channel != 0).wrapping_neg();
            let shift = (high.to_bits() & !low_mask) | (low.to_bits() & low_mask);
            *time -= f32::from_bits(shift);
        }
    } else {
        for (pixel, (time, &channel)) in peak_time.iter_mut().zip(channels).enumerate() {
            *time -= shift[[channel as usize, pixel]];
        }
    }
}

/// Every selected gain channel of `[event][pixel]` indexes a calibration channel.
fn check_gains(gains: &[i8], n_pixels: usize, n_channels: usize) -> Result<(), CalibError> {
    // A negative channel is 128 or more as a byte, so one unsigned comparison checks both
    // bounds; a pass without early exit (it vectorises), the position only for the error.
    let n_valid = n_channels.min(128) as u8;
    let is_invalid = |&g: &i8| g as u8 >= n_valid;
    if !gains.iter().fold(false, |any, g| any | is_invalid(g)) {
        return Ok(());
    }
    match gains.iter().position(is_invalid) {
        Some(index) => Err(CalibError::InvalidGainChannel {
            pixel: index % n_pixels.max(1),
            channel: gains[index],
            n_channels,
        }),
        None => Ok(()),
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
    fn the_thread_scratch_is_kept_between_calls_and_a_nested_call_gets_its_own() {
        let address = |scratch: &mut CalibrationScratch| scratch as *const _ as usize;
        let first = with_thread_scratch(address);
        assert_eq!(with_thread_scratch(address), first);
        let nested = with_thread_scratch(|outer| {
            assert_eq!(address(outer), first);
            with_thread_scratch(address)
        });
        assert_ne!(nested, first);
    }

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
    fn per_event_calls_with_reused_scratch_equal_the_batch() {
        // 2 events, 2 gains, 3 pixels in a chain, 5 samples; pixel 2 saturates in event 1.
        let neighbors = Neighbors::from_lists(&[vec![1], vec![0, 2], vec![1]]);
        let readout = CameraReadout {
            sampling_rate_ghz: 1.0,
            reference_pulse_shape: ndarray::Array2::from_elem((2, 3), 1.0),
            reference_pulse_sample_width_ns: 1.0,
        };
        let calibration = TelescopeCalibration {
            pedestal_per_sample: ndarray::Array2::from_elem((2, 3), 10.0),
            dc_to_pe: ndarray::array![[0.5, 0.25, 0.5], [5.0, 2.5, 5.0]],
            time_shift_ns: None,
            broken_pixels: vec![false; 3],
        };
        let r0 = ndarray::Array4::from_shape_fn((2, 2, 3, 5), |(e, g, p, s)| {
            let pulse = [0, 4, 12, 6, 1][s] * (p as u16 + 1) * (e as u16 + 1);
            if e == 1 && p == 2 && g == 0 {
                4001
            } else {
                10 + pulse
            }
        });
        let config = CalibrationConfig {
            image_extractor: ImageExtractorConfig::NeighborPeakWindowSum(
                crate::extractor::NeighborPeakWindowSum {
                    window_width: 3,
                    window_shift: 1,
                    ..Default::default()
                },
            ),
            ..Default::default()
        };
        let calibrator = CameraCalibrator::new(&config, &readout, &neighbors).expect("valid");
        let (mut gains, mut image, mut time) = (
            ndarray::Array2::<i8>::zeros((2, 3)),
            ndarray::Array2::<f32>::zeros((2, 3)),
            ndarray::Array2::<f32>::zeros((2, 3)),
        );
        calibrator
            .r0_to_dl1(
                r0.view(),
                &calibration,
                gains.view_mut(),
                image.view_mut(),
                time.view_mut(),
            )
            .expect("valid shapes");
        assert_eq!(gains, ndarray::array![[0, 0, 0], [0, 0, 1]]);
        let mut scratch = CalibrationScratch::default();
        let r0 = r0.as_slice().expect("standard layout");
        for event in 0..2 {
            let (mut event_gains, mut event_image, mut event_time) = ([0; 3], [0.0; 3], [0.0; 3]);
            calibrator
                .r0_to_dl1_event(
                    &r0[event * 30..(event + 1) * 30],
                    5,
                    &calibration,
                    &mut scratch,
                    &mut event_gains,
                    &mut event_image,
                    &mut event_time,
                )
                .expect("valid shapes");
            assert_eq!(
                event_gains.as_slice(),
                gains.row(event).as_slice().expect("row")
            );
            assert_eq!(
                event_image.as_slice(),
                image.row(event).as_slice().expect("row")
            );
            assert_eq!(
                event_time.as_slice(),
                time.row(event).as_slice().expect("row")
            );
        }
        let short = calibrator.r0_to_dl1_event(
            &r0[..29],
            5,
            &calibration,
            &mut scratch,
            &mut [0; 3],
            &mut [0.0; 3],
            &mut [0.0; 3],
        );
        assert!(matches!(
            short,
            Err(CalibError::ShapeMismatch { what: "r0", .. })
        ));
        let bad_gain = calibrator.r1_to_dl1_event(
            &[0.0; 15],
            5,
            &[0, 2, 0],
            &calibration,
            &mut scratch,
            &mut [0.0; 3],
            &mut [0.0; 3],
        );
        assert!(matches!(
            bad_gain,
            Err(CalibError::InvalidGainChannel { channel: 2, .. })
        ));
        let negative_gain = calibrator.r1_to_dl1_event(
            &[0.0; 15],
            5,
            &[0, 0, -1],
            &calibration,
            &mut scratch,
            &mut [0.0; 3],
            &mut [0.0; 3],
        );
        assert!(matches!(
            negative_gain,
            Err(CalibError::InvalidGainChannel {
                pixel: 2,
                channel: -1,
                ..
            })
        ));
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
