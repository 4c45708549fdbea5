//! Conformance of the reader with ctapipe 0.28 on every shared sim_telarray file: instrument
//! (geometry reference), raw waveforms and event ids (dl1 reference), shower truth (dl2
//! reference).

use std::collections::{BTreeMap, BTreeSet};

use cascade_simtel::SimtelReader;
use cascade_testdata::{STEMS, Table, simtel_path};

fn open(stem: &str) -> SimtelReader {
    SimtelReader::open(simtel_path(stem)).unwrap_or_else(|e| panic!("{stem}: {e}"))
}

fn close(a: f64, b: f64, abs: f64, rel: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= abs + rel * b.abs()
}

/// Rows of the geometry reference grouped by telescope id.
fn rows_by_tel(table: &Table) -> BTreeMap<u16, Vec<usize>> {
    let mut rows: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
    for (row, tel_id) in table.i64("tel_id").into_iter().enumerate() {
        rows.entry(tel_id as u16).or_default().push(row);
    }
    rows
}

#[test]
fn geometry_matches_reference() {
    for stem in STEMS {
        let reader = open(stem);
        let subarray = reader.subarray();
        let reference = Table::reference(stem, "geometry");
        let rows = rows_by_tel(&reference);
        let tel_ids: Vec<u16> = subarray.tel_ids().collect();
        assert_eq!(
            tel_ids,
            rows.keys().copied().collect::<Vec<_>>(),
            "{stem}: telescope ids"
        );

        let camera_name = reference.str("camera_name");
        let tel_type = reference.str("tel_type");
        let size_type = reference.str("tel_size_type");
        let optics_name = reference.str("optics_name");
        let n_mirrors = reference.i64("n_mirrors");
        let pix_x = reference.f64("pix_x_m");
        let pix_y = reference.f64("pix_y_m");
        let pix_area = reference.f64("pix_area_m2");
        let pix_type = reference.str("pix_type");
        let pix_rotation = reference.f64("pix_rotation_deg");
        let cam_rotation = reference.f64("cam_rotation_deg");
        let neighbors = reference.list_i64("neighbors");
        let equivalent = reference.f64("equivalent_focal_length_m");
        let effective = reference.f64("effective_focal_length_m");
        let mirror_area = reference.f64("mirror_area_m2");
        let position = [
            reference.f64("tel_pos_x_m"),
            reference.f64("tel_pos_y_m"),
            reference.f64("tel_pos_z_m"),
        ];
        let n_channels = reference.i64("n_channels");
        let n_samples = reference.i64("n_samples");
        let sampling_rate = reference.f64("sampling_rate_ghz");

        for (&tel_id, tel_rows) in &rows {
            let what = format!("{stem} tel {tel_id}");
            let first = tel_rows[0];
            let telescope = subarray.telescope(tel_id).expect("telescope in subarray");
            let names = &reader.telescope_names()[&tel_id];
            let camera = &telescope.camera;
            assert_eq!(camera.name, camera_name[first], "{what}: camera name");
            assert_eq!(telescope.name, tel_type[first], "{what}: telescope type");
            assert_eq!(names.size_type, size_type[first], "{what}: size type");
            assert_eq!(
                telescope.optics.name, optics_name[first],
                "{what}: optics name"
            );
            assert_eq!(
                i64::from(names.n_mirrors),
                n_mirrors[first],
                "{what}: n_mirrors"
            );
            assert_eq!(
                camera.pix_type.as_str(),
                pix_type[first],
                "{what}: pixel type"
            );
            assert!(
                close(camera.pix_rotation_deg, pix_rotation[first], 1e-6, 0.0),
                "{what}: pix rotation {} vs {}",
                camera.pix_rotation_deg,
                pix_rotation[first]
            );
            assert!(
                close(camera.cam_rotation_deg, cam_rotation[first], 1e-6, 0.0),
                "{what}: cam rotation"
            );
            assert_eq!(camera.n_pixels(), tel_rows.len(), "{what}: n_pixels");
            for (pixel, &row) in tel_rows.iter().enumerate() {
                assert!(
                    close(camera.pix_x_m[pixel], pix_x[row], 1e-6, 0.0),
                    "{what} pixel {pixel}: x"
                );
                assert!(
                    close(camera.pix_y_m[pixel], pix_y[row], 1e-6, 0.0),
                    "{what} pixel {pixel}: y"
                );
                assert!(
                    close(camera.pix_area_m2[pixel], pix_area[row], 0.0, 1e-6),
                    "{what} pixel {pixel}: area"
                );
                let ours: BTreeSet<i64> = camera
                    .neighbors
                    .of(pixel)
                    .iter()
                    .map(|&n| i64::from(n))
                    .collect();
                let theirs: BTreeSet<i64> = neighbors[row].iter().copied().collect();
                assert_eq!(ours, theirs, "{what} pixel {pixel}: neighbours");
            }
            let optics = &telescope.optics;
            assert!(
                close(
                    optics.equivalent_focal_length_m,
                    equivalent[first],
                    0.0,
                    1e-7
                ),
                "{what}: equivalent f"
            );
            assert!(
                close(optics.effective_focal_length_m, effective[first], 0.0, 1e-7),
                "{what}: effective f"
            );
            assert!(
                close(optics.mirror_area_m2, mirror_area[first], 0.0, 1e-7),
                "{what}: mirror area"
            );
            let ours = subarray.positions_m[&tel_id];
            for axis in 0..3 {
                assert!(
                    close(ours[axis], position[axis][first], 1e-3, 0.0),
                    "{what}: position {axis}"
                );
            }
            let calibration = reader.calibration(tel_id).expect("calibration");
            assert_eq!(
                calibration.n_gains as i64, n_channels[first],
                "{what}: n_channels"
            );
            assert_eq!(
                calibration.n_samples as i64, n_samples[first],
                "{what}: n_samples"
            );
            assert!(
                close(
                    calibration.sampling_rate_ghz,
                    sampling_rate[first],
                    0.0,
                    1e-7
                ),
                "{what}: sampling rate"
            );
        }
    }
}

#[test]
fn events_match_reference() {
    for stem in STEMS {
        let mut reader = open(stem);
        let dl1 = Table::reference(stem, "dl1");
        let dl2 = Table::reference(stem, "dl2");

        let keys: Vec<(i64, i64, i64)> = {
            let (o, e, t) = (dl1.i64("obs_id"), dl1.i64("event_id"), dl1.i64("tel_id"));
            (0..dl1.n_rows()).map(|i| (o[i], e[i], t[i])).collect()
        };
        let row_of: BTreeMap<(i64, i64, i64), usize> =
            keys.iter().enumerate().map(|(i, &k)| (k, i)).collect();
        let sum_gain0 = dl1.list_i64("r0_sum_gain0");
        let sum_gain1 = dl1.list_i64("r0_sum_gain1");
        let n_gains_ref = dl1.i64("r0_n_gains");
        let n_samples_ref = dl1.i64("r0_n_samples");
        let alt_ref = dl1.f64("pointing_alt_deg");
        let az_ref = dl1.f64("pointing_az_deg");

        let truth_row: BTreeMap<i64, usize> = dl2
            .i64("event_id")
            .into_iter()
            .enumerate()
            .map(|(i, e)| (e, i))
            .collect();
        let truth_columns = [
            "true_energy_TeV",
            "true_alt_deg",
            "true_az_deg",
            "true_core_x_m",
            "true_core_y_m",
            "true_h_first_int_m",
            "true_x_max_g_cm2",
        ]
        .map(|c| dl2.f64(c));
        let primary = dl2.i64("true_shower_primary_id");

        let mut seen = BTreeSet::new();
        let mut events = BTreeSet::new();
        while let Some(event) = reader
            .next_event()
            .unwrap_or_else(|e| panic!("{stem}: {e}"))
        {
            events.insert(event.event_id);
            let what = format!("{stem} event {}", event.event_id);
            let row = *truth_row
                .get(&event.event_id)
                .unwrap_or_else(|| panic!("{what}: not in dl2"));
            let shower = event.shower.unwrap_or_else(|| panic!("{what}: no shower"));
            let ours = [
                shower.energy_tev,
                shower.alt_deg,
                shower.az_deg,
                shower.core_x_m,
                shower.core_y_m,
                shower.h_first_int_m,
                shower.x_max_g_cm2,
            ];
            for (k, column) in truth_columns.iter().enumerate() {
                assert!(
                    close(ours[k], column[row], 1e-9, 1e-6),
                    "{what}: truth {k}: {} vs {}",
                    ours[k],
                    column[row]
                );
            }
            assert_eq!(
                i64::from(shower.shower_primary_id),
                primary[row],
                "{what}: primary"
            );

            for tel in &event.telescopes {
                let key = (event.obs_id, event.event_id, i64::from(tel.tel_id));
                seen.insert(key);
                let what = format!("{what} tel {}", tel.tel_id);
                let Some(&row) = row_of.get(&key) else {
                    continue;
                };
                assert_eq!(tel.n_gains as i64, n_gains_ref[row], "{what}: n_gains");
                assert_eq!(
                    tel.n_samples as i64, n_samples_ref[row],
                    "{what}: n_samples"
                );
                assert!(
                    close(tel.pointing_alt_deg, alt_ref[row], 1e-9, 1e-6),
                    "{what}: pointing alt {} vs {}",
                    tel.pointing_alt_deg,
                    alt_ref[row]
                );
                assert!(
                    close(tel.pointing_az_deg, az_ref[row], 1e-9, 1e-6),
                    "{what}: pointing az {} vs {}",
                    tel.pointing_az_deg,
                    az_ref[row]
                );
                for (gain, reference) in [&sum_gain0[row], &sum_gain1[row]].into_iter().enumerate()
                {
                    if gain >= tel.n_gains {
                        assert!(reference.is_empty(), "{what}: reference has gain {gain}");
                        continue;
                    }
                    let block = tel.n_pixels * tel.n_samples;
                    let sums: Vec<i64> = tel.waveforms[gain * block..(gain + 1) * block]
                        .chunks_exact(tel.n_samples)
                        .map(|w| w.iter().map(|&s| i64::from(s)).sum())
                        .collect();
                    assert_eq!(sums.len(), reference.len(), "{what}: pixels of gain {gain}");
                    if let Some(pixel) = (0..sums.len()).find(|&p| sums[p] != reference[p]) {
                        panic!(
                            "{what}: r0 sum of gain {gain} pixel {pixel}: {} vs {}",
                            sums[pixel], reference[pixel]
                        );
                    }
                }
            }
        }
        let expected: BTreeSet<(i64, i64, i64)> = keys.into_iter().collect();
        assert_eq!(seen, expected, "{stem}: (obs_id, event_id, tel_id) set");
        assert_eq!(events.len(), truth_row.len(), "{stem}: array events");
        let stats = reader.stats();
        assert_eq!(
            stats.telescope_events as usize,
            expected.len(),
            "{stem}: stats"
        );
    }
}

#[test]
fn calibration_is_complete_for_every_telescope_event() {
    let mut reader = open("hess1u_gamma");
    let event = reader.next_event().expect("readable").expect("one event");
    for tel in &event.telescopes {
        let calibration = tel.calibration.as_ref().expect("calibration attached");
        let n = calibration.n_gains * calibration.n_pixels;
        assert_eq!(calibration.pedestal_per_sample.len(), n);
        assert_eq!(calibration.dc_to_pe.len(), n);
        assert!(calibration.n_ped_slices > 0);
        assert_eq!(calibration.reference_pulse_shape.len(), calibration.n_gains);
        assert!(calibration.reference_pulse_sample_width_ns > 0.0);
    }
}

#[test]
fn plain_gzip_and_zstd_inputs_read_the_same() {
    use std::io::{Read, Write};

    let compressed = std::fs::read(simtel_path("hess1u_gamma")).expect("read");
    let mut plain = Vec::new();
    zstd::stream::read::Decoder::new(&compressed[..])
        .expect("zstd")
        .read_to_end(&mut plain)
        .expect("decompress");
    let dir = std::env::temp_dir().join(format!("cascade-simtel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let plain_path = dir.join("hess1u_gamma.simtel");
    std::fs::write(&plain_path, &plain).expect("write plain");
    let gzip_path = dir.join("hess1u_gamma.simtel.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&plain).expect("gzip");
    std::fs::write(&gzip_path, encoder.finish().expect("gzip")).expect("write gzip");

    let read_all = |path: &std::path::Path| {
        let mut reader = SimtelReader::open(path).expect("open");
        let mut events = Vec::new();
        while let Some(event) = reader.next_event().expect("event") {
            events.push(event);
        }
        (reader.compression(), events, reader.stats().bytes_read)
    };
    let (zstd_kind, zstd_events, zstd_bytes) = read_all(&simtel_path("hess1u_gamma"));
    let (plain_kind, plain_events, plain_bytes) = read_all(&plain_path);
    let (gzip_kind, gzip_events, gzip_bytes) = read_all(&gzip_path);
    std::fs::remove_dir_all(&dir).expect("clean up");
    use cascade_simtel::input::Compression;
    assert_eq!(
        (zstd_kind, plain_kind, gzip_kind),
        (Compression::Zstd, Compression::None, Compression::Gzip)
    );
    assert_eq!(zstd_events, plain_events);
    assert_eq!(zstd_events, gzip_events);
    assert_eq!(
        (zstd_bytes, plain_bytes, gzip_bytes),
        (plain.len() as u64, plain.len() as u64, plain.len() as u64)
    );
}

#[test]
fn skipping_pixel_timing_changes_nothing_else() {
    let mut with_timing = open("lst_muons");
    let mut without = open("lst_muons").with_pixel_timing(false);
    let mut n_with_timing = 0;
    while let Some(mut event) = with_timing.next_event().expect("readable") {
        let skipped = without
            .next_event()
            .expect("readable")
            .expect("as many events");
        for (telescope, skipped) in event.telescopes.iter_mut().zip(&skipped.telescopes) {
            assert!(skipped.pixel_timing.is_none());
            n_with_timing += usize::from(telescope.pixel_timing.take().is_some());
        }
        assert_eq!(event, skipped);
    }
    assert!(without.next_event().expect("readable").is_none());
    // The file stores pixel timing, so the test compares something.
    assert!(n_with_timing > 0);
}
