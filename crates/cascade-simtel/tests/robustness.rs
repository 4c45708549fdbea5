//! Damaged input: truncations and flipped bytes in every shared file, and random bytes
//! through the fuzzing entry point. Every case must end in a clear error or a clean end,
//! deliver the events before the damage, and never panic.

use std::io::{Cursor, Read};

use cascade_simtel::{SimtelError, SimtelReader, parse_objects_for_fuzzing};
use cascade_testdata::{STEMS, simtel_path};
use proptest::prelude::*;

/// The whole decompressed file (test only: the reader itself streams).
fn decompressed(stem: &str) -> Vec<u8> {
    let path = simtel_path(stem);
    let raw = std::fs::read(&path).expect("read");
    let mut out = Vec::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .expect("gunzip");
    } else {
        zstd::stream::read::Decoder::new(&raw[..])
            .expect("zstd")
            .read_to_end(&mut out)
            .expect("unzstd");
    }
    out
}

/// Event ids read from `data`, with the stream offset at which each event was complete, and
/// the final result.
fn read_all(data: &[u8]) -> (Vec<(i64, u64)>, Result<(), SimtelError>) {
    let mut events = Vec::new();
    let mut reader =
        match SimtelReader::from_reader("damaged.simtel", Box::new(Cursor::new(data.to_vec()))) {
            Ok(reader) => reader,
            Err(e) => return (events, Err(e)),
        };
    loop {
        match reader.next_event() {
            Ok(Some(event)) => events.push((event.event_id, reader.stats().bytes_read)),
            Ok(None) => return (events, Ok(())),
            Err(e) => {
                // After an error the reader is finished.
                assert!(matches!(reader.next_event(), Ok(None)));
                return (events, Err(e));
            }
        }
    }
}

fn check_error_names_location(error: &SimtelError, data_len: u64) {
    let at = error.location();
    assert_eq!(at.path.to_str(), Some("damaged.simtel"));
    assert!(
        at.offset <= data_len,
        "offset {} beyond input {}",
        at.offset,
        data_len
    );
    let message = error.to_string();
    assert!(
        message.contains("damaged.simtel") && message.contains("byte"),
        "{message}"
    );
}

#[test]
fn truncated_files_end_cleanly_or_with_located_errors() {
    for stem in STEMS {
        let data = decompressed(stem);
        let (full, result) = read_all(&data);
        result.unwrap_or_else(|e| panic!("{stem}: {e}"));
        // Truncate inside every event's final object, exactly at each event's end, and at
        // evenly spread offsets.
        let mut cuts: Vec<usize> = (1..12).map(|i| data.len() * i / 12).collect();
        for &(_, end) in full.iter().take(6) {
            cuts.push(end as usize);
            cuts.push(end as usize - 1);
        }
        cuts.extend([0, 1, 3, 4, 15, 17]);
        for cut in cuts {
            let (events, result) = read_all(&data[..cut]);
            let must_have = full.iter().filter(|&&(_, end)| end as usize <= cut).count();
            assert!(
                events.len() >= must_have,
                "{stem} cut {cut}: {} events, expected {must_have}",
                events.len()
            );
            assert_eq!(
                &full[..events.len()],
                &events[..],
                "{stem} cut {cut}: events differ"
            );
            match result {
                Ok(()) => {}
                Err(e) => {
                    check_error_names_location(&e, cut as u64);
                    if cut > 16 {
                        assert!(
                            e.location().object_type.is_some()
                                || matches!(e, SimtelError::Truncated { .. }),
                            "{stem} cut {cut}: {e}"
                        );
                    }
                }
            }
            if full.iter().any(|&(_, end)| end as usize == cut) {
                assert!(
                    events.len() == must_have,
                    "{stem} cut {cut} at an event end"
                );
            }
        }
    }
}

/// The events of `path` as `SimtelReader::open` reads them, and where reading stopped: the
/// offset of the error, or `None` at a clean end.
fn read_file(path: &std::path::Path) -> (Vec<(i64, u64)>, Option<u64>) {
    let mut events = Vec::new();
    let mut reader = SimtelReader::open(path).expect("the setup objects are complete");
    loop {
        match reader.next_event() {
            Ok(Some(event)) => events.push((event.event_id, reader.stats().bytes_read)),
            Ok(None) => return (events, None),
            Err(e) => return (events, Some(e.location().offset)),
        }
    }
}

/// A truncated compressed file read from disk gives every event that the decompressible part
/// of it gives when read from memory, each complete at the same byte, then an error: the
/// bytes the decompressor delivers before it fails are not lost.
#[test]
fn truncated_compressed_files_keep_every_event_before_the_cut() {
    let zstd_file = std::fs::read(simtel_path("lst_muons")).expect("read");
    // the shared gzip file has a single event: gzip lst_muons instead
    let mut gzip_file = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gzip_file, &decompressed("lst_muons")).expect("gzip");
    let gzip_file = gzip_file.finish().expect("gzip");
    for (what, raw) in [("zstd", zstd_file), ("gzip", gzip_file)] {
        // the cut falls about half-way into the second chunk of decompressed data
        let truncated = &raw[..raw.len() * 3 / 10];
        // what can be decompressed before the cut, read as ever
        let mut prefix = Vec::new();
        let decoded = if raw.starts_with(&[0x1f, 0x8b]) {
            flate2::read::MultiGzDecoder::new(truncated).read_to_end(&mut prefix)
        } else {
            zstd::stream::read::Decoder::new(truncated)
                .expect("zstd")
                .read_to_end(&mut prefix)
        };
        assert!(decoded.is_err(), "{what}: the cut must damage the stream");
        let (expected, _) = read_all(&prefix);
        assert!(
            expected.len() >= 5,
            "{what}: {} events before the cut",
            expected.len()
        );

        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir
            .path()
            .join(format!("lst_muons.simtel.{what}.truncated"));
        std::fs::write(&path, truncated).expect("write");
        let (events, stopped_at) = read_file(&path);
        assert_eq!(events, expected, "{what}");
        assert!(
            stopped_at.is_some(),
            "{what}: a truncated file must end in an error"
        );
    }
}

#[test]
fn flipped_bytes_never_panic_and_keep_earlier_events() {
    for stem in STEMS {
        let data = decompressed(stem);
        let (full, _) = read_all(&data);
        let mut damaged = data.clone();
        for i in 0..6usize {
            let position = (data.len() / 6) * i + 7 * i + 3;
            let position = position.min(data.len() - 1);
            for flip in [0xff_u8, 0x80] {
                damaged[position] ^= flip;
                let (events, result) = read_all(&damaged);
                damaged[position] ^= flip;
                let must_have = full
                    .iter()
                    .filter(|&&(_, end)| (end as usize) <= position)
                    .count();
                assert!(
                    events.len() >= must_have.min(full.len()),
                    "{stem} flip at {position}"
                );
                if let Err(e) = result {
                    check_error_names_location(&e, data.len() as u64);
                }
            }
        }
    }
}

#[test]
fn not_eventio_is_a_clear_error() {
    let error = SimtelReader::from_reader(
        "damaged.simtel",
        Box::new(Cursor::new(b"hello world, not eventio".to_vec())),
    )
    .err()
    .expect("must fail");
    assert!(matches!(error, SimtelError::NotEventIo { .. }), "{error}");
    check_error_names_location(&error, 24);
}

/// A minimal stream: sync marker and header of one object of `object_type` with `payload`.
fn object_stream(object_type: u16, version: u16, id: i32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x37, 0x8a, 0x1f, 0xd4];
    out.extend_from_slice(&(u32::from(object_type) | (u32::from(version) << 20)).to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// A version 0 run header with no telescopes.
fn empty_run_header() -> Vec<u8> {
    let mut payload = Vec::new();
    for value in [1i32, 0, 0, 0] {
        payload.extend_from_slice(&value.to_le_bytes());
    }
    payload.extend_from_slice(&[0u8; 20]);
    payload.extend_from_slice(&0i32.to_le_bytes());
    payload.extend_from_slice(&[0u8; 8]);
    payload
}

#[test]
fn unsupported_optional_objects_are_skipped_and_counted() {
    let mut stream = object_stream(2000, 0, 1, &empty_run_header());
    stream.extend(object_stream(2022, 5, 1, &[0u8; 40]));
    stream.extend(object_stream(4321, 0, 0, &[1, 2, 3]));
    let mut reader =
        SimtelReader::from_reader("damaged.simtel", Box::new(Cursor::new(stream))).expect("open");
    assert!(reader.next_event().expect("no error").is_none());
    let stats = reader.stats();
    assert_eq!(stats.unsupported_skipped.get(&2022), Some(&1));
    assert_eq!(stats.unknown_by_type.get(&4321), Some(&1));
    assert_eq!(stats.unknown_objects(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_objects_for_fuzzing(&data);
    }

    #[test]
    fn random_payloads_of_known_types_never_panic(
        type_index in 0usize..20,
        version in 0u16..8,
        id in any::<i32>(),
        payload in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        const TYPES: [u16; 20] = [75, 2000, 2001, 2002, 2003, 2004, 2005, 2006, 2009, 2010, 2011, 2012, 2013, 2016, 2020, 2021, 2022, 2023, 2105, 2205];
        let object_type = TYPES[type_index];
        let mut fuzz_input = Vec::new();
        fuzz_input.extend_from_slice(&object_type.to_le_bytes());
        fuzz_input.extend_from_slice(&version.to_le_bytes());
        fuzz_input.extend_from_slice(&id.to_le_bytes());
        fuzz_input.extend_from_slice(&payload);
        let _ = parse_objects_for_fuzzing(&fuzz_input);
        // The same payload framed as a real object stream behind a run header.
        let mut stream = object_stream(2000, 0, 1, &empty_run_header());
        stream.extend(object_stream(object_type, version, id, &payload));
        let _ = parse_objects_for_fuzzing(&stream);
    }
}

/// The file progress a reader reports reaches the file's size, as stored, once every event
/// is read.
#[test]
fn file_progress_counts_the_stored_bytes() {
    for stem in STEMS {
        let path = simtel_path(stem);
        let size = std::fs::metadata(&path).expect("size").len();
        let mut reader = SimtelReader::open(&path).expect("open");
        let progress = reader.file_progress();
        assert!(progress.bytes_read() > 0, "{stem}");
        while reader.next_event().expect("event").is_some() {}
        assert_eq!(progress.bytes_read(), size, "{stem}");
    }
}
