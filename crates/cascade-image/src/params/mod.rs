//! Image parameters (`ctapipe.image` `hillas`, `timing`, `leakage`, `concentration`,
//! `morphology`, `statistics`) and their combination as computed by ctapipe's
//! `ImageProcessor` ([`image_parameters`]).
//!
//! Pixel coordinates come as a [`PixelCoordinates`] view in either frame: the camera frame
//! (x/y in m, ctapipe's `CameraHillasParametersContainer`) or the telescope frame
//! (fov_lon/fov_lat in deg, ctapipe's `HillasParametersContainer`, the `ImageProcessor`
//! default). Lengths come out in the unit of the coordinates, angles in degrees.

mod columns;
mod concentration;
mod hillas;
mod image;
mod leakage;
mod morphology;
mod statistics;
mod timing;

pub use columns::{Column, ColumnValue};
pub use concentration::{ConcentrationParameters, concentration_parameters, pixel_width};
pub use hillas::{HillasParameters, hillas_parameters};
pub use image::{
    ImageParameters, ParameterWorkspace, ParametrizationGeometry, image_parameters,
    image_parameters_of_selected, passes_image_quality,
};
pub use leakage::{LeakageParameters, leakage_parameters};
pub use morphology::{MorphologyParameters, morphology_parameters};
pub use statistics::{ImageStatistics, StatisticsWorkspace, descriptive_statistics};
pub use timing::{TimingParameters, TimingWorkspace, lts_linear_regression, timing_parameters};

use cascade_instrument::PixelShape;

use crate::error::{ImageError, check_len};

/// Frame of pixel coordinates; decides ctapipe's column names and units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Frame {
    /// Camera frame: coordinates and lengths in m (ctapipe `CameraFrame`).
    Camera,
    /// Telescope frame: fov_lon/fov_lat and lengths in deg (ctapipe `TelescopeFrame`).
    Telescope,
}

impl Frame {
    /// ctapipe's unit string of lengths in this frame (`"m"` or `"deg"`).
    pub fn length_unit(self) -> &'static str {
        match self {
            Frame::Camera => "m",
            Frame::Telescope => "deg",
        }
    }
}

/// Borrowed per-pixel coordinates of one camera in one frame.
#[derive(Debug, Clone, Copy)]
pub struct PixelCoordinates<'a> {
    /// Frame (and so unit) of the coordinates.
    pub frame: Frame,
    /// Pixel x (m) in the camera frame, or fov_lon (deg) in the telescope frame.
    pub x: &'a [f64],
    /// Pixel y (m) in the camera frame, or fov_lat (deg) in the telescope frame.
    pub y: &'a [f64],
    /// Pixel areas (m² or deg²).
    pub area: &'a [f64],
    /// Pixel shape (for the pixel width used by the concentration).
    pub shape: PixelShape,
}

impl PixelCoordinates<'_> {
    /// Number of pixels.
    pub fn n_pixels(&self) -> usize {
        self.x.len()
    }

    /// Checks that all per-pixel arrays (and `per_pixel` ones given by name) match.
    fn check(&self, per_pixel: &[(&'static str, usize)]) -> Result<(), ImageError> {
        let n = self.x.len();
        check_len("pixel y", n, self.y.len())?;
        check_len("pixel area", n, self.area.len())?;
        for &(what, len) in per_pixel {
            check_len(what, n, len)?;
        }
        Ok(())
    }
}
