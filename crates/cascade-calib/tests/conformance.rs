//! Conformance with ctapipe 0.28 on the shared sim_telarray files: R0 -> DL1 with the
//! default chain for every telescope event of every file, compared pixel by pixel with the
//! reference `image` (p.e.), `peak_time` (ns) and `selected_gain_channel`.
//!
//! Tolerance: 1e-3 absolute or 1e-4 relative for image and peak time; gains equal.

use std::collections::{BTreeMap, HashMap};

mod common;

use cascade_calib::{
    CalibrationConfig, CalibrationScratch, CameraCalibrator, QuantizedWaveforms, R1Config, r0_to_r1,
};
use cascade_simtel::SimtelReader;
use cascade_testdata::{STEMS, Table, simtel_path};
use common::{readout, telescope_calibration};
use ndarray::{Array2, Array3, Array4};

/// The reference DL1 rows of one file, by (event_id, tel_id).
struct Reference {
    rows: HashMap<(i64, i64), usize>,
    image: Vec<Vec<f64>>,
    peak_time: Vec<Vec<f64>>,
    selected_gain_channel: Vec<Vec<i64>>,
}

impl Reference {
    fn load(stem: &str) -> Self {
        let table = Table::reference(stem, "dl1");
        let rows = table
            .i64("event_id")
            .into_iter()
            .zip(table.i64("tel_id"))
            .enumerate()
            .map(|(row, key)| (key, row))
            .collect();
        Self {
            rows,
            image: table.list_f64("image"),
            peak_time: table.list_f64("peak_time"),
            selected_gain_channel: table.list_i64("selected_gain_channel"),
        }
    }
}

fn close(actual: f64, expected: f64) -> bool {
    let difference = (actual - expected).abs();
    difference <= 1e-3
        || difference <= 1e-4 * expected.abs()
        || (actual.is_nan() && expected.is_nan())
}

#[test]
fn r0_to_dl1_matches_ctapipe_on_every_shared_file() {
    let config = CalibrationConfig::default();
    let mut summary = Vec::new();
    for stem in STEMS {
        let reference = Reference::load(stem);
        let mut reader = SimtelReader::open(simtel_path(stem)).expect("readable file");
        let mut calibrators: BTreeMap<u16, CameraCalibrator> = BTreeMap::new();
        let mut n_telescope_events = 0;
        let mut failures = Vec::new();
        while let Some(event) = reader.next_event().expect("readable event") {
            for tel in &event.telescopes {
                let row = reference.rows[&(event.event_id, i64::from(tel.tel_id))];
                let file_calibration = tel
                    .calibration
                    .as_ref()
                    .expect("calibration for telescope event");
                let calibrator = calibrators.entry(tel.tel_id).or_insert_with(|| {
                    let telescope = reader.subarray().telescope(tel.tel_id).expect("telescope");
                    CameraCalibrator::new(
                        &config,
                        &readout(file_calibration),
                        &telescope.camera.neighbors,
                    )
                    .expect("calibrator")
                });
                let (n_gains, n_pixels, n_samples) = (tel.n_gains, tel.n_pixels, tel.n_samples);
                let r0 = Array4::from_shape_vec(
                    (1, n_gains, n_pixels, n_samples),
                    tel.waveforms.clone(),
                )
                .expect("[gain][pixel][sample] waveforms");
                let mut gains = Array2::<i8>::zeros((1, n_pixels));
                let mut image = Array2::<f32>::zeros((1, n_pixels));
                let mut peak_time = Array2::<f32>::zeros((1, n_pixels));
                calibrator
                    .r0_to_dl1(
                        r0.view(),
                        &telescope_calibration(file_calibration),
                        gains.view_mut(),
                        image.view_mut(),
                        peak_time.view_mut(),
                    )
                    .expect("r0_to_dl1");
                assert_eq!(reference.image[row].len(), n_pixels, "{stem}: pixel count");
                for pixel in 0..n_pixels {
                    let what = format!(
                        "{stem} event {} tel {} pixel {pixel}",
                        event.event_id, tel.tel_id
                    );
                    let (expected_image, expected_time) =
                        (reference.image[row][pixel], reference.peak_time[row][pixel]);
                    if !close(f64::from(image[[0, pixel]]), expected_image) {
                        failures.push(format!(
                            "{what}: image {} vs {expected_image}",
                            image[[0, pixel]]
                        ));
                    }
                    if !close(f64::from(peak_time[[0, pixel]]), expected_time) {
                        failures.push(format!(
                            "{what}: peak_time {} vs {expected_time}",
                            peak_time[[0, pixel]]
                        ));
                    }
                    if i64::from(gains[[0, pixel]]) != reference.selected_gain_channel[row][pixel] {
                        failures.push(format!(
                            "{what}: selected_gain_channel {}",
                            gains[[0, pixel]]
                        ));
                    }
                }
                n_telescope_events += 1;
            }
        }
        assert!(
            failures.is_empty(),
            "{} mismatches, first: {:#?}",
            failures.len(),
            &failures[..failures.len().min(10)]
        );
        assert_eq!(
            n_telescope_events,
            reference.rows.len(),
            "{stem}: telescope events"
        );
        summary.push(format!("{stem}: {n_telescope_events} telescope events"));
    }
    println!("{}", summary.join("\n"));
}

/// CTAO's R1 stream stores `uint16` samples with a scale and an offset (see
/// `QuantizedWaveforms`). On the R1 of every telescope event of every shared file, stored
/// that way (scale 80 and offset 5, as in ctapipe_io_zfits' tests), the calibration of
/// the stored samples equals the calibration of the `f32` values they stand for, bit for
/// bit: on the real cameras' neighbours, tiles and sample counts (25 to 128).
#[test]
fn quantized_r1_calibrates_as_its_converted_samples_on_every_shared_file() {
    let config = CalibrationConfig::default();
    let (scale, offset) = (80.0_f32, 5.0_f32);
    let mut scratch = CalibrationScratch::default();
    for stem in STEMS {
        let mut reader = SimtelReader::open(simtel_path(stem)).expect("readable file");
        let mut calibrators: BTreeMap<u16, CameraCalibrator> = BTreeMap::new();
        while let Some(event) = reader.next_event().expect("readable event") {
            for tel in &event.telescopes {
                let file_calibration = tel.calibration.as_ref().expect("calibration");
                let calibrator = calibrators.entry(tel.tel_id).or_insert_with(|| {
                    let telescope = reader.subarray().telescope(tel.tel_id).expect("telescope");
                    CameraCalibrator::new(
                        &config,
                        &readout(file_calibration),
                        &telescope.camera.neighbors,
                    )
                    .expect("calibrator")
                });
                let calibration = telescope_calibration(file_calibration);
                let (n_gains, n_pixels, n_samples) = (tel.n_gains, tel.n_pixels, tel.n_samples);
                let r0 = Array4::from_shape_vec(
                    (1, n_gains, n_pixels, n_samples),
                    tel.waveforms.clone(),
                )
                .expect("[gain][pixel][sample] waveforms");
                let mut r1 = Array3::<f32>::zeros((1, n_pixels, n_samples));
                let mut gains = Array2::<i8>::zeros((1, n_pixels));
                r0_to_r1(
                    r0.view(),
                    &calibration,
                    &R1Config::default(),
                    r1.view_mut(),
                    gains.view_mut(),
                )
                .expect("r0_to_r1");
                let stored: Vec<u16> = r1
                    .iter()
                    .map(|&value| ((value + offset) * scale).round().clamp(0.0, 65535.0) as u16)
                    .collect();
                let quantized = QuantizedWaveforms {
                    values: &stored,
                    scale,
                    offset,
                };
                let mut converted = Vec::new();
                quantized.convert_into(&mut converted);
                let gains = gains.as_slice().expect("contiguous");
                let mut run = |quantized_input: bool| {
                    let (mut image, mut peak_time) = (vec![0.0f32; n_pixels], vec![0.0; n_pixels]);
                    let result = if quantized_input {
                        calibrator.r1_quantized_to_dl1_event(
                            quantized,
                            n_samples,
                            gains,
                            &calibration,
                            &mut scratch,
                            &mut image,
                            &mut peak_time,
                        )
                    } else {
                        calibrator.r1_to_dl1_event(
                            &converted,
                            n_samples,
                            gains,
                            &calibration,
                            &mut scratch,
                            &mut image,
                            &mut peak_time,
                        )
                    };
                    result.expect("r1 -> dl1");
                    let bits = |values: Vec<f32>| values.into_iter().map(f32::to_bits).collect();
                    (bits(image), bits(peak_time))
                };
                let (expected, got): ((Vec<u32>, Vec<u32>), _) = (run(false), run(true));
                assert!(
                    expected == got,
                    "{stem} event {} tel {}: quantized and converted R1 differ",
                    event.event_id,
                    tel.tel_id
                );
            }
        }
    }
}
