//! What the extractors need to know about a camera's readout (ctapipe's `CameraReadout`).

use ndarray::Array2;

use crate::CalibError;

/// Readout properties of one camera type (`ctapipe.instrument.CameraReadout`).
///
/// For sim_telarray files ctapipe builds it from the camera settings: `sampling_rate =
/// 1 / time_slice`, `reference_pulse_shape = ref_shape`, `reference_pulse_sample_width =
/// ref_step` (`ctapipe.io.simteleventsource.build_camera`).
#[derive(Debug, Clone, PartialEq)]
pub struct CameraReadout {
    /// Sampling rate of the waveforms (GHz, i.e. samples per ns).
    pub sampling_rate_ghz: f64,
    /// Reference pulse shape per gain channel, `[channel][reference sample]` (arbitrary units).
    pub reference_pulse_shape: Array2<f64>,
    /// Width of one reference pulse sample (ns).
    pub reference_pulse_sample_width_ns: f64,
}

impl CameraReadout {
    /// Width of one waveform sample (ns): `1 / sampling_rate_ghz`, as ctapipe's
    /// `(1 / readout.sampling_rate).to_value("ns")`.
    pub fn sample_width_ns(&self) -> f64 {
        1.0 / self.sampling_rate_ghz
    }

    /// Number of gain channels of the reference pulse shape.
    pub fn n_channels(&self) -> usize {
        self.reference_pulse_shape.nrows()
    }

    /// Checks that the sampling rate and reference sample width are positive and finite.
    pub fn validate(&self) -> Result<(), CalibError> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.sampling_rate_ghz) {
            return Err(CalibError::InvalidConfig(format!(
                "sampling rate must be positive, got {} GHz",
                self.sampling_rate_ghz
            )));
        }
        if !positive(self.reference_pulse_sample_width_ns) {
            return Err(CalibError::InvalidConfig(format!(
                "reference pulse sample width must be positive, got {} ns",
                self.reference_pulse_sample_width_ns
            )));
        }
        Ok(())
    }
}
