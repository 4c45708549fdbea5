//! Subarray and telescope descriptions (`ctapipe.instrument.SubarrayDescription`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::CameraGeometry;

/// Optics of one telescope type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpticsDescription {
    /// Optics name (e.g. `"LST"`, `"MST"`).
    pub name: String,
    /// Equivalent focal length (m).
    pub equivalent_focal_length_m: f64,
    /// Effective focal length (m); NaN when the file does not provide it.
    pub effective_focal_length_m: f64,
    /// Total mirror area (m²).
    pub mirror_area_m2: f64,
    /// Number of mirror tiles.
    pub n_mirror_tiles: u32,
}

impl OpticsDescription {
    /// Focal length used to convert camera-frame positions into field-of-view angles (m):
    /// the effective one when present, else the equivalent one (ctapipe's
    /// `focal_length_choice="EQUIVALENT"` always uses the equivalent one).
    pub fn frame_focal_length_m(&self, choice: FocalLengthChoice) -> f64 {
        match choice {
            FocalLengthChoice::Equivalent => self.equivalent_focal_length_m,
            FocalLengthChoice::Effective if self.effective_focal_length_m.is_finite() => {
                self.effective_focal_length_m
            }
            FocalLengthChoice::Effective => self.equivalent_focal_length_m,
        }
    }
}

/// Which focal length converts the camera frame into the telescope frame
/// (ctapipe's `focal_length_choice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FocalLengthChoice {
    /// The equivalent focal length (the references' choice; always present).
    #[default]
    Equivalent,
    /// The effective focal length, falling back to the equivalent one when absent.
    Effective,
}

/// One telescope type: optics plus camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelescopeDescription {
    /// Telescope type name as ctapipe prints it (e.g. `"LST_LST_LSTCam"`).
    pub name: String,
    /// Optics.
    pub optics: OpticsDescription,
    /// Camera geometry, shared by all telescopes of this type.
    pub camera: Arc<CameraGeometry>,
}

/// The telescopes of an array: ids, types and ground positions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubarrayDescription {
    /// Subarray name.
    pub name: String,
    /// Telescope description by telescope id.
    pub telescopes: BTreeMap<u16, Arc<TelescopeDescription>>,
    /// Telescope positions in the ground frame (m), x north, y west, z up, by telescope id.
    pub positions_m: BTreeMap<u16, [f64; 3]>,
    /// Reference location altitude (m above sea level).
    pub reference_altitude_m: f64,
}

impl SubarrayDescription {
    /// Telescope ids in ascending order.
    pub fn tel_ids(&self) -> impl Iterator<Item = u16> + '_ {
        self.telescopes.keys().copied()
    }

    /// Description of telescope `tel_id`.
    pub fn telescope(&self, tel_id: u16) -> Option<&Arc<TelescopeDescription>> {
        self.telescopes.get(&tel_id)
    }
}
