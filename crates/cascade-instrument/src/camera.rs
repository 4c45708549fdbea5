//! Camera geometry: pixel positions, shapes and neighbours, for any camera layout.
//!
//! Follows `ctapipe.instrument.CameraGeometry`. Positions are in the camera frame (m), the
//! plane of the camera as seen from the mirror, with ctapipe's axis conventions.

use serde::{Deserialize, Serialize};

/// Shape of the pixels of a camera (`ctapipe.instrument.PixelShape`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PixelShape {
    /// Circular pixels (treated like hexagons for neighbour finding, as ctapipe does).
    Circle,
    /// Square pixels.
    Square,
    /// Hexagonal pixels.
    Hexagon,
}

impl PixelShape {
    /// ctapipe's name of the shape (`"circle"`, `"square"`, `"hexagon"`).
    pub fn as_str(self) -> &'static str {
        match self {
            PixelShape::Circle => "circle",
            PixelShape::Square => "square",
            PixelShape::Hexagon => "hexagon",
        }
    }
}

/// Pixel neighbour lists in compressed-sparse-row form: the neighbours of pixel `i` are
/// `indices[offsets[i]..offsets[i + 1]]`, sorted ascending.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Neighbors {
    offsets: Vec<u32>,
    indices: Vec<u32>,
}

impl Neighbors {
    /// Builds neighbour lists from one list per pixel. Each list is sorted; duplicates removed.
    pub fn from_lists(lists: &[Vec<u32>]) -> Self {
        let mut offsets = Vec::with_capacity(lists.len() + 1);
        let mut indices = Vec::new();
        offsets.push(0);
        for list in lists {
            let start = indices.len();
            indices.extend_from_slice(list);
            indices[start..].sort_unstable();
            let mut deduped = indices.split_off(start);
            deduped.dedup();
            indices.extend(deduped);
            offsets.push(indices.len() as u32);
        }
        Self { offsets, indices }
    }

    /// Number of pixels.
    pub fn n_pixels(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Neighbours of pixel `pixel` (sorted ascending).
    #[inline]
    pub fn of(&self, pixel: usize) -> &[u32] {
        &self.indices[self.offsets[pixel] as usize..self.offsets[pixel + 1] as usize]
    }

    /// CSR row offsets (`n_pixels + 1` entries).
    pub fn offsets(&self) -> &[u32] {
        &self.offsets
    }

    /// CSR column indices.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }
}

/// Errors building a camera geometry.
#[derive(Debug, thiserror::Error)]
pub enum GeometryError {
    /// The per-pixel arrays differ in length.
    #[error("camera {camera}: per-pixel arrays differ in length ({what})")]
    LengthMismatch {
        /// Camera name.
        camera: String,
        /// Which arrays disagree.
        what: String,
    },
}

/// Geometry of one camera type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraGeometry {
    /// Camera name as ctapipe reports it (e.g. `"LSTCam"`, `"NectarCam"`, `"FlashCam"`).
    pub name: String,
    /// Pixel x positions in the camera frame (m).
    pub pix_x_m: Vec<f64>,
    /// Pixel y positions in the camera frame (m).
    pub pix_y_m: Vec<f64>,
    /// Pixel areas (m²).
    pub pix_area_m2: Vec<f64>,
    /// Pixel shape.
    pub pix_type: PixelShape,
    /// Rotation of the pixels (deg).
    pub pix_rotation_deg: f64,
    /// Rotation of the camera (deg).
    pub cam_rotation_deg: f64,
    /// Neighbour lists.
    pub neighbors: Neighbors,
}

impl CameraGeometry {
    /// Number of pixels.
    pub fn n_pixels(&self) -> usize {
        self.pix_x_m.len()
    }
}
