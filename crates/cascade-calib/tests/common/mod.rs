//! Shared helpers of the tests that calibrate the shared sim_telarray files.

use cascade_calib::{CameraReadout, TelescopeCalibration, r1::broken_pixels_from_ids};
use ndarray::Array2;

/// The readout of a telescope as cascade_calib takes it, from the file's calibration.
pub fn readout(calibration: &cascade_simtel::TelescopeCalibration) -> CameraReadout {
    let pulse = &calibration.reference_pulse_shape;
    let n_reference = pulse.first().map_or(0, Vec::len);
    let values = pulse.iter().flatten().copied().collect();
    CameraReadout {
        sampling_rate_ghz: calibration.sampling_rate_ghz,
        reference_pulse_shape: Array2::from_shape_vec((pulse.len(), n_reference), values)
            .expect("rectangular reference pulse shape"),
        reference_pulse_sample_width_ns: calibration.reference_pulse_sample_width_ns,
    }
}

/// Pedestals, dc-to-pe, time shifts and broken pixels from the file's calibration.
pub fn telescope_calibration(
    calibration: &cascade_simtel::TelescopeCalibration,
) -> TelescopeCalibration {
    let shape = (calibration.n_gains, calibration.n_pixels);
    let array = |values: &[f32]| {
        Array2::from_shape_vec(shape, values.to_vec()).expect("[gain][pixel] calibration array")
    };
    TelescopeCalibration {
        pedestal_per_sample: array(&calibration.pedestal_per_sample),
        dc_to_pe: array(&calibration.dc_to_pe),
        time_shift_ns: (!calibration.time_calibration_ns.is_empty())
            .then(|| array(&calibration.time_calibration_ns)),
        broken_pixels: broken_pixels_from_ids(
            calibration.n_pixels,
            &calibration.hv_disabled_pixels,
        ),
    }
}
