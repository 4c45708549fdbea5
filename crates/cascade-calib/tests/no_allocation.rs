//! The calibration kernels allocate nothing per event once their scratch space has grown:
//! every telescope event of three shared files (LSTCam with 30 and 40 samples, NectarCam
//! with 60, the nine telescopes of a prod6 array with their broken pixels), calibrated by
//! every extractor from R0, from R1 and from R1 stored as CTAO's camera stream stores it
//! (`uint16` with a scale and an offset), makes no heap allocation on a second pass.

mod common;

use std::collections::BTreeMap;

use cascade_calib::r1::r0_to_r1_event;
use cascade_calib::{
    CalibrationConfig, CalibrationScratch, CameraCalibrator, ImageExtractorConfig,
    QuantizedWaveforms, R1Config, TelescopeCalibration,
};
use cascade_simtel::SimtelReader;
use cascade_testdata::allocations::{CountingAllocator, allocations_during};
use cascade_testdata::simtel_path;
use common::{readout, telescope_calibration};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const STEMS: [&str; 3] = [
    "lst_muons",
    "gamma_prod6_lst_nectarcam",
    "proton_north_alpha_run201",
];

/// One telescope event held in memory with its outputs, so the passes allocate nothing
/// themselves.
struct TelescopeEvent {
    /// (file, telescope): the key of its calibrator.
    camera: (usize, u16),
    n_samples: usize,
    r0: Vec<u16>,
    r1: Vec<f32>,
    /// `r1` stored with scale 80 and offset 5.
    r1_quantized: Vec<u16>,
    calibration: TelescopeCalibration,
    selected_gain_channel: Vec<i8>,
    image: Vec<f32>,
    peak_time: Vec<f32>,
}

/// One pass over `events` through R0 -> DL1 and R1 -> DL1.
fn calibrate(
    events: &mut [TelescopeEvent],
    calibrators: &BTreeMap<(usize, u16), CameraCalibrator>,
    scratch: &mut CalibrationScratch,
) {
    for event in events {
        let calibrator = &calibrators[&event.camera];
        calibrator
            .r0_to_dl1_event(
                &event.r0,
                event.n_samples,
                &event.calibration,
                scratch,
                &mut event.selected_gain_channel,
                &mut event.image,
                &mut event.peak_time,
            )
            .expect("r0_to_dl1_event");
        calibrator
            .r1_to_dl1_event(
                &event.r1,
                event.n_samples,
                &event.selected_gain_channel,
                &event.calibration,
                scratch,
                &mut event.image,
                &mut event.peak_time,
            )
            .expect("r1_to_dl1_event");
        let quantized = QuantizedWaveforms {
            values: &event.r1_quantized,
            scale: 80.0,
            offset: 5.0,
        };
        calibrator
            .r1_quantized_to_dl1_event(
                quantized,
                event.n_samples,
                &event.selected_gain_channel,
                &event.calibration,
                scratch,
                &mut event.image,
                &mut event.peak_time,
            )
            .expect("r1_quantized_to_dl1_event");
    }
}

#[test]
fn calibration_allocates_nothing_per_event() {
    let mut events = Vec::new();
    let mut cameras = BTreeMap::new();
    for (file, stem) in STEMS.iter().enumerate() {
        let mut reader = SimtelReader::open(simtel_path(stem)).expect("readable file");
        while let Some(event) = reader.next_event().expect("readable event") {
            for tel in &event.telescopes {
                let file_calibration = tel.calibration.as_ref().expect("calibration");
                let camera = (file, tel.tel_id);
                let telescope = reader.subarray().telescope(tel.tel_id).expect("telescope");
                cameras.entry(camera).or_insert_with(|| {
                    (
                        telescope.camera.neighbors.clone(),
                        readout(file_calibration),
                    )
                });
                let calibration = telescope_calibration(file_calibration);
                let (n_pixels, n_samples) = (tel.n_pixels, tel.n_samples);
                let mut r1 = vec![0.0; n_pixels * n_samples];
                let mut selected_gain_channel = vec![0; n_pixels];
                r0_to_r1_event(
                    &tel.waveforms,
                    n_samples,
                    &calibration,
                    &R1Config::default(),
                    &mut r1,
                    &mut selected_gain_channel,
                );
                let r1_quantized = r1
                    .iter()
                    .map(|&v| ((v + 5.0) * 80.0).round().clamp(0.0, 65535.0) as u16)
                    .collect();
                events.push(TelescopeEvent {
                    camera,
                    n_samples,
                    r0: tel.waveforms.clone(),
                    r1,
                    r1_quantized,
                    calibration,
                    selected_gain_channel,
                    image: vec![0.0; n_pixels],
                    peak_time: vec![0.0; n_pixels],
                });
            }
        }
    }
    assert!(events.len() >= 50, "{} telescope events", events.len());
    assert!(cameras.len() >= 10, "{} telescopes", cameras.len());

    for extractor in [
        "NeighborPeakWindowSum",
        "LocalPeakWindowSum",
        "GlobalPeakWindowSum",
        "FixedWindowSum",
        "FullWaveformSum",
        "SlidingWindowMaxSum",
    ] {
        let image_extractor: ImageExtractorConfig =
            toml::from_str(&format!("extractor = \"{extractor}\"")).expect("extractor config");
        let config = CalibrationConfig {
            image_extractor,
            ..CalibrationConfig::default()
        };
        let calibrators: BTreeMap<_, _> = cameras
            .iter()
            .map(|(&camera, (neighbors, readout))| {
                let calibrator =
                    CameraCalibrator::new(&config, readout, neighbors).expect("calibrator");
                (camera, calibrator)
            })
            .collect();
        let mut scratch = CalibrationScratch::default();
        // the first pass grows the scratch space to the largest camera and keeps the
        // layouts of every telescope
        calibrate(&mut events, &calibrators, &mut scratch);
        let ((), allocations) =
            allocations_during(|| calibrate(&mut events, &calibrators, &mut scratch));
        assert_eq!(
            allocations,
            0,
            "{extractor}: {allocations} allocations in a pass over {} telescope events",
            events.len()
        );
    }
}
