//! Camera calibration for IACT data: R0 -> R1 -> DL1 image and peak time, following
//! ctapipe 0.28 (`ctapipe.io.simteleventsource`, `ctapipe.calib.camera`,
//! `ctapipe.image.extractor`, `ctapipe.image.invalid_pixels`) in algorithms, names,
//! defaults and units.
//!
//! Everything here is a plain kernel over contiguous batches of telescope events of one
//! camera type, laid out `[event][pixel][sample]` (R0 with a channel axis,
//! `[event][channel][pixel][sample]`), parallel over events with rayon and without
//! allocation per event.
//!
//! ```text
//!             r1::r0_to_r1                         CameraCalibrator::r1_to_dl1
//!  R0 (ADC) ───────────────────> R1 (p.e./sample) ──────────────────────────────> DL1
//!  u16        gain selection,     f32 + selected     extractor, integration         image (p.e.)
//!             pedestal, dc_to_pe  gain channel       correction, time shift,        peak_time (ns)
//!                                                    invalid pixels
//!            └──────────────── CameraCalibrator::r0_to_dl1 (fused) ───────────────┘
//! ```
//!
//! R1 as CTAO's camera data stream stores it, `uint16` samples with a scale and an offset
//! ([`QuantizedWaveforms`]), goes through [`CameraCalibrator::r1_quantized_to_dl1_event`]
//! with the results of its `f32` values, bit for bit; the default extractor finds its
//! peaks on the integers, sixteen samples per AVX2 vector.
//!
//! Verification: `tests/conformance.rs` runs the default chain on every telescope event of
//! every shared sim_telarray file and agrees with ctapipe 0.28 (image and peak time within
//! 1e-3 or 1e-4 relative, in practice bit-exact except 1 ulp on a few pixels; selected gain
//! channel equal); `tests/properties.rs` holds the property tests of the extractors.
//!
//! ```
//! use cascade_calib::{CalibrationConfig, CameraCalibrator, CameraReadout, TelescopeCalibration};
//! use cascade_instrument::Neighbors;
//! use ndarray::{Array2, Array4};
//!
//! // Two neighbouring pixels, one gain, 10 samples at 1 GHz, a box reference pulse.
//! let readout = CameraReadout {
//!     sampling_rate_ghz: 1.0,
//!     reference_pulse_shape: Array2::from_elem((1, 3), 1.0),
//!     reference_pulse_sample_width_ns: 1.0,
//! };
//! let neighbors = Neighbors::from_lists(&[vec![1], vec![0]]);
//! let calibrator = CameraCalibrator::new(&CalibrationConfig::default(), &readout, &neighbors)?;
//! let calibration = TelescopeCalibration {
//!     pedestal_per_sample: Array2::from_elem((1, 2), 100.0),
//!     dc_to_pe: Array2::from_elem((1, 2), 0.5),
//!     time_shift_ns: None,
//!     broken_pixels: vec![false; 2],
//! };
//! let mut r0 = Array4::<u16>::from_elem((1, 1, 2, 10), 100);
//! r0[[0, 0, 0, 5]] = 110; // 5 p.e. in pixel 0 ...
//! r0[[0, 0, 1, 5]] = 104; // ... 2 p.e. in pixel 1, both at 5 ns
//! let (mut gains, mut image, mut peak_time) =
//!     (Array2::zeros((1, 2)), Array2::zeros((1, 2)), Array2::zeros((1, 2)));
//! calibrator.r0_to_dl1(r0.view(), &calibration, gains.view_mut(), image.view_mut(), peak_time.view_mut())?;
//! assert_eq!(image[[0, 0]], 5.0);
//! assert_eq!(peak_time[[0, 1]], 5.0);
//! # Ok::<(), cascade_calib::CalibError>(())
//! ```

mod calibrator;
mod error;
pub mod extractor;
mod gain_selection;
pub mod invalid_pixels;
mod quantized;
pub mod r1;
mod readout;

pub use calibrator::{
    CalibrationConfig, CalibrationScratch, CameraCalibrator, with_thread_scratch,
};
pub use error::CalibError;
pub use extractor::{ExtractorScratch, ImageExtractor, ImageExtractorConfig};
pub use gain_selection::{GainChannel, GainSelector, ManualGainSelector, ThresholdGainSelector};
pub use invalid_pixels::InvalidPixelHandler;
pub use quantized::QuantizedWaveforms;
pub use r1::{R1Config, TelescopeCalibration, r0_to_r1};
pub use readout::CameraReadout;

/// Whether the kernels may use AVX-512: the CPU has its F, BW, DQ and VL extensions (each
/// AVX-512 kernel needs some of them, and AVX2 and FMA, which every such CPU has).
#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl")
}
