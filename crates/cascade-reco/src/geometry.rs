//! Inputs and output of the stereo reconstruction: one array event's telescope
//! parameters in, one reconstructed shower geometry (ctapipe's
//! `ReconstructedGeometryContainer`) out.

use cascade_instrument::frames::{AltAz, altaz_to_righthanded_cartesian};
use glam::DVec3;
use serde::{Deserialize, Serialize};

/// The Hillas parameters of one image in the telescope frame (ctapipe's
/// `HillasParametersContainer`, `hillas_*` columns).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HillasParameters {
    /// Centroid longitude in the telescope frame (deg).
    pub fov_lon_deg: f64,
    /// Centroid latitude in the telescope frame (deg).
    pub fov_lat_deg: f64,
    /// Angle of the major axis, from the `fov_lon` axis towards `fov_lat` (deg).
    pub psi_deg: f64,
    /// Standard deviation along the major axis (deg).
    pub length_deg: f64,
    /// Standard deviation along the minor axis (deg).
    pub width_deg: f64,
    /// Total charge of the cleaned image (p.e.).
    pub intensity_pe: f64,
}

/// What the stereo reconstruction needs from one telescope event.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TelescopeEvent {
    /// Telescope id.
    pub tel_id: u16,
    /// Hillas parameters in the telescope frame.
    pub hillas: HillasParameters,
    /// Number of pixels in the cleaning mask (`morphology_n_pixels`; -1 for an empty mask).
    pub morphology_n_pixels: i64,
    /// Fraction of the intensity in the two outermost pixel rings
    /// (`leakage_intensity_width_2`; NaN when not computed).
    pub leakage_intensity_width_2: f64,
    /// Pointing of this telescope.
    pub pointing: AltAz,
    /// Telescope position in the ground frame (m): x north, y west, z up.
    pub position_m: [f64; 3],
    /// Camera radius in the telescope frame (deg): ctapipe's `guess_radius()` of the camera
    /// geometry divided by the frame focal length; see [`camera_radius_deg`].
    pub camera_radius_deg: f64,
}

/// One array event as the stereo reconstruction sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArrayEvent<'a> {
    /// Array pointing (origin of the nominal frame and normal of the tilted frame).
    pub array_pointing: AltAz,
    /// Altitude of the array reference location above sea level (m); both reconstructors
    /// add it to their h_max (height above the ground frame origin).
    pub observation_level_m: f64,
    /// The telescope events, in event order (ctapipe's order of `event.dl1.tel`).
    pub telescopes: &'a [TelescopeEvent],
}

/// A reconstructed shower geometry (ctapipe's `ReconstructedGeometryContainer`). Fields
/// a reconstructor does not compute are NaN, as in ctapipe; an invalid result has every
/// number NaN and no telescopes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconstructedGeometry {
    /// Altitude of the shower direction (deg).
    pub alt_deg: f64,
    /// Uncertainty of the altitude (deg).
    pub alt_uncert_deg: f64,
    /// Azimuth of the shower direction, in [0, 360) (deg).
    pub az_deg: f64,
    /// Uncertainty of the azimuth (deg).
    pub az_uncert_deg: f64,
    /// Angular-distance uncertainty of the direction (deg).
    pub ang_distance_uncert_deg: f64,
    /// Core position x in the ground frame (m).
    pub core_x_m: f64,
    /// Core position y in the ground frame (m).
    pub core_y_m: f64,
    /// Uncertainty of core x in the ground frame (m).
    pub core_uncert_x_m: f64,
    /// Uncertainty of core y in the ground frame (m).
    pub core_uncert_y_m: f64,
    /// Core position x in the tilted frame of the array pointing (m).
    pub core_tilted_x_m: f64,
    /// Core position y in the tilted frame of the array pointing (m).
    pub core_tilted_y_m: f64,
    /// Uncertainty of tilted core x (m).
    pub core_tilted_uncert_x_m: f64,
    /// Uncertainty of tilted core y (m).
    pub core_tilted_uncert_y_m: f64,
    /// Height of the shower maximum (m), as each reconstructor defines it (see there).
    pub h_max_m: f64,
    /// Uncertainty of h_max (m).
    pub h_max_uncert_m: f64,
    /// Whether the reconstruction succeeded.
    pub is_valid: bool,
    /// Mean Hillas intensity of the telescopes used (p.e.).
    pub average_intensity: f64,
    /// Goodness of fit (NaN for both Hillas reconstructors).
    pub goodness_of_fit: f64,
    /// Ids of the telescopes used, in event order.
    pub telescopes: Vec<u16>,
}

impl ReconstructedGeometry {
    /// ctapipe's `INVALID` container: every number NaN, not valid, no telescopes.
    pub fn invalid() -> Self {
        Self {
            alt_deg: f64::NAN,
            alt_uncert_deg: f64::NAN,
            az_deg: f64::NAN,
            az_uncert_deg: f64::NAN,
            ang_distance_uncert_deg: f64::NAN,
            core_x_m: f64::NAN,
            core_y_m: f64::NAN,
            core_uncert_x_m: f64::NAN,
            core_uncert_y_m: f64::NAN,
            core_tilted_x_m: f64::NAN,
            core_tilted_y_m: f64::NAN,
            core_tilted_uncert_x_m: f64::NAN,
            core_tilted_uncert_y_m: f64::NAN,
            h_max_m: f64::NAN,
            h_max_uncert_m: f64::NAN,
            is_valid: false,
            average_intensity: f64::NAN,
            goodness_of_fit: f64::NAN,
            telescopes: Vec::new(),
        }
    }

    /// Distance (m) of a ground-frame position (m) from the reconstructed shower axis,
    /// the line through the core (core_x, core_y, 0) along (alt, az)
    /// (`ctapipe.coordinates.shower_impact_distance`); NaN for an invalid result, as
    /// ctapipe stores for every triggered telescope then.
    pub fn impact_distance_m(&self, position_m: [f64; 3]) -> f64 {
        self.impact_distance_of()(position_m)
    }

    /// [`ReconstructedGeometry::impact_distance_m`] as a function of the position, the
    /// axis worked out once (for the many telescopes of an event).
    pub fn impact_distance_of(&self) -> impl Fn([f64; 3]) -> f64 + use<> {
        let valid = self.is_valid;
        let direction = DVec3::from_array(altaz_to_righthanded_cartesian(AltAz {
            alt_deg: self.alt_deg,
            az_deg: self.az_deg,
        }));
        let core = DVec3::new(self.core_x_m, self.core_y_m, 0.0);
        move |position_m| {
            if !valid {
                return f64::NAN;
            }
            (DVec3::from_array(position_m) - core)
                .cross(direction)
                .length()
                / direction.length()
        }
    }

    /// The value of a numeric column of [`GEOMETRY_COLUMNS`] (`is_valid` as 0/1);
    /// `None` for `telescopes` and unknown names.
    pub fn value(&self, column: &str) -> Option<f64> {
        Some(match column {
            "alt" => self.alt_deg,
            "alt_uncert" => self.alt_uncert_deg,
            "az" => self.az_deg,
            "az_uncert" => self.az_uncert_deg,
            "ang_distance_uncert" => self.ang_distance_uncert_deg,
            "core_x" => self.core_x_m,
            "core_y" => self.core_y_m,
            "core_uncert_x" => self.core_uncert_x_m,
            "core_uncert_y" => self.core_uncert_y_m,
            "core_tilted_x" => self.core_tilted_x_m,
            "core_tilted_y" => self.core_tilted_y_m,
            "core_tilted_uncert_x" => self.core_tilted_uncert_x_m,
            "core_tilted_uncert_y" => self.core_tilted_uncert_y_m,
            "h_max" => self.h_max_m,
            "h_max_uncert" => self.h_max_uncert_m,
            "is_valid" => f64::from(u8::from(self.is_valid)),
            "average_intensity" => self.average_intensity,
            "goodness_of_fit" => self.goodness_of_fit,
            _ => return None,
        })
    }
}

/// One DL2 geometry column: ctapipe's field name (prefixed with the reconstructor name in
/// the output, e.g. `HillasReconstructor_alt`) and its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeometryColumn {
    /// Field name of `ReconstructedGeometryContainer`.
    pub name: &'static str,
    /// Unit (`"deg"`, `"m"`), `None` for dimensionless or non-numeric columns.
    pub unit: Option<&'static str>,
}

/// The columns of a [`ReconstructedGeometry`] in ctapipe's order.
pub const GEOMETRY_COLUMNS: [GeometryColumn; 19] = [
    column("alt", Some("deg")),
    column("alt_uncert", Some("deg")),
    column("az", Some("deg")),
    column("az_uncert", Some("deg")),
    column("ang_distance_uncert", Some("deg")),
    column("core_x", Some("m")),
    column("core_y", Some("m")),
    column("core_uncert_x", Some("m")),
    column("core_uncert_y", Some("m")),
    column("core_tilted_x", Some("m")),
    column("core_tilted_y", Some("m")),
    column("core_tilted_uncert_x", Some("m")),
    column("core_tilted_uncert_y", Some("m")),
    column("h_max", Some("m")),
    column("h_max_uncert", Some("m")),
    column("is_valid", None),
    column("average_intensity", None),
    column("goodness_of_fit", None),
    column("telescopes", None),
];

const fn column(name: &'static str, unit: Option<&'static str>) -> GeometryColumn {
    GeometryColumn { name, unit }
}

/// Camera radius in the telescope frame (deg) as `HillasReconstructor.__init__` computes
/// it: ctapipe's `CameraGeometry.guess_radius()` (mean distance of the border pixels from
/// the mean pixel position, m) converted with the frame focal length (m) as the
/// camera-frame point (0, radius) converts into `fov_lon`.
///
/// `border_mask` marks the border pixels (ctapipe's `get_border_pixel_mask(1)`). Returns
/// NaN when no pixel is marked.
pub fn camera_radius_deg(
    pix_x_m: &[f64],
    pix_y_m: &[f64],
    border_mask: &[bool],
    focal_length_m: f64,
) -> f64 {
    let n = pix_x_m.len() as f64;
    let center_x = pix_x_m.iter().sum::<f64>() / n;
    let center_y = pix_y_m.iter().sum::<f64>() / n;
    let (sum, count) = pix_x_m
        .iter()
        .zip(pix_y_m)
        .zip(border_mask)
        .filter(|(_, border)| **border)
        .fold((0.0, 0usize), |(sum, count), ((x, y), _)| {
            (sum + (x - center_x).hypot(y - center_y), count + 1)
        });
    let radius_m = sum / count as f64;
    (radius_m / focal_length_m).to_degrees()
}
