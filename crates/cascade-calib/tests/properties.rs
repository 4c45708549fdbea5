//! Property tests of the extractors and the calibration chain.

use cascade_calib::extractor::kernels::{argmax_f32, extract_around_peak, extract_sliding_window};
use cascade_calib::extractor::neighbor_peak::{NeighborPeakScratch, neighbor_peak_indices};
use cascade_calib::extractor::{
    FixedWindowSum, FullWaveformSum, GlobalPeakWindowSum, LocalPeakWindowSum,
    NeighborPeakWindowSum, SlidingWindowMaxSum, integration_correction,
};
use cascade_calib::{
    CalibrationConfig, CameraCalibrator, CameraReadout, ExtractorScratch, ImageExtractor,
    ImageExtractorConfig, R1Config, TelescopeCalibration, r0_to_r1,
};
use cascade_instrument::Neighbors;
use ndarray::{Array2, Array3, Array4};
use proptest::prelude::*;

/// Every window extractor without integration correction, with the given width and shift.
fn uncorrected_window_extractors(width: i64, shift: i64) -> Vec<ImageExtractorConfig> {
    vec![
        ImageExtractorConfig::FixedWindowSum(FixedWindowSum {
            peak_index: shift,
            window_width: width,
            window_shift: shift,
            apply_integration_correction: false,
        }),
        ImageExtractorConfig::GlobalPeakWindowSum(GlobalPeakWindowSum {
            window_width: width,
            window_shift: shift,
            apply_integration_correction: false,
            pixel_fraction: 1.0,
        }),
        ImageExtractorConfig::LocalPeakWindowSum(LocalPeakWindowSum {
            window_width: width,
            window_shift: shift,
            apply_integration_correction: false,
        }),
        ImageExtractorConfig::NeighborPeakWindowSum(NeighborPeakWindowSum {
            window_width: width,
            window_shift: shift,
            local_weight: 1,
            apply_integration_correction: false,
        }),
        ImageExtractorConfig::SlidingWindowMaxSum(SlidingWindowMaxSum {
            window_width: width,
            apply_integration_correction: false,
        }),
    ]
}

fn box_readout(rate_ghz: f64) -> CameraReadout {
    CameraReadout {
        sampling_rate_ghz: rate_ghz,
        reference_pulse_shape: Array2::from_elem((2, 4), 1.0),
        reference_pulse_sample_width_ns: 1.0 / rate_ghz,
    }
}

/// A chain of pixels 0 - 1 - ... - (n-1).
fn chain_neighbors(n_pixels: usize) -> Neighbors {
    let lists: Vec<Vec<u32>> = (0..n_pixels as u32)
        .map(|p| {
            let mut list = Vec::new();
            if p > 0 {
                list.push(p - 1);
            }
            if p + 1 < n_pixels as u32 {
                list.push(p + 1);
            }
            list
        })
        .collect();
    Neighbors::from_lists(&lists)
}

fn extract_all(
    config: &ImageExtractorConfig,
    readout: &CameraReadout,
    waveforms: &[f32],
    n_samples: usize,
) -> (Vec<f32>, Vec<f32>) {
    let n_pixels = waveforms.len() / n_samples;
    let extractor = ImageExtractor::new(config, readout).expect("valid config");
    let mut image = vec![0.0; n_pixels];
    let mut peak_time = vec![0.0; n_pixels];
    extractor.extract(
        waveforms,
        n_samples,
        &vec![0; n_pixels],
        &vec![false; n_pixels],
        &chain_neighbors(n_pixels),
        &mut ExtractorScratch::default(),
        &mut image,
        &mut peak_time,
    );
    (image, peak_time)
}

fn waveforms(n_pixels: usize, n_samples: usize, low: f32) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(low..100.0_f32, n_pixels * n_samples)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn full_waveform_sum_is_the_sum(samples in prop::collection::vec(-50.0..100.0_f32, 1..60)) {
        let n_samples = samples.len();
        let (image, _) = extract_all(
            &ImageExtractorConfig::FullWaveformSum(FullWaveformSum {}),
            &box_readout(1.0),
            &samples,
            n_samples,
        );
        let expected: f64 = samples.iter().map(|&v| f64::from(v)).sum();
        prop_assert_eq!(image[0], expected as f32);
    }

    #[test]
    fn delta_pulse_at_k_peaks_at_k_over_rate(
        n_samples in 8..60_usize,
        k_fraction in 0.0..1.0_f64,
        amplitude in 0.1..1000.0_f32,
        rate in prop::sample::select(vec![0.25, 0.5, 1.0, 1.024, 2.0, 4.0]),
    ) {
        let k = ((n_samples - 1) as f64 * k_fraction) as usize;
        let mut samples = vec![0.0_f32; n_samples];
        samples[k] = amplitude;
        let expected = (k as f64 / rate) as f32;
        let readout = box_readout(rate);
        let mut configs = uncorrected_window_extractors(7.min(n_samples as i64), 3);
        configs.push(ImageExtractorConfig::FullWaveformSum(FullWaveformSum {}));
        for config in configs {
            if matches!(config, ImageExtractorConfig::FixedWindowSum(_)) {
                continue; // a fixed window need not contain the pulse
            }
            let (image, peak_time) = extract_all(&config, &readout, &samples, n_samples);
            prop_assert_eq!(image[0], amplitude, "{}", config.name());
            prop_assert!((peak_time[0] - expected).abs() <= 1e-5 * expected.max(1.0),
                "{}: {} vs {}", config.name(), peak_time[0], expected);
        }
    }

    #[test]
    fn window_sums_never_exceed_the_full_sum(
        samples in waveforms(3, 30, 0.0),
        width in 1..30_i64,
        shift in -3..10_i64,
    ) {
        let readout = box_readout(1.0);
        let (full, _) = extract_all(
            &ImageExtractorConfig::FullWaveformSum(FullWaveformSum {}), &readout, &samples, 30,
        );
        for config in uncorrected_window_extractors(width, shift) {
            let (image, _) = extract_all(&config, &readout, &samples, 30);
            for (pixel, (&window, &total)) in image.iter().zip(&full).enumerate() {
                prop_assert!(window <= total * (1.0 + 1e-6), "{} pixel {pixel}", config.name());
                prop_assert!(window >= 0.0);
            }
        }
    }

    #[test]
    fn peak_time_lies_inside_the_window(
        samples in waveforms(1, 40, -5.0),
        width in 1..12_i64,
        shift in 0..6_i64,
    ) {
        let peak = argmax_f32(&samples) as i64;
        let (_, time) = extract_around_peak(&samples, peak, width, shift, 1.0);
        let start = (peak - shift).max(0) as f32;
        let end = (peak - shift + width - 1).min(39) as f32;
        prop_assert!(time >= start.min(peak as f32) && time <= end.max(peak as f32));
    }

    #[test]
    fn sliding_window_finds_the_largest_window(
        samples in waveforms(1, 30, -20.0),
        width in 1..=30_usize,
    ) {
        let (charge, _) = extract_sliding_window(&samples, width, 1.0);
        for start in 0..=30 - width {
            let (window, _) = extract_around_peak(&samples, start as i64, width as i64, 0, 1.0);
            prop_assert!(f64::from(window) <= f64::from(charge) + 1e-3);
        }
    }

    #[test]
    fn integration_correction_is_one_for_a_box_inside_the_window(
        box_start in 0..20_usize,
        box_len in 1..8_usize,
        extra_width in 0..5_i64,
        subsamples in prop::sample::select(vec![1_usize, 2, 4, 5, 8, 10]),
        sample_width_ns in prop::sample::select(vec![0.5, 1.0, 2.0]),
    ) {
        // Reference pulse: `subsamples` reference samples per waveform sample.
        let n_reference = (box_start + box_len + 10) * subsamples;
        let mut shape = Array2::<f64>::zeros((1, n_reference));
        for i in box_start * subsamples..(box_start + box_len) * subsamples {
            shape[[0, i]] = 1.0;
        }
        let reference_width = sample_width_ns / subsamples as f64;
        let correction = integration_correction(
            shape.view(), reference_width, sample_width_ns, box_len as i64 + extra_width, 0,
        );
        prop_assert!((correction[0] - 1.0).abs() < 1e-9, "{correction:?}");
    }

    #[test]
    fn neighbor_peak_with_own_weight_and_no_neighbors_is_the_local_peak(
        samples in waveforms(1, 25, -5.0),
    ) {
        let mut peaks = [0];
        neighbor_peak_indices(
            &samples,
            25,
            &Neighbors::from_lists(&[vec![]]),
            1,
            &[false],
            &mut NeighborPeakScratch::default(),
            &mut peaks,
        );
        prop_assert_eq!(peaks[0], argmax_f32(&samples));
    }

    #[test]
    fn fused_chain_equals_r1_then_dl1(
        adc in prop::collection::vec(80_u16..5000, 3 * 2 * 5 * 12),
        extractor in prop::sample::select(vec![
            "FullWaveformSum", "FixedWindowSum", "GlobalPeakWindowSum",
            "LocalPeakWindowSum", "NeighborPeakWindowSum", "SlidingWindowMaxSum",
        ]),
        broken_pixel in prop::option::of(0..5_usize),
    ) {
        let (n_events, n_channels, n_pixels, n_samples) = (3, 2, 5, 12);
        let r0 = Array4::from_shape_vec((n_events, n_channels, n_pixels, n_samples), adc)
            .expect("shape");
        let mut broken_pixels = vec![false; n_pixels];
        if let Some(pixel) = broken_pixel {
            broken_pixels[pixel] = true;
        }
        let calibration = TelescopeCalibration {
            pedestal_per_sample: Array2::from_elem((n_channels, n_pixels), 100.0),
            dc_to_pe: Array2::from_shape_fn((n_channels, n_pixels), |(c, p)| {
                0.01 * (1 + 10 * c + p) as f32
            }),
            time_shift_ns: Some(Array2::from_elem((n_channels, n_pixels), 0.5)),
            broken_pixels,
        };
        let config = CalibrationConfig {
            image_extractor: toml::from_str(&format!("extractor = \"{extractor}\"\n"))
                .expect("extractor name"),
            ..Default::default()
        };
        let readout = CameraReadout {
            sampling_rate_ghz: 1.0,
            reference_pulse_shape: Array2::from_shape_fn((2, 30), |(_, i)| {
                (-((i as f64 - 8.0) / 3.0).powi(2)).exp()
            }),
            reference_pulse_sample_width_ns: 0.5,
        };
        let calibrator = CameraCalibrator::new(&config, &readout, &chain_neighbors(n_pixels))
            .expect("calibrator");

        let mut gains = Array2::<i8>::zeros((n_events, n_pixels));
        let mut image = Array2::<f32>::zeros((n_events, n_pixels));
        let mut time = Array2::<f32>::zeros((n_events, n_pixels));
        calibrator
            .r0_to_dl1(r0.view(), &calibration, gains.view_mut(), image.view_mut(), time.view_mut())
            .expect("r0_to_dl1");

        let mut r1 = Array3::<f32>::zeros((n_events, n_pixels, n_samples));
        let mut gains_r1 = Array2::<i8>::zeros((n_events, n_pixels));
        r0_to_r1(r0.view(), &calibration, &R1Config::default(), r1.view_mut(), gains_r1.view_mut())
            .expect("r0_to_r1");
        let mut image_r1 = Array2::<f32>::zeros((n_events, n_pixels));
        let mut time_r1 = Array2::<f32>::zeros((n_events, n_pixels));
        calibrator
            .r1_to_dl1(r1.view(), gains_r1.view(), &calibration, image_r1.view_mut(), time_r1.view_mut())
            .expect("r1_to_dl1");

        prop_assert_eq!(&gains, &gains_r1);
        prop_assert_eq!(&image, &image_r1);
        prop_assert_eq!(&time, &time_r1);
        prop_assert!(gains.iter().all(|&g| g == 0 || g == 1));
    }
}
