//! Throughput of the sim_telarray reader on real files, measured on the decompressed
//! stream held in memory, separately for framing + decoding (the reader) and for
//! decompression alone. Throughput is in bytes of decompressed input.

use std::io::{Cursor, Read};

use cascade_simtel::SimtelReader;
use cascade_testdata::simtel_path;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const STEMS: [&str; 4] = [
    "gamma_prod6_lst_nectarcam",
    "lst_muons",
    "proton_north_alpha_run201",
    "square_40k_pixels",
];

fn compressed(stem: &str) -> Vec<u8> {
    std::fs::read(simtel_path(stem)).expect("shared data file")
}

fn decompress(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(raw)
        .expect("zstd")
        .read_to_end(&mut out)
        .expect("decompress");
    out
}

fn open(data: &'static [u8]) -> SimtelReader {
    SimtelReader::from_reader("bench", Box::new(Cursor::new(data))).expect("open")
}

fn read_all_events(mut reader: SimtelReader) -> usize {
    let mut n_telescope_events = 0;
    while let Some(event) = reader.next_event().expect("event") {
        n_telescope_events += event.telescopes.len();
    }
    n_telescope_events
}

/// Opening: framing and decoding of the setup objects plus building the instrument
/// (camera geometries with neighbours); reported as time per file.
fn setup(c: &mut Criterion) {
    let mut group = c.benchmark_group("setup");
    for stem in STEMS {
        let data: &'static [u8] = Box::leak(decompress(&compressed(stem)).into_boxed_slice());
        group.bench_function(stem, |b| b.iter(|| open(data)));
    }
    group.finish();
}

/// Framing and decoding of everything after the setup (events, monitoring, MC objects);
/// throughput in decompressed bytes after the setup.
fn framing_and_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("framing_decode");
    for stem in STEMS {
        // Leaked once per file so the reader can borrow it for 'static without copying.
        let data: &'static [u8] = Box::leak(decompress(&compressed(stem)).into_boxed_slice());
        let setup_bytes = open(data).stats().bytes_read;
        group.throughput(Throughput::Bytes(data.len() as u64 - setup_bytes));
        group.bench_function(stem, |b| {
            b.iter_batched(|| open(data), read_all_events, BatchSize::LargeInput)
        });
    }
    group.finish();
}

fn decompression(c: &mut Criterion) {
    let mut group = c.benchmark_group("zstd_decompress");
    for stem in STEMS {
        let raw = compressed(stem);
        let size = decompress(&raw).len();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(stem, |b| {
            b.iter(|| {
                let mut decoder = zstd::stream::read::Decoder::new(&raw[..]).expect("zstd");
                std::io::copy(&mut decoder, &mut std::io::sink()).expect("decompress")
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = framing_and_decode, setup, decompression
}
criterion_main!(benches);
