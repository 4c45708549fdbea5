//! `kind = "stereo"`: joins telescope events into array events and reconstructs the shower
//! geometry with ctapipe's HillasReconstructor or HillasIntersection (`cascade_reco`).
//!
//! Input: one or more streams of DL1 parameter rows (one per telescope event, in any order
//! and interleaving), each carrying `tels_with_trigger`, the telescopes of its array event
//! that the source emits. Rows are grouped by (obs_id, event_id) and an array event is
//! emitted
//!
//! * as soon as every telescope of its `tels_with_trigger` has arrived (`join_complete`), or
//! * incomplete, when it is the oldest open array event and one more would exceed
//!   `window_events` open events, or once it has been open `window_seconds` (wall clock),
//!   or at the end of the input; the telescopes still missing are counted
//!   (`n_tels_missing`).
//!
//! So at most `window_events` array events are open at once and memory stays bounded on
//! unbounded input. The window must cover the interleaving of the inputs: a source emitting
//! batches of `batch_size` events per telescope type needs `window_events >= batch_size`.
//! Rows arriving after their array event was emitted are never dropped: they form a second,
//! partial row flagged `join_late`, itself emitted as soon as the telescopes still missing at
//! the first emission have arrived (or when the window passes). The join remembers the last
//! max(4 × `window_events`, 4096) emitted array events for this (a few bytes each); a row
//! later than that cannot be told from a new event and opens one.
//!
//! The nominal frame is centred on the array pointing of the input (`array_pointing_alt`,
//! `array_pointing_az`, the file's run header direction as in ctapipe), or on the first
//! telescope's pointing when the array pointing is NaN (a run tracking in ra/dec).
//!
//! Output: one row per emitted array event with the `dl2_shower` columns (including the
//! join's `n_tels_expected`, `n_tels_joined`, `n_tels_missing`, `join_complete` and
//! `join_late`) and, when the input has them, the simulated truth (`true_*`). Rows come out
//! in the order the events are emitted, not sorted by event id.
//!
//! Quality: telescope events failing any of `quality_criteria` (ctapipe's
//! StereoQualityQuery, conditions as in the `filter` stage, evaluated on whole input batches)
//! are joined and counted in `n_tels_joined` but not used for the reconstruction.
//!
//! Metrics: the stage reports its counters `events_complete`, `events_incomplete`,
//! `missing_telescopes` (expected telescopes absent when their event was emitted),
//! `late_rows`, `late_events` and `peak_open_events` in the run metrics.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, AsArray, BooleanArray, Float64Array, Int16Array, Int32Array, Int64Array, ListArray,
    RecordBatch, StringArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Float64Type, Int16Type, Int32Type, Int64Type, Schema, SchemaRef};
use cascade_instrument::FocalLengthChoice;
use cascade_instrument::frames::AltAz;
use cascade_pipeline::{BuildContext, BuildError, BuiltStage, PerTelescope, TypedFactory};
use cascade_reco::{HillasParameters, ReconstructorType, StereoSubarray, TelescopeEvent};
use cascade_runtime::{
    Arity, SendableRecordBatchStream, Stage, StageContext, StageError, StageMetrics, StageRole,
    ValuePosition, check_column,
};
use cascade_schema::Level;
use datafusion_physical_plan::stream::RecordBatchReceiverStreamBuilder;
use futures::StreamExt;

use crate::columns::primitive;
use crate::quality::{
    QualityCriterion, QualityError, QualityQuery, ctapipe_stereo_quality_criteria,
};

cascade_pipeline::stage_config! {
    /// Options of the stereo reconstruction.
    pub struct StereoConfig {
        /// The reconstructor, by ctapipe's name: "HillasReconstructor" or "HillasIntersection".
        reconstructor: ReconstructorType = ReconstructorType::HillasReconstructor,
        /// Telescope selection before stereo, as ctapipe's StereoQualityQuery
        /// `quality_criteria`: `[name, condition]` pairs, conditions on the input columns as
        /// in the `filter` stage's `where` (a comparison with NaN is false). A telescope
        /// event failing any one is not used for the reconstruction. Default: ctapipe 0.28's
        /// criteria.
        quality_criteria: Vec<QualityCriterion> = ctapipe_stereo_quality_criteria(),
        /// Array events kept open for late telescope rows (see the module docs).
        window_events: usize = 1024,
        /// Also emit an incomplete array event once it has been open this long (wall-clock
        /// seconds); no time limit when absent.
        window_seconds: Option<f64> = None,
        /// Focal length of the telescope frame the Hillas parameters are in (for the camera
        /// radius of the HillasReconstructor): "equivalent" or "effective".
        focal_length_choice: FocalLengthChoice = FocalLengthChoice::Equivalent,
    }
}

/// The stereo stage's entry in the stage registry.
pub fn factory() -> TypedFactory<StereoConfig> {
    TypedFactory::new(
        "stereo",
        StageRole::Transform,
        "Joins telescope events into array events (emitted when all triggered telescopes have \
         arrived, else when a bounded window passes; late and missing telescopes are flagged \
         and counted) and reconstructs direction, core and h_max with ctapipe's \
         HillasReconstructor or HillasIntersection.",
        build,
    )
    .same_for_every_telescope()
}

fn build(
    config: PerTelescope<StereoConfig>,
    context: &BuildContext,
) -> Result<BuiltStage, BuildError> {
    let config = config.default_value().clone();
    if config.window_events == 0 {
        return Err(BuildError::option("window_events", "must be at least 1"));
    }
    if let Some(seconds) = config.window_seconds
        && !(seconds.is_finite() && seconds > 0.0)
    {
        return Err(BuildError::option(
            "window_seconds",
            "must be a positive number of seconds",
        ));
    }
    let quality = QualityQuery::parse(&config.quality_criteria).map_err(|e| {
        let at = criterion_position(&e);
        BuildError::option("quality_criteria", e.to_string()).at(at)
    })?;
    let subarray = Arc::new(StereoSubarray::new(
        &context.subarray,
        config.focal_length_choice,
    ));
    Ok(BuiltStage::new(Arc::new(Stereo {
        config,
        quality,
        subarray,
    })))
}

/// The stereo stage.
#[derive(Debug)]
pub struct Stereo {
    config: StereoConfig,
    quality: QualityQuery,
    subarray: Arc<StereoSubarray>,
}

fn quality_error(error: QualityError) -> StageError {
    StageError::InvalidOption {
        option: "quality_criteria".to_string(),
        message: error.to_string(),
        at: criterion_position(&error),
    }
}

/// Where in `quality_criteria` the error is: each criterion is a `[name, expression]` pair,
/// so the expression is item 1 of item `index`.
fn criterion_position(error: &QualityError) -> Option<ValuePosition> {
    error.source.character().map(|character| ValuePosition {
        path: vec![error.index, 1],
        character,
    })
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

/// Input columns of the array event, besides the ids and `tels_with_trigger`.
const ARRAY_F64: [&str; 3] = ["pointing_az", "array_pointing_alt", "array_pointing_az"];

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
            for column in [
                "obs_id",
                "event_id",
                "tel_id",
                "morphology_n_pixels",
                "tels_with_trigger",
            ] {
                check_column(
                    input,
                    column,
                    Level::Dl1Parameters.field(column).data_type(),
                )?;
            }
            for column in INPUT_F64.iter().chain(&ARRAY_F64) {
                check_column(input, column, &DataType::Float64)?;
            }
            self.quality.bind(input).map_err(quality_error)?;
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
        let quality = self.quality.clone();
        builder.spawn(async move {
            let window_time = config.window_seconds.map(Duration::from_secs_f64);
            let mut join = Join::new(config.window_events, window_time);
            join.counts.report(&ctx.metrics, 0);
            let mut rows = OutputRows::default();
            loop {
                let next = match join.next_deadline() {
                    Some(deadline) => tokio::time::timeout_at(deadline.into(), merged.next()).await,
                    None => Ok(merged.next().await),
                };
                let start = Instant::now();
                let (ready, timed_out) = match next {
                    Ok(Some(batch)) => {
                        let batch = batch?;
                        let selected = quality
                            .bind(&batch.schema())
                            .and_then(|q| q.passes(&batch))
                            .map_err(quality_error)?;
                        (join.add(&batch, &selected, with_truth, start)?, false)
                    }
                    Ok(None) => break,
                    Err(_elapsed) => (join.expire(start), true),
                };
                for event in ready {
                    rows.push(&config, &subarray, event)?;
                }
                std::mem::take(&mut join.counts).report(&ctx.metrics, join.pending.len());
                ctx.metrics.add_busy(start.elapsed());
                let due = rows.len() >= ctx.batch_size || (timed_out && rows.len() > 0);
                if due && sender.send(Ok(rows.take(&output)?)).await.is_err() {
                    return Ok(());
                }
            }
            for event in join.flush() {
                rows.push(&config, &subarray, event)?;
            }
            std::mem::take(&mut join.counts).report(&ctx.metrics, 0);
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
    /// Passes the quality criteria: used for the reconstruction.
    selected: bool,
    values: [f64; 8],
    pointing_az: f64,
    n_pixels: i64,
}

/// The telescope rows of one array event, with its truth, while the join waits for the
/// rest of its telescopes.
struct PendingEvent {
    obs_id: i32,
    event_id: i64,
    /// Position in the order in which the join began array events.
    seq: u64,
    /// When the join began the event.
    opened_at: Instant,
    /// Telescopes the join waits for (ids ascending).
    expected: Vec<u16>,
    /// Expected telescopes that have not arrived yet (ids ascending).
    missing: Vec<u16>,
    /// Made of rows that arrived after the event had been emitted.
    late: bool,
    telescopes: Vec<TelescopeRow>,
    truth: Option<([f64; 7], i32)>,
    /// Array pointing (alt, az), deg.
    array_pointing: (f64, f64),
}

/// The join's counters since they were last reported (see the module docs for the names).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct JoinCounts {
    events_complete: u64,
    events_incomplete: u64,
    missing_telescopes: u64,
    late_rows: u64,
    late_events: u64,
}

impl JoinCounts {
    /// Adds the counts to the stage's metrics, with the array events open now.
    fn report(self, metrics: &StageMetrics, open_events: usize) {
        metrics.add_count("events_complete", self.events_complete);
        metrics.add_count("events_incomplete", self.events_incomplete);
        metrics.add_count("missing_telescopes", self.missing_telescopes);
        metrics.add_count("late_rows", self.late_rows);
        metrics.add_count("late_events", self.late_events);
        metrics.max_count("peak_open_events", open_events as u64);
    }
}

/// Fewest emitted array events the join remembers to recognise late rows.
const MIN_REMEMBERED: usize = 4096;

/// Groups rows by array event; releases events when complete or out of the window.
struct Join {
    /// Most array events open at once.
    window: usize,
    /// Emitted array events remembered to recognise late rows.
    remembered: usize,
    /// Time after which an incomplete array event is emitted.
    window_time: Option<Duration>,
    pending: HashMap<(i32, i64), PendingEvent>,
    /// Pending events by `seq`.
    open: BTreeMap<u64, (i32, i64)>,
    next_seq: u64,
    /// The last `remembered` emitted array events, with their telescopes still missing.
    emitted: HashMap<(i32, i64), Vec<u16>>,
    emitted_order: VecDeque<(i32, i64)>,
    counts: JoinCounts,
}

impl Join {
    fn new(window: usize, window_time: Option<Duration>) -> Self {
        Self {
            window,
            remembered: window.saturating_mul(4).max(MIN_REMEMBERED),
            window_time,
            pending: HashMap::new(),
            open: BTreeMap::new(),
            next_seq: 0,
            emitted: HashMap::new(),
            emitted_order: VecDeque::new(),
            counts: JoinCounts::default(),
        }
    }

    /// Adds a batch of telescope rows received at `now`, `selected` where they pass the
    /// quality criteria; returns the array events it completed and those that fell out of
    /// the window.
    fn add(
        &mut self,
        batch: &RecordBatch,
        selected: &BooleanArray,
        with_truth: bool,
        now: Instant,
    ) -> Result<Vec<PendingEvent>, StageError> {
        let obs = primitive::<Int32Type>(batch, "obs_id")?;
        let events = primitive::<Int64Type>(batch, "event_id")?;
        let tels = primitive::<Int16Type>(batch, "tel_id")?;
        let n_pixels = primitive::<Int64Type>(batch, "morphology_n_pixels")?;
        let values = INPUT_F64
            .iter()
            .map(|c| primitive::<Float64Type>(batch, c))
            .collect::<Result<Vec<_>, _>>()?;
        let [az, array_alt, array_az] = ARRAY_F64.map(|c| primitive::<Float64Type>(batch, c));
        let (az, array_alt, array_az) = (az?, array_alt?, array_az?);
        let triggered = batch
            .column_by_name("tels_with_trigger")
            .and_then(|c| c.as_list_opt::<i32>())
            .ok_or_else(|| StageError::Data("tels_with_trigger is not a list".to_string()))?;
        let triggered_ids = triggered
            .values()
            .as_primitive_opt::<Int16Type>()
            .ok_or_else(|| StageError::Data("tels_with_trigger items are not int16".to_string()))?
            .values();
        let offsets = triggered.value_offsets();
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
        let mut ready = Vec::new();
        for row in 0..batch.num_rows() {
            let key = (obs.value(row), events.value(row));
            let tel_id = tels.value(row) as u16;
            let expected = triggered_ids
                .get(offsets[row] as usize..offsets[row + 1] as usize)
                .unwrap_or_default();
            let array_pointing = (array_alt.value(row), array_az.value(row));
            let event = self.event(key, expected, array_pointing, now);
            if let Ok(i) = event.missing.binary_search(&tel_id) {
                event.missing.remove(i);
            }
            event.telescopes.push(TelescopeRow {
                tel_id,
                selected: selected.value(row),
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
            if event.missing.is_empty() {
                ready.extend(self.release(key));
            }
        }
        while self.open.len() > self.window {
            let Some((_, &key)) = self.open.first_key_value() else {
                break;
            };
            ready.extend(self.release(key));
        }
        ready.extend(self.expire(now));
        Ok(ready)
    }

    /// The pending event of a new row of `key`, begun now if there is none: a late event
    /// (and a counted late row) when `key` was emitted already. `expected` (ids of the row's
    /// `tels_with_trigger`) joins the expected telescopes of an event that is not late.
    fn event(
        &mut self,
        key: (i32, i64),
        expected: &[i16],
        array_pointing: (f64, f64),
        now: Instant,
    ) -> &mut PendingEvent {
        let event = self.pending.entry(key).or_insert_with(|| {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.open.insert(seq, key);
            let (expected, late) = match self.emitted.get(&key) {
                Some(missing) => (missing.clone(), true),
                None => {
                    let mut ids: Vec<u16> = expected.iter().map(|&id| id as u16).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    (ids, false)
                }
            };
            PendingEvent {
                obs_id: key.0,
                event_id: key.1,
                seq,
                opened_at: now,
                missing: expected.clone(),
                expected,
                late,
                telescopes: Vec::new(),
                truth: None,
                array_pointing,
            }
        });
        if event.late {
            self.counts.late_rows += 1;
        } else {
            for &id in expected {
                let id = id as u16;
                let arrived = event.telescopes.iter().any(|t| t.tel_id == id);
                if let Err(i) = event.expected.binary_search(&id) {
                    event.expected.insert(i, id);
                    if !arrived && let Err(j) = event.missing.binary_search(&id) {
                        event.missing.insert(j, id);
                    }
                }
            }
        }
        event
    }

    /// Removes the pending event `key` for emission, counting it and remembering what it
    /// still misses for late rows.
    fn release(&mut self, key: (i32, i64)) -> Option<PendingEvent> {
        let event = self.pending.remove(&key)?;
        self.open.remove(&event.seq);
        if event.late {
            self.counts.late_events += 1;
        } else if event.missing.is_empty() {
            self.counts.events_complete += 1;
        } else {
            self.counts.events_incomplete += 1;
            self.counts.missing_telescopes += event.missing.len() as u64;
        }
        if self.emitted.insert(key, event.missing.clone()).is_none() {
            self.emitted_order.push_back(key);
            if self.emitted_order.len() > self.remembered
                && let Some(oldest) = self.emitted_order.pop_front()
            {
                self.emitted.remove(&oldest);
            }
        }
        Some(event)
    }

    /// When the oldest pending event's time window ends (none without a time window).
    fn next_deadline(&self) -> Option<Instant> {
        let window = self.window_time?;
        let (_, key) = self.open.first_key_value()?;
        Some(self.pending.get(key)?.opened_at + window)
    }

    /// Releases the events whose time window has ended at `now`.
    fn expire(&mut self, now: Instant) -> Vec<PendingEvent> {
        let mut ready = Vec::new();
        while let Some(deadline) = self.next_deadline() {
            if deadline > now {
                break;
            }
            let Some((_, &key)) = self.open.first_key_value() else {
                break;
            };
            ready.extend(self.release(key));
        }
        ready
    }

    /// Releases every pending event (end of the input), oldest first.
    fn flush(&mut self) -> Vec<PendingEvent> {
        let keys: Vec<(i32, i64)> = self.open.values().copied().collect();
        keys.into_iter()
            .filter_map(|key| self.release(key))
            .collect()
    }
}

/// Reconstructed array events waiting to fill an output batch.
#[derive(Default)]
struct OutputRows {
    ids: Vec<(i32, i64)>,
    results: Vec<cascade_reco::ReconstructedGeometry>,
    /// Every joined telescope of every array event (ids ascending within an event) with
    /// its impact distance (m), and the number of them per event.
    impacts: Vec<(i16, f64)>,
    impacts_per_event: Vec<usize>,
    reconstructor: Vec<&'static str>,
    truth: Vec<([f64; 7], i32)>,
    join: Vec<JoinFlags>,
}

/// How the join emitted an array event (the `dl2_shower` join columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct JoinFlags {
    n_tels_expected: usize,
    n_tels_joined: usize,
    n_tels_missing: usize,
    complete: bool,
    late: bool,
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
        let (alt_deg, az_deg) = event.array_pointing;
        let array_pointing = if alt_deg.is_finite() && az_deg.is_finite() {
            AltAz { alt_deg, az_deg }
        } else {
            telescopes.first().map_or(
                AltAz {
                    alt_deg: f64::NAN,
                    az_deg: f64::NAN,
                },
                |t| t.pointing,
            )
        };
        let array_event = cascade_reco::ArrayEvent {
            array_pointing,
            observation_level_m: subarray.observation_level_m,
            telescopes: &telescopes,
        };
        let selected: Vec<u16> = event
            .telescopes
            .iter()
            .filter(|t| t.selected)
            .map(|t| t.tel_id)
            .collect();
        let result = config
            .reconstructor
            .reconstruct_selected(&array_event, |t| selected.contains(&t.tel_id))
            .map_err(|e| {
                StageError::Data(format!(
                    "array event ({}, {}): {e}",
                    event.obs_id, event.event_id
                ))
            })?;
        // ctapipe `Reconstructor._store_impact_parameter`: every telescope of the event.
        let impact_distance = result.impact_distance_of();
        self.impacts.extend(event.telescopes.iter().map(|t| {
            let position = subarray.position_m(t.tel_id);
            (t.tel_id as i16, position.map_or(f64::NAN, &impact_distance))
        }));
        self.impacts_per_event.push(event.telescopes.len());
        self.ids.push((event.obs_id, event.event_id));
        self.results.push(result);
        self.reconstructor.push(config.reconstructor.name());
        self.truth.push(event.truth.unwrap_or(([f64::NAN; 7], -1)));
        self.join.push(JoinFlags {
            n_tels_expected: event.expected.len(),
            n_tels_joined: event.telescopes.len(),
            n_tels_missing: event.missing.len(),
            complete: event.missing.is_empty(),
            late: event.late,
        });
        Ok(())
    }

    fn take(&mut self, schema: &SchemaRef) -> Result<RecordBatch, StageError> {
        let results = std::mem::take(&mut self.results);
        let impacts = std::mem::take(&mut self.impacts);
        let impacts_per_event = std::mem::take(&mut self.impacts_per_event);
        let ids = std::mem::take(&mut self.ids);
        let truth = std::mem::take(&mut self.truth);
        let reconstructor = std::mem::take(&mut self.reconstructor);
        let join = std::mem::take(&mut self.join);
        let count = |f: fn(&JoinFlags) -> usize| {
            Arc::new(Int16Array::from_iter_values(
                join.iter().map(|j| i16::try_from(f(j)).unwrap_or(i16::MAX)),
            )) as ArrayRef
        };
        let flag = |f: fn(&JoinFlags) -> bool| {
            Arc::new(BooleanArray::from_iter(join.iter().map(|j| Some(f(j))))) as ArrayRef
        };
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
        let used = Int16Array::from_iter_values(
            results
                .iter()
                .flat_map(|r| r.telescopes.iter().map(|&t| t as i16)),
        );
        let used_per_event = results.iter().map(|r| r.telescopes.len());
        by_name.insert(
            "telescopes",
            list_column("telescopes", used_per_event, Arc::new(used))?,
        );
        let joined = Int16Array::from_iter_values(impacts.iter().map(|&(t, _)| t));
        let distances = Float64Array::from_iter_values(impacts.iter().map(|&(_, d)| d));
        for (name, values) in [
            ("joined_telescopes", Arc::new(joined) as ArrayRef),
            ("tel_impact_distance", Arc::new(distances)),
        ] {
            let lengths = impacts_per_event.iter().copied();
            by_name.insert(name, list_column(name, lengths, values)?);
        }
        by_name.insert("reconstructor", Arc::new(StringArray::from(reconstructor)));
        by_name.insert("n_tels_expected", count(|j| j.n_tels_expected));
        by_name.insert("n_tels_joined", count(|j| j.n_tels_joined));
        by_name.insert("n_tels_missing", count(|j| j.n_tels_missing));
        by_name.insert("join_complete", flag(|j| j.complete));
        by_name.insert("join_late", flag(|j| j.late));
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

/// The `dl2_shower` list column `name`: `values` of every row, `lengths` per row.
fn list_column(
    name: &str,
    lengths: impl Iterator<Item = usize>,
    values: ArrayRef,
) -> Result<ArrayRef, StageError> {
    let DataType::List(item) = Level::Dl2Shower.field(name).data_type().clone() else {
        return Err(StageError::Data(format!("{name} is not a list column")));
    };
    let offsets = OffsetBuffer::from_lengths(lengths);
    Ok(Arc::new(ListArray::try_new(item, offsets, values, None)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A telescope row: (event_id, tel_id, the event's tels_with_trigger).
    type Row<'a> = (i64, i16, &'a [i16]);

    /// A batch of DL1 parameter rows.
    fn rows(keys: &[Row<'_>]) -> RecordBatch {
        let n = keys.len();
        let triggered = crate::simtel_source::tel_id_lists(
            &Level::Dl1Parameters.field("tels_with_trigger"),
            keys.iter().flat_map(|k| k.2.iter().copied()).collect(),
            &keys.iter().map(|k| k.2.len()).collect::<Vec<_>>(),
        )
        .unwrap();
        let mut fields = vec![
            Level::Dl1Parameters.field("obs_id"),
            Level::Dl1Parameters.field("event_id"),
            Level::Dl1Parameters.field("tel_id"),
            Level::Dl1Parameters.field("morphology_n_pixels"),
            Level::Dl1Parameters.field("tels_with_trigger"),
        ];
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(vec![1; n])),
            Arc::new(Int64Array::from_iter_values(keys.iter().map(|k| k.0))),
            Arc::new(Int16Array::from_iter_values(keys.iter().map(|k| k.1))),
            Arc::new(Int64Array::from(vec![10; n])),
            triggered,
        ];
        for name in INPUT_F64.iter().chain(&ARRAY_F64) {
            fields.push(Level::Dl1Parameters.field(name));
            columns.push(Arc::new(Float64Array::from(vec![1.0; n])));
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    /// Every row passes the quality criteria.
    fn all_selected(n: usize) -> BooleanArray {
        BooleanArray::from(vec![true; n])
    }

    /// An emitted array event as (event_id, telescopes, missing, late).
    type Emitted = (i64, Vec<u16>, Vec<u16>, bool);

    fn summary(event: &PendingEvent) -> Emitted {
        let mut tels: Vec<u16> = event.telescopes.iter().map(|t| t.tel_id).collect();
        tels.sort();
        (event.event_id, tels, event.missing.clone(), event.late)
    }

    /// Feeds the batches; returns what each batch released, then what the end released.
    fn drain(join: &mut Join, batches: &[Vec<Row<'_>>]) -> (Vec<Vec<Emitted>>, Vec<Emitted>) {
        let now = Instant::now();
        let mut per_batch = Vec::new();
        for batch in batches {
            let released = join
                .add(&rows(batch), &all_selected(batch.len()), false, now)
                .unwrap();
            assert!(
                join.pending.len() <= join.window && join.emitted.len() <= join.remembered,
                "the join holds more than its window"
            );
            per_batch.push(released.iter().map(summary).collect());
        }
        let end = join.flush().iter().map(summary).collect();
        (per_batch, end)
    }

    const BOTH: &[i16] = &[1, 5];

    #[test]
    fn interleaved_and_shuffled_streams_join_into_whole_events_as_soon_as_complete() {
        // Two telescope types in separate batches, events shuffled inside each batch;
        // event 3's trigger says telescope 5 took part but its row never comes; event 6
        // only triggered telescope 1.
        let lst = vec![
            (2, 1, BOTH),
            (1, 1, BOTH),
            (3, 1, BOTH),
            (6, 1, &[1]),
            (4, 1, BOTH),
        ];
        let mst = vec![(4, 5, BOTH), (1, 5, BOTH), (2, 5, BOTH)];
        let mut join = Join::new(8, None);
        let (per_batch, end) = drain(&mut join, &[lst, mst]);
        let whole = |e: i64| (e, vec![1, 5], vec![], false);
        assert_eq!(per_batch[0], vec![(6, vec![1], vec![], false)]);
        assert_eq!(per_batch[1], vec![whole(4), whole(1), whole(2)]);
        assert_eq!(end, vec![(3, vec![1], vec![5], false)]);
        let counts = join.counts;
        assert_eq!(
            (
                counts.events_complete,
                counts.events_incomplete,
                counts.missing_telescopes,
                counts.late_rows
            ),
            (4, 1, 1, 0)
        );
    }

    #[test]
    fn late_rows_are_flagged_and_form_a_partial_event_never_dropped() {
        // Window of 2 open events: events 1 and 2 are emitted without telescope 5 when
        // events 3 and 4 begin.
        let lst: Vec<Row<'_>> = (1..=4).map(|e| (e, 1, BOTH)).collect();
        let mst = vec![(1, 5, BOTH)];
        let mut join = Join::new(2, None);
        let (per_batch, end) = drain(&mut join, &[lst, mst]);
        let without_5 = |e: i64| (e, vec![1], vec![5], false);
        assert_eq!(per_batch[0], vec![without_5(1), without_5(2)]);
        // The late row completes what event 1 missed: emitted at once, flagged late.
        assert_eq!(per_batch[1], vec![(1, vec![5], vec![], true)]);
        assert_eq!(end, vec![without_5(3), without_5(4)]);
        let counts = join.counts;
        assert_eq!(
            (
                counts.events_complete,
                counts.events_incomplete,
                counts.missing_telescopes,
                counts.late_rows,
                counts.late_events
            ),
            (0, 4, 4, 1, 1)
        );
    }

    #[test]
    fn late_event_waits_for_every_telescope_still_missing() {
        let all: &[i16] = &[1, 2, 3];
        let batches = vec![
            vec![(1, 1, all), (2, 1, all)], // window 1: event 1 is emitted missing 2 and 3
            vec![(1, 2, all)],              // late, waits for telescope 3
            vec![(1, 3, all)],              // completes the late event
        ];
        let (per_batch, end) = drain(&mut Join::new(1, None), &batches);
        assert_eq!(per_batch[0], vec![(1, vec![1], vec![2, 3], false)]);
        assert_eq!(per_batch[1], vec![(2, vec![1], vec![2, 3], false)]);
        assert_eq!(per_batch[2], vec![(1, vec![2, 3], vec![], true)]);
        assert!(end.is_empty(), "{end:?}");
    }

    #[test]
    fn time_window_releases_incomplete_events_after_their_deadline() {
        let start = Instant::now();
        let mut join = Join::new(100, Some(Duration::from_secs(10)));
        assert_eq!(join.next_deadline(), None);
        let released = join
            .add(
                &rows(&[(1, 1, BOTH), (2, 1, BOTH)]),
                &all_selected(2),
                false,
                start,
            )
            .unwrap();
        assert!(released.is_empty());
        let later = start + Duration::from_secs(4);
        assert!(
            join.add(&rows(&[(3, 1, BOTH)]), &all_selected(1), false, later)
                .unwrap()
                .is_empty()
        );
        assert_eq!(join.next_deadline(), Some(start + Duration::from_secs(10)));
        assert!(join.expire(start + Duration::from_secs(9)).is_empty());
        let expired: Vec<i64> = join
            .expire(start + Duration::from_secs(10))
            .iter()
            .map(|e| e.event_id)
            .collect();
        assert_eq!(expired, vec![1, 2]);
        assert_eq!(join.next_deadline(), Some(later + Duration::from_secs(10)));
        assert_eq!((join.counts.events_incomplete, join.pending.len()), (2, 1));
    }

    #[test]
    fn rows_failing_the_quality_criteria_are_joined_but_not_selected() {
        let mut join = Join::new(8, None);
        let selected = BooleanArray::from(vec![true, false]);
        let batch = rows(&[(1, 1, BOTH), (1, 5, BOTH)]);
        let released = join.add(&batch, &selected, false, Instant::now()).unwrap();
        assert_eq!(released.len(), 1, "both expected telescopes arrived");
        let flags: Vec<(u16, bool)> = released[0]
            .telescopes
            .iter()
            .map(|t| (t.tel_id, t.selected))
            .collect();
        assert_eq!(flags, [(1, true), (5, false)]);
    }

    #[test]
    fn quality_criteria_are_checked_against_the_input_schema() {
        let stage = |criteria: Vec<QualityCriterion>| Stereo {
            config: StereoConfig::default(),
            quality: QualityQuery::parse(&criteria).unwrap(),
            subarray: Arc::default(),
        };
        let input = rows(&[]).schema();
        assert!(
            stage(ctapipe_stereo_quality_criteria())
                .output_schema(&[Arc::clone(&input)])
                .is_ok()
        );
        let error = stage(vec![QualityCriterion::new(
            "contained",
            "leakage_intensity_width_2 < 0.2 AND leakage_pixels_width_2 < 0.1",
        )])
        .output_schema(&[input])
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "option `quality_criteria`: criterion 1 `contained` (`leakage_intensity_width_2 < 0.2 \
             AND leakage_pixels_width_2 < 0.1`): unknown column `leakage_pixels_width_2` at \
             character 37; did you mean `leakage_intensity_width_2`?"
        );
    }

    #[tokio::test]
    async fn time_window_emits_an_incomplete_event_while_the_input_stays_open() {
        use datafusion_physical_plan::stream::RecordBatchStreamAdapter;

        let stage = Stereo {
            config: StereoConfig {
                window_seconds: Some(0.05),
                ..StereoConfig::default()
            },
            quality: QualityQuery::parse(&ctapipe_stereo_quality_criteria()).unwrap(),
            subarray: Arc::new(StereoSubarray::new(
                &crate::toy::toy_array().subarray,
                FocalLengthChoice::Equivalent,
            )),
        };
        let batch = rows(&[(1, 1, BOTH)]);
        let (sender, receiver) = futures::channel::mpsc::unbounded();
        sender.unbounded_send(Ok(batch.clone())).unwrap();
        let input = RecordBatchStreamAdapter::new(batch.schema(), receiver);
        let metrics = Arc::new(StageMetrics::default());
        let ctx = StageContext {
            name: "stereo".to_string(),
            metrics: Arc::clone(&metrics),
            batch_size: 64,
        };
        let mut output = stage.execute(vec![Box::pin(input)], ctx).unwrap();
        // Telescope 5 never comes and the input stays open: the time window emits event 1.
        let emitted = tokio::time::timeout(Duration::from_secs(10), output.next())
            .await
            .expect("emitted while the input is open")
            .unwrap()
            .unwrap();
        let column = |name: &str| Arc::clone(emitted.column_by_name(name).unwrap());
        assert_eq!(emitted.num_rows(), 1);
        assert_eq!(column("event_id").as_primitive::<Int64Type>().value(0), 1);
        let missing = column("n_tels_missing");
        assert_eq!(missing.as_primitive::<Int16Type>().value(0), 1);
        assert!(!column("join_complete").as_boolean().value(0));
        drop(sender);
        assert!(output.next().await.is_none());
        let counters = metrics.snapshot().counters;
        assert_eq!(
            (
                counters["events_incomplete"],
                counters["missing_telescopes"]
            ),
            (1, 1)
        );
    }

    #[test]
    fn memory_stays_bounded_on_a_long_stream_with_missing_and_delayed_telescopes() {
        // 10,000 array events of telescopes 1 and 2; telescope 2 lags 40 events behind in
        // its own stream and never comes for every tenth event.
        let window = 100;
        let mut join = Join::new(window, None);
        let now = Instant::now();
        let (mut complete, mut incomplete, mut late, mut peak) = (0, 0, 0, 0);
        for chunk in 0..250i64 {
            let ids = chunk * 40..(chunk + 1) * 40;
            let first: Vec<Row<'_>> = ids.clone().map(|e| (e, 1, &[1, 2][..])).collect();
            let second: Vec<Row<'_>> = ids
                .map(|e| e - 40)
                .filter(|e| *e >= 0 && e % 10 != 0)
                .map(|e| (e, 2, &[1, 2][..]))
                .collect();
            for batch in [first, second] {
                for event in join
                    .add(&rows(&batch), &all_selected(batch.len()), false, now)
                    .unwrap()
                {
                    if event.late {
                        late += 1;
                    } else if event.missing.is_empty() {
                        complete += 1;
                    } else {
                        incomplete += 1;
                    }
                }
                peak = peak.max(join.pending.len());
                assert!(join.pending.len() <= window && join.open.len() <= window);
                assert!(join.emitted.len() <= MIN_REMEMBERED);
                assert_eq!(join.emitted.len(), join.emitted_order.len());
            }
        }
        let tail = join.flush();
        incomplete += tail.len();
        assert_eq!(complete + incomplete, 10_000);
        assert_eq!(
            incomplete,
            1_000 + 36,
            "every tenth, and the last 40 without their lag"
        );
        assert_eq!((late, join.counts.late_rows), (0, 0));
        assert!(peak > 40, "the lag keeps events open: peak {peak}");
    }
}
