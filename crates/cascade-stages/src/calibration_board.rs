//! Pixel calibration that a source learns while it reads (sim_telarray files carry pedestal
//! monitoring and laser calibration objects before a telescope's first event), shared with
//! the stages of the same pipeline that need it (`calibrate`, `r0_to_r1`) through the build
//! context.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use cascade_calib::TelescopeCalibration;
use cascade_pipeline::{BuildContext, BuildError};
use cascade_runtime::StageError;
use ndarray::Array2;

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

/// The pixel calibration a stage processes each telescope's events with: what the source
/// published on its [`CalibrationBoard`] when it has one, else the readout's calibration
/// (the identity when the source gives none: data already in p.e.).
#[derive(Debug)]
pub struct Calibrations {
    /// From the readout descriptions, by telescope id.
    fixed: BTreeMap<u16, Arc<TelescopeCalibration>>,
    /// The board of a source that learns the calibration while it reads.
    board: Option<Arc<CalibrationBoard>>,
}

impl Calibrations {
    /// The calibrations of every telescope of the build context's instrument.
    pub fn from_context(context: &BuildContext) -> Result<Self, BuildError> {
        let mut fixed = BTreeMap::new();
        for (&tel_id, telescope) in &context.subarray.telescopes {
            let n_pixels = telescope.camera.n_pixels();
            let calibration = match context
                .readout
                .get(&tel_id)
                .and_then(|r| r.calibration.as_ref())
            {
                Some(c) => {
                    let per_gain = |values: &[f32], what: &str| {
                        Array2::from_shape_vec((c.n_gains, n_pixels), values.to_vec()).map_err(|_| {
                            BuildError::stage(format!("telescope {tel_id}: {what} has {} values for {} gains x {n_pixels} pixels", values.len(), c.n_gains))
                        })
                    };
                    TelescopeCalibration {
                        pedestal_per_sample: per_gain(&c.pedestal_per_sample, "pedestal")?,
                        dc_to_pe: per_gain(&c.dc_to_pe, "dc_to_pe")?,
                        time_shift_ns: if c.time_shift_ns.is_empty() {
                            None
                        } else {
                            Some(per_gain(&c.time_shift_ns, "time shift")?)
                        },
                        broken_pixels: c.broken_pixels.clone(),
                    }
                }
                None => TelescopeCalibration {
                    pedestal_per_sample: Array2::zeros((1, n_pixels)),
                    dc_to_pe: Array2::ones((1, n_pixels)),
                    time_shift_ns: None,
                    broken_pixels: vec![false; n_pixels],
                },
            };
            fixed.insert(tel_id, Arc::new(calibration));
        }
        let board = context
            .shared
            .get(SHARED_NAME)
            .and_then(|object| Arc::clone(object).downcast::<CalibrationBoard>().ok());
        Ok(Self { fixed, board })
    }

    /// The calibration of telescope `tel_id`'s events: the published one when the source
    /// has a board (an error before the source published it), else the readout's.
    pub fn get(&self, tel_id: u16) -> Result<Arc<TelescopeCalibration>, StageError> {
        let fixed = self.fixed.get(&tel_id).ok_or_else(|| {
            StageError::Data(format!("telescope {tel_id} is not in the instrument"))
        })?;
        match &self.board {
            None => Ok(Arc::clone(fixed)),
            Some(board) => board.get(tel_id).ok_or_else(|| {
                StageError::Data(format!(
                    "telescope {tel_id}: no pedestal/dc-to-pe calibration before its first event"
                ))
            }),
        }
    }

    /// Number of pixels of telescope `tel_id`'s camera, if it is in the instrument.
    pub fn n_pixels(&self, tel_id: u16) -> Option<usize> {
        self.fixed.get(&tel_id).map(|c| c.n_pixels())
    }
}
