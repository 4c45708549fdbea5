//! `kind = "stereo"`: joins telescope events into array events and reconstructs the shower
//! geometry with ctapipe's HillasReconstructor or HillasIntersection (`cascade_reco`).
//!
//! Input: one or more streams of DL1 parameter rows (one per telescope event, in any order
//! and interleaving). Rows are grouped by (obs_id, event_id); an array event is
//! reconstructed once `window_events` newer array events have been seen after its last row,
//! or at the end of the input, so memory stays bounded on unbounded input. The window must
//! cover the interleaving of the inputs: a source emitting batches of `batch_size` events
//! per telescope type needs `window_events >= batch_size`. Rows arriving after their array
//! event was reconstructed form a new, partial array event (they are never dropped).
//!
//! Output: one row per array event with the `dl2_shower` columns and, when the input has
//! them, the simulated truth (`true_*`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int16Array, Int32Array, Int64Array, ListArray,
    RecordBatch, StringArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Float64Type, Int16Type, Int32Type, Int64Type, Schema, SchemaRef};
use cascade_instrument::FocalLengthChoice;
use cascade_instrument::frames::AltAz;
use cascade_pipeline::{BuildContext, BuildError, BuiltStage, PerTelescope, TypedFactory};
use cascade_reco::{
    HillasParameters, ReconstructorType, StereoQualityQuery, StereoSubarray, TelescopeEvent,
};
use cascade_runtime::{
    Arity, SendableRecordBatchStream, Stage, StageContext, StageError, StageRole, check_column,
};
use cascade_schema::Level;
use datafusion_physical_plan::stream::RecordBatchReceiverStreamBuilder;
use futures::StreamExt;

use crate::columns::primitive;

cascade_pipeline::stage_config! {
    /// Options of the stereo reconstruction.
    pub struct StereoConfig {
        /// The reconstructor, by ctapipe's name: "HillasReconstructor" or "HillasIntersection".
        reconstructor: ReconstructorType = ReconstructorType::HillasReconstructor,
        /// Telescope selection before stereo (ctapipe's StereoQualityQuery; default:
        /// intensity > 50 p.e., width > 0, more than 3 pixels).
        quality: StereoQualityQuery = StereoQualityQuery::default(),
        /// Array events kept open for late telescope rows (see the module docs).
        window_events: usize = 1024,
        /// Focal length used for the camera radius of the quality query: "equivalent" or "effective".
        focal_length_choice: FocalLengthChoice = FocalLengthChoice::Equivalent,
    }
}

/// The stereo stage's entry in the stage registry.
pub fn factory() -> TypedFactory<StereoConfig> {
    TypedFactory::new(
        "stereo",
        StageRole::Transform,
        "Joins telescope events into array events within a bounded window and reconstructs \
         direction, core and h_max with ctapipe's HillasReconstructor or HillasIntersection.",
        build,
    )
}

fn build(
    config: PerTelescope<StereoConfig>,
    context: &BuildContext,
) -> Result<BuiltStage, BuildError> {
    let config = config.default_value().clone();
    if config.window_events == 0 {
        return Err(BuildError::option("window_events", "must be at least 1"));
    }
    let subarray = Arc::new(StereoSubarray::new(
        &context.subarray,
        config.focal_length_choice,
    ));
    Ok(BuiltStage::new(Arc::new(Stereo { config, subarray })))
}

/// The stereo stage.
#[derive(Debug)]
pub struct Stereo {
    config: StereoConfig,
    subarray: Arc<StereoSubarray>,
}

const TRUTH: [&str; 8] = [
    "true_energy",
    "true_alt",
    "true_az",
    "true_core_x",
    "true_core_y",
    "true_h_first_int",
    "true_x_max",
    "true_shower_primary_id",
];

const INPUT_F64: [&str; 8] = [
    "hillas_fov_lon",
    "hillas_fov_lat",
    "hillas_psi",
    "hillas_length",
    "hillas_width",
    "hillas_intensity",
    "leakage_intensity_width_2",
    "pointing_alt",
];

impl Stage for Stereo {
    fn kind(&self) -> &'static str {
        "stereo"
    }

    fn arity(&self) -> Arity {
        Arity::AtLeast(1)
    }

    fn output_schema(&self, inputs: &[SchemaRef]) -> Result<SchemaRef, StageError> {
        Arity::AtLeast(1).check(inputs.len())?;
        for input in inputs {
            for column in ["obs_id", "event_id", "tel_id", "morphology_n_pixels"] {
                check_column(
                    input,
                    column,
                    Level::Dl1Parameters.field(column).data_type(),
                )?;
            }
            for column in INPUT_F64.iter().chain(&["pointing_az"]) {
                check_column(input, column, &DataType::Float64)?;
            }
        }
        let mut fields: Vec<_> = Level::Dl2Shower.schema().fields().iter().cloned().collect();
        if TRUTH
            .iter()
            .all(|t| inputs.iter().all(|i| i.field_with_name(t).is_ok()))
        {
            fields.extend(Level::SimulationShower.fields(&TRUTH));
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    fn execute(
        &self,
        inputs: Vec<SendableRecordBatchStream>,
        ctx: StageContext,
    ) -> Result<SendableRecordBatchStream, StageError> {
        let schemas: Vec<SchemaRef> = inputs.iter().map(|i| i.schema()).collect();
        let output = self.output_schema(&schemas)?;
        let with_truth = output.field_with_name("true_energy").is_ok();
        let mut merged = futures::stream::select_all(inputs);
        let mut builder = RecordBatchReceiverStreamBuilder::new(Arc::clone(&output), 2);
        let sender = builder.tx();
        let config = self.config.clone();
        let subarray = Arc::clone(&self.subarray);
        builder.spawn(async move {
            let mut join = Join::new(config.window_events);
            let mut rows = OutputRows::default();
            while let Some(batch) = merged.next().await {
                let batch = batch?;
                let start = std::time::Instant::now();
                for ready in join.add(&batch, with_truth)? {
                    rows.push(&config, &subarray, ready)?;
                }
                ctx.metrics.add_busy(start.elapsed());
                if rows.len() >= ctx.batch_size
                    && sender.send(Ok(rows.take(&output)?)).await.is_err()
                {
                    return Ok(());
                }
            }
            for ready in join.flush() {
                rows.push(&config, &subarray, ready)?;
            }
            if rows.len() > 0 {
                let _ = sender.send(Ok(rows.take(&output)?)).await;
            }
            Ok(())
        });
        Ok(builder.build())
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or_default()
    }
}

/// One telescope's row of an array event.
struct TelescopeRow {
    tel_id: u16,
    values: [f64; 8],
    pointing_az: f64,
    n_pixels: i64,
}

/// The telescope rows of one array event, with its truth.
struct PendingEvent {
    obs_id: i32,
    event_id: i64,
    telescopes: Vec<TelescopeRow>,
    truth: Option<([f64; 7], i32)>,
    last_seen: u64,
}

/// Groups rows by array event; releases events that fell out of the window.
struct Join {
    window: usize,
    pending: HashMap<(i32, i64), PendingEvent>,
    order: VecDeque<(i32, i64)>,
    clock: u64,
}

impl Join {
    fn new(window: usize) -> Self {
        Self {
            window,
            pending: HashMap::new(),
            order: VecDeque::new(),
            clock: 0,
        }
    }

    fn add(
        &mut self,
        batch: &RecordBatch,
        with_truth: bool,
    ) -> Result<Vec<PendingEvent>, StageError> {
        let obs = primitive::<Int32Type>(batch, "obs_id")?;
        let events = primitive::<Int64Type>(batch, "event_id")?;
        let tels = primitive::<Int16Type>(batch, "tel_id")?;
        let n_pixels = primitive::<Int64Type>(batch, "morphology_n_pixels")?;
        let columns = INPUT_F64.map(|c| primitive::<Float64Type>(batch, c));
        let az = primitive::<Float64Type>(batch, "pointing_az")?;
        let mut values = Vec::with_capacity(8);
        for column in columns {
            values.push(column?);
        }
        let truth: Option<(Vec<&Float64Array>, &Int32Array)> = if with_truth {
            let floats = TRUTH[..7]
                .iter()
                .map(|c| primitive::<Float64Type>(batch, c))
                .collect::<Result<Vec<_>, _>>()?;
            Some((
                floats,
                primitive::<Int32Type>(batch, "true_shower_primary_id")?,
            ))
        } else {
            None
        };
        for row in 0..batch.num_rows() {
            let key = (obs.value(row), events.value(row));
            self.clock += 1;
            let event = self.pending.entry(key).or_insert_with(|| {
                self.order.push_back(key);
                PendingEvent {
                    obs_id: key.0,
                    event_id: key.1,
                    telescopes: Vec::new(),
                    truth: None,
                    last_seen: 0,
                }
            });
            event.last_seen = self.clock;
            event.telescopes.push(TelescopeRow {
                tel_id: tels.value(row) as u16,
                values: std::array::from_fn(|i| values[i].value(row)),
                pointing_az: az.value(row),
                n_pixels: n_pixels.value(row),
            });
            if let Some((floats, primary)) = &truth {
                event.truth = Some((
                    std::array::from_fn(|i| floats[i].value(row)),
                    primary.value(row),
                ));
            }
        }
        let mut ready = Vec::new();
        while self.order.len() > self.window {
            if let Some(key) = self.order.pop_front() {
                ready.extend(self.pending.remove(&key));
            }
        }
        Ok(ready)
    }

    fn flush(&mut self) -> Vec<PendingEvent> {
        self.order
            .drain(..)
            .filter_map(|key| self.pending.remove(&key))
            .collect()
    }
}

/// Reconstructed array events waiting to fill an output batch.
#[derive(Default)]
struct OutputRows {
    ids: Vec<(i32, i64)>,
    results: Vec<cascade_reco::ReconstructedGeometry>,
    reconstructor: Vec<&'static str>,
    truth: Vec<([f64; 7], i32)>,
}

impl OutputRows {
    fn len(&self) -> usize {
        self.ids.len()
    }

    fn push(
        &mut self,
        config: &StereoConfig,
        subarray: &StereoSubarray,
        mut event: PendingEvent,
    ) -> Result<(), StageError> {
        // ctapipe iterates telescopes in id order (event.dl1.tel is sorted by tel_id).
        event.telescopes.sort_by_key(|t| t.tel_id);
        let telescopes: Vec<TelescopeEvent> = event
            .telescopes
            .iter()
            .filter_map(|t| {
                let [lon, lat, psi, length, width, intensity, leakage, alt] = t.values;
                let hillas = HillasParameters {
                    fov_lon_deg: lon,
                    fov_lat_deg: lat,
                    psi_deg: psi,
                    length_deg: length,
                    width_deg: width,
                    intensity_pe: intensity,
                };
                let pointing = AltAz {
                    alt_deg: alt,
                    az_deg: t.pointing_az,
                };
                subarray.telescope_event(t.tel_id, hillas, t.n_pixels, leakage, pointing)
            })
            .collect();
        let array_pointing = telescopes.first().map_or(
            AltAz {
                alt_deg: f64::NAN,
                az_deg: f64::NAN,
            },
            |t| t.pointing,
        );
        let array_event = cascade_reco::ArrayEvent {
            array_pointing,
            observation_level_m: subarray.observation_level_m,
            telescopes: &telescopes,
        };
        let result = config
            .reconstructor
            .reconstruct(&array_event, &config.quality)
            .map_err(|e| {
                StageError::Data(format!(
                    "array event ({}, {}): {e}",
                    event.obs_id, event.event_id
                ))
            })?;
        self.ids.push((event.obs_id, event.event_id));
        self.results.push(result);
        self.reconstructor.push(config.reconstructor.name());
        self.truth.push(event.truth.unwrap_or(([f64::NAN; 7], -1)));
        Ok(())
    }

    fn take(&mut self, schema: &SchemaRef) -> Result<RecordBatch, StageError> {
        let results = std::mem::take(&mut self.results);
        let ids = std::mem::take(&mut self.ids);
        let truth = std::mem::take(&mut self.truth);
        let reconstructor = std::mem::take(&mut self.reconstructor);
        let float = |f: fn(&cascade_reco::ReconstructedGeometry) -> f64| {
            Arc::new(Float64Array::from_iter_values(results.iter().map(f))) as ArrayRef
        };
        let mut by_name: BTreeMap<&str, ArrayRef> = BTreeMap::new();
        by_name.insert(
            "obs_id",
            Arc::new(Int32Array::from_iter_values(ids.iter().map(|i| i.0))),
        );
        by_name.insert(
            "event_id",
            Arc::new(Int64Array::from_iter_values(ids.iter().map(|i| i.1))),
        );
        by_name.insert("alt", float(|r| r.alt_deg));
        by_name.insert("alt_uncert", float(|r| r.alt_uncert_deg));
        by_name.insert("az", float(|r| r.az_deg));
        by_name.insert("az_uncert", float(|r| r.az_uncert_deg));
        by_name.insert("ang_distance_uncert", float(|r| r.ang_distance_uncert_deg));
        by_name.insert("core_x", float(|r| r.core_x_m));
        by_name.insert("core_y", float(|r| r.core_y_m));
        by_name.insert("core_uncert_x", float(|r| r.core_uncert_x_m));
        by_name.insert("core_uncert_y", float(|r| r.core_uncert_y_m));
        by_name.insert("core_tilted_x", float(|r| r.core_tilted_x_m));
        by_name.insert("core_tilted_y", float(|r| r.core_tilted_y_m));
        by_name.insert("core_tilted_uncert_x", float(|r| r.core_tilted_uncert_x_m));
        by_name.insert("core_tilted_uncert_y", float(|r| r.core_tilted_uncert_y_m));
        by_name.insert("h_max", float(|r| r.h_max_m));
        by_name.insert("h_max_uncert", float(|r| r.h_max_uncert_m));
        by_name.insert("average_intensity", float(|r| r.average_intensity));
        by_name.insert("goodness_of_fit", float(|r| r.goodness_of_fit));
        by_name.insert(
            "is_valid",
            Arc::new(BooleanArray::from_iter(
                results.iter().map(|r| Some(r.is_valid)),
            )),
        );
        let tel_ids = Int16Array::from_iter_values(
            results
                .iter()
                .flat_map(|r| r.telescopes.iter().map(|&t| t as i16)),
        );
        let offsets = OffsetBuffer::from_lengths(results.iter().map(|r| r.telescopes.len()));
        let DataType::List(item) = Level::Dl2Shower.field("telescopes").data_type().clone() else {
            return Err(StageError::Data(
                "telescopes is not a list column".to_string(),
            ));
        };
        by_name.insert(
            "telescopes",
            Arc::new(ListArray::try_new(item, offsets, Arc::new(tel_ids), None)?),
        );
        by_name.insert("reconstructor", Arc::new(StringArray::from(reconstructor)));
        for (i, name) in TRUTH[..7].iter().enumerate() {
            by_name.insert(
                name,
                Arc::new(Float64Array::from_iter_values(truth.iter().map(|t| t.0[i]))),
            );
        }
        by_name.insert(
            "true_shower_primary_id",
            Arc::new(Int32Array::from_iter_values(truth.iter().map(|t| t.1))),
        );
        let columns = schema
            .fields()
            .iter()
            .map(|f| {
                by_name.remove(f.name().as_str()).ok_or_else(|| {
                    StageError::Data(format!("no value for output column {}", f.name()))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch of DL1 parameter rows for (event_id, tel_id) pairs.
    fn rows(keys: &[(i64, i16)]) -> RecordBatch {
        let n = keys.len();
        let mut fields = vec![
            Level::Dl1Parameters.field("obs_id"),
            Level::Dl1Parameters.field("event_id"),
            Level::Dl1Parameters.field("tel_id"),
            Level::Dl1Parameters.field("morphology_n_pixels"),
            Level::Dl1Parameters.field("pointing_az"),
        ];
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(vec![1; n])),
            Arc::new(Int64Array::from_iter_values(keys.iter().map(|k| k.0))),
            Arc::new(Int16Array::from_iter_values(keys.iter().map(|k| k.1))),
            Arc::new(Int64Array::from(vec![10; n])),
            Arc::new(Float64Array::from(vec![0.0; n])),
        ];
        for name in INPUT_F64 {
            fields.push(Level::Dl1Parameters.field(name));
            columns.push(Arc::new(Float64Array::from(vec![1.0; n])));
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    fn drain(join: &mut Join, batches: &[Vec<(i64, i16)>]) -> Vec<(i64, Vec<u16>)> {
        let mut out: Vec<(i64, Vec<u16>)> = Vec::new();
        for batch in batches {
            for event in join.add(&rows(batch), false).unwrap() {
                out.push((
                    event.event_id,
                    event.telescopes.iter().map(|t| t.tel_id).collect(),
                ));
                assert!(
                    join.pending.len() <= join.window,
                    "the join holds more than its window"
                );
            }
        }
        out.extend(
            join.flush()
                .into_iter()
                .map(|e| (e.event_id, e.telescopes.iter().map(|t| t.tel_id).collect())),
        );
        for (_, tels) in &mut out {
            tels.sort();
        }
        out
    }

    #[test]
    fn interleaved_and_shuffled_streams_join_into_whole_events() {
        // Two telescope types in separate batches, events shuffled inside each batch, and
        // event 3 missing its second telescope altogether.
        let lst = vec![(2, 1), (1, 1), (3, 1), (4, 1)];
        let mst = vec![(4, 5), (1, 5), (2, 5)];
        let mut out = drain(&mut Join::new(8), &[lst, mst]);
        out.sort();
        assert_eq!(
            out,
            vec![
                (1, vec![1, 5]),
                (2, vec![1, 5]),
                (3, vec![1]),
                (4, vec![1, 5])
            ]
        );
    }

    #[test]
    fn rows_later_than_the_window_form_a_partial_event_and_are_never_dropped() {
        let batches = vec![vec![(1, 1), (2, 1), (3, 1), (4, 1)], vec![(1, 5)]];
        let out = drain(&mut Join::new(2), &batches);
        let rows: usize = out.iter().map(|(_, t)| t.len()).sum();
        assert_eq!(rows, 5);
        assert_eq!(out.iter().filter(|(e, _)| *e == 1).count(), 2, "{out:?}");
    }

    #[test]
    fn memory_stays_bounded_on_a_long_stream() {
        let mut join = Join::new(16);
        let mut emitted = 0;
        for chunk in 0..200i64 {
            let batch: Vec<(i64, i16)> = (0..50).map(|i| (chunk * 50 + i, 1)).collect();
            emitted += join.add(&rows(&batch), false).unwrap().len();
            assert!(join.pending.len() <= 16 && join.order.len() <= 16);
        }
        emitted += join.flush().len();
        assert_eq!(emitted, 10_000);
    }
}
