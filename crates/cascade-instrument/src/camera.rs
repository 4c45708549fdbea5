//! Camera geometry: pixel positions, shapes and neighbours, for any camera layout.
//!
//! Follows `ctapipe.instrument.CameraGeometry`. Positions are in the camera frame (m), the
//! plane of the camera as seen from the mirror, with ctapipe's axis conventions.

use std::sync::atomic::{AtomicU64, Ordering};

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
///
/// The lists never change once built, and each set of lists carries an identifier
/// ([`Neighbors::id`]) so that kernels can cache what they derive from them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Neighbors {
    offsets: Vec<u32>,
    indices: Vec<u32>,
    #[serde(skip)]
    id: NeighborsId,
}

/// The identifier of one set of neighbour lists: unique in the process, shared by clones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NeighborsId(u64);

impl Default for NeighborsId {
    /// A fresh identifier, never handed out before in this process.
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// Lists are equal when they hold the same neighbours, whatever their identifiers.
impl PartialEq for Neighbors {
    fn eq(&self, other: &Self) -> bool {
        self.offsets == other.offsets && self.indices == other.indices
    }
}

impl Eq for Neighbors {}

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
        Self {
            offsets,
            indices,
            id: NeighborsId::default(),
        }
    }

    /// The identifier of these lists: the same for their clones, different for any other
    /// lists built in this process (even equal ones), so a layout derived from lists with
    /// this identifier stays valid for them.
    pub fn id(&self) -> NeighborsId {
        self.id
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_identifier_of_the_lists_and_other_lists_get_their_own() {
        let lists = [vec![1], vec![0]];
        let neighbors = Neighbors::from_lists(&lists);
        let same = Neighbors::from_lists(&lists);
        assert_eq!(neighbors.clone().id(), neighbors.id());
        assert_ne!(same.id(), neighbors.id());
        assert_ne!(Neighbors::default().id(), Neighbors::default().id());
        // Equality is about the neighbours, not the identifiers.
        assert_eq!(same, neighbors);
        assert_ne!(Neighbors::from_lists(&[vec![1], vec![]]), neighbors);
    }
}
