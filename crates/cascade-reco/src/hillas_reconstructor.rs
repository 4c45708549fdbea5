//! ctapipe's `HillasReconstructor` (`ctapipe/reco/hillas_reconstructor.py`): each image
//! axis and the telescope position span a plane containing the shower axis; the shower
//! direction is the weighted mean of the pairwise plane intersections, the core the
//! least-squares intersection of the image axes in the tilted ground frame, and h_max the
//! height of the least-squares intersection of the centroid directions.

use cascade_instrument::frames::{
    AltAz, FovOffset, NominalFrame, TelescopeFrame, TiltedGroundFrame,
    altaz_to_righthanded_cartesian, righthanded_cartesian_to_altaz,
};
use glam::{DMat3, DVec3};

use crate::{ArrayEvent, RecoError, ReconstructedGeometry, ReconstructorType, TelescopeEvent};

/// Reconstructs the geometry from the selected telescopes (at least two, widths valid).
pub(crate) fn reconstruct(
    event: &ArrayEvent<'_>,
    telescopes: &[&TelescopeEvent],
) -> Result<ReconstructedGeometry, RecoError> {
    let nominal = NominalFrame::new(event.array_pointing);
    let planes: Vec<HillasPlane> = telescopes
        .iter()
        .map(|t| HillasPlane::new(t, &nominal))
        .collect();

    let (direction, direction_uncert_deg) = estimate_direction(&planes);
    let [core_tilted_x_m, core_tilted_y_m] = estimate_core_tilted(event.array_pointing, &planes)?;
    let [core_x_m, core_y_m] = TiltedGroundFrame::new(event.array_pointing).project_to_ground([
        core_tilted_x_m,
        core_tilted_y_m,
        0.0,
    ]);
    let h_max_m = estimate_h_max(&planes, event.observation_level_m)?;
    let AltAz { alt_deg, az_deg } = righthanded_cartesian_to_altaz(direction.to_array());

    let mut geometry = ReconstructedGeometry::invalid();
    geometry.alt_deg = alt_deg;
    geometry.az_deg = az_deg;
    geometry.alt_uncert_deg = direction_uncert_deg;
    geometry.az_uncert_deg = direction_uncert_deg;
    geometry.core_x_m = core_x_m;
    geometry.core_y_m = core_y_m;
    geometry.core_tilted_x_m = core_tilted_x_m;
    geometry.core_tilted_y_m = core_tilted_y_m;
    geometry.h_max_m = h_max_m;
    geometry.is_valid = true;
    geometry.average_intensity = telescopes
        .iter()
        .map(|t| t.hillas.intensity_pe)
        .sum::<f64>()
        / telescopes.len() as f64;
    geometry.telescopes = telescopes.iter().map(|t| t.tel_id).collect();
    Ok(geometry)
}

/// One telescope's contribution (`HillasReconstructor.initialize_arrays`).
struct HillasPlane {
    /// Right-handed ground-frame unit vector of the image centroid direction.
    cog_direction: DVec3,
    /// Normal of the plane through the centroid and a second point on the image axis.
    normal: DVec3,
    /// `intensity * length / width`.
    weight: f64,
    /// Image axis angle in the camera frame of the array pointing (rad), in (-pi/2, pi/2).
    corrected_psi_rad: f64,
    /// Telescope position in the ground frame (m).
    position_m: DVec3,
}

impl HillasPlane {
    fn new(telescope: &TelescopeEvent, nominal: &NominalFrame) -> Self {
        let hillas = &telescope.hillas;
        let telescope_frame = TelescopeFrame::new(telescope.pointing);
        // second point on the image axis, a tenth of the camera radius from the centroid
        let (sin_psi, cos_psi) = hillas.psi_deg.to_radians().sin_cos();
        let step_deg = 0.1 * telescope.camera_radius_deg;
        let cog = FovOffset {
            fov_lon_deg: hillas.fov_lon_deg,
            fov_lat_deg: hillas.fov_lat_deg,
        };
        let p2 = FovOffset {
            fov_lon_deg: hillas.fov_lon_deg + step_deg * cos_psi,
            fov_lat_deg: hillas.fov_lat_deg + step_deg * sin_psi,
        };
        let cog_altaz = telescope_frame.to_altaz(cog);
        let p2_altaz = telescope_frame.to_altaz(p2);
        let cog_direction = DVec3::from_array(altaz_to_righthanded_cartesian(cog_altaz));
        let p2_direction = DVec3::from_array(altaz_to_righthanded_cartesian(p2_altaz));

        // ctapipe transforms both points into a CameraFrame of the array pointing
        // (x = fov_lat * f, y = fov_lon * f) and takes atan(dy / dx); f cancels.
        let cog_nominal = nominal.from_altaz(cog_altaz);
        let p2_nominal = nominal.from_altaz(p2_altaz);
        let corrected_psi_rad = ((cog_nominal.fov_lon_deg - p2_nominal.fov_lon_deg)
            / (cog_nominal.fov_lat_deg - p2_nominal.fov_lat_deg))
            .atan();

        Self {
            cog_direction,
            normal: cog_direction.cross(p2_direction),
            weight: hillas.intensity_pe * hillas.length_deg / hillas.width_deg,
            corrected_psi_rad,
            position_m: DVec3::from_array(telescope.position_m),
        }
    }
}

/// `estimate_direction`: the weighted mean of the pairwise plane crossings (each turned
/// upwards, weight `w_i * w_j`), normalised; the uncertainty is the mean angle (deg)
/// between that direction and the crossings.
fn estimate_direction(planes: &[HillasPlane]) -> (DVec3, f64) {
    let mut crossings = Vec::with_capacity(planes.len() * (planes.len() - 1) / 2);
    let mut weighted_sum = DVec3::ZERO;
    let mut weight_sum = 0.0;
    for (i, a) in planes.iter().enumerate() {
        for b in &planes[i + 1..] {
            let mut crossing = a.normal.cross(b.normal);
            if crossing.z < 0.0 {
                crossing = -crossing;
            }
            let weight = a.weight * b.weight;
            weighted_sum += crossing * weight;
            weight_sum += weight;
            crossings.push(crossing);
        }
    }
    let mean = weighted_sum / weight_sum;
    let direction = mean / mean.length();
    let mean_angle_rad = crossings
        .iter()
        .map(|crossing| angle_rad(direction, *crossing))
        .sum::<f64>()
        / crossings.len() as f64;
    (direction, mean_angle_rad.to_degrees())
}

/// `estimate_core_position`: the image axes as lines through the telescope positions in
/// the tilted frame of the array pointing, direction `(cos psi, sin psi, 0)` with the
/// corrected psi; returns their least-squares intersection (tilted x, y in m).
fn estimate_core_tilted(
    array_pointing: AltAz,
    planes: &[HillasPlane],
) -> Result<[f64; 2], RecoError> {
    let tilted = TiltedGroundFrame::new(array_pointing);
    let lines = planes.iter().map(|plane| {
        let (sin_psi, cos_psi) = plane.corrected_psi_rad.sin_cos();
        let origin = tilted.from_ground(plane.position_m.to_array());
        (DVec3::new(cos_psi, sin_psi, 0.0), DVec3::from_array(origin))
    });
    let core = line_line_intersection_3d(lines).ok_or(RecoError::Degenerate {
        reconstructor: ReconstructorType::HillasReconstructor,
        what: "image axes on the ground",
    })?;
    Ok([core.x, core.y])
}

/// `estimate_relative_h_max` plus the observation level: the height (m above sea level)
/// of the least-squares intersection of the lines from each telescope along its centroid
/// direction (its ground-frame z plus the altitude of the array reference point).
fn estimate_h_max(planes: &[HillasPlane], observation_level_m: f64) -> Result<f64, RecoError> {
    let lines = planes
        .iter()
        .map(|plane| (plane.cog_direction, plane.position_m));
    let point = line_line_intersection_3d(lines).ok_or(RecoError::Degenerate {
        reconstructor: ReconstructorType::HillasReconstructor,
        what: "centroid directions",
    })?;
    Ok(point.z + observation_level_m)
}

/// `line_line_intersection_3d`: the point minimising the summed squared distances to lines
/// given as (unit direction n, point p): solves `sum(n nᵀ - I) x = sum((n nᵀ - I) p)`.
/// `None` when the system is singular (all lines parallel).
fn line_line_intersection_3d(lines: impl Iterator<Item = (DVec3, DVec3)>) -> Option<DVec3> {
    let mut system = DMat3::ZERO;
    let mut rhs = DVec3::ZERO;
    for (direction, origin) in lines {
        let projector = DMat3::from_cols(
            direction * direction.x,
            direction * direction.y,
            direction * direction.z,
        ) - DMat3::IDENTITY;
        system += projector;
        rhs += projector * origin;
    }
    let determinant = system.determinant();
    if determinant == 0.0 || !determinant.is_finite() {
        return None;
    }
    Some(system.inverse() * rhs)
}

/// ctapipe's `angle`: `arccos(clip(a·b / (|a| |b|), -1, 1))` (rad).
fn angle_rad(a: DVec3, b: DVec3) -> f64 {
    (a.dot(b) / (a.length() * b.length()))
        .clamp(-1.0, 1.0)
        .acos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_through_one_point_intersect_there() {
        let target = DVec3::new(10.0, -20.0, 5.0);
        let directions = [
            DVec3::new(1.0, 0.0, 0.0),
            DVec3::new(0.0, 1.0, 0.0),
            DVec3::new(0.0, 0.6, 0.8),
        ];
        let lines = directions.map(|d| (d, target + 3.0 * d));
        let point =
            line_line_intersection_3d(lines.into_iter()).unwrap_or_else(|| panic!("singular"));
        assert!((point - target).length() < 1e-9);
    }

    #[test]
    fn parallel_lines_are_degenerate() {
        let d = DVec3::new(1.0, 0.0, 0.0);
        let lines = [(d, DVec3::ZERO), (d, DVec3::new(0.0, 1.0, 0.0))];
        assert!(line_line_intersection_3d(lines.into_iter()).is_none());
    }
}
