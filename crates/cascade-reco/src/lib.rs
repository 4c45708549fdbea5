//! Stereo reconstruction of the shower geometry from the Hillas parameters of the
//! telescopes of one array event: ctapipe's `ctapipe.reco` (ShowerProcessor,
//! HillasReconstructor, HillasIntersection, StereoQualityQuery) and the default
//! `ImageQualityQuery` of its ImageProcessor.
//!
//! ```text
//!  per telescope: Hillas (telescope frame, deg), pointing, position, camera radius
//!        │
//!        ├─ StereoQualityQuery ──> telescopes kept
//!        v
//!  ReconstructorType::{HillasReconstructor, HillasIntersection}.reconstruct(&ArrayEvent)
//!        v
//!  ReconstructedGeometry: alt, az (deg), core_x/y, tilted core (m), h_max (m),
//!                         uncertainties, is_valid, telescopes
//! ```
//!
//! Everything here is a plain function of its inputs: no I/O, no async, no Arrow. The
//! coordinate transformations come from [`cascade_instrument::frames`]; the per-telescope
//! constants (positions, camera radii, observation level) from [`StereoSubarray`].
//!
//! ```
//! use cascade_instrument::frames::AltAz;
//! use cascade_reco::{ArrayEvent, HillasParameters, ReconstructorType, StereoQualityQuery,
//!     TelescopeEvent};
//!
//! let pointing = AltAz { alt_deg: 70.0, az_deg: 0.0 };
//! let telescope = |tel_id, position_m: [f64; 3], psi_deg| TelescopeEvent {
//!     tel_id,
//!     hillas: HillasParameters {
//!         fov_lon_deg: 0.5, fov_lat_deg: 0.2, psi_deg,
//!         length_deg: 0.3, width_deg: 0.1, intensity_pe: 200.0,
//!     },
//!     morphology_n_pixels: 20,
//!     leakage_intensity_width_2: 0.0,
//!     pointing,
//!     position_m,
//!     camera_radius_deg: 2.0,
//! };
//! let telescopes = [
//!     telescope(1, [100.0, 0.0, 0.0], 10.0),
//!     telescope(2, [0.0, 100.0, 0.0], 80.0),
//! ];
//! let event = ArrayEvent { array_pointing: pointing, observation_level_m: 2200.0,
//!     telescopes: &telescopes };
//! let query = StereoQualityQuery::default();
//! let geometry = ReconstructorType::HillasReconstructor.reconstruct(&event, &query)?;
//! assert!(geometry.is_valid);
//! assert_eq!(geometry.telescopes, vec![1, 2]);
//! # Ok::<(), cascade_reco::RecoError>(())
//! ```

mod geometry;
mod hillas_intersection;
mod hillas_reconstructor;
mod quality;
mod subarray;

pub use geometry::{
    ArrayEvent, GEOMETRY_COLUMNS, GeometryColumn, HillasParameters, ReconstructedGeometry,
    TelescopeEvent, camera_radius_deg,
};
pub use quality::{ImageQualityQuery, StereoQualityQuery};
pub use subarray::{StereoSubarray, StereoTelescope};

use serde::{Deserialize, Serialize};

/// A stereo geometry reconstructor, chosen by ctapipe's class name in configuration
/// (`"HillasReconstructor"`, `"HillasIntersection"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReconstructorType {
    /// `ctapipe.reco.HillasReconstructor`: intersection of the planes spanned by each
    /// telescope's image axis (ctapipe's default).
    HillasReconstructor,
    /// `ctapipe.reco.HillasIntersection`: weighted crossings of the image axes in the
    /// nominal frame and in the tilted ground frame (Konrad weighting).
    HillasIntersection,
}

impl ReconstructorType {
    /// ctapipe's class name, the prefix of the DL2 columns (`HillasReconstructor_alt`).
    pub fn name(self) -> &'static str {
        match self {
            ReconstructorType::HillasReconstructor => "HillasReconstructor",
            ReconstructorType::HillasIntersection => "HillasIntersection",
        }
    }

    /// ctapipe's prefixed column name of a [`GEOMETRY_COLUMNS`] field, e.g.
    /// `HillasReconstructor_alt` (ctapipe's HDF5 name; the unit is not part of it).
    pub fn column_name(self, column: &str) -> String {
        format!("{}_{column}", self.name())
    }

    /// Reconstructs the shower geometry of one array event from the telescopes that pass
    /// `quality_query`, like the reconstructor's `__call__` in ctapipe: an invalid result
    /// (all NaN, no telescopes) when fewer than two telescopes pass or a kept width is NaN
    /// or 0.
    ///
    /// # Errors
    /// [`RecoError`] for input on which ctapipe itself fails: a telescope id repeated, or a
    /// degenerate configuration (all image axes parallel) that leaves a singular system.
    pub fn reconstruct(
        self,
        event: &ArrayEvent<'_>,
        quality_query: &StereoQualityQuery,
    ) -> Result<ReconstructedGeometry, RecoError> {
        self.reconstruct_selected(event, |telescope| quality_query.passes(telescope))
    }

    /// [`ReconstructorType::reconstruct`] with the telescopes for which `selected` holds,
    /// for a telescope selection made elsewhere (e.g. quality criteria evaluated on whole
    /// batches of telescope events).
    ///
    /// # Errors
    /// As [`ReconstructorType::reconstruct`].
    pub fn reconstruct_selected(
        self,
        event: &ArrayEvent<'_>,
        selected: impl Fn(&TelescopeEvent) -> bool,
    ) -> Result<ReconstructedGeometry, RecoError> {
        let Some(telescopes) = select_telescopes(event, selected)? else {
            return Ok(ReconstructedGeometry::invalid());
        };
        match self {
            ReconstructorType::HillasReconstructor => {
                hillas_reconstructor::reconstruct(event, &telescopes)
            }
            ReconstructorType::HillasIntersection => {
                hillas_intersection::reconstruct(event, &telescopes)
            }
        }
    }
}

impl std::fmt::Display for ReconstructorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Configuration of the stereo step, like ctapipe's `ShowerProcessor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowerProcessorConfig {
    /// Reconstructors to run, each writing its own prefixed DL2 columns
    /// (default: `["HillasReconstructor"]`).
    #[serde(default = "default_reconstructor_types")]
    pub reconstructor_types: Vec<ReconstructorType>,
    /// Telescope selection applied before every reconstructor.
    #[serde(default)]
    pub stereo_quality_query: StereoQualityQuery,
}

impl Default for ShowerProcessorConfig {
    fn default() -> Self {
        Self {
            reconstructor_types: default_reconstructor_types(),
            stereo_quality_query: StereoQualityQuery::default(),
        }
    }
}

impl ShowerProcessorConfig {
    /// Runs every configured reconstructor on one array event, in configuration order.
    ///
    /// # Errors
    /// The first [`RecoError`] of a reconstructor.
    pub fn process(
        &self,
        event: &ArrayEvent<'_>,
    ) -> Result<Vec<(ReconstructorType, ReconstructedGeometry)>, RecoError> {
        self.reconstructor_types
            .iter()
            .map(|kind| Ok((*kind, kind.reconstruct(event, &self.stereo_quality_query)?)))
            .collect()
    }
}

fn default_reconstructor_types() -> Vec<ReconstructorType> {
    vec![ReconstructorType::HillasReconstructor]
}

/// Errors of the stereo reconstruction: inputs on which ctapipe raises instead of
/// returning a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecoError {
    /// The same telescope appears twice in one array event.
    #[error("telescope {tel_id} appears more than once in the array event")]
    DuplicateTelescope {
        /// The repeated telescope id.
        tel_id: u16,
    },
    /// The lines or planes to intersect are all parallel, so their intersection is
    /// undefined (numpy raises `LinAlgError` or `ZeroDivisionError` here).
    #[error("{reconstructor}: cannot intersect the {what}: they are all parallel")]
    Degenerate {
        /// The reconstructor that failed.
        reconstructor: ReconstructorType,
        /// What could not be intersected.
        what: &'static str,
    },
}

/// The telescopes used for reconstruction, in event order (ctapipe's
/// `HillasGeometryReconstructor._create_hillas_dict`): those `selected` (passing the
/// quality query); `None` when fewer than two are or a kept width is NaN or 0 (ctapipe's
/// `TooFewTelescopesException` / `InvalidWidthException`, both giving an invalid result).
fn select_telescopes<'a>(
    event: &ArrayEvent<'a>,
    selected: impl Fn(&TelescopeEvent) -> bool,
) -> Result<Option<Vec<&'a TelescopeEvent>>, RecoError> {
    for (i, telescope) in event.telescopes.iter().enumerate() {
        if event.telescopes[..i]
            .iter()
            .any(|t| t.tel_id == telescope.tel_id)
        {
            return Err(RecoError::DuplicateTelescope {
                tel_id: telescope.tel_id,
            });
        }
    }
    let kept: Vec<&TelescopeEvent> = event.telescopes.iter().filter(|t| selected(t)).collect();
    let invalid_width = kept
        .iter()
        .any(|t| t.hillas.width_deg.is_nan() || t.hillas.width_deg == 0.0);
    if kept.len() < 2 || invalid_width {
        return Ok(None);
    }
    Ok(Some(kept))
}
