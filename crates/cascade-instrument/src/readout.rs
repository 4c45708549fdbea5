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
}
