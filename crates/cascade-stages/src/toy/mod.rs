//! `kind = "toy"`: a deterministic generator of telescope events for a built-in array.
//!
//! It emits R1 telescope events (calibrated waveforms in p.e., or with `r1_encoding =
//! "uint16"` stored as CTAO's camera data stream stores them: the `r1_quantized` level) with
//! simulated-shower truth columns, the array pointing (its configured pointing) and the
//! triggered telescopes of each array event (`tels_with_trigger`), batched by telescope
//! type. It is the embedded input of the quickstart and the load generator of the
//! benchmarks; correctness is shown on real sim_telarray files.

mod array;
mod shower;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, Int64Array,
    RecordBatch, UInt16Array,
};
use arrow::datatypes::SchemaRef;
use cascade_instrument::ReadoutDescription;
use cascade_pipeline::{BuildContext, BuildError, BuiltStage, PerTelescope, TypedFactory};
use cascade_runtime::{
    SendableRecordBatchStream, Stage, StageContext, StageError, StageMetrics, StageRole,
};
use cascade_schema::Level;
use rayon::prelude::*;

pub use array::{ToyArray, ToyReadout, toy_array};
pub use shower::{Primary, ToyImage, ToySettings, ToyShower};

use crate::blocking_source::blocking_source;
use crate::columns::uniform_list;
use crate::simtel_source::tel_id_lists;

cascade_pipeline::stage_config! {
    /// Options of the toy source.
    pub struct ToyConfig {
        /// Array events to emit (showers with at least one triggered telescope).
        n_events: u64 = 1000,
        /// Random seed: the same seed gives the same events, whatever the batch size.
        seed: u64 = 1,
        /// Primary particle: "gamma" (point source at the pointing position) or "proton"
        /// (diffuse within 5 deg).
        primary: Primary = Primary::Gamma,
        /// Observation id written in `obs_id`.
        obs_id: i32 = 1,
        /// Array pointing altitude (deg).
        pointing_alt_deg: f64 = 70.0,
        /// Array pointing azimuth (deg, from north towards east).
        pointing_az_deg: f64 = 0.0,
        /// Spectral index of the power-law energy spectrum (dN/dE ∝ E^-index).
        spectral_index: f64 = 2.0,
        /// Lowest primary energy (TeV).
        min_energy_tev: f64 = 0.05,
        /// Highest primary energy (TeV).
        max_energy_tev: f64 = 50.0,
        /// Radius of the disc on the ground that shower cores are drawn from (m).
        max_core_distance_m: f64 = 500.0,
        /// White noise per waveform sample (p.e.).
        noise_pe: f64 = 0.3,
        /// A telescope triggers when its image holds at least this charge (p.e.).
        trigger_threshold_pe: f64 = 50.0,
        /// Telescope ids to simulate (empty: all 18 telescopes of the toy array).
        tel_ids: Vec<u16> = Vec::new(),
        /// Waveform samples per pixel of every camera (0: each camera type's own, 40
        /// LST-like, 25 MST-like, 40 SST-like).
        n_samples: usize = 0,
        /// How the samples are written: "float32" (the `r1` level, p.e.) or "uint16" (the
        /// `r1_quantized` level, as CTAO's camera data stream stores R1:
        /// `round((p.e. + waveform_offset) * waveform_scale)`, clamped to 0..65535).
        r1_encoding: R1Encoding = R1Encoding::Float32,
        /// Stored units per p.e. of "uint16" samples (80, as ctapipe_io_zfits' test stream;
        /// the samples then reach 814 p.e.).
        waveform_scale: f32 = 80.0,
        /// Offset (p.e.) added to "uint16" samples before scaling, so that negative values
        /// down to its opposite can be stored (5, as ctapipe_io_zfits' test stream).
        waveform_offset: f32 = 5.0,
    }
}

/// How the toy source writes its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum R1Encoding {
    /// `f32` values in p.e. (the `r1` level).
    Float32,
    /// `uint16` with a scale and an offset (the `r1_quantized` level).
    Uint16,
}

impl R1Encoding {
    /// The data level of samples written this way.
    pub fn level(self) -> Level {
        match self {
            R1Encoding::Float32 => Level::R1,
            R1Encoding::Uint16 => Level::R1Quantized,
        }
    }
}

/// The toy source's entry in the stage registry.
pub fn factory() -> TypedFactory<ToyConfig> {
    TypedFactory::new(
        "toy",
        StageRole::Source,
        "Deterministic synthetic R1 telescope events (gamma or proton showers with waveforms \
         and simulated truth) for a built-in array of 4 LST-like (1855 hexagonal pixels), 8 \
         MST-like (1764 hexagonal pixels) and 6 SST-like (2048 square pixels in gapped \
         modules) telescopes. For the quickstart and benchmarks.",
        build,
    )
    .same_for_every_telescope()
}

fn build(config: PerTelescope<ToyConfig>, _: &BuildContext) -> Result<BuiltStage, BuildError> {
    let config = config.default_value().clone();
    if !(config.min_energy_tev > 0.0 && config.max_energy_tev > config.min_energy_tev) {
        return Err(BuildError::option(
            "max_energy_tev",
            "need 0 < min_energy_tev < max_energy_tev",
        ));
    }
    if config.r1_encoding == R1Encoding::Uint16
        && !(config.waveform_scale.is_finite() && config.waveform_scale > 0.0)
    {
        return Err(BuildError::option(
            "waveform_scale",
            "must be finite and positive",
        ));
    }
    if !config.waveform_offset.is_finite() {
        return Err(BuildError::option("waveform_offset", "must be finite"));
    }
    if !(0.0..=90.0).contains(&config.pointing_alt_deg) {
        return Err(BuildError::option(
            "pointing_alt_deg",
            "must be between 0 and 90 deg",
        ));
    }
    let mut array = toy_array();
    if config.n_samples > 0 {
        for readout in array.readout.values_mut() {
            readout.n_samples = config.n_samples;
        }
    }
    if !config.tel_ids.is_empty() {
        let mut subarray = (*array.subarray).clone();
        if let Some(unknown) = config
            .tel_ids
            .iter()
            .find(|id| !subarray.telescopes.contains_key(id))
        {
            return Err(BuildError::option(
                "tel_ids",
                format!("the toy array has no telescope {unknown} (ids 1-18)"),
            ));
        }
        subarray
            .telescopes
            .retain(|id, _| config.tel_ids.contains(id));
        subarray
            .positions_m
            .retain(|id, _| config.tel_ids.contains(id));
        array.subarray = Arc::new(subarray);
    }
    let subarray = Arc::clone(&array.subarray);
    let readout = subarray
        .telescopes
        .iter()
        .filter_map(|(&tel_id, telescope)| {
            let readout = array.readout.get(&telescope.name)?;
            Some((tel_id, Arc::new(readout_description(readout))))
        })
        .collect();
    Ok(BuiltStage {
        stage: Arc::new(ToySource { config, array }),
        subarray: Some(subarray),
        readout,
        shared: BTreeMap::new(),
    })
}

/// The readout of a toy camera: its sampling, and the Gaussian pulse (σ = 1.5 ns) the
/// generator uses, sampled every 0.1 ns, as reference pulse shape.
pub(crate) fn readout_description(readout: &ToyReadout) -> ReadoutDescription {
    let pulse = (0..200)
        .map(|k| (-0.5 * ((k as f64 * 0.1 - 10.0) / 1.5).powi(2)).exp())
        .collect();
    ReadoutDescription {
        sampling_rate_ghz: readout.sampling_rate_ghz,
        n_samples: readout.n_samples,
        reference_pulse_shape: vec![pulse],
        reference_pulse_sample_width_ns: 0.1,
        calibration: None,
    }
}

/// The toy source stage.
#[derive(Debug)]
pub struct ToySource {
    config: ToyConfig,
    array: ToyArray,
}

impl ToySource {
    /// A toy source with the given options over the full toy array.
    pub fn new(config: ToyConfig) -> Self {
        Self {
            config,
            array: toy_array(),
        }
    }

    /// Generates the events synchronously, calling `emit` with each batch (at most
    /// `batch_size` telescope events of one telescope type). Stops early when `emit`
    /// returns false.
    pub fn generate(
        &self,
        batch_size: usize,
        emit: impl FnMut(RecordBatch) -> bool,
    ) -> Result<(), StageError> {
        self.generate_reporting(batch_size, &StageMetrics::default(), emit)
    }

    /// [`ToySource::generate`], reporting the array events generated of `n_events` as the
    /// input progress of `metrics`.
    fn generate_reporting(
        &self,
        batch_size: usize,
        metrics: &StageMetrics,
        mut emit: impl FnMut(RecordBatch) -> bool,
    ) -> Result<(), StageError> {
        let settings = self.settings();
        let schema = self.level().schema();
        let telescopes = self.telescopes();
        let mut buffers: BTreeMap<String, TypeBuffer> = BTreeMap::new();
        let chunk = batch_size.max(16) as u64;
        let mut emitted = 0u64;
        let mut next_shower = 0u64;
        while emitted < self.config.n_events {
            let events: Vec<Vec<TelescopeEvent>> = (next_shower..next_shower + chunk)
                .into_par_iter()
                .map(|index| {
                    simulate(
                        &settings,
                        self.config.seed,
                        index,
                        &telescopes,
                        self.config.trigger_threshold_pe,
                    )
                })
                .collect();
            for (offset, event) in events.into_iter().enumerate() {
                if event.is_empty() || emitted >= self.config.n_events {
                    continue;
                }
                emitted += 1;
                let tels_with_trigger: Vec<i16> = event.iter().map(|t| t.tel_id as i16).collect();
                for telescope_event in event {
                    let buffer = buffers.entry(telescope_event.tel_type.clone()).or_default();
                    buffer.push(
                        next_shower + offset as u64,
                        &tels_with_trigger,
                        telescope_event,
                        batch_size,
                    );
                    if buffer.len() >= batch_size && !emit(buffer.take(&schema, &self.config)?) {
                        return Ok(());
                    }
                }
            }
            next_shower += chunk;
            metrics.set_input_progress(emitted, self.config.n_events);
        }
        for buffer in buffers.values_mut() {
            if buffer.len() > 0 && !emit(buffer.take(&schema, &self.config)?) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The data level of the events: `r1`, or `r1_quantized` for "uint16" samples.
    fn level(&self) -> Level {
        self.config.r1_encoding.level()
    }

    fn settings(&self) -> ToySettings {
        let c = &self.config;
        ToySettings {
            primary: c.primary,
            pointing_alt_deg: c.pointing_alt_deg,
            pointing_az_deg: c.pointing_az_deg,
            spectral_index: c.spectral_index,
            energy_range_tev: (c.min_energy_tev, c.max_energy_tev),
            max_core_distance_m: c.max_core_distance_m,
            noise_pe: c.noise_pe,
            trigger_threshold_pe: c.trigger_threshold_pe,
        }
    }

    fn telescopes(&self) -> Vec<ToyTelescope> {
        self.array
            .subarray
            .telescopes
            .iter()
            .map(|(&tel_id, description)| {
                let focal = description.optics.equivalent_focal_length_m;
                let (pix_lon, pix_lat) = shower::pixel_fov_deg(&description.camera, focal);
                ToyTelescope {
                    tel_id,
                    description: Arc::clone(description),
                    position_m: self
                        .array
                        .subarray
                        .positions_m
                        .get(&tel_id)
                        .copied()
                        .unwrap_or_default(),
                    readout: self
                        .array
                        .readout
                        .get(&description.name)
                        .copied()
                        .unwrap_or(ToyReadout {
                            n_samples: 40,
                            sampling_rate_ghz: 1.0,
                        }),
                    pix_lon,
                    pix_lat,
                }
            })
            .collect()
    }
}

impl Stage for ToySource {
    fn kind(&self) -> &'static str {
        "toy"
    }

    fn role(&self) -> StageRole {
        StageRole::Source
    }

    fn output_schema(&self, _: &[SchemaRef]) -> Result<SchemaRef, StageError> {
        Ok(self.level().schema())
    }

    fn execute(
        &self,
        _: Vec<SendableRecordBatchStream>,
        ctx: StageContext,
    ) -> Result<SendableRecordBatchStream, StageError> {
        let source = ToySource {
            config: self.config.clone(),
            array: self.array.clone(),
        };
        let metrics = Arc::clone(&ctx.metrics);
        Ok(blocking_source(
            self.level().schema(),
            ctx,
            move |batch_size, emit| source.generate_reporting(batch_size, &metrics, emit),
        ))
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or_default()
    }
}

/// A telescope of the toy array with its precomputed pixel directions.
struct ToyTelescope {
    tel_id: u16,
    description: Arc<cascade_instrument::TelescopeDescription>,
    position_m: [f64; 3],
    readout: ToyReadout,
    pix_lon: Vec<f64>,
    pix_lat: Vec<f64>,
}

/// One triggered telescope of one shower.
struct TelescopeEvent {
    tel_id: u16,
    tel_type: String,
    n_samples: usize,
    shower: ToyShower,
    waveform: Vec<f32>,
}

/// Simulates shower `index`: the telescopes that trigger, with their waveforms, in
/// increasing telescope id.
fn simulate(
    settings: &ToySettings,
    seed: u64,
    index: u64,
    telescopes: &[ToyTelescope],
    threshold_pe: f64,
) -> Vec<TelescopeEvent> {
    let (shower, mut rng) = shower::draw_shower(settings, seed, index);
    let mut triggered = Vec::new();
    for telescope in telescopes {
        let optics = &telescope.description.optics;
        let image = shower::telescope_image(
            settings,
            &shower,
            telescope.position_m,
            optics.mirror_area_m2,
            &mut rng,
        );
        if image.intensity_pe < 0.5 * threshold_pe {
            continue;
        }
        let camera = &telescope.description.camera;
        let mut charges = vec![0.0f32; camera.n_pixels()];
        shower::fill_charges(
            &image,
            camera,
            &telescope.pix_lon,
            &telescope.pix_lat,
            optics.equivalent_focal_length_m,
            &mut charges,
            &mut rng,
        );
        if f64::from(charges.iter().sum::<f32>()) < threshold_pe {
            continue;
        }
        let n_samples = telescope.readout.n_samples;
        let mut waveform = vec![0.0f32; camera.n_pixels() * n_samples];
        shower::fill_waveforms(
            &image,
            &charges,
            &telescope.pix_lon,
            &telescope.pix_lat,
            n_samples,
            telescope.readout.sampling_rate_ghz,
            settings.noise_pe,
            &mut waveform,
            &mut rng,
        );
        triggered.push(TelescopeEvent {
            tel_id: telescope.tel_id,
            tel_type: telescope.description.name.clone(),
            n_samples,
            shower,
            waveform,
        });
    }
    triggered
}

/// Largest number of waveform samples a [`TypeBuffer`] reserves ahead (256 MB).
const MAX_RESERVED_SAMPLES: usize = 1 << 26;

/// Telescope events of one type waiting to fill a batch.
#[derive(Default)]
struct TypeBuffer {
    event_ids: Vec<i64>,
    tel_ids: Vec<i16>,
    n_samples: usize,
    waveforms: Vec<f32>,
    showers: Vec<ToyShower>,
    tels_with_trigger: Vec<i16>,
    tels_lengths: Vec<usize>,
}

impl TypeBuffer {
    fn len(&self) -> usize {
        self.event_ids.len()
    }

    /// Adds one telescope event to a batch that will hold up to `batch_size` of them.
    fn push(
        &mut self,
        event_id: u64,
        tels_with_trigger: &[i16],
        event: TelescopeEvent,
        batch_size: usize,
    ) {
        if self.waveforms.capacity() == 0 {
            // The batch's waveforms at once rather than grown by doubling, which copied
            // them again at every step; at most `MAX_RESERVED_SAMPLES`, as the batch size
            // is the user's to choose.
            let samples = batch_size.saturating_mul(event.waveform.len());
            self.waveforms
                .reserve_exact(samples.min(MAX_RESERVED_SAMPLES));
        }
        self.event_ids.push(event_id as i64);
        self.tels_with_trigger.extend_from_slice(tels_with_trigger);
        self.tels_lengths.push(tels_with_trigger.len());
        self.tel_ids.push(event.tel_id as i16);
        self.n_samples = event.n_samples;
        self.waveforms.extend_from_slice(&event.waveform);
        self.showers.push(event.shower);
    }

    fn take(&mut self, schema: &SchemaRef, config: &ToyConfig) -> Result<RecordBatch, StageError> {
        let n = self.len();
        let waveforms = std::mem::take(&mut self.waveforms);
        let row_len = waveforms.len().checked_div(n).unwrap_or(0);
        let n_pixels = row_len.checked_div(self.n_samples).unwrap_or(0);
        let field = |name: &str| config.r1_encoding.level().field(name);
        let showers = std::mem::take(&mut self.showers);
        let truth = |f: fn(&ToyShower) -> f64| {
            Arc::new(Float64Array::from_iter_values(showers.iter().map(f))) as ArrayRef
        };
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(vec![config.obs_id; n])),
            Arc::new(Int64Array::from(std::mem::take(&mut self.event_ids))),
            Arc::new(Int16Array::from(std::mem::take(&mut self.tel_ids))),
            Arc::new(Int16Array::from(vec![self.n_samples as i16; n])),
        ];
        match config.r1_encoding {
            R1Encoding::Float32 => columns.push(uniform_list(
                &field("waveform"),
                Arc::new(Float32Array::from(waveforms)),
                row_len,
            )?),
            R1Encoding::Uint16 => {
                let (scale, offset) = (config.waveform_scale, config.waveform_offset);
                let stored = waveforms
                    .iter()
                    .map(|&value| ((value + offset) * scale).round().clamp(0.0, 65535.0) as u16);
                columns.extend([
                    uniform_list(
                        &field("waveform"),
                        Arc::new(UInt16Array::from_iter_values(stored)),
                        row_len,
                    )?,
                    Arc::new(Float32Array::from(vec![scale; n])),
                    Arc::new(Float32Array::from(vec![offset; n])),
                ]);
            }
        }
        let rest: [ArrayRef; 14] = [
            uniform_list(
                &field("selected_gain_channel"),
                Arc::new(Int8Array::from(vec![0i8; n * n_pixels])),
                n_pixels,
            )?,
            Arc::new(Float64Array::from(vec![config.pointing_alt_deg; n])),
            Arc::new(Float64Array::from(vec![config.pointing_az_deg; n])),
            Arc::new(Float64Array::from(vec![config.pointing_alt_deg; n])),
            Arc::new(Float64Array::from(vec![config.pointing_az_deg; n])),
            tel_id_lists(
                &field("tels_with_trigger"),
                std::mem::take(&mut self.tels_with_trigger),
                &std::mem::take(&mut self.tels_lengths),
            )?,
            truth(|s| s.energy_tev),
            truth(|s| s.alt_deg),
            truth(|s| s.az_deg),
            truth(|s| s.core_x_m),
            truth(|s| s.core_y_m),
            truth(|s| s.h_first_int_m),
            truth(|s| s.x_max_g_cm2),
            Arc::new(Int32Array::from_iter_values(
                showers.iter().map(|s| s.primary.shower_primary_id()),
            )),
        ];
        columns.extend(rest);
        Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
    }
}
