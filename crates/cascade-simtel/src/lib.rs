//! Streaming reader of sim_telarray output (EventIO format), written from the format
//! descriptions in sim_telarray's `io_hess.c`, eventio, pyeventio and ctapipe's
//! `SimTelEventSource` (whose naming and units it follows).
//!
//! ```text
//!  file ──> input (plain | gzip | zstd, detected by magic bytes; BufRead stream)
//!       ──> eventio (sync marker, headers, payloads; nested sub-objects)
//!       ──> objects (one decoder per object type -> plain structs)
//!       ──> reader  (setup -> SubarrayDescription + calibration; events -> ArrayEvent)
//! ```
//!
//! # Use
//! ```no_run
//! use cascade_simtel::SimtelReader;
//!
//! let mut reader = SimtelReader::open("gamma.simtel.zst")?;
//! println!("{} telescopes", reader.subarray().telescopes.len());
//! while let Some(event) = reader.next_event()? {
//!     for tel in &event.telescopes {
//!         // tel.waveforms: [gain][pixel][sample] ADC counts
//!         let calibration = reader.calibration(tel.tel_id);
//!         let _ = (tel.n_gains, tel.n_pixels, tel.n_samples, calibration);
//!     }
//! }
//! println!("{:?}", reader.stats());
//! # Ok::<(), cascade_simtel::SimtelError>(())
//! ```
//!
//! * [`SimtelReader::open`] reads the setup objects; [`SimtelReader::subarray`] is then
//!   complete (camera geometries with ctapipe's names, de-rotation and neighbours).
//! * [`SimtelReader::next_event`] streams [`ArrayEvent`]s; only one top-level object is in
//!   memory at a time.
//! * [`SimtelReader::calibration`] gives pedestals, dc-to-pe, reference pulse shape and
//!   sampling rate per telescope; each [`TelescopeEvent`] also carries the calibration valid
//!   for it.
//! * [`SimtelReader::stats`] counts objects by type (unknown types are skipped and counted,
//!   never an error) and events.
//!
//! # Event assembly (as ctapipe's `SimTelEventSource` with `skip_calibration_events`)
//! * `obs_id` is the run number; `event_id` the central trigger's id (else the array
//!   event's; 0 becomes a negative pseudo id).
//! * The truth of an array event is the latest MC shower (2020) with the core of the latest
//!   MC event (2021); altitudes are clipped to 90 deg where float32 rounding exceeds it.
//! * Only array events with telescope data are returned, and only telescopes listed as
//!   triggered; pointing is the corrected tracking position when present, else the raw one.
//! * Events with only ADC sums (no samples) get one-sample waveforms, as in ctapipe.
//! * Calibration events (2028) are skipped and counted.
//!
//! Not decoded (errors of kind [`SimtelError::Unsupported`]): ADC samples with a data
//! reduction mode or a "pixel list known" flag (pyeventio does not read them either), and
//! object versions newer than those listed in each decoder.
//!
//! # Benchmarks
//! `cargo bench -p cascade-simtel --bench decode` measures, on real files held decompressed
//! in memory, the framing and decoding after the setup (MB/s of decompressed input), the
//! setup alone (instrument building, time per file) and zstd decompression alone.
//!
//! # Errors
//! Every [`SimtelError`] names the file, the byte offset in the decompressed stream and the
//! object type. Corrupt input never panics and never makes the reader allocate more than
//! the bytes actually present: counts are checked against the object's remaining length.
//! A stream truncated exactly between top-level objects ends cleanly.
//!
//! # Fuzzing
//! `fuzz/` is a `cargo fuzz` package (excluded from the workspace) with the target
//! `parse_objects`, which runs [`parse_objects_for_fuzzing`] on arbitrary bytes:
//! `cd crates/cascade-simtel/fuzz && cargo +nightly fuzz run parse_objects`. The same entry
//! point runs on random bytes in a proptest (`tests/robustness.rs`) on stable.

pub mod bytes;
pub mod error;
pub mod eventio;
pub mod input;
pub mod instrument;
pub mod objects;
mod reader;

pub use error::{DecodeError, Location, SimtelError};
pub use reader::{
    ArrayEvent, ReaderStats, SimtelReader, SimulatedShower, TelescopeCalibration, TelescopeEvent,
};

/// Fuzzing entry point: runs the whole reader (framing and every decoder) over `data` as if
/// it were a decompressed file, then decodes `data[8..]` as the payload of an object whose
/// type, version and id are taken from `data[..8]`. Returns the number of events read or
/// the first error; must never panic.
pub fn parse_objects_for_fuzzing(data: &[u8]) -> Result<usize, SimtelError> {
    if data.len() >= 8 {
        let header = eventio::ObjectHeader {
            object_type: u16::from_le_bytes([data[0], data[1]]),
            version: u16::from_le_bytes([data[2], data[3]]) & 0xfff,
            user_flag: false,
            id: i32::from_le_bytes([data[4], data[5], data[6], data[7]]),
            length: (data.len() - 8) as u64,
            only_sub_objects: false,
            extended: false,
            big_endian: false,
        };
        let object = eventio::Object {
            header,
            payload: &data[8..],
            payload_offset: 8,
        };
        // Errors are expected here; only panics would be bugs.
        let _ = objects::decode_any(&object);
    }
    let input = Box::new(std::io::Cursor::new(data.to_vec()));
    let mut reader = SimtelReader::from_reader("<fuzz input>", input)?;
    let mut n_events = 0;
    while reader.next_event()?.is_some() {
        n_events += 1;
    }
    Ok(n_events)
}
