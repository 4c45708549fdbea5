//! Pixel calibration that a source learns while it reads (sim_telarray files carry pedestal
//! monitoring and laser calibration objects before a telescope's first event), shared with
//! the calibrate stage of the same pipeline through the build context.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use cascade_calib::TelescopeCalibration;

/// Name of the board in `BuildContext::shared`.
pub const SHARED_NAME: &str = "pixel_calibration";

/// Calibration per telescope, published by a source before it emits the telescope's events.
#[derive(Debug, Default)]
pub struct CalibrationBoard {
    by_tel_id: RwLock<BTreeMap<u16, Arc<TelescopeCalibration>>>,
}

impl CalibrationBoard {
    /// Publishes (or replaces) the calibration of telescope `tel_id`.
    pub fn publish(&self, tel_id: u16, calibration: Arc<TelescopeCalibration>) {
        if let Ok(mut map) = self.by_tel_id.write() {
            map.insert(tel_id, calibration);
        }
    }

    /// The calibration of telescope `tel_id`, once published.
    pub fn get(&self, tel_id: u16) -> Option<Arc<TelescopeCalibration>> {
        self.by_tel_id.read().ok()?.get(&tel_id).cloned()
    }
}
