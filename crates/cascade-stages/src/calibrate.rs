//! `kind = "calibrate"`: R1 waveforms -> DL1 image (p.e.) and peak time (ns) with one of
//! ctapipe's image extractors (`cascade_calib`), per telescope.
//!
//! Input: R1 telescope events (`waveform` in p.e. per sample, `selected_gain_channel`), R1
//! as CTAO's camera data stream stores it (the `r1_quantized` level: `uint16` samples with
//! `waveform_scale` and `waveform_offset`, giving the same results as their values in
//! p.e.), or raw R0 events (`waveform` in ADC counts of every gain, `n_gains`), which it
//! turns into R1 first as the `r0_to_r1` stage does, keeping R1 in a per-thread buffer.
//! The time shifts and broken pixels (and for R0 the pedestals and dc-to-pe) are those the
//! source published (see [`Calibrations`]).
//! Output: the input without the waveform, plus `image` and `peak_time` (and for R0 input
//! `selected_gain_channel`).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float32Array, Int8Array, Int16Array, PrimitiveArray};
use arrow::datatypes::{DataType, Float32Type, Int8Type, Int16Type, Schema, SchemaRef, UInt16Type};
use arrow::record_batch::RecordBatch;
use cascade_calib::{
    CalibrationConfig, CameraCalibrator, CameraReadout, GainSelector, ImageExtractorConfig,
    InvalidPixelHandler, QuantizedWaveforms, R1Config, with_thread_scratch,
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
        "Extracts the DL1 image (p.e.) and peak time (ns) from R1 waveforms (f32 p.e., or \
         uint16 with waveform_scale and waveform_offset as CTAO's camera stream stores them) or \
         from R0 with ctapipe's extractors (NeighborPeakWindowSum by default, with integration \
         correction).",
        build,
    )
}

fn build(
    config: PerTelescope<CalibrateConfig>,
    context: &BuildContext,
) -> Result<BuiltStage, BuildError> {
    let stage = calibrate_stage(config, context)?;
    Ok(BuiltStage::new(Arc::new(MapStage::new(stage))))
}

/// The calibration stage for the telescopes of `context`.
fn calibrate_stage(
    config: PerTelescope<CalibrateConfig>,
    context: &BuildContext,
) -> Result<Calibrate, BuildError> {
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
    Ok(Calibrate {
        config: config.default_value().clone(),
        calibrators,
        calibrations: Calibrations::from_context(context)?,
    })
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
        let level = if is_quantized(input) {
            for column in ["waveform_scale", "waveform_offset"] {
                check_column(input, column, &DataType::Float32)?;
            }
            Level::R1Quantized
        } else {
            Level::R1
        };
        if raw {
            check_column(input, "n_gains", &DataType::Int8)?;
        } else {
            check_column(input, "waveform", level.field("waveform").data_type())?;
            check_column(
                input,
                "selected_gain_channel",
                level.field("selected_gain_channel").data_type(),
            )?;
        }
        let mut fields: Vec<_> = input
            .fields()
            .iter()
            .filter(|f| {
                !matches!(
                    f.name().as_str(),
                    "waveform" | "n_samples" | "n_gains" | "waveform_scale" | "waveform_offset"
                )
            })
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
        let (waveforms, row_len) = R1Column::of(&batch)?;
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
                let gains = &gains[event * n_pixels..(event + 1) * n_pixels];
                let samples = event * row_len..(event + 1) * row_len;
                let next = (event + 1) * row_len..(event + 2) * row_len;
                with_thread_scratch(|scratch| match &waveforms {
                    R1Column::Float(values) => {
                        scratch.prefetch_next(values.get(next).unwrap_or_default());
                        calibrator.r1_to_dl1_event(
                            &values[samples],
                            n_samples,
                            gains,
                            &calibration,
                            scratch,
                            image,
                            peak_time,
                        )
                    }
                    R1Column::Quantized {
                        values,
                        scale,
                        offset,
                    } => {
                        scratch.prefetch_next(values.get(next).unwrap_or_default());
                        let event_values = QuantizedWaveforms {
                            values: &values[samples],
                            scale: scale.value(event),
                            offset: offset.value(event),
                        };
                        calibrator.r1_quantized_to_dl1_event(
                            event_values,
                            n_samples,
                            gains,
                            &calibration,
                            scratch,
                            image,
                            peak_time,
                        )
                    }
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

/// Whether the input holds raw R0 waveforms (ADC, `List<UInt16>`, with `n_gains`) rather
/// than R1.
pub(crate) fn is_raw(schema: &SchemaRef) -> bool {
    schema.field_with_name("n_gains").is_ok()
        && schema.field_with_name("waveform").is_ok_and(
            |f| matches!(f.data_type(), DataType::List(item) if item.data_type() == &DataType::UInt16),
        )
}

/// Whether the input holds R1 as CTAO's data stream stores it (the `r1_quantized` level,
/// recognised by its `waveform_scale` column).
fn is_quantized(schema: &SchemaRef) -> bool {
    schema.field_with_name("waveform_scale").is_ok()
}

/// The R1 samples of a batch: `f32` values (p.e.), or stored `uint16` with each row's
/// scale and offset.
enum R1Column<'a> {
    Float(&'a [f32]),
    Quantized {
        values: &'a [u16],
        scale: &'a PrimitiveArray<Float32Type>,
        offset: &'a PrimitiveArray<Float32Type>,
    },
}

impl<'a> R1Column<'a> {
    /// The samples of `batch` and the number per row.
    fn of(batch: &'a RecordBatch) -> Result<(Self, usize), StageError> {
        if !is_quantized(&batch.schema()) {
            let (values, row_len) = uniform_list_values::<Float32Type>(batch, "waveform")?;
            return Ok((R1Column::Float(values), row_len));
        }
        let (values, row_len) = uniform_list_values::<UInt16Type>(batch, "waveform")?;
        let [scale, offset] = ["waveform_scale", "waveform_offset"].map(|column| {
            let array = primitive::<Float32Type>(batch, column)?;
            if array.null_count() > 0 {
                return Err(StageError::Data(format!("column {column} has null rows")));
            }
            Ok(array)
        });
        let quantized = R1Column::Quantized {
            values,
            scale: scale?,
            offset: offset?,
        };
        Ok((quantized, row_len))
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, ListArray};
    use arrow::datatypes::Field;

    use super::*;
    use crate::toy::{R1Encoding, ToyConfig, ToySource, readout_description, toy_array};

    /// The toy array's calibration stage with the default options.
    fn toy_calibrate() -> Calibrate {
        let array = toy_array();
        let readout = array
            .subarray
            .telescopes
            .iter()
            .map(|(&tel_id, telescope)| {
                let readout = readout_description(&array.readout[&telescope.name]);
                (tel_id, Arc::new(readout))
            })
            .collect();
        let context = BuildContext {
            subarray: Arc::clone(&array.subarray),
            readout,
            shared: BTreeMap::new(),
            batch_size: 64,
            pipeline_name: "test".to_string(),
        };
        calibrate_stage(PerTelescope::uniform(CalibrateConfig::default()), &context)
            .expect("calibrate stage")
    }

    /// `batch` (`r1_quantized`) with its samples converted to their `f32` values (`r1`).
    fn converted(batch: &RecordBatch) -> RecordBatch {
        let (values, row_len) =
            uniform_list_values::<UInt16Type>(batch, "waveform").expect("uint16 samples");
        let column = |name: &str| batch.column_by_name(name).expect("column");
        let scale = column("waveform_scale").as_primitive::<Float32Type>();
        let offset = column("waveform_offset").as_primitive::<Float32Type>();
        let samples: Vec<f32> = values
            .chunks_exact(row_len)
            .enumerate()
            .flat_map(|(row, stored)| {
                let (scale, offset) = (scale.value(row), offset.value(row));
                stored.iter().map(move |&v| f32::from(v) / scale - offset)
            })
            .collect();
        let waveform = uniform_list(
            &Level::R1.field("waveform"),
            Arc::new(Float32Array::from(samples)),
            row_len,
        )
        .expect("list");
        let schema = Level::R1.schema();
        let columns = schema
            .fields()
            .iter()
            .map(|field: &Arc<Field>| match field.name().as_str() {
                "waveform" => Arc::clone(&waveform),
                name => Arc::clone(column(name)),
            })
            .collect();
        RecordBatch::try_new(schema, columns).expect("r1 batch")
    }

    #[test]
    fn quantized_r1_calibrates_as_the_values_it_stands_for() {
        let source = ToySource::new(ToyConfig {
            n_events: 12,
            n_samples: 30,
            r1_encoding: R1Encoding::Uint16,
            ..ToyConfig::default()
        });
        let mut batches = Vec::new();
        source
            .generate(64, |batch| {
                batches.push(batch);
                true
            })
            .expect("toy events");
        let stage = toy_calibrate();
        let dl1 = |batch: RecordBatch| {
            let output = stage.output_schema(&batch.schema()).expect("schema");
            let result = stage.process(batch, &output).expect("calibrated");
            let bits = |name: &str| -> Vec<u32> {
                let list: &ListArray = result.column_by_name(name).expect("column").as_list();
                let values = list.values().as_primitive::<Float32Type>();
                values.values().iter().map(|v| v.to_bits()).collect()
            };
            (bits("image"), bits("peak_time"), result.schema())
        };
        assert!(!batches.is_empty());
        for batch in batches {
            assert_eq!(batch.schema(), Level::R1Quantized.schema());
            let float = dl1(converted(&batch));
            let quantized = dl1(batch);
            assert!(quantized.0.iter().any(|&bits| f32::from_bits(bits) > 10.0));
            assert_eq!(quantized, float);
        }
    }

    #[test]
    fn a_quantized_stream_without_a_usable_scale_is_a_data_error() {
        let source = ToySource::new(ToyConfig {
            n_events: 1,
            r1_encoding: R1Encoding::Uint16,
            ..ToyConfig::default()
        });
        let mut first = None;
        source
            .generate(64, |batch| {
                first = Some(batch);
                false
            })
            .expect("toy events");
        let batch = first.expect("a batch");
        let zero = Arc::new(Float32Array::from(vec![0.0f32; batch.num_rows()]));
        let index = batch
            .schema()
            .index_of("waveform_scale")
            .expect("scale column");
        let mut columns = batch.columns().to_vec();
        columns[index] = zero;
        let batch = RecordBatch::try_new(batch.schema(), columns).expect("batch");
        let stage = toy_calibrate();
        let output = stage.output_schema(&batch.schema()).expect("schema");
        let error = stage.process(batch, &output).expect_err("scale 0");
        assert!(error.to_string().contains("waveform_scale 0"), "{error}");
    }
}
