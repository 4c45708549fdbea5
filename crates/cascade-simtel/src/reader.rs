//! The streaming reader: setup objects at open, then one [`ArrayEvent`] per call.
//!
//! Event assembly follows pyeventio's `SimTelFile` as used by ctapipe's `SimTelEventSource`
//! (`skip_calibration_events=True`): the latest MC shower is the truth of the following MC
//! events; an array event (2010) takes the latest MC event's core position; its event id is
//! the central trigger's id when non-zero, else the array event's id (ctapipe assigns
//! negative pseudo ids to events whose id is 0); only array events with at least one
//! telescope event are delivered, and only telescopes listed as triggered are kept.
//! Calibration events (2028) are skipped. Monitoring (2022) and laser calibration (2023)
//! update the per-telescope calibration, which ctapipe uses for the R1 calibration.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cascade_instrument::SubarrayDescription;

use crate::error::{DecodeError, DecodeErrorKind, Location, SimtelError};
use crate::eventio::{
    FramingError, Object, ObjectHeader, ReadOutcome, object_type_name, read_top_level,
    telescope_event_tel_id, tracking_tel_id,
};
use crate::input::{Compression, FileProgress, open_with_progress};
use crate::instrument::{TelescopeNames, build_subarray, meta_map};
use crate::objects::calibration::{decode_camera_monitoring, decode_laser_calibration};
use crate::objects::event::{
    AdcSamples, AdcSums, CentralTrigger, McEvent, McShower, PixelTiming, TelescopeEventHeader,
    TrackingPosition, clip_altitude, decode_adc_samples, decode_adc_sums, decode_central_trigger,
    decode_mc_event, decode_mc_shower, decode_pixel_timing, decode_telescope_event_header,
    decode_tracking_position,
};
use crate::objects::setup::{
    CameraOrganization, CameraSettings, CameraSoftwareSettings, DisabledPixels, McRunHeader,
    PixelSettings, RunHeader, decode_camera_organization, decode_camera_settings,
    decode_camera_software_settings, decode_disabled_pixels, decode_history_meta,
    decode_mc_run_header, decode_pixel_settings, decode_run_header,
};

/// Simulated shower truth of an array event (ctapipe `SimulatedShowerContainer`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimulatedShower {
    /// Shower number in the file (MC shower object id).
    pub shower_num: i32,
    /// Primary energy (TeV).
    pub energy_tev: f64,
    /// Altitude of the shower direction (deg).
    pub alt_deg: f64,
    /// Azimuth of the shower direction (deg).
    pub az_deg: f64,
    /// Core position x in the ground frame (m).
    pub core_x_m: f64,
    /// Core position y in the ground frame (m).
    pub core_y_m: f64,
    /// Height of the first interaction (m).
    pub h_first_int_m: f64,
    /// Depth of the shower maximum (g/cm²).
    pub x_max_g_cm2: f64,
    /// Atmospheric depth where the primary started (g/cm²); NaN when not stored.
    pub starting_grammage_g_cm2: f64,
    /// CORSIKA primary id (0 gamma, 1 electron, 101 proton, ...).
    pub shower_primary_id: i32,
}

/// Data of one telescope in an array event.
#[derive(Debug, Clone, PartialEq)]
pub struct TelescopeEvent {
    /// Telescope id.
    pub tel_id: u16,
    /// Pointing altitude (deg).
    pub pointing_alt_deg: f64,
    /// Pointing azimuth (deg).
    pub pointing_az_deg: f64,
    /// Trigger time relative to the central trigger (ns); NaN if not listed.
    pub trigger_time_ns: f64,
    /// Number of gain channels of `waveforms`.
    pub n_gains: usize,
    /// Number of pixels.
    pub n_pixels: usize,
    /// Number of samples per waveform: 1 when the event stores only ADC sums (ctapipe then
    /// uses the sums as one-sample waveforms), 0 when it stores neither.
    pub n_samples: usize,
    /// Raw waveforms (ADC counts) laid out `[gain][pixel][sample]`; for sums-only events
    /// the sums, saturated at 65535 (the exact values are in `adc_sums`).
    pub waveforms: Vec<u16>,
    /// Integrated ADC sums `[gain][pixel]` (ADC counts), when stored. ctapipe uses these as
    /// one-sample waveforms when there are no ADC samples.
    pub adc_sums: Option<AdcSums>,
    /// Pixel timing, when stored.
    pub pixel_timing: Option<PixelTiming>,
    /// The telescope event header.
    pub header: Option<TelescopeEventHeader>,
    /// Calibration of this telescope valid for this event.
    pub calibration: Option<Arc<TelescopeCalibration>>,
}

/// One array event with the data of its triggered telescopes.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayEvent {
    /// Observation id: the run number.
    pub obs_id: i64,
    /// Event id (negative pseudo ids for events stored with id 0, as ctapipe does).
    pub event_id: i64,
    /// Simulated shower truth, if the file has it.
    pub shower: Option<SimulatedShower>,
    /// Central trigger GPS time (seconds, nanoseconds).
    pub trigger_gps_time: (i32, i32),
    /// Triggered telescopes, in the central trigger's order.
    pub triggered_tel_ids: Vec<u16>,
    /// Telescopes with data, in file order.
    pub telescopes: Vec<TelescopeEvent>,
}

/// Calibration of one telescope as ctapipe takes it from the file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TelescopeCalibration {
    /// Telescope id.
    pub tel_id: u16,
    /// Number of gain channels (camera organisation).
    pub n_gains: usize,
    /// Number of pixels.
    pub n_pixels: usize,
    /// Number of samples read out (pixel settings `sum_bins`).
    pub n_samples: usize,
    /// Sampling rate (GHz) = 1 / sample width.
    pub sampling_rate_ghz: f64,
    /// Reference pulse shape per gain (arbitrary units).
    pub reference_pulse_shape: Vec<Vec<f64>>,
    /// Sample width of the reference pulse shape (ns).
    pub reference_pulse_sample_width_ns: f64,
    /// Pixels with the high voltage disabled.
    pub hv_disabled_pixels: Vec<u32>,
    /// Number of samples the stored pedestal is summed over (0 if no monitoring seen).
    pub n_ped_slices: i16,
    /// Pedestal `[gain][pixel]` as stored: summed over `n_ped_slices` samples (ADC counts).
    pub pedestal_sum: Vec<f32>,
    /// Pedestal per sample `[gain][pixel]` (ADC counts): `pedestal_sum / n_ped_slices` in
    /// float32, exactly as ctapipe computes it.
    pub pedestal_per_sample: Vec<f32>,
    /// dc-to-pe factors `[gain][pixel]` (p.e. per integrated ADC count).
    pub dc_to_pe: Vec<f32>,
    /// Laser time calibration `[gain][pixel]` (ns); empty if not stored.
    pub time_calibration_ns: Vec<f32>,
}

/// Counts of what the reader has seen so far.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReaderStats {
    /// Objects by EventIO type, top-level and nested ones that were looked into.
    pub objects_by_type: BTreeMap<u16, u64>,
    /// Objects of types this reader does not know, by type.
    pub unknown_by_type: BTreeMap<u16, u64>,
    /// Decompressed bytes read.
    pub bytes_read: u64,
    /// Array event objects seen (with or without telescope data).
    pub array_events_seen: u64,
    /// Array events delivered by `next_event`.
    pub array_events: u64,
    /// Telescope events delivered.
    pub telescope_events: u64,
    /// Calibration events skipped.
    pub calibration_events_skipped: u64,
    /// MC showers seen.
    pub mc_showers: u64,
    /// Objects not needed for the event data whose version or mode is not supported,
    /// skipped, by type (e.g. a newer pixel timing version).
    pub unsupported_skipped: BTreeMap<u16, u64>,
}

impl ReaderStats {
    /// Total number of objects of unknown types.
    pub fn unknown_objects(&self) -> u64 {
        self.unknown_by_type.values().sum()
    }

    /// The object histogram with type names, e.g. for `cascade info`.
    pub fn named_histogram(&self) -> Vec<(u16, &'static str, u64)> {
        self.objects_by_type
            .iter()
            .map(|(&t, &n)| (t, object_type_name(t), n))
            .collect()
    }
}

/// Streaming reader of a sim_telarray file.
pub struct SimtelReader {
    path: Arc<Path>,
    input: Box<dyn BufRead + Send>,
    compression: Compression,
    buffer: Vec<u8>,
    /// Stream offset of the next top-level object.
    offset: u64,
    /// A top-level object already read into `buffer` and not yet processed, with its
    /// payload's stream offset.
    pending: Option<(ObjectHeader, u64)>,
    finished: bool,
    run_header: RunHeader,
    mc_run_header: Option<McRunHeader>,
    subarray: SubarrayDescription,
    telescope_names: BTreeMap<u16, TelescopeNames>,
    camera_settings: BTreeMap<u16, CameraSettings>,
    software_settings: BTreeMap<u16, CameraSoftwareSettings>,
    calibrations: BTreeMap<u16, Arc<TelescopeCalibration>>,
    current_shower: Option<McShower>,
    current_mc_event: Option<McEvent>,
    pseudo_event_id: i64,
    stats: ReaderStats,
    /// Whether telescope events' pixel timing is decoded (see
    /// [`SimtelReader::with_pixel_timing`]).
    pixel_timing: bool,
    /// Bytes of the file read (see [`SimtelReader::file_progress`]).
    file_progress: FileProgress,
}

/// Setup objects collected while opening.
#[derive(Default)]
struct Setup {
    run_header: Option<RunHeader>,
    mc_run_header: Option<McRunHeader>,
    camera_settings: BTreeMap<u16, CameraSettings>,
    organizations: BTreeMap<u16, CameraOrganization>,
    pixel_settings: BTreeMap<u16, PixelSettings>,
    disabled: BTreeMap<u16, DisabledPixels>,
    software: BTreeMap<u16, CameraSoftwareSettings>,
    global_meta: HashMap<String, String>,
    telescope_meta: HashMap<u16, HashMap<String, String>>,
}

/// Result of an optional decoder: an unsupported version or mode is skipped and counted
/// instead of ending the stream; other errors stay errors.
fn optional<T>(
    result: Result<T, DecodeError>,
    stats: &mut ReaderStats,
) -> Result<Option<T>, DecodeError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(DecodeError {
            object_type,
            kind: DecodeErrorKind::Unsupported(_),
            ..
        }) => {
            *stats.unsupported_skipped.entry(object_type).or_default() += 1;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Object types that belong to the file header (everything before the first event).
fn is_setup_type(object_type: u16) -> bool {
    matches!(object_type, 70 | 75 | 1212 | 1216 | 2000..=2008)
}

/// Object types this reader knows (decodes, or skips on purpose).
fn is_known_type(object_type: u16) -> bool {
    object_type_name(object_type) != "unknown"
}

impl SimtelReader {
    /// Opens a sim_telarray file (plain, gzip or zstd) and reads its setup objects; the
    /// subarray is available when this returns.
    pub fn open(path: impl AsRef<Path>) -> Result<SimtelReader, SimtelError> {
        let path = path.as_ref().to_path_buf();
        let (input, compression, progress) =
            open_with_progress(&path).map_err(|source| SimtelError::Io {
                at: Location {
                    path: path.clone(),
                    offset: 0,
                    object_type: None,
                },
                source,
            })?;
        let mut reader = Self::from_stream(path, input, compression)?;
        reader.file_progress = progress;
        Ok(reader)
    }

    /// How much of the file (as stored, compressed or not) has been read so far; poll it
    /// from any thread to report progress. Stays at 0 for [`SimtelReader::from_reader`].
    pub fn file_progress(&self) -> FileProgress {
        self.file_progress.clone()
    }

    /// Reads from an already decompressed stream; `path` is only used in messages.
    pub fn from_reader(
        path: impl AsRef<Path>,
        input: Box<dyn BufRead + Send>,
    ) -> Result<SimtelReader, SimtelError> {
        Self::from_stream(path.as_ref().to_path_buf(), input, Compression::None)
    }

    fn from_stream(
        path: PathBuf,
        input: Box<dyn BufRead + Send>,
        compression: Compression,
    ) -> Result<SimtelReader, SimtelError> {
        let mut reader = SimtelReader {
            path: Arc::from(path),
            input,
            compression,
            buffer: Vec::new(),
            offset: 0,
            pending: None,
            finished: false,
            run_header: RunHeader {
                run: 0,
                time: 0,
                run_type: 0,
                tracking_mode: 0,
                direction_rad: [0.0; 2],
                tel_ids: Vec::new(),
                tel_positions_m: Vec::new(),
            },
            mc_run_header: None,
            subarray: SubarrayDescription::default(),
            telescope_names: BTreeMap::new(),
            camera_settings: BTreeMap::new(),
            software_settings: BTreeMap::new(),
            calibrations: BTreeMap::new(),
            current_shower: None,
            current_mc_event: None,
            pseudo_event_id: 0,
            stats: ReaderStats::default(),
            pixel_timing: true,
            file_progress: FileProgress::default(),
        };
        let setup = reader.read_setup()?;
        reader.install_setup(setup)?;
        Ok(reader)
    }

    /// Whether to decode the pixel timing objects of telescope events (sim_telarray's own
    /// pulse times and sums; default: yes). ctapipe's processing does not use them, and
    /// skipping them saves ~15 % of the decoding of lst_muons. When off,
    /// [`TelescopeEvent::pixel_timing`] is `None`.
    pub fn with_pixel_timing(mut self, decode: bool) -> Self {
        self.pixel_timing = decode;
        self
    }

    /// The subarray described by the file's setup objects.
    pub fn subarray(&self) -> &SubarrayDescription {
        &self.subarray
    }

    /// ctapipe's size class / optics / camera names per telescope.
    pub fn telescope_names(&self) -> &BTreeMap<u16, TelescopeNames> {
        &self.telescope_names
    }

    /// The run header (run number, pointing, telescope positions as stored).
    pub fn run_header(&self) -> &RunHeader {
        &self.run_header
    }

    /// The MC run header, if the file has one.
    pub fn mc_run_header(&self) -> Option<&McRunHeader> {
        self.mc_run_header.as_ref()
    }

    /// Camera settings of a telescope as stored.
    pub fn camera_settings(&self, tel_id: u16) -> Option<&CameraSettings> {
        self.camera_settings.get(&tel_id)
    }

    /// Zero suppression / data reduction settings of a telescope.
    pub fn software_settings(&self, tel_id: u16) -> Option<&CameraSoftwareSettings> {
        self.software_settings.get(&tel_id)
    }

    /// Calibration of a telescope: setup parts from the header, pedestal and dc-to-pe from
    /// the latest monitoring / laser calibration objects read (those precede the first
    /// event of the telescope, so they are complete once an event with it was returned).
    pub fn calibration(&self, tel_id: u16) -> Option<&Arc<TelescopeCalibration>> {
        self.calibrations.get(&tel_id)
    }

    /// Observation id (run number).
    pub fn obs_id(&self) -> i64 {
        i64::from(self.run_header.run)
    }

    /// The detected input compression.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Counts of objects and events so far.
    pub fn stats(&self) -> &ReaderStats {
        &self.stats
    }

    /// The next array event with telescope data, `Ok(None)` at the end of the stream.
    /// After an error, further calls return `Ok(None)`.
    pub fn next_event(&mut self) -> Result<Option<ArrayEvent>, SimtelError> {
        if self.finished {
            return Ok(None);
        }
        let result = self.next_event_inner();
        if !matches!(result, Ok(Some(_))) {
            self.finished = true;
        }
        result
    }

    fn next_event_inner(&mut self) -> Result<Option<ArrayEvent>, SimtelError> {
        loop {
            let Some((header, payload_offset)) = self.next_object()? else {
                return Ok(None);
            };
            let buffer = std::mem::take(&mut self.buffer);
            let object = Object {
                header,
                payload: &buffer,
                payload_offset: 0,
            };
            let outcome = self.handle_event_object(&object, payload_offset);
            self.buffer = buffer;
            if let Some(event) = outcome? {
                return Ok(Some(event));
            }
        }
    }

    /// Reads the setup objects up to the first object that belongs to the event stream,
    /// which stays pending.
    fn read_setup(&mut self) -> Result<Setup, SimtelError> {
        let mut setup = Setup::default();
        while let Some((header, payload_offset)) = self.next_object()? {
            if !is_setup_type(header.object_type) {
                self.pending = Some((header, payload_offset));
                break;
            }
            let object = Object {
                header,
                payload: &self.buffer,
                payload_offset: 0,
            };
            let base = payload_offset;
            let path = &self.path;
            let at = |e: DecodeError| e.at(path, base);
            match header.object_type {
                2000 => setup.run_header = Some(decode_run_header(&object).map_err(at)?),
                2001 => {
                    setup.mc_run_header =
                        optional(decode_mc_run_header(&object), &mut self.stats).map_err(at)?
                }
                2002 => {
                    let settings = decode_camera_settings(&object).map_err(at)?;
                    setup.camera_settings.insert(settings.tel_id, settings);
                }
                2003 => {
                    if let Some(org) =
                        optional(decode_camera_organization(&object), &mut self.stats)
                            .map_err(at)?
                    {
                        setup.organizations.insert(org.tel_id, org);
                    }
                }
                2004 => {
                    if let Some(pixel) =
                        optional(decode_pixel_settings(&object), &mut self.stats).map_err(at)?
                    {
                        setup.pixel_settings.insert(pixel.tel_id, pixel);
                    }
                }
                2005 => {
                    if let Some(disabled) =
                        optional(decode_disabled_pixels(&object), &mut self.stats).map_err(at)?
                    {
                        setup.disabled.insert(disabled.tel_id, disabled);
                    }
                }
                2006 => {
                    if let Some(software) =
                        optional(decode_camera_software_settings(&object), &mut self.stats)
                            .map_err(at)?
                    {
                        setup.software.insert(software.tel_id, software);
                    }
                }
                75 => {
                    let meta =
                        optional(decode_history_meta(&object), &mut self.stats).map_err(at)?;
                    match meta.as_ref().map(|m| (m.tel_id, meta_map(m))) {
                        None => {}
                        Some((None, map)) => setup.global_meta = map,
                        Some((Some(tel_id), map)) => {
                            setup.telescope_meta.insert(tel_id, map);
                        }
                    }
                }
                70 => {
                    for child in object.children() {
                        let child = child.map_err(at)?;
                        *self
                            .stats
                            .objects_by_type
                            .entry(child.header.object_type)
                            .or_default() += 1;
                    }
                }
                // Pointing correction, drive settings, CORSIKA input card, atmosphere:
                // not needed for the event data.
                _ => {}
            }
        }
        Ok(setup)
    }

    fn install_setup(&mut self, setup: Setup) -> Result<(), SimtelError> {
        let Some(run_header) = setup.run_header else {
            let what = if self.offset == 0 {
                "the file is empty".to_string()
            } else {
                "no RunHeader (type 2000) before the events".to_string()
            };
            return Err(SimtelError::Malformed {
                at: self.location(self.offset, None),
                what,
            });
        };
        let reference_altitude_m = setup
            .global_meta
            .get("ALTITUDE")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .or_else(|| {
                setup
                    .mc_run_header
                    .as_ref()
                    .map(|h| f64::from(h.obsheight_m))
            })
            .unwrap_or(f64::NAN);
        let (subarray, names) = build_subarray(
            &run_header,
            &setup.camera_settings,
            &setup.telescope_meta,
            &setup.global_meta,
            reference_altitude_m,
        );
        for (&tel_id, settings) in &setup.camera_settings {
            let organization = setup.organizations.get(&tel_id);
            let pixel = setup.pixel_settings.get(&tel_id);
            let calibration = TelescopeCalibration {
                tel_id,
                n_gains: organization.map_or(0, |o| o.n_gains.max(0) as usize),
                n_pixels: settings.n_pixels,
                n_samples: pixel.map_or(0, |p| p.sum_bins.max(0) as usize),
                sampling_rate_ghz: pixel.map_or(f64::NAN, |p| 1.0 / f64::from(p.time_slice_ns)),
                reference_pulse_shape: pixel.map_or_else(Vec::new, |p| {
                    p.ref_shapes
                        .iter()
                        .map(|s| s.iter().map(|&v| f64::from(v)).collect())
                        .collect()
                }),
                reference_pulse_sample_width_ns: pixel
                    .map_or(f64::NAN, |p| f64::from(p.ref_step_ns)),
                hv_disabled_pixels: setup
                    .disabled
                    .get(&tel_id)
                    .map(|d| {
                        d.hv_disabled
                            .iter()
                            .filter_map(|&p| u32::try_from(p).ok())
                            .collect()
                    })
                    .unwrap_or_default(),
                ..Default::default()
            };
            self.calibrations.insert(tel_id, Arc::new(calibration));
        }
        self.run_header = run_header;
        self.mc_run_header = setup.mc_run_header;
        self.subarray = subarray;
        self.telescope_names = names;
        self.camera_settings = setup.camera_settings;
        self.software_settings = setup.software;
        Ok(())
    }

    /// Handles one top-level object of the event stream; returns an event when one is
    /// complete.
    fn handle_event_object(
        &mut self,
        object: &Object<'_>,
        base: u64,
    ) -> Result<Option<ArrayEvent>, SimtelError> {
        let path = Arc::clone(&self.path);
        let at = |e: DecodeError| e.at(&path, base);
        match object.header.object_type {
            2020 => {
                self.current_shower = Some(decode_mc_shower(object).map_err(at)?);
                self.stats.mc_showers += 1;
            }
            2021 => self.current_mc_event = Some(decode_mc_event(object).map_err(at)?),
            2022 => {
                let monitoring =
                    optional(decode_camera_monitoring(object), &mut self.stats).map_err(at)?;
                if let Some(monitoring) = monitoring
                    && let Some(n_ped_slices) = monitoring.n_ped_slices
                {
                    let calibration = self.calibration_mut(monitoring.tel_id);
                    calibration.n_ped_slices = n_ped_slices;
                    calibration.pedestal_per_sample = monitoring
                        .pedestal
                        .iter()
                        .map(|&p| p / f32::from(n_ped_slices))
                        .collect();
                    calibration.pedestal_sum = monitoring.pedestal;
                }
            }
            2023 => {
                if let Some(laser) =
                    optional(decode_laser_calibration(object), &mut self.stats).map_err(at)?
                {
                    let calibration = self.calibration_mut(laser.tel_id);
                    calibration.dc_to_pe = laser.calib;
                    calibration.time_calibration_ns = laser.tm_calib;
                }
            }
            2010 => {
                self.stats.array_events_seen += 1;
                let event = self.decode_array_event(object, base)?;
                if !event.telescopes.is_empty() {
                    self.stats.array_events += 1;
                    self.stats.telescope_events += event.telescopes.len() as u64;
                    return Ok(Some(event));
                }
            }
            2028 => self.stats.calibration_events_skipped += 1,
            _ => {}
        }
        Ok(None)
    }

    fn calibration_mut(&mut self, tel_id: u16) -> &mut TelescopeCalibration {
        Arc::make_mut(self.calibrations.entry(tel_id).or_insert_with(|| {
            Arc::new(TelescopeCalibration {
                tel_id,
                ..Default::default()
            })
        }))
    }

    fn decode_array_event(
        &mut self,
        object: &Object<'_>,
        base: u64,
    ) -> Result<ArrayEvent, SimtelError> {
        let path = Arc::clone(&self.path);
        let mut trigger: Option<CentralTrigger> = None;
        let mut tracking: HashMap<u16, TrackingPosition> = HashMap::new();
        let mut telescopes: Vec<TelescopeEvent> = Vec::new();
        for child in object.children() {
            let child = child.map_err(|e| e.at(&path, base))?;
            let child_base = base + child.payload_offset as u64;
            let at = |e: DecodeError| e.at(&path, child_base);
            let child_type = child.header.object_type;
            self.count(child_type);
            if child_type == 2009 {
                trigger = Some(decode_central_trigger(&child).map_err(at)?);
            } else if let Some(tel_id) = telescope_event_tel_id(child_type) {
                let event = self.decode_telescope_event(&child, tel_id, child_base)?;
                telescopes.push(event);
            } else if tracking_tel_id(child_type).is_some() {
                let position = decode_tracking_position(&child).map_err(at)?;
                tracking.insert(position.tel_id, position);
            }
        }
        let trigger = trigger.ok_or_else(|| SimtelError::Malformed {
            at: self.location(base, Some(2010)),
            what: "array event without central trigger information (type 2009)".to_string(),
        })?;
        telescopes.retain(|t| trigger.triggered_telescopes.contains(&t.tel_id));
        for telescope in &mut telescopes {
            if let Some(position) = tracking.get(&telescope.tel_id) {
                let (alt, az) = position.alt_az_deg();
                telescope.pointing_alt_deg = alt;
                telescope.pointing_az_deg = az;
            }
            if let Some(i) = trigger
                .triggered_telescopes
                .iter()
                .position(|&id| id == telescope.tel_id)
            {
                telescope.trigger_time_ns = trigger
                    .trigger_times_ns
                    .get(i)
                    .map_or(f64::NAN, |&t| f64::from(t));
            }
            telescope.calibration = self.calibrations.get(&telescope.tel_id).cloned();
        }

        let stored_id = if trigger.event_id != 0 {
            trigger.event_id
        } else {
            object.header.id
        };
        let event_id = if stored_id == 0 {
            self.pseudo_event_id -= 1;
            self.pseudo_event_id
        } else {
            i64::from(stored_id)
        };
        let mc_event = self.current_mc_event.take();
        let shower = self.current_shower.map(|s| SimulatedShower {
            shower_num: s.shower_num,
            energy_tev: f64::from(s.energy_tev),
            alt_deg: clip_altitude(f64::from(s.altitude_rad)).to_degrees(),
            az_deg: f64::from(s.azimuth_rad).to_degrees(),
            core_x_m: mc_event.map_or(f64::NAN, |e| f64::from(e.core_x_m)),
            core_y_m: mc_event.map_or(f64::NAN, |e| f64::from(e.core_y_m)),
            h_first_int_m: f64::from(s.h_first_int_m),
            x_max_g_cm2: f64::from(s.x_max_g_cm2),
            starting_grammage_g_cm2: s.depth_start_g_cm2.map_or(f64::NAN, f64::from),
            shower_primary_id: s.primary_id,
        });
        Ok(ArrayEvent {
            obs_id: self.obs_id(),
            event_id,
            shower,
            trigger_gps_time: trigger.gps_time,
            triggered_tel_ids: trigger.triggered_telescopes,
            telescopes,
        })
    }

    fn decode_telescope_event(
        &mut self,
        object: &Object<'_>,
        tel_id: u16,
        base: u64,
    ) -> Result<TelescopeEvent, SimtelError> {
        let path = Arc::clone(&self.path);
        let mut event = TelescopeEvent {
            tel_id,
            pointing_alt_deg: f64::NAN,
            pointing_az_deg: f64::NAN,
            trigger_time_ns: f64::NAN,
            n_gains: 0,
            n_pixels: self.camera_settings.get(&tel_id).map_or(0, |c| c.n_pixels),
            n_samples: 0,
            waveforms: Vec::new(),
            adc_sums: None,
            pixel_timing: None,
            header: None,
            calibration: None,
        };
        for child in object.children() {
            let child = child.map_err(|e| e.at(&path, base))?;
            let child_base = base + child.payload_offset as u64;
            let at = |e: DecodeError| e.at(&path, child_base);
            self.count(child.header.object_type);
            match child.header.object_type {
                2011 => {
                    event.header = optional(decode_telescope_event_header(&child), &mut self.stats)
                        .map_err(at)?
                }
                2013 => {
                    let mut samples = AdcSamples::default();
                    decode_adc_samples(&child, &mut samples).map_err(at)?;
                    event.n_gains = samples.n_gains;
                    event.n_pixels = samples.n_pixels;
                    event.n_samples = samples.n_samples;
                    event.waveforms = samples.samples;
                }
                2012 => {
                    let sums = decode_adc_sums(&child).map_err(at)?;
                    if event.n_samples == 0 {
                        event.n_pixels = sums.n_pixels;
                    }
                    event.adc_sums = Some(sums);
                }
                2016 if self.pixel_timing => {
                    event.pixel_timing =
                        optional(decode_pixel_timing(&child), &mut self.stats).map_err(at)?
                }
                _ => {}
            }
        }
        if event.n_samples == 0
            && let Some(sums) = &event.adc_sums
        {
            // ctapipe: `adc_sums[:, :, np.newaxis]` when there are no samples.
            event.n_gains = sums.n_gains;
            event.n_samples = 1;
            event.waveforms = sums
                .sums
                .iter()
                .map(|&s| s.min(u32::from(u16::MAX)) as u16)
                .collect();
        }
        Ok(event)
    }

    /// Counts an object in the statistics.
    fn count(&mut self, object_type: u16) {
        *self.stats.objects_by_type.entry(object_type).or_default() += 1;
        if !is_known_type(object_type) {
            *self.stats.unknown_by_type.entry(object_type).or_default() += 1;
        }
    }

    /// The next top-level object (the pending one first): its header and the stream offset
    /// of its payload; `None` at a clean end of stream.
    fn next_object(&mut self) -> Result<Option<(ObjectHeader, u64)>, SimtelError> {
        if let Some(pending) = self.pending.take() {
            return Ok(Some(pending));
        }
        let start = self.offset;
        match read_top_level(&mut *self.input, &mut self.buffer) {
            Ok(ReadOutcome::Object(header)) => {
                let header_len = 4 + header.header_size() as u64;
                self.offset = start + header_len + header.length;
                self.stats.bytes_read = self.offset;
                self.count(header.object_type);
                Ok(Some((header, start + header_len)))
            }
            Ok(ReadOutcome::EndOfStream) => Ok(None),
            Err(FramingError::Truncated { consumed, header }) => Err(SimtelError::Truncated {
                at: self.location(start + consumed, header.map(|h| h.object_type)),
                what: match header {
                    Some(h) => format!(
                        "object starting at byte {start} declares {} payload bytes, the stream ends after {}",
                        h.length,
                        consumed.saturating_sub(4 + h.header_size() as u64)
                    ),
                    None => format!(
                        "stream ends inside the header of the object starting at byte {start}"
                    ),
                },
            }),
            Err(FramingError::BadSync) if start == 0 => Err(SimtelError::NotEventIo {
                at: self.location(0, None),
            }),
            Err(FramingError::BadSync) => Err(SimtelError::Malformed {
                at: self.location(start, None),
                what: "no EventIO sync marker where the next top-level object must start"
                    .to_string(),
            }),
            // The decompressor failing after good data: a cut or damaged compressed file.
            Err(FramingError::Io(source)) if self.compression != Compression::None => {
                Err(SimtelError::Truncated {
                    at: self.location(start, None),
                    what: format!(
                        "the {} data cannot be decompressed further ({source}): the file \
                         is cut short or damaged",
                        match self.compression {
                            Compression::Gzip => "gzip",
                            _ => "zstd",
                        }
                    ),
                })
            }
            Err(FramingError::Io(source)) => Err(SimtelError::Io {
                at: self.location(start, None),
                source,
            }),
        }
    }

    fn location(&self, offset: u64, object_type: Option<u16>) -> Location {
        Location {
            path: self.path.to_path_buf(),
            offset,
            object_type,
        }
    }
}
