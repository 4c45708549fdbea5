//! `kind = "r0_to_r1"`: raw R0 waveforms (ADC counts, every gain) -> R1 waveforms (p.e.,
//! one gain per pixel): gain selection, pedestal subtraction and dc-to-pe with the
//! calibration the source read, as ctapipe's `SimTelEventSource` makes R1
//! (`cascade_calib::r0_to_r1_event`).
//!
//! The `calibrate` stage does this itself on R0 input, keeping R1 in a per-thread buffer;
//! this stage is for pipelines that want R1 as data: to write R1 waveforms (ctapipe's
//! `DataWriter.write_r1_waveforms`), or to time calibration from R1 as ctapipe's
//! `CameraCalibrator` figures do (`cascade bench --input`).
//!
//! Input: R0 telescope events (`n_gains`, `waveform` as `List<UInt16>`). Output: the `r1`
//! level, i.e. the input without `n_gains`, `waveform` in p.e. and `selected_gain_channel`.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Int8Array};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use cascade_calib::r1::r0_to_r1_event;
use cascade_calib::{GainSelector, R1Config};
use cascade_pipeline::{BuildContext, BuildError, BuiltStage, PerTelescope, TypedFactory};
use cascade_runtime::{BatchStage, MapStage, StageError, StageRole, check_column};
use cascade_schema::Level;
use rayon::prelude::*;

use crate::calibrate::{RawWaveforms, is_raw};
use crate::calibration_board::Calibrations;
use crate::columns::uniform_list;

cascade_pipeline::stage_config! {
    /// Options of the R0 -> R1 stage (ctapipe `SimTelEventSource`'s R1 calibration).
    pub struct R0ToR1Config {
        /// Which gain channel of a two-gain camera each pixel keeps (ctapipe
        /// `SimTelEventSource.gain_selector_type`), by ctapipe's class name in `type` with
        /// its options, e.g. `gain_selector = { type = "ThresholdGainSelector", threshold =
        /// 400.0 }` (low gain where a raw high-gain sample exceeds `threshold` ADC counts)
        /// or `{ type = "ManualGainSelector", channel = "LOW" }`. Default: threshold 4000,
        /// as the `calibrate` stage's.
        gain_selector: GainSelector = GainSelector::default(),
    }
}

/// The R0 -> R1 stage's entry in the stage registry.
pub fn factory() -> TypedFactory<R0ToR1Config> {
    TypedFactory::new(
        "r0_to_r1",
        StageRole::Transform,
        "Converts raw R0 waveforms (ADC counts) to R1 (p.e.): gain selection, pedestal \
         subtraction and dc-to-pe with the file's calibration, as ctapipe's SimTelEventSource.",
        build,
    )
}

fn build(
    config: PerTelescope<R0ToR1Config>,
    context: &BuildContext,
) -> Result<BuiltStage, BuildError> {
    let r1_configs = context
        .subarray
        .telescopes
        .keys()
        .map(|&tel_id| {
            let r1 = R1Config {
                gain_selector: config.get(tel_id).gain_selector.clone(),
                ..R1Config::default()
            };
            (tel_id, r1)
        })
        .collect();
    let stage = R0ToR1 {
        config: config.default_value().clone(),
        r1_configs,
        calibrations: Calibrations::from_context(context)?,
    };
    Ok(BuiltStage::new(Arc::new(MapStage::new(stage))))
}

/// The R0 -> R1 stage.
#[derive(Debug)]
pub struct R0ToR1 {
    config: R0ToR1Config,
    /// Gain selection of each telescope.
    r1_configs: BTreeMap<u16, R1Config>,
    /// Pedestals and dc-to-pe of each telescope.
    calibrations: Calibrations,
}

impl BatchStage for R0ToR1 {
    fn kind(&self) -> &'static str {
        "r0_to_r1"
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef, StageError> {
        check_column(input, "tel_id", &DataType::Int16)?;
        check_column(input, "n_gains", &DataType::Int8)?;
        check_column(input, "waveform", Level::R0.field("waveform").data_type())?;
        // The input's columns in their order, described as the `r1` level describes them
        // (columns it does not know as they came).
        let r1 = Level::R1.schema();
        let mut fields = Vec::with_capacity(input.fields().len() + 1);
        for field in input.fields() {
            match field.name().as_str() {
                "n_gains" => {}
                "waveform" => fields.extend([
                    Level::R1.field("waveform"),
                    Level::R1.field("selected_gain_channel"),
                ]),
                name => fields.push(
                    r1.field_with_name(name)
                        .map_or_else(|_| Arc::clone(field), |f| Arc::new(f.clone())),
                ),
            }
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    fn process(&self, batch: RecordBatch, output: &SchemaRef) -> Result<RecordBatch, StageError> {
        if !is_raw(&batch.schema()) {
            return Err(StageError::Data(
                "r0_to_r1 needs raw waveforms (List<UInt16>)".to_string(),
            ));
        }
        let RawWaveforms {
            tel_ids,
            waveforms,
            row_len,
            n_pixels,
            n_samples,
        } = RawWaveforms::of(&batch, &self.calibrations)?;
        let n_events = batch.num_rows();
        let mut r1 = vec![0.0f32; n_events * n_pixels * n_samples];
        let mut selected = vec![0i8; n_events * n_pixels];
        r1.par_chunks_mut((n_pixels * n_samples).max(1))
            .zip(selected.par_chunks_mut(n_pixels.max(1)))
            .enumerate()
            .try_for_each(|(event, (r1, selected))| -> Result<(), StageError> {
                let tel_id = tel_ids.value(event) as u16;
                let calibration = self.calibrations.get(tel_id)?;
                let config = self.r1_configs.get(&tel_id).ok_or_else(|| {
                    StageError::Data(format!("telescope {tel_id} is not in the instrument"))
                })?;
                let r0 = &waveforms[event * row_len..(event + 1) * row_len];
                calibration
                    .validate()
                    .map_err(|e| StageError::Data(format!("telescope {tel_id}: {e}")))?;
                let expected = calibration.n_channels() * calibration.n_pixels() * n_samples;
                if calibration.n_pixels() != n_pixels || expected != r0.len() {
                    return Err(StageError::Data(format!(
                        "telescope {tel_id}: waveform of {} samples, but its calibration has {} \
                         gains x {} pixels of {n_samples} samples",
                        r0.len(),
                        calibration.n_channels(),
                        calibration.n_pixels()
                    )));
                }
                r0_to_r1_event(r0, n_samples, &calibration, config, r1, selected);
                Ok(())
            })?;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(output.fields().len());
        for field in output.fields() {
            let column = match field.name().as_str() {
                "waveform" => uniform_list(
                    field,
                    Arc::new(Float32Array::from(std::mem::take(&mut r1))),
                    n_pixels * n_samples,
                )?,
                "selected_gain_channel" => uniform_list(
                    field,
                    Arc::new(Int8Array::from(std::mem::take(&mut selected))),
                    n_pixels,
                )?,
                name => batch.column_by_name(name).cloned().ok_or_else(|| {
                    StageError::MissingColumn {
                        column: name.to_string(),
                        expected: field.data_type().to_string(),
                    }
                })?,
            };
            columns.push(column);
        }
        RecordBatch::try_new(Arc::clone(output), columns)
            .map_err(|e| StageError::Data(format!("r0_to_r1 output: {e}")))
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or_default()
    }
}
