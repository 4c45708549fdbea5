//! Cleaning kernels on the 30 LSTCam (1855 pixels) events of `lst_muons`; throughput in
//! telescope events per second on one core.
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/cpu_time.rs"]
mod cpu_time;

use std::hint::black_box;

use cascade_image::cleaning::{
    CleaningWorkspace, FactParams, TailcutsParams, TimeConstrainedParams, fact_image_cleaning,
    mars_cleaning_1st_pass, number_of_islands, tailcuts_clean, time_constrained_clean,
};
use cascade_testdata::Table;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

const STEM: &str = "lst_muons";

fn cleaning(c: &mut Criterion) {
    let cameras = common::cameras(STEM);
    let table = Table::reference(STEM, "cleaning");
    let tel_id = table.i64("tel_id")[0];
    let camera = &cameras[&tel_id];
    let neighbors = &camera.neighbors;
    let images = common::f32_lists(&table, "image");
    let peak_times = common::f32_lists(&table, "peak_time");
    let n = camera.n_pixels();
    let mut workspace = CleaningWorkspace::default();
    let mut mask = vec![false; n];
    let mut labels = vec![0i32; n];
    let params = TailcutsParams::default();

    let mut group = c.benchmark_group(format!("cleaning/{STEM}_{n}px"));
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(images.len() as u64));
    group.bench_function("tailcuts_clean_10_5_2", |b| {
        b.iter_custom(|iters| {
            cpu_time::measure(iters, || {
                for image in &images {
                    tailcuts_clean(neighbors, image, &params, &mut workspace, &mut mask).unwrap();
                    black_box(&mask);
                }
            })
        })
    });
    group.bench_function("mars_cleaning_1st_pass_10_5", |b| {
        b.iter_custom(|iters| {
            cpu_time::measure(iters, || {
                for image in &images {
                    mars_cleaning_1st_pass(neighbors, image, &params, &mut workspace, &mut mask)
                        .unwrap();
                    black_box(&mask);
                }
            })
        })
    });
    group.bench_function("fact_image_cleaning", |b| {
        b.iter_custom(|iters| {
            cpu_time::measure(iters, || {
                for (image, peak_time) in images.iter().zip(&peak_times) {
                    fact_image_cleaning(
                        neighbors,
                        image,
                        peak_time,
                        &FactParams::default(),
                        &mut workspace,
                        &mut mask,
                    )
                    .unwrap();
                    black_box(&mask);
                }
            })
        })
    });
    group.bench_function("time_constrained_clean", |b| {
        b.iter_custom(|iters| {
            cpu_time::measure(iters, || {
                for (image, peak_time) in images.iter().zip(&peak_times) {
                    time_constrained_clean(
                        neighbors,
                        image,
                        peak_time,
                        &TimeConstrainedParams::default(),
                        &mut workspace,
                        &mut mask,
                    )
                    .unwrap();
                    black_box(&mask);
                }
            })
        })
    });
    group.bench_function("tailcuts_clean_and_number_of_islands", |b| {
        b.iter_custom(|iters| {
            cpu_time::measure(iters, || {
                for image in &images {
                    tailcuts_clean(neighbors, image, &params, &mut workspace, &mut mask).unwrap();
                    black_box(&mask);
                    black_box(
                        number_of_islands(neighbors, &mask, &mut labels, &mut workspace).unwrap(),
                    );
                }
            })
        })
    });
    group.finish();
}

/// Tail cuts on the 40,000-pixel square camera of `square_40k_pixels` (2 events).
fn cleaning_large_camera(c: &mut Criterion) {
    const LARGE: &str = "square_40k_pixels";
    let cameras = common::cameras(LARGE);
    let table = Table::reference(LARGE, "cleaning");
    let tel_id = table.i64("tel_id")[0];
    let camera = &cameras[&tel_id];
    let images = common::f32_lists(&table, "image");
    let mut workspace = CleaningWorkspace::default();
    let mut mask = vec![false; camera.n_pixels()];
    let mut group = c.benchmark_group(format!("cleaning/{LARGE}_{}px", camera.n_pixels()));
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(images.len() as u64));
    group.bench_function("tailcuts_clean_10_5_2", |b| {
        b.iter_custom(|iters| {
            cpu_time::measure(iters, || {
                for image in &images {
                    tailcuts_clean(
                        &camera.neighbors,
                        image,
                        &TailcutsParams::default(),
                        &mut workspace,
                        &mut mask,
                    )
                    .unwrap();
                    black_box(&mask);
                }
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = cpu_time::criterion();
    targets = cleaning, cleaning_large_camera
}
criterion_main!(benches);
