//! `kind = "simtel"`: reads sim_telarray (EventIO) files, plain, gzip or zstd
//! (`cascade_simtel`), and emits R0 telescope events batched by telescope type, with the
//! simulated-shower truth of their array event, the array pointing of the file's run header
//! and the telescopes of the array event it emits (`tels_with_trigger`, which the stereo
//! join waits for). The instrument, each telescope's readout
//! and its pixel calibration (pedestals, dc-to-pe, time offsets, HV-disabled pixels) come
//! from the first file and are handed to the downstream stages; every later file must have
//! the same (selected) telescopes, readouts and pixel calibration, or the run stops with an
//! error naming the file and what differs (files of different arrays or calibrations are
//! processed in separate runs, as `ctapipe-process` processes one file per run).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, Int8Array, Int16Array, Int32Array, Int64Array, ListArray, RecordBatch,
    UInt16Array,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, FieldRef, SchemaRef};
use cascade_calib::TelescopeCalibration;
use cascade_calib::r1::broken_pixels_from_ids;
use cascade_instrument::{ReadoutDescription, SubarrayDescription};
use cascade_pipeline::{
    BuildContext, BuildError, BuiltStage, PerTelescope, TelescopeSelector, TypedFactory,
};
use cascade_runtime::{
    SendableRecordBatchStream, Stage, StageContext, StageError, StageMetrics, StageRole,
};
use cascade_schema::Level;
use cascade_simtel::objects::setup::RunHeader;
use cascade_simtel::{ArrayEvent, SimtelReader};
use ndarray::Array2;

use crate::blocking_source::blocking_source;
use crate::calibration_board::{CalibrationBoard, SHARED_NAME};
use crate::columns::uniform_list;

cascade_pipeline::stage_config! {
    /// Options of the sim_telarray source.
    pub struct SimtelConfig {
        /// Input files: paths or glob patterns (`data/*.simtel.zst`), read in order.
        /// `cascade run --input PATH...` replaces them. All must describe the first file's
        /// array (the selected telescopes, their readout and pixel calibration) and hold
        /// different runs (obs_id): a file that does not stops the run with an error. The
        /// setup objects at the start of every file are read when the pipeline is built,
        /// so `validate` checks the whole list (tens of ms per file).
        paths: Vec<String> = Vec::new(),
        /// Stop after this many array events with telescope data (all when absent).
        max_events: Option<u64> = None,
        /// Keep only these telescope ids (all when empty); each must be in the array.
        tel_ids: Vec<u16> = Vec::new(),
        /// Keep only telescope types matching one of these globs, e.g. ["LST*"] (all when
        /// empty); each must match a telescope of the array.
        tel_types: Vec<String> = Vec::new(),
    }
}

/// The simtel source's entry in the stage registry.
pub fn factory() -> TypedFactory<SimtelConfig> {
    TypedFactory::new(
        "simtel",
        StageRole::Source,
        "Reads sim_telarray files (EventIO; plain, gzip or zstd) and emits R0 telescope events \
         (raw ADC waveforms of every gain) batched by telescope type, with simulated truth.",
        build,
    )
    .same_for_every_telescope()
}

fn build(config: PerTelescope<SimtelConfig>, _: &BuildContext) -> Result<BuiltStage, BuildError> {
    let config = config.default_value().clone();
    let files = expand(&config.paths)?;
    let reader =
        SimtelReader::open(&files[0]).map_err(|e| BuildError::option("paths", e.to_string()))?;
    let selectors = config
        .tel_types
        .iter()
        .map(|p| TelescopeSelector::parse(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BuildError::option("tel_types", e))?;
    check_selection(&config, &selectors, reader.subarray(), &files[0])?;
    let instrument = Instrument::selected(&reader, &config, &selectors);
    // Every file's setup objects, checked before anything runs (and by `validate`); the
    // read checks them again, and the calibrations, as it goes.
    let mut inputs = InputCheck::new(&files[0], &instrument, &config, &selectors);
    inputs
        .check(&files[0], &reader)
        .map_err(|message| BuildError::option("paths", message))?;
    for file in &files[1..] {
        let reader =
            SimtelReader::open(file).map_err(|e| BuildError::option("paths", e.to_string()))?;
        inputs
            .check(file, &reader)
            .map_err(|message| BuildError::option("paths", message))?;
    }
    let subarray = Arc::new(instrument.subarray.clone());
    let readout = instrument.readout.clone();
    let board = Arc::new(CalibrationBoard::default());
    let stage = SimtelSource {
        config,
        files,
        selectors,
        instrument: Arc::new(instrument),
        board: Arc::clone(&board),
    };
    let shared = BTreeMap::from([(SHARED_NAME, board as cascade_pipeline::SharedObject)]);
    Ok(BuiltStage {
        stage: Arc::new(stage),
        subarray: Some(subarray),
        readout,
        shared,
    })
}

/// Fails when `tel_ids` names a telescope that `file`'s array lacks, or a pattern of
/// `tel_types` matches none of its telescopes: such a run would read nothing of them.
fn check_selection(
    config: &SimtelConfig,
    selectors: &[TelescopeSelector],
    subarray: &SubarrayDescription,
    file: &str,
) -> Result<(), BuildError> {
    if let Some(missing) = config
        .tel_ids
        .iter()
        .find(|id| subarray.telescope(**id).is_none())
    {
        let ids: Vec<u16> = subarray.tel_ids().collect();
        return Err(BuildError::option(
            "tel_ids",
            format!(
                "the array of `{file}` has no telescope {missing} (its telescopes: {})",
                id_ranges(&ids)
            ),
        ));
    }
    for (pattern, selector) in config.tel_types.iter().zip(selectors) {
        if !subarray
            .telescopes
            .iter()
            .any(|(&id, t)| selector.matches(id, &t.name))
        {
            let mut types: Vec<&str> = subarray
                .telescopes
                .values()
                .map(|t| t.name.as_str())
                .collect();
            types.sort_unstable();
            types.dedup();
            return Err(BuildError::option(
                "tel_types",
                format!(
                    "`{pattern}` matches no telescope of `{file}` (its types: {})",
                    types.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The telescopes a source reads and how they sample their waveforms, as one file
/// describes them.
#[derive(Debug)]
struct Instrument {
    /// The file's array, without the telescopes that `tel_ids` and `tel_types` leave out.
    subarray: SubarrayDescription,
    /// The readout of each of those telescopes.
    readout: BTreeMap<u16, Arc<ReadoutDescription>>,
}

impl Instrument {
    /// The instrument of the file `reader` reads, as selected by `config`.
    fn selected(
        reader: &SimtelReader,
        config: &SimtelConfig,
        selectors: &[TelescopeSelector],
    ) -> Self {
        let mut subarray: SubarrayDescription = reader.subarray().clone();
        subarray.telescopes.retain(|&id, t| {
            (config.tel_ids.is_empty() || config.tel_ids.contains(&id))
                && (selectors.is_empty() || selectors.iter().any(|s| s.matches(id, &t.name)))
        });
        subarray
            .positions_m
            .retain(|id, _| subarray.telescopes.contains_key(id));
        let readout = subarray
            .telescopes
            .keys()
            .filter_map(|&tel_id| {
                let c = reader.calibration(tel_id)?;
                let readout = ReadoutDescription {
                    sampling_rate_ghz: c.sampling_rate_ghz,
                    n_samples: c.n_samples,
                    reference_pulse_shape: c.reference_pulse_shape.clone(),
                    reference_pulse_sample_width_ns: c.reference_pulse_sample_width_ns,
                    // Pedestals and dc-to-pe arrive with the events: see `CalibrationBoard`.
                    calibration: None,
                };
                Some((tel_id, Arc::new(readout)))
            })
            .collect();
        Self { subarray, readout }
    }

    /// What differs between `self` and `other` (for an error message), or `None`.
    fn difference(&self, other: &Instrument) -> Option<String> {
        let ids = |i: &Instrument| i.subarray.tel_ids().collect::<Vec<_>>();
        if ids(self) != ids(other) {
            return Some(format!(
                "telescopes {} instead of {}",
                id_ranges(&ids(other)),
                id_ranges(&ids(self))
            ));
        }
        for (id, telescope) in &self.subarray.telescopes {
            let theirs = other.subarray.telescope(*id).map(|t| t.as_ref());
            if !same(&theirs, &Some(telescope.as_ref())) {
                return Some(format!("telescope {id} is not the same telescope"));
            }
            if !same(
                &other.subarray.positions_m.get(id),
                &self.subarray.positions_m.get(id),
            ) {
                return Some(format!("telescope {id} is at another position"));
            }
            let readout = |i: &Instrument| i.readout.get(id).map(|r| r.as_ref().clone());
            if !same(&readout(other), &readout(self)) {
                return Some(format!("telescope {id} samples its waveforms otherwise"));
            }
        }
        (!same(&self.subarray, &other.subarray))
            .then(|| "the array is described otherwise".to_string())
    }
}

/// The checks of each input file against the first: the same instrument (as selected),
/// and a run of its own.
struct InputCheck<'a> {
    first: &'a str,
    instrument: &'a Instrument,
    config: &'a SimtelConfig,
    selectors: &'a [TelescopeSelector],
    /// The files checked so far, by run number.
    runs: BTreeMap<i32, String>,
}

impl<'a> InputCheck<'a> {
    fn new(
        first: &'a str,
        instrument: &'a Instrument,
        config: &'a SimtelConfig,
        selectors: &'a [TelescopeSelector],
    ) -> Self {
        Self {
            first,
            instrument,
            config,
            selectors,
            runs: BTreeMap::new(),
        }
    }

    /// Checks `file`, open in `reader`; the files must be checked in order, the first too.
    fn check(&mut self, file: &str, reader: &SimtelReader) -> Result<(), String> {
        if !self.runs.is_empty() {
            let instrument = Instrument::selected(reader, self.config, self.selectors);
            if let Some(difference) = self.instrument.difference(&instrument) {
                return Err(differs_from_first(file, self.first, &difference));
            }
        }
        // Events are identified by (obs_id = run, event_id): two files of one run would
        // give rows that cannot be told apart, and the stereo join would mix them.
        let run = reader.run_header().run;
        if let Some(earlier) = self.runs.insert(run, file.to_string()) {
            return Err(format!(
                "`{file}` holds run {run}, as `{earlier}` does (the same file twice, or a \
                 copy): its events would have the same obs_id and event ids"
            ));
        }
        Ok(())
    }
}

/// The error for a `file` whose instrument or calibration differs from the first file's.
fn differs_from_first(file: &str, first: &str, difference: &str) -> String {
    format!(
        "`{file}`: its instrument differs from that of the first file, `{first}`: \
         {difference}; one run processes the files of one array and one calibration, so run \
         these files separately"
    )
}

/// Expands the paths and globs of `paths`, in order; every entry must match a file.
fn expand(paths: &[String]) -> Result<Vec<String>, BuildError> {
    if paths.is_empty() {
        return Err(BuildError::option(
            "paths",
            "no input files: set `paths` or use --input",
        ));
    }
    let mut files = Vec::new();
    for pattern in paths {
        let matches: Vec<String> = glob::glob(pattern)
            .map_err(|e| BuildError::option("paths", format!("`{pattern}`: {e}")))?
            .filter_map(Result::ok)
            .map(|p| p.display().to_string())
            .collect();
        if matches.is_empty() {
            let relative = if std::path::Path::new(pattern).is_relative() {
                std::env::current_dir()
                    .map(|d| format!(" (relative to the current directory, {})", d.display()))
                    .unwrap_or_default()
            } else {
                String::new()
            };
            return Err(BuildError::option(
                "paths",
                format!("`{pattern}` matches no file{relative}"),
            ));
        }
        files.extend(matches);
    }
    Ok(files)
}

/// The sim_telarray source stage.
#[derive(Debug)]
pub struct SimtelSource {
    config: SimtelConfig,
    files: Vec<String>,
    /// The parsed `tel_types`.
    selectors: Vec<TelescopeSelector>,
    /// The instrument of the first file, which every file must share.
    instrument: Arc<Instrument>,
    board: Arc<CalibrationBoard>,
}

impl SimtelSource {
    /// Reads every file, calling `emit` with each batch; stops when `emit` returns false.
    fn read(
        &self,
        batch_size: usize,
        metrics: &StageMetrics,
        mut emit: impl FnMut(RecordBatch) -> bool,
    ) -> Result<(), StageError> {
        // progress: bytes of the files as stored, the finished ones and the current one
        let sizes: Vec<u64> = self
            .files
            .iter()
            .map(|file| std::fs::metadata(file).map_or(0, |m| m.len()))
            .collect();
        let total: u64 = sizes.iter().sum();
        let schema = Level::R0.schema();
        let mut buffers: BTreeMap<(String, usize, usize), R0Buffer> = BTreeMap::new();
        let mut emitted = 0u64;
        let subarray = &self.instrument.subarray;
        // The file's calibration object last seen per telescope: a new one is compared
        // with the published calibration (published by the first).
        let mut seen: BTreeMap<u16, Arc<cascade_simtel::TelescopeCalibration>> = BTreeMap::new();
        let mut inputs = InputCheck::new(
            &self.files[0],
            &self.instrument,
            &self.config,
            &self.selectors,
        );
        'files: for (index, file) in self.files.iter().enumerate() {
            // The R0 schema has no use for sim_telarray's pixel timing.
            let mut reader = SimtelReader::open(file)
                .map_err(read_error)?
                .with_pixel_timing(false);
            let finished: u64 = sizes[..index].iter().sum();
            let progress = reader.file_progress();
            inputs.check(file, &reader).map_err(StageError::Data)?;
            let array_pointing = array_pointing_deg(reader.run_header());
            while let Some(event) = reader.next_event().map_err(read_error)? {
                if self.config.max_events.is_some_and(|max| emitted >= max) {
                    break 'files;
                }
                metrics.set_input_progress(finished + progress.bytes_read(), total);
                let mut tels_with_trigger: Vec<i16> = event
                    .telescopes
                    .iter()
                    .filter(|t| subarray.telescope(t.tel_id).is_some())
                    .map(|t| t.tel_id as i16)
                    .collect();
                tels_with_trigger.sort_unstable();
                tels_with_trigger.dedup();
                let array = ArrayContext {
                    pointing_deg: array_pointing,
                    tels_with_trigger: &tels_with_trigger,
                };
                for telescope in &event.telescopes {
                    let Some(description) = subarray.telescope(telescope.tel_id) else {
                        continue;
                    };
                    if let Some(calibration) = &telescope.calibration {
                        let new = seen
                            .get(&telescope.tel_id)
                            .is_none_or(|last| !Arc::ptr_eq(last, calibration));
                        if new {
                            seen.insert(telescope.tel_id, Arc::clone(calibration));
                            self.publish_or_compare(file, telescope.tel_id, calibration)?;
                        }
                    }
                    let key = (
                        description.name.clone(),
                        telescope.n_gains,
                        telescope.n_samples,
                    );
                    let buffer = buffers.entry(key).or_default();
                    buffer.push(&event, &array, telescope);
                    if buffer.len() >= batch_size && !emit(buffer.take(&schema)?) {
                        return Ok(());
                    }
                }
                emitted += u64::from(!tels_with_trigger.is_empty());
            }
        }
        for buffer in buffers.values_mut() {
            if buffer.len() > 0 && !emit(buffer.take(&schema)?) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Publishes the first calibration of telescope `tel_id`; a later one must be the same.
    fn publish_or_compare(
        &self,
        file: &str,
        tel_id: u16,
        calibration: &cascade_simtel::TelescopeCalibration,
    ) -> Result<(), StageError> {
        let calibration = pixel_calibration(calibration)?;
        match self.board.get(tel_id) {
            None => self.board.publish(tel_id, Arc::new(calibration)),
            Some(published) if same_calibration(&published, &calibration) => {}
            Some(_) => {
                return Err(StageError::Data(differs_from_first(
                    file,
                    &self.files[0],
                    &format!(
                        "the pixel calibration (pedestals, dc-to-pe, time offsets or \
                         disabled pixels) of telescope {tel_id} differs"
                    ),
                )));
            }
        }
        Ok(())
    }
}

impl Stage for SimtelSource {
    fn kind(&self) -> &'static str {
        "simtel"
    }

    fn role(&self) -> StageRole {
        StageRole::Source
    }

    fn output_schema(&self, _: &[SchemaRef]) -> Result<SchemaRef, StageError> {
        Ok(Level::R0.schema())
    }

    fn execute(
        &self,
        _: Vec<SendableRecordBatchStream>,
        ctx: StageContext,
    ) -> Result<SendableRecordBatchStream, StageError> {
        let source = SimtelSource {
            config: self.config.clone(),
            files: self.files.clone(),
            selectors: self.selectors.clone(),
            instrument: Arc::clone(&self.instrument),
            board: Arc::clone(&self.board),
        };
        let metrics = Arc::clone(&ctx.metrics);
        Ok(blocking_source(
            Level::R0.schema(),
            ctx,
            move |batch_size, emit| source.read(batch_size, &metrics, emit),
        ))
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or_default()
    }
}

/// The array pointing (alt, az) in deg from a run header, as ctapipe's `SimTelEventSource`
/// fills `event.pointing.array_altitude/azimuth`: the header direction (az, alt in rad)
/// when the run tracks in alt/az (`tracking_mode` 0); NaN for ra/dec tracking. The header
/// holds float32 radians and ctapipe converts them to degrees in float32, which gives
/// exactly 90 deg for float32(pi/2) and 180 deg for float32(pi): so do we.
fn array_pointing_deg(header: &RunHeader) -> (f64, f64) {
    if header.tracking_mode != 0 {
        return (f64::NAN, f64::NAN);
    }
    let [az, alt] = header.direction_rad;
    (f64::from(alt.to_degrees()), f64::from(az.to_degrees()))
}

/// What every telescope row of one array event shares.
struct ArrayContext<'a> {
    /// Array pointing (alt, az), deg.
    pointing_deg: (f64, f64),
    /// The telescopes the source emits for this event, ids ascending.
    tels_with_trigger: &'a [i16],
}

/// The calibrate stage's form of a telescope's calibration from the file.
fn pixel_calibration(
    c: &cascade_simtel::TelescopeCalibration,
) -> Result<TelescopeCalibration, StageError> {
    let shape = (c.n_gains, c.n_pixels);
    let array = |values: &[f32], what: &str| {
        Array2::from_shape_vec(shape, values.to_vec()).map_err(|_| {
            StageError::Data(format!(
                "telescope {}: {what} has {} values for {} gains x {} pixels",
                c.tel_id,
                values.len(),
                c.n_gains,
                c.n_pixels
            ))
        })
    };
    Ok(TelescopeCalibration {
        pedestal_per_sample: array(&c.pedestal_per_sample, "pedestal")?,
        dc_to_pe: array(&c.dc_to_pe, "dc_to_pe")?,
        time_shift_ns: if c.time_calibration_ns.is_empty() {
            None
        } else {
            Some(array(&c.time_calibration_ns, "time calibration")?)
        },
        broken_pixels: broken_pixels_from_ids(c.n_pixels, &c.hv_disabled_pixels),
    })
}

/// R0 telescope events of one (type, gains, samples) waiting to fill a batch.
#[derive(Default)]
struct R0Buffer {
    obs_ids: Vec<i32>,
    event_ids: Vec<i64>,
    tel_ids: Vec<i16>,
    n_gains: Vec<i8>,
    n_samples: Vec<i16>,
    waveforms: Vec<u16>,
    row_len: usize,
    pointing: Vec<(f64, f64)>,
    array_pointing: Vec<(f64, f64)>,
    tels_with_trigger: Vec<i16>,
    tels_lengths: Vec<usize>,
    truth: Vec<[f64; 7]>,
    primary: Vec<i32>,
}

impl R0Buffer {
    fn len(&self) -> usize {
        self.event_ids.len()
    }

    fn push(
        &mut self,
        event: &ArrayEvent,
        array: &ArrayContext<'_>,
        telescope: &cascade_simtel::TelescopeEvent,
    ) {
        self.obs_ids.push(event.obs_id as i32);
        self.event_ids.push(event.event_id);
        self.tel_ids.push(telescope.tel_id as i16);
        self.n_gains.push(telescope.n_gains as i8);
        self.n_samples.push(telescope.n_samples as i16);
        self.row_len = telescope.waveforms.len();
        self.waveforms.extend_from_slice(&telescope.waveforms);
        self.pointing
            .push((telescope.pointing_alt_deg, telescope.pointing_az_deg));
        self.array_pointing.push(array.pointing_deg);
        self.tels_with_trigger
            .extend_from_slice(array.tels_with_trigger);
        self.tels_lengths.push(array.tels_with_trigger.len());
        let shower = event.shower;
        self.truth.push(shower.map_or([f64::NAN; 7], |s| {
            [
                s.energy_tev,
                s.alt_deg,
                s.az_deg,
                s.core_x_m,
                s.core_y_m,
                s.h_first_int_m,
                s.x_max_g_cm2,
            ]
        }));
        self.primary
            .push(shower.map_or(-1, |s| s.shower_primary_id));
    }

    fn take(&mut self, schema: &SchemaRef) -> Result<RecordBatch, StageError> {
        let truth = std::mem::take(&mut self.truth);
        let pointing = std::mem::take(&mut self.pointing);
        let array_pointing = std::mem::take(&mut self.array_pointing);
        let f64s = |values: Vec<f64>| Arc::new(Float64Array::from(values)) as ArrayRef;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(std::mem::take(&mut self.obs_ids))),
            Arc::new(Int64Array::from(std::mem::take(&mut self.event_ids))),
            Arc::new(Int16Array::from(std::mem::take(&mut self.tel_ids))),
            Arc::new(Int8Array::from(std::mem::take(&mut self.n_gains))),
            Arc::new(Int16Array::from(std::mem::take(&mut self.n_samples))),
            uniform_list(
                &Level::R0.field("waveform"),
                Arc::new(UInt16Array::from(std::mem::take(&mut self.waveforms))),
                self.row_len,
            )?,
            f64s(pointing.iter().map(|p| p.0).collect()),
            f64s(pointing.iter().map(|p| p.1).collect()),
            f64s(array_pointing.iter().map(|p| p.0).collect()),
            f64s(array_pointing.iter().map(|p| p.1).collect()),
            tel_id_lists(
                &Level::R0.field("tels_with_trigger"),
                std::mem::take(&mut self.tels_with_trigger),
                &std::mem::take(&mut self.tels_lengths),
            )?,
        ];
        for i in 0..7 {
            columns.push(f64s(truth.iter().map(|t| t[i]).collect()));
        }
        columns.push(Arc::new(Int32Array::from(std::mem::take(
            &mut self.primary,
        ))));
        Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
    }
}

/// A `list<int16>` column of telescope ids (`field`, e.g. `tels_with_trigger`):
/// `lengths[i]` consecutive ids of `ids` in row `i`.
pub(crate) fn tel_id_lists(
    field: &FieldRef,
    ids: Vec<i16>,
    lengths: &[usize],
) -> Result<ArrayRef, StageError> {
    let DataType::List(item) = field.data_type().clone() else {
        return Err(StageError::Data(format!(
            "{} is not a list column",
            field.name()
        )));
    };
    Ok(Arc::new(ListArray::try_new(
        item,
        OffsetBuffer::from_lengths(lengths.iter().copied()),
        Arc::new(Int16Array::from(ids)),
        None,
    )?))
}

/// Ascending telescope ids written as ranges: `1-4, 7, 9-12`.
fn id_ranges(ids: &[u16]) -> String {
    let mut ranges: Vec<(u16, u16)> = Vec::new();
    for &id in ids {
        match ranges.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(id) => *last = id,
            _ => ranges.push((id, id)),
        }
    }
    let range = |&(first, last): &(u16, u16)| {
        if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        }
    };
    ranges.iter().map(range).collect::<Vec<_>>().join(", ")
}

/// Whether two descriptions are the same, value by value: as their serialised forms,
/// where a NaN equals a NaN (a telescope without an effective focal length has a NaN one,
/// and NaN != NaN would make a file differ from itself) and the identifiers that a
/// description gets when it is read (those of its neighbour lists) are left out.
fn same<T: serde::Serialize>(a: &T, b: &T) -> bool {
    match (serde_json::to_value(a), serde_json::to_value(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Whether two calibrations hold the same values, bit for bit (NaN pedestals included).
fn same_calibration(a: &TelescopeCalibration, b: &TelescopeCalibration) -> bool {
    let same = |a: &Array2<f32>, b: &Array2<f32>| {
        a.shape() == b.shape() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    };
    same(&a.pedestal_per_sample, &b.pedestal_per_sample)
        && same(&a.dc_to_pe, &b.dc_to_pe)
        && match (&a.time_shift_ns, &b.time_shift_ns) {
            (Some(a), Some(b)) => same(a, b),
            (None, None) => true,
            _ => false,
        }
        && a.broken_pixels == b.broken_pixels
}

/// A reading error as a stage error: the operating system failing to read stays an I/O
/// error (a retry may succeed); a file that is damaged, cut short or not sim_telarray is
/// bad data.
fn read_error(error: cascade_simtel::SimtelError) -> StageError {
    match error {
        cascade_simtel::SimtelError::Io { ref source, .. }
            if !matches!(
                source.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            StageError::External(Box::new(error))
        }
        other => StageError::Data(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telescope_ids_are_written_as_ranges() {
        assert_eq!(id_ranges(&[]), "");
        assert_eq!(id_ranges(&[1, 2, 3, 4, 7, 9, 10, 11, 12]), "1-4, 7, 9-12");
        assert_eq!(id_ranges(&[5, u16::MAX]), "5, 65535");
    }

    #[test]
    fn descriptions_are_the_same_by_value_nan_included_identifiers_excluded() {
        assert!(same(&[f64::NAN, 1.5], &[f64::NAN, 1.5]));
        assert!(!same(&[f64::NAN, 1.5], &[f64::NAN, 1.5000001]));
        assert!(!same(&[0.0, 1.5], &[f64::NAN, 1.5]));
        let lists = [vec![1], vec![0, 2], vec![1]];
        let (a, b) = (
            cascade_instrument::Neighbors::from_lists(&lists),
            cascade_instrument::Neighbors::from_lists(&lists),
        );
        assert_ne!(a.id(), b.id());
        assert!(same(&a, &b));
        assert!(!same(
            &a,
            &cascade_instrument::Neighbors::from_lists(&lists[..2])
        ));
    }

    /// Two reads of one file describe the same instrument, also where a telescope has no
    /// effective focal length (NaN, lst_muons and square_40k_pixels) and although each read
    /// gives its neighbour lists new identifiers; another array differs.
    #[test]
    fn a_file_describes_the_instrument_it_described_before() {
        let config = SimtelConfig::default();
        let instrument = |stem: &str| {
            let reader = SimtelReader::open(cascade_testdata::simtel_path(stem)).unwrap();
            Instrument::selected(&reader, &config, &[])
        };
        for stem in cascade_testdata::STEMS {
            assert_eq!(
                instrument(stem).difference(&instrument(stem)),
                None,
                "{stem}"
            );
        }
        let difference = instrument("proton_lst_flashcam_run201")
            .difference(&instrument("proton_north_alpha_run201"));
        assert!(difference.is_some_and(|d| d.starts_with("telescopes 1-13 instead of 1-19")));
    }

    #[test]
    fn calibrations_are_the_same_only_bit_for_bit() {
        let calibration = TelescopeCalibration {
            pedestal_per_sample: Array2::from_elem((1, 3), f32::NAN),
            dc_to_pe: Array2::ones((1, 3)),
            time_shift_ns: None,
            broken_pixels: vec![false; 3],
        };
        assert!(same_calibration(&calibration, &calibration.clone()));
        let mut other = calibration.clone();
        other.dc_to_pe[[0, 2]] = 1.0001;
        assert!(!same_calibration(&calibration, &other));
        let mut other = calibration.clone();
        other.time_shift_ns = Some(Array2::zeros((1, 3)));
        assert!(!same_calibration(&calibration, &other));
        let mut other = calibration.clone();
        other.broken_pixels[1] = true;
        assert!(!same_calibration(&calibration, &other));
        let mut other = calibration.clone();
        other.pedestal_per_sample = Array2::from_elem((2, 3), f32::NAN);
        assert!(!same_calibration(&calibration, &other));
    }
}
