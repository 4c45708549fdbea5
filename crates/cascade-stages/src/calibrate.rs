//! `kind = "calibrate"`: R1 waveforms -> DL1 image (p.e.) and peak time (ns) with one of
//! ctapipe's image extractors (`cascade_calib`), per telescope.
//!
//! Input: R1 telescope events (`waveform` in p.e. per sample, `selected_gain_channel`), or
//! raw R0 events (`waveform` in ADC counts of every gain, `n_gains`), which it turns into R1
//! first as the `r0_to_r1` stage does, keeping R1 in a per-thread buffer. The time shifts
//! and broken pixels (and for R0 the pedestals and dc-to-pe) are those the source published
//! (see [`Calibrations`]).
//! Output: the input without the waveform, plus `image` and `peak_time` (and for R0 input
//! `selected_gain_channel`).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Int8Array, Int16Array};
use arrow::datatypes::{DataType, Float32Type, Int8Type, Int16Type, Schema, SchemaRef, UInt16Type};
use arrow::record_batch::RecordBatch;
use cascade_calib::{
    CalibrationConfig, CameraCalibrator, CameraReadout, GainSelector, ImageExtractorConfig,
    InvalidPixelHandler, R1Config, with_thread_scratch,
};
use cascade_pipeline::{BuildContext, BuildError, BuiltStage, PerTelescope, TypedFactory};
use cascade_runtime::{BatchStage, MapStage, StageError, StageRole, check_column};
use cascade_schema::Level;
use ndarray::Array2;
use rayon::prelude::*;

use crate::calibration_board::Calibrations;
use crate::columns::{primitive, uniform_list, uniform_list_values, with_columns};

cascade_pipeline::stage_config! {
    /// Options of the calibration stage (ctapipe `CameraCalibrator`).
    pub struct CalibrateConfig {
        /// The charge extractor, by ctapipe's name in `extractor`, with its options, e.g.
        /// `image_extractor = { extractor = "LocalPeakWindowSum", window_width = 7, window_shift = 3 }`.
        /// Default: `NeighborPeakWindowSum` with ctapipe's defaults.
        image_extractor: ImageExtractorConfig = ImageExtractorConfig::default(),
        /// Treatment of broken pixels (ctapipe `InvalidPixelHandler`).
        invalid_pixel_handler: InvalidPixelHandler = InvalidPixelHandler::default(),
        /// Which gain channel of a two-gain camera each pixel keeps, applied to raw (R0)
        /// input (ctapipe `SimTelEventSource.gain_selector_type`), by ctapipe's class name
        /// in `type` with its options, e.g.
        /// `gain_selector = { type = "ThresholdGainSelector", threshold = 400.0 }` (low gain
        /// where a raw high-gain sample exceeds `threshold` ADC counts) or
        /// `{ type = "ManualGainSelector", channel = "LOW" }`. Default: threshold 4000.
        gain_selector: GainSelector = GainSelector::default(),
    }
}

/// The calibration stage's entry in the stage registry.
pub fn factory() -> TypedFactory<CalibrateConfig> {
    TypedFactory::new(
        "calibrate",
        StageRole::Transform,
        "Extracts the DL1 image (p.e.) and peak time (ns) from R1 waveforms with ctapipe's \
         extractors (NeighborPeakWindowSum by default, with integration correction).",
        build,
    )
}

fn build(
    config: PerTelescope<CalibrateConfig>,
    context: &BuildContext,
) -> Result<BuiltStage, BuildError> {
    let mut calibrators = BTreeMap::new();
    for (&tel_id, telescope) in &context.subarray.telescopes {
        let Some(readout) = context.readout.get(&tel_id) else {
            return Err(BuildError::stage(format!(
                "the source gives no readout for telescope {tel_id}"
            )));
        };
        let options = config.get(tel_id);
        let calibration = CalibrationConfig {
            r1: R1Config {
                gain_selector: options.gain_selector.clone(),
                ..R1Config::default()
            },
            image_extractor: options.image_extractor.clone(),
            invalid_pixel_handler: options.invalid_pixel_handler,
            ..CalibrationConfig::default()
        };
        let pulse = &readout.reference_pulse_shape;
        let width = pulse.first().map_or(0, Vec::len);
        let shape = Array2::from_shape_fn((pulse.len(), width), |(g, k)| {
            pulse[g].get(k).copied().unwrap_or(0.0)
        });
        let camera_readout = CameraReadout {
            sampling_rate_ghz: readout.sampling_rate_ghz,
            reference_pulse_shape: shape,
            reference_pulse_sample_width_ns: readout.reference_pulse_sample_width_ns,
        };
        let calibrator =
            CameraCalibrator::new(&calibration, &camera_readout, &telescope.camera.neighbors)
                .map_err(|e| {
                    BuildError::option("image_extractor", format!("telescope {tel_id}: {e}"))
                })?;
        calibrators.insert(tel_id, Arc::new(calibrator));
    }
    let stage = Calibrate {
        config: config.default_value().clone(),
        calibrators,
        calibrations: Calibrations::from_context(context)?,
    };
    Ok(BuiltStage::new(Arc::new(MapStage::new(stage))))
}

/// The calibration stage.
#[derive(Debug)]
pub struct Calibrate {
    config: CalibrateConfig,
    /// Calibrator of each telescope.
    calibrators: BTreeMap<u16, Arc<CameraCalibrator>>,
    /// Pedestals, dc-to-pe, time shifts and broken pixels of each telescope.
    calibrations: Calibrations,
}

impl BatchStage for Calibrate {
    fn kind(&self) -> &'static str {
        "calibrate"
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef, StageError> {
        check_column(input, "tel_id", &DataType::Int16)?;
        let raw = is_raw(input);
        if raw {
            check_column(input, "n_gains", &DataType::Int8)?;
        } else {
            check_column(input, "waveform", Level::R1.field("waveform").data_type())?;
            check_column(
                input,
                "selected_gain_channel",
                Level::R1.field("selected_gain_channel").data_type(),
            )?;
        }
        let mut fields: Vec<_> = input
            .fields()
            .iter()
            .filter(|f| !matches!(f.name().as_str(), "waveform" | "n_samples" | "n_gains"))
            .cloned()
            .collect();
        if raw {
            fields.push(Level::Dl1Images.field("selected_gain_channel"));
        }
        fields.extend(Level::Dl1Images.fields(&["image", "peak_time"]));
        Ok(Arc::new(Schema::new(fields)))
    }

    fn process(&self, batch: RecordBatch, output: &SchemaRef) -> Result<RecordBatch, StageError> {
        if is_raw(&batch.schema()) {
            return self.process_raw(batch, output);
        }
        let tel_ids = primitive::<Int16Type>(&batch, "tel_id")?;
        let (waveforms, row_len) = uniform_list_values::<Float32Type>(&batch, "waveform")?;
        let (gains, n_pixels) = uniform_list_values::<Int8Type>(&batch, "selected_gain_channel")?;
        let n_events = batch.num_rows();
        let n_samples = row_len.checked_div(n_pixels).unwrap_or(0);
        let mut image = vec![0.0f32; n_events * n_pixels];
        let mut peak_time = vec![0.0f32; n_events * n_pixels];
        image
            .par_chunks_mut(n_pixels.max(1))
            .zip(peak_time.par_chunks_mut(n_pixels.max(1)))
            .enumerate()
            .try_for_each(|(event, (image, peak_time))| -> Result<(), StageError> {
                let tel_id = tel_ids.value(event) as u16;
                let calibrator = self.calibrator(tel_id)?;
                let calibration = self.calibrations.get(tel_id)?;
                let next = waveforms.get((event + 1) * row_len..(event + 2) * row_len);
                with_thread_scratch(|scratch| {
                    scratch.prefetch_next(next.unwrap_or_default());
                    calibrator.r1_to_dl1_event(
                        &waveforms[event * row_len..(event + 1) * row_len],
                        n_samples,
                        &gains[event * n_pixels..(event + 1) * n_pixels],
                        &calibration,
                        scratch,
                        image,
                        peak_time,
                    )
                })
                .map_err(|e| StageError::Data(format!("telescope {tel_id}: {e}")))
            })?;
        let [image, peak_time] = dl1_columns(image, peak_time, n_pixels)?;
        with_columns(&batch, output, vec![image, peak_time])
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or_default()
    }
}

impl Calibrate {
    /// The calibrator of telescope `tel_id`.
    fn calibrator(&self, tel_id: u16) -> Result<&CameraCalibrator, StageError> {
        self.calibrators
            .get(&tel_id)
            .map(Arc::as_ref)
            .ok_or_else(|| StageError::Data(format!("telescope {tel_id} is not in the instrument")))
    }

    /// R0 (raw ADC of every gain) -> gain selection, pedestal, dc-to-pe, extraction.
    fn process_raw(
        &self,
        batch: RecordBatch,
        output: &SchemaRef,
    ) -> Result<RecordBatch, StageError> {
        let RawWaveforms {
            tel_ids,
            waveforms,
            row_len,
            n_pixels,
            n_samples,
        } = RawWaveforms::of(&batch, &self.calibrations)?;
        let n_events = batch.num_rows();
        let mut selected = vec![0i8; n_events * n_pixels];
        let mut image = vec![0.0f32; n_events * n_pixels];
        let mut peak_time = vec![0.0f32; n_events * n_pixels];
        let width = n_pixels.max(1);
        selected
            .par_chunks_mut(width)
            .zip(image.par_chunks_mut(width))
            .zip(peak_time.par_chunks_mut(width))
            .enumerate()
            .try_for_each(
                |(event, ((selected, image), peak_time))| -> Result<(), StageError> {
                    let tel_id = tel_ids.value(event) as u16;
                    let calibrator = self.calibrator(tel_id)?;
                    let calibration = self.calibrations.get(tel_id)?;
                    let next = waveforms.get((event + 1) * row_len..(event + 2) * row_len);
                    with_thread_scratch(|scratch| {
                        scratch.prefetch_next(next.unwrap_or_default());
                        calibrator.r0_to_dl1_event(
                            &waveforms[event * row_len..(event + 1) * row_len],
                            n_samples,
                            &calibration,
                            scratch,
                            selected,
                            image,
                            peak_time,
                        )
                    })
                    .map_err(|e| StageError::Data(format!("telescope {tel_id}: {e}")))
                },
            )?;
        let mut extra = vec![uniform_list(
            &Level::Dl1Images.field("selected_gain_channel"),
            Arc::new(Int8Array::from(selected)),
            n_pixels,
        )?];
        extra.extend(dl1_columns(image, peak_time, n_pixels)?);
        with_columns(&batch, output, extra)
    }
}

/// The `image` (p.e.) and `peak_time` (ns) list columns of `[event][pixel]` values.
fn dl1_columns(
    image: Vec<f32>,
    peak_time: Vec<f32>,
    n_pixels: usize,
) -> Result<[ArrayRef; 2], StageError> {
    Ok([
        uniform_list(
            &Level::Dl1Images.field("image"),
            Arc::new(Float32Array::from(image)),
            n_pixels,
        )?,
        uniform_list(
            &Level::Dl1Images.field("peak_time"),
            Arc::new(Float32Array::from(peak_time)),
            n_pixels,
        )?,
    ])
}

/// The raw (R0) waveforms of a batch of telescope events of one camera type, and their
/// shape, checked against the camera of the batch's first telescope.
pub(crate) struct RawWaveforms<'a> {
    /// Telescope id of each event.
    pub tel_ids: &'a Int16Array,
    /// `[event][gain][pixel][sample]` (ADC counts).
    pub waveforms: &'a [u16],
    /// Samples per event (all gains).
    pub row_len: usize,
    /// Pixels of the camera.
    pub n_pixels: usize,
    /// Samples per pixel and gain.
    pub n_samples: usize,
}

impl<'a> RawWaveforms<'a> {
    /// The `tel_id`, `n_gains` and `waveform` (`List<UInt16>`) columns of `batch`.
    pub fn of(batch: &'a RecordBatch, calibrations: &Calibrations) -> Result<Self, StageError> {
        let tel_ids = primitive::<Int16Type>(batch, "tel_id")?;
        let gains_per_event = primitive::<Int8Type>(batch, "n_gains")?;
        let (waveforms, row_len) = uniform_list_values::<UInt16Type>(batch, "waveform")?;
        if batch.num_rows() == 0 {
            return Ok(Self {
                tel_ids,
                waveforms,
                row_len,
                n_pixels: 0,
                n_samples: 0,
            });
        }
        let n_gains = gains_per_event.value(0).max(1) as usize;
        let first_tel = tel_ids.value(0) as u16;
        let n_pixels = calibrations.n_pixels(first_tel).ok_or_else(|| {
            StageError::Data(format!("telescope {first_tel} is not in the instrument"))
        })?;
        let n_samples = row_len.checked_div(n_gains * n_pixels).unwrap_or(0);
        if n_gains * n_pixels * n_samples != row_len {
            return Err(StageError::Data(format!(
                "telescope {first_tel}: waveform of {row_len} samples is not {n_gains} gains x {n_pixels} pixels"
            )));
        }
        Ok(Self {
            tel_ids,
            waveforms,
            row_len,
            n_pixels,
            n_samples,
        })
    }
}

/// Whether the input holds raw R0 waveforms (ADC, `List<UInt16>`) rather than R1 (p.e.).
pub(crate) fn is_raw(schema: &SchemaRef) -> bool {
    schema.field_with_name("waveform").is_ok_and(
        |f| matches!(f.data_type(), DataType::List(item) if item.data_type() == &DataType::UInt16),
    )
}
