//! Calibration throughput on LST-like data (1855 pixels, 2 gains, 1 GHz), default chain
//! (threshold gain selection, NeighborPeakWindowSum, integration correction, time shift,
//! NeighborAverage). Throughput is telescope events per second; the `one_thread` groups are
//! the per-core figures.
//!
//! * `r1_to_dl1_lst_like`: gain-selected f32 R1 waveforms of 30 samples -> image and peak
//!   time, i.e. exactly what ctapipe's `CameraCalibrator` measures in
//!   `../shared/data/reference/ctapipe_throughput.json` (lst_muons: 2,274 events/s).
//! * `r1_event_loop_lst_like/one_thread`: the same events one by one with
//!   `r1_to_dl1_event` (`f32`), and stored as CTAO's R1 stream stores them (`uint16`, scale
//!   80, offset 5) with `r1_quantized_to_dl1_event`: same results, integer peak finder.
//! * `neighbor_peak_indices_lst_like`: the peak finder of NeighborPeakWindowSum alone on
//!   the first of these events, 64 times (so that it stays in the caches): `f32`
//!   (`local_weight_0`, with the scan of the samples' magnitude) and `quantized_u16`.
//! * `r0_to_dl1_lst_like`: raw R0 of both gains, 40 samples -> gain selection, pedestal,
//!   dc-to-pe, then the same extraction.

use std::hint::black_box;

use cascade_calib::extractor::neighbor_peak::{
    NeighborPeakScratch, neighbor_peak_indices, neighbor_peak_indices_quantized_by_tile,
};
use cascade_calib::{
    CalibrationConfig, CalibrationScratch, CameraCalibrator, CameraReadout, ImageExtractorConfig,
    QuantizedWaveforms, R1Config, TelescopeCalibration, extractor::LocalPeakWindowSum, r0_to_r1,
};
use cascade_instrument::Neighbors;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ndarray::{Array2, Array3, Array4};

const N_PIXELS: usize = 1855;
const N_SAMPLES: usize = 40;
/// Samples of the R1 case: lst_muons, the file of ctapipe's 2,274 events/s, has 30.
const N_SAMPLES_R1: usize = 30;
const N_CHANNELS: usize = 2;
const N_EVENTS: usize = 64;

/// Hexagonal lattice in axial coordinates, filled row by row: up to 6 neighbours each.
fn hex_neighbors(n_pixels: usize) -> Neighbors {
    let side = (n_pixels as f64).sqrt().ceil() as i64;
    let index = |q: i64, r: i64| -> Option<u32> {
        let i = r * side + q;
        (q >= 0 && q < side && r >= 0 && i < n_pixels as i64).then_some(i as u32)
    };
    let lists: Vec<Vec<u32>> = (0..n_pixels as i64)
        .map(|i| {
            let (q, r) = (i % side, i / side);
            [(1, 0), (-1, 0), (0, 1), (0, -1), (1, -1), (-1, 1)]
                .iter()
                .filter_map(|(dq, dr)| index(q + dq, r + dr))
                .collect()
        })
        .collect();
    Neighbors::from_lists(&lists)
}

/// Deterministic pseudo-random numbers in [0, 1) (64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// R0 of `n_samples` samples with a pulse in the middle, and its calibration and readout.
fn lst_like_batch(n_samples: usize) -> (Array4<u16>, TelescopeCalibration, CameraReadout) {
    let mut random = Lcg(42);
    let mut r0 = Array4::<u16>::zeros((N_EVENTS, N_CHANNELS, N_PIXELS, n_samples));
    let middle = n_samples as f64 / 2.0;
    for ((_, channel, _, sample), adc) in r0.indexed_iter_mut() {
        let pulse = (-((sample as f64 - middle) / 2.0).powi(2)).exp();
        let amplitude = if channel == 0 { 200.0 } else { 10.0 };
        *adc = (400.0 + 5.0 * random.next() + amplitude * random.next() * pulse) as u16;
    }
    // Per-pixel pedestals and gains, as in real files (exact ties between the neighbour
    // sums of different samples are then rare).
    let calibration = TelescopeCalibration {
        pedestal_per_sample: Array2::from_shape_fn((N_CHANNELS, N_PIXELS), |_| {
            400.0 + 2.0 * random.next() as f32
        }),
        dc_to_pe: Array2::from_shape_fn((N_CHANNELS, N_PIXELS), |(c, _)| {
            let gain = if c == 0 { 0.0125 } else { 0.25 };
            gain * (0.95 + 0.1 * random.next() as f32)
        }),
        time_shift_ns: Some(Array2::from_elem((N_CHANNELS, N_PIXELS), 0.1)),
        broken_pixels: (0..N_PIXELS).map(|p| p % 500 == 7).collect(),
    };
    let readout = CameraReadout {
        sampling_rate_ghz: 1.0,
        reference_pulse_shape: Array2::from_shape_fn((N_CHANNELS, 400), |(_, i)| {
            (-((i as f64 * 0.1 - 10.0) / 1.5).powi(2)).exp()
        }),
        reference_pulse_sample_width_ns: 0.1,
    };
    (r0, calibration, readout)
}

fn one_thread_pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("thread pool")
}

fn bench_r1_to_dl1(c: &mut Criterion) {
    let (r0, calibration, readout) = lst_like_batch(N_SAMPLES_R1);
    let neighbors = hex_neighbors(N_PIXELS);
    let mut r1 = Array3::<f32>::zeros((N_EVENTS, N_PIXELS, N_SAMPLES_R1));
    let mut gains = Array2::<i8>::zeros((N_EVENTS, N_PIXELS));
    r0_to_r1(
        r0.view(),
        &calibration,
        &R1Config::default(),
        r1.view_mut(),
        gains.view_mut(),
    )
    .expect("r0_to_r1");
    let mut image = Array2::<f32>::zeros((N_EVENTS, N_PIXELS));
    let mut peak_time = Array2::<f32>::zeros((N_EVENTS, N_PIXELS));
    let calibrator = CameraCalibrator::new(&CalibrationConfig::default(), &readout, &neighbors)
        .expect("calibrator");
    let pool = one_thread_pool();
    let mut group = c.benchmark_group("r1_to_dl1_lst_like/one_thread");
    group.throughput(Throughput::Elements(N_EVENTS as u64));
    group.sample_size(20);
    group.bench_function("NeighborPeakWindowSum", |b| {
        b.iter(|| {
            pool.install(|| {
                calibrator
                    .r1_to_dl1(
                        black_box(r1.view()),
                        gains.view(),
                        &calibration,
                        image.view_mut(),
                        peak_time.view_mut(),
                    )
                    .expect("r1_to_dl1");
            });
        });
    });
    group.finish();

    let mut group = c.benchmark_group("r1_event_loop_lst_like/one_thread");
    group.throughput(Throughput::Elements(N_EVENTS as u64));
    group.sample_size(20);
    let event_size = N_PIXELS * N_SAMPLES_R1;
    let (scale, offset) = (80.0_f32, 5.0_f32);
    let stored: Vec<u16> = r1
        .iter()
        .map(|&value| ((value + offset) * scale).round().clamp(0.0, 65535.0) as u16)
        .collect();
    let gains_of =
        |event: usize| &gains.as_slice().expect("standard layout")[event * N_PIXELS..][..N_PIXELS];
    let mut scratch = CalibrationScratch::default();
    let (mut event_image, mut event_time) = (vec![0.0; N_PIXELS], vec![0.0; N_PIXELS]);
    let r1_values = r1.as_slice().expect("standard layout");
    group.bench_function("f32", |b| {
        b.iter(|| {
            for (event, values) in r1_values.chunks_exact(event_size).enumerate() {
                scratch.prefetch_next(
                    r1_values
                        .get((event + 1) * event_size..)
                        .unwrap_or_default(),
                );
                calibrator
                    .r1_to_dl1_event(
                        black_box(values),
                        N_SAMPLES_R1,
                        gains_of(event),
                        &calibration,
                        &mut scratch,
                        &mut event_image,
                        &mut event_time,
                    )
                    .expect("r1_to_dl1_event");
            }
        });
    });
    group.bench_function("quantized_u16", |b| {
        b.iter(|| {
            for (event, values) in stored.chunks_exact(event_size).enumerate() {
                scratch.prefetch_next(stored.get((event + 1) * event_size..).unwrap_or_default());
                let quantized = QuantizedWaveforms {
                    values: black_box(values),
                    scale,
                    offset,
                };
                calibrator
                    .r1_quantized_to_dl1_event(
                        quantized,
                        N_SAMPLES_R1,
                        gains_of(event),
                        &calibration,
                        &mut scratch,
                        &mut event_image,
                        &mut event_time,
                    )
                    .expect("r1_quantized_to_dl1_event");
            }
        });
    });
    group.finish();

    let mut group = c.benchmark_group("neighbor_peak_indices_lst_like");
    group.throughput(Throughput::Elements(N_EVENTS as u64));
    group.sample_size(20);
    let mut scratch = NeighborPeakScratch::default();
    let mut peaks = vec![0; N_PIXELS];
    let r1 = r1.as_slice().expect("standard layout");
    group.bench_function("local_weight_0", |b| {
        b.iter(|| {
            for event in r1
                .chunks_exact(N_PIXELS * N_SAMPLES_R1)
                .map(|_| &r1[..N_PIXELS * N_SAMPLES_R1])
            {
                neighbor_peak_indices(
                    black_box(event),
                    N_SAMPLES_R1,
                    &neighbors,
                    0,
                    &calibration.broken_pixels,
                    &mut scratch,
                    &mut peaks,
                );
            }
        });
    });
    let stored_event = &stored[..N_PIXELS * N_SAMPLES_R1];
    group.bench_function("quantized_u16", |b| {
        b.iter(|| {
            for _ in 0..N_EVENTS {
                let quantized = QuantizedWaveforms {
                    values: black_box(stored_event),
                    scale,
                    offset,
                };
                neighbor_peak_indices_quantized_by_tile(
                    quantized,
                    N_SAMPLES_R1,
                    &neighbors,
                    0,
                    &calibration.broken_pixels,
                    &mut scratch,
                    &mut peaks,
                    |_, _| {},
                );
            }
        });
    });
    group.finish();
}

fn bench_r0_to_dl1(c: &mut Criterion) {
    let (r0, calibration, readout) = lst_like_batch(N_SAMPLES);
    let neighbors = hex_neighbors(N_PIXELS);
    let configs = [
        ("NeighborPeakWindowSum", CalibrationConfig::default()),
        (
            "LocalPeakWindowSum",
            CalibrationConfig {
                image_extractor: ImageExtractorConfig::LocalPeakWindowSum(
                    LocalPeakWindowSum::default(),
                ),
                ..Default::default()
            },
        ),
    ];
    let mut gains = Array2::<i8>::zeros((N_EVENTS, N_PIXELS));
    let mut image = Array2::<f32>::zeros((N_EVENTS, N_PIXELS));
    let mut peak_time = Array2::<f32>::zeros((N_EVENTS, N_PIXELS));
    let one_thread = one_thread_pool();
    for (threads, pool) in [("one_thread", Some(&one_thread)), ("all_threads", None)] {
        let mut group = c.benchmark_group(format!("r0_to_dl1_lst_like/{threads}"));
        group.throughput(Throughput::Elements(N_EVENTS as u64));
        group.sample_size(20);
        for (name, config) in &configs {
            let calibrator =
                CameraCalibrator::new(config, &readout, &neighbors).expect("calibrator");
            let mut run = || {
                calibrator
                    .r0_to_dl1(
                        black_box(r0.view()),
                        &calibration,
                        gains.view_mut(),
                        image.view_mut(),
                        peak_time.view_mut(),
                    )
                    .expect("r0_to_dl1");
            };
            group.bench_function(*name, |b| match pool {
                Some(pool) => b.iter(|| pool.install(&mut run)),
                None => b.iter(&mut run),
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_r1_to_dl1, bench_r0_to_dl1);
criterion_main!(benches);
