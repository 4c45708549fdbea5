//! Camera readout: sampling and the reference pulse shape (ctapipe `CameraReadout`).

use serde::{Deserialize, Serialize};

/// How one camera type samples its waveforms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadoutDescription {
    /// Sampling rate (GHz).
    pub sampling_rate_ghz: f64,
    /// Waveform samples per pixel.
    pub n_samples: usize,
    /// Reference pulse shape per gain channel (arbitrary units), sampled every
    /// `reference_pulse_sample_width_ns`.
    pub reference_pulse_shape: Vec<Vec<f64>>,
    /// Sample width of the reference pulse shape (ns).
    pub reference_pulse_sample_width_ns: f64,
    /// Calibration of raw (R0) data, when the source provides raw data.
    pub calibration: Option<PixelCalibration>,
}

/// Per-pixel calibration of raw waveforms (sim_telarray monitoring and laser calibration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PixelCalibration {
    /// Number of gain channels.
    pub n_gains: usize,
    /// Pedestal per sample, `[gain][pixel]` (ADC counts).
    pub pedestal_per_sample: Vec<f32>,
    /// Conversion of pedestal-subtracted ADC counts to p.e., `[gain][pixel]`.
    pub dc_to_pe: Vec<f32>,
    /// Per-pixel time offsets `[gain][pixel]` (ns); empty when not provided.
    pub time_shift_ns: Vec<f32>,
    /// Pixels to treat as broken (e.g. HV disabled), one flag per pixel.
    pub broken_pixels: Vec<bool>,
}
