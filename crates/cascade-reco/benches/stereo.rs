//! Stereo reconstruction throughput (array events per second on one core) on the real
//! array events of the shared data, from ctapipe's DL1 parameters, next to ctapipe's
//! `ShowerProcessor` figure for the same file (`reference/ctapipe_throughput.json`).
//!
//! Run: `cargo bench -p cascade-reco --bench stereo`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::hint::black_box;

use cascade_instrument::frames::AltAz;
use cascade_reco::{
    ArrayEvent, HillasParameters, ReconstructorType, StereoQualityQuery, TelescopeEvent,
    camera_radius_deg,
};
use cascade_testdata::{Table, data_dir};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// The files with multi-telescope events that ctapipe's throughput study measured.
const FILES: [(&str, &str); 2] = [
    (
        "proton_north_alpha_run201",
        "proton_north_alpha_run201.simtel.zst",
    ),
    (
        "gamma_prod6_lst_nectarcam",
        "gamma_prod6_lst_nectarcam.simtel.zst",
    ),
];

/// One array event's inputs.
struct Event {
    array_pointing: AltAz,
    telescopes: Vec<TelescopeEvent>,
}

fn load_events(stem: &str) -> (Vec<Event>, f64) {
    let geometry = Table::reference(stem, "geometry");
    let tel_ids = geometry.i64("tel_id");
    let (pix_x, pix_y) = (geometry.f64("pix_x_m"), geometry.f64("pix_y_m"));
    let border = geometry.bool("border_width_1");
    let focal = geometry.f64("frame_focal_length_m");
    let pos = ["tel_pos_x_m", "tel_pos_y_m", "tel_pos_z_m"].map(|c| geometry.f64(c));
    let mut static_data: BTreeMap<i64, ([f64; 3], f64)> = BTreeMap::new();
    let mut start = 0;
    while start < tel_ids.len() {
        let end = start
            + tel_ids[start..]
                .iter()
                .take_while(|&&t| t == tel_ids[start])
                .count();
        let radius = camera_radius_deg(
            &pix_x[start..end],
            &pix_y[start..end],
            &border[start..end],
            focal[start],
        );
        static_data.insert(
            tel_ids[start],
            ([pos[0][start], pos[1][start], pos[2][start]], radius),
        );
        start = end;
    }

    let dl1 = Table::reference(stem, "dl1");
    let (event_id, tel_id) = (dl1.i64("event_id"), dl1.i64("tel_id"));
    let c = [
        "hillas_fov_lon",
        "hillas_fov_lat",
        "hillas_psi",
        "hillas_length",
        "hillas_width",
        "hillas_intensity",
        "leakage_intensity_width_2",
        "pointing_alt_deg",
        "pointing_az_deg",
    ]
    .map(|name| dl1.f64(name));
    let n_pixels = dl1.i64("morphology_n_pixels");
    let mut by_event: BTreeMap<i64, Vec<TelescopeEvent>> = BTreeMap::new();
    for row in 0..dl1.n_rows() {
        let (position_m, camera_radius_deg) = static_data[&tel_id[row]];
        by_event
            .entry(event_id[row])
            .or_default()
            .push(TelescopeEvent {
                tel_id: u16::try_from(tel_id[row]).unwrap(),
                hillas: HillasParameters {
                    fov_lon_deg: c[0][row],
                    fov_lat_deg: c[1][row],
                    psi_deg: c[2][row],
                    length_deg: c[3][row],
                    width_deg: c[4][row],
                    intensity_pe: c[5][row],
                },
                morphology_n_pixels: n_pixels[row],
                leakage_intensity_width_2: c[6][row],
                pointing: AltAz {
                    alt_deg: c[7][row],
                    az_deg: c[8][row],
                },
                position_m,
                camera_radius_deg,
            });
    }

    let dl2 = Table::reference(stem, "dl2");
    let (alt, az, ids) = (
        dl2.f64("pointing_alt_deg"),
        dl2.f64("pointing_az_deg"),
        dl2.i64("event_id"),
    );
    let events = (0..dl2.n_rows())
        .map(|row| Event {
            array_pointing: AltAz {
                alt_deg: alt[row],
                az_deg: az[row],
            },
            telescopes: by_event.remove(&ids[row]).unwrap_or_default(),
        })
        .collect();

    let meta_path = data_dir()
        .join("reference")
        .join(format!("{stem}.meta.json"));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(meta_path).unwrap()).unwrap();
    let observation_level_m = meta["subarray"]["reference_location"]["height_m"]
        .as_f64()
        .unwrap();
    (events, observation_level_m)
}

/// ctapipe's ShowerProcessor rate for a file (array events/s, CPU time, median run).
fn ctapipe_rate(file_name: &str) -> Option<f64> {
    let path = data_dir().join("reference").join("ctapipe_throughput.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    json["files"]
        .as_array()?
        .iter()
        .find(|f| f["name"] == file_name)?["in_memory"]["c_ShowerProcessor"]["rate_cpu_median"]
        .as_f64()
}

fn bench_stereo(c: &mut Criterion) {
    let query = StereoQualityQuery::default();
    for (stem, file_name) in FILES {
        let (events, observation_level_m) = load_events(stem);
        if let Some(rate) = ctapipe_rate(file_name) {
            println!(
                "{stem}: ctapipe ShowerProcessor (HillasReconstructor) {rate:.1} array events/s"
            );
        }
        let mut group = c.benchmark_group(format!("stereo/{stem}"));
        group.throughput(Throughput::Elements(events.len() as u64));
        for kind in [
            ReconstructorType::HillasReconstructor,
            ReconstructorType::HillasIntersection,
        ] {
            group.bench_function(kind.name(), |b| {
                b.iter(|| {
                    for event in &events {
                        let array_event = ArrayEvent {
                            array_pointing: event.array_pointing,
                            observation_level_m,
                            telescopes: &event.telescopes,
                        };
                        black_box(kind.reconstruct(black_box(&array_event), &query).unwrap());
                    }
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_stereo);
criterion_main!(benches);
