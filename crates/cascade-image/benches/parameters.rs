//! Image parameters on the 30 LSTCam (1855 pixels) events of `lst_muons` with ctapipe's
//! default mask, in the telescope frame like ctapipe's `ImageProcessor`; throughput in
//! telescope events per second on one core.
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/cpu_time.rs"]
mod cpu_time;

use std::hint::black_box;

use cascade_image::cleaning::{CleaningWorkspace, TailcutsParams, tailcuts_clean};
use cascade_image::params::{
    Frame, ParameterWorkspace, TimingWorkspace, hillas_parameters, image_parameters,
    timing_parameters,
};
use cascade_testdata::Table;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

const STEM: &str = "lst_muons";

fn parameters(c: &mut Criterion) {
    let cameras = common::cameras(STEM);
    let table = Table::reference(STEM, "dl1");
    let tel_id = table.i64("tel_id")[0];
    let camera = &cameras[&tel_id];
    let geometry = camera.geometry(Frame::Telescope);
    let pixels = geometry.pixels();
    let images = common::f32_lists(&table, "image");
    let peak_times = common::f32_lists(&table, "peak_time");
    let masks = table.list_bool("image_mask");
    let n = camera.n_pixels();
    let mut workspace = ParameterWorkspace::default();
    let mut timing_workspace = TimingWorkspace::default();
    let mut cleaning_workspace = CleaningWorkspace::default();
    let mut mask = vec![false; n];

    let mut group = c.benchmark_group(format!("parameters/{STEM}_{n}px"));
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(images.len() as u64));
    group.bench_function("hillas_parameters", |b| {
        b.iter_custom(|iters| {
            cpu_time::measure(iters, || {
                for (image, mask) in images.iter().zip(&masks) {
                    black_box(hillas_parameters(&pixels, image, mask).unwrap());
                }
            })
        })
    });
    group.bench_function("timing_parameters", |b| {
        let hillas: Vec<_> = images
            .iter()
            .zip(&masks)
            .map(|(image, mask)| hillas_parameters(&pixels, image, mask).unwrap())
            .collect();
        b.iter_custom(|iters| {
            cpu_time::measure(iters, || {
                for (((image, peak_time), mask), hillas) in
                    images.iter().zip(&peak_times).zip(&masks).zip(&hillas)
                {
                    black_box(
                        timing_parameters(
                            &pixels,
                            image,
                            peak_time,
                            mask,
                            hillas,
                            &mut timing_workspace,
                        )
                        .unwrap(),
                    );
                }
            })
        })
    });
    group.bench_function("image_parameters_all", |b| {
        b.iter_custom(|iters| {
            cpu_time::measure(iters, || {
                for ((image, peak_time), mask) in images.iter().zip(&peak_times).zip(&masks) {
                    black_box(
                        image_parameters(
                            &geometry,
                            image,
                            Some(peak_time.as_slice()),
                            mask,
                            &mut workspace,
                        )
                        .unwrap(),
                    );
                }
            })
        })
    });
    group.bench_function("tailcuts_clean_and_image_parameters", |b| {
        b.iter_custom(|iters| {
            cpu_time::measure(iters, || {
                for (image, peak_time) in images.iter().zip(&peak_times) {
                    tailcuts_clean(
                        geometry.neighbors(),
                        image,
                        &TailcutsParams::default(),
                        &mut cleaning_workspace,
                        &mut mask,
                    )
                    .unwrap();
                    black_box(&mask);
                    black_box(
                        image_parameters(
                            &geometry,
                            image,
                            Some(peak_time.as_slice()),
                            &mask,
                            &mut workspace,
                        )
                        .unwrap(),
                    );
                }
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = cpu_time::criterion();
    targets = parameters
}
criterion_main!(benches);
