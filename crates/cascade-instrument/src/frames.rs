//! Coordinate frames: camera, telescope, nominal, horizontal (alt/az), ground and tilted
//! ground, as defined by `ctapipe.coordinates`.
//!
//! ```text
//!  CameraFrame (x, y: m) ──focal length──> TelescopeFrame (fov_lon, fov_lat: deg)
//!                                               │ rotation about the telescope pointing
//!                                               v
//!  NominalFrame (fov_lon, fov_lat: deg) <──> AltAz (alt, az: deg) ──> right-handed unit vector
//!                                                                     (ground frame axes)
//!  GroundFrame (x north, y west, z up: m) <──> TiltedGroundFrame (plane normal to a direction)
//! ```
//!
//! The formulas are those astropy and ctapipe 0.28 evaluate, so results agree with them to
//! rounding (far below 1e-9 deg):
//! - camera <-> telescope: `ctapipe.coordinates.camera_frame.camera_to_telescope` /
//!   `telescope_to_camera` (equidistant mapping: angle = distance / focal length).
//! - telescope / nominal <-> alt/az: `telescope_frame.altaz_to_telescope` and
//!   `nominal_frame.altaz_to_nominal`, copies of astropy's `SkyOffsetFrame` transform: the
//!   rotation `R_y(-alt0) · R_z(az0)` applied to the unit vector of (lon = az, lat = alt).
//! - alt/az <-> unit vector: `ctapipe.coordinates.altaz_to_righthanded_cartesian`
//!   (`erfa.s2p(-az, alt, 1)`) and astropy's `cartesian_to_spherical` with `az = -lon`.
//! - ground <-> tilted ground: `ground_frames._get_shower_trans_matrix`, `ground_to_tilted`,
//!   `tilted_to_ground` and `project_to_ground`.

use serde::{Deserialize, Serialize};

/// A direction in the horizontal frame (astropy `AltAz`): altitude above the horizon and
/// azimuth from north towards east, both in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AltAz {
    /// Altitude above the horizon (deg).
    pub alt_deg: f64,
    /// Azimuth, north = 0, east = 90 (deg).
    pub az_deg: f64,
}

/// A direction relative to the origin of a field-of-view frame (ctapipe `TelescopeFrame` or
/// `NominalFrame`): `fov_lon` is aligned with azimuth, `fov_lat` with altitude (deg).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FovOffset {
    /// Longitude in the field of view, wrapped to [-180, 180) (deg).
    pub fov_lon_deg: f64,
    /// Latitude in the field of view (deg).
    pub fov_lat_deg: f64,
}

/// A point in the focal plane (ctapipe `CameraFrame`, m).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CameraPoint {
    /// x in the camera frame (m).
    pub x_m: f64,
    /// y in the camera frame (m).
    pub y_m: f64,
}

/// The attributes of a ctapipe `CameraFrame` that the conversion to the telescope frame
/// needs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CameraFrame {
    /// Focal length converting focal-plane distances into angles (m).
    pub focal_length_m: f64,
    /// Rotation of the camera frame (deg); 0 for the geometries ctapipe builds.
    pub rotation_deg: f64,
}

impl CameraFrame {
    /// A camera frame with the given focal length (m) and no rotation.
    pub fn new(focal_length_m: f64) -> Self {
        Self {
            focal_length_m,
            rotation_deg: 0.0,
        }
    }

    /// Camera frame -> telescope frame (`camera_to_telescope`): rotate by the frame rotation,
    /// then `fov_lat = x / f`, `fov_lon = y / f` (rad).
    pub fn to_telescope(&self, point: CameraPoint) -> FovOffset {
        let (x, y) = rotate(point.x_m, point.y_m, self.rotation_deg.to_radians());
        FovOffset {
            fov_lon_deg: wrap_at_180((y / self.focal_length_m).to_degrees()),
            fov_lat_deg: (x / self.focal_length_m).to_degrees(),
        }
    }

    /// Telescope frame -> camera frame (`telescope_to_camera`): `x = fov_lat · f`,
    /// `y = fov_lon · f` (angles in rad), then the inverse frame rotation.
    pub fn from_telescope(&self, offset: FovOffset) -> CameraPoint {
        let (x, y) = rotate(
            offset.fov_lat_deg.to_radians(),
            offset.fov_lon_deg.to_radians(),
            -self.rotation_deg.to_radians(),
        );
        CameraPoint {
            x_m: x * self.focal_length_m,
            y_m: y * self.focal_length_m,
        }
    }
}

/// A field-of-view frame centred on a direction: astropy's `SkyOffsetFrame` of `AltAz`,
/// which ctapipe's `TelescopeFrame` (origin: the telescope pointing) and `NominalFrame`
/// (origin: the array pointing) copy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkyOffsetFrame {
    origin: AltAz,
    /// Rotation taking astropy `AltAz` cartesian vectors into the offset frame.
    altaz_to_offset: Matrix3,
}

/// ctapipe's `TelescopeFrame`: a [`SkyOffsetFrame`] centred on the telescope pointing.
pub type TelescopeFrame = SkyOffsetFrame;

/// ctapipe's `NominalFrame`: a [`SkyOffsetFrame`] centred on the array pointing.
pub type NominalFrame = SkyOffsetFrame;

impl SkyOffsetFrame {
    /// The frame centred on `origin` (`altaz_to_telescope`: `R_y(-alt0) · R_z(az0)`).
    pub fn new(origin: AltAz) -> Self {
        let rot_y = rotation_about_y(-origin.alt_deg.to_radians());
        let rot_z = rotation_about_z(origin.az_deg.to_radians());
        Self {
            origin,
            altaz_to_offset: matmul(&rot_y, &rot_z),
        }
    }

    /// The origin of the frame in alt/az.
    pub fn origin(&self) -> AltAz {
        self.origin
    }

    /// Alt/az -> this frame.
    pub fn from_altaz(&self, direction: AltAz) -> FovOffset {
        let v = unit_vector(
            direction.az_deg.to_radians(),
            direction.alt_deg.to_radians(),
        );
        let (lon, lat) = lon_lat(&matvec(&self.altaz_to_offset, &v));
        FovOffset {
            fov_lon_deg: wrap_at_180(lon.to_degrees()),
            fov_lat_deg: lat.to_degrees(),
        }
    }

    /// This frame -> alt/az (`telescope_to_altaz`: the transposed rotation).
    pub fn to_altaz(&self, offset: FovOffset) -> AltAz {
        let v = unit_vector(
            offset.fov_lon_deg.to_radians(),
            offset.fov_lat_deg.to_radians(),
        );
        let (lon, lat) = lon_lat(&matvec_transposed(&self.altaz_to_offset, &v));
        AltAz {
            alt_deg: lat.to_degrees(),
            az_deg: wrap_at_360(lon.to_degrees()),
        }
    }

    /// This frame -> the right-handed ground-frame unit vector of the direction (x north,
    /// y west, z up): `altaz_to_righthanded_cartesian(self.to_altaz(offset))`.
    pub fn to_ground_direction(&self, offset: FovOffset) -> [f64; 3] {
        altaz_to_righthanded_cartesian(self.to_altaz(offset))
    }

    /// A direction given in this frame expressed in `other` (via alt/az, as astropy's
    /// `telescope_to_telescope` / `nominal_to_nominal` do).
    pub fn transform_to(&self, offset: FovOffset, other: &SkyOffsetFrame) -> FovOffset {
        other.from_altaz(self.to_altaz(offset))
    }
}

/// Alt/az -> unit vector in the right-handed ground frame (x north, y west, z up):
/// `ctapipe.coordinates.altaz_to_righthanded_cartesian` = `erfa.s2p(-az, alt, 1)`.
pub fn altaz_to_righthanded_cartesian(direction: AltAz) -> [f64; 3] {
    unit_vector(
        -direction.az_deg.to_radians(),
        direction.alt_deg.to_radians(),
    )
}

/// Right-handed ground-frame vector (any length, x north, y west, z up) -> alt/az, as
/// `HillasReconstructor.__call__` does: astropy's `cartesian_to_spherical`, then
/// `az = Longitude(-lon)` in [0, 360).
pub fn righthanded_cartesian_to_altaz(vector: [f64; 3]) -> AltAz {
    let (lon, lat) = lon_lat(&vector);
    AltAz {
        alt_deg: lat.to_degrees(),
        az_deg: wrap_at_360(-lon.to_degrees()),
    }
}

/// ctapipe's `TiltedGroundFrame`: cartesian coordinates (m) in the plane perpendicular to
/// a pointing direction, built with `_get_shower_trans_matrix(az, alt)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TiltedGroundFrame {
    pointing: AltAz,
    /// Rotation ground -> tilted.
    ground_to_tilted: Matrix3,
}

impl TiltedGroundFrame {
    /// The tilted frame of `pointing`.
    pub fn new(pointing: AltAz) -> Self {
        let (sin_alt, cos_alt) = pointing.alt_deg.to_radians().sin_cos();
        let (sin_az, cos_az) = pointing.az_deg.to_radians().sin_cos();
        // cos(zenith) = sin(alt), sin(zenith) = cos(alt)
        let (cos_z, sin_z) = (sin_alt, cos_alt);
        Self {
            pointing,
            ground_to_tilted: [
                [cos_z * cos_az, -cos_z * sin_az, -sin_z],
                [sin_az, cos_az, 0.0],
                [sin_z * cos_az, -sin_z * sin_az, cos_z],
            ],
        }
    }

    /// The pointing direction that defines the frame.
    pub fn pointing(&self) -> AltAz {
        self.pointing
    }

    /// Ground frame (m) -> tilted frame (m) (`ground_to_tilted`).
    pub fn from_ground(&self, ground_m: [f64; 3]) -> [f64; 3] {
        matvec(&self.ground_to_tilted, &ground_m)
    }

    /// Tilted frame (m) -> ground frame (m) (`tilted_to_ground`: the transposed rotation).
    pub fn to_ground(&self, tilted_m: [f64; 3]) -> [f64; 3] {
        matvec_transposed(&self.ground_to_tilted, &tilted_m)
    }

    /// A tilted-frame point (m) projected along the frame normal onto the ground plane
    /// z = 0 (`project_to_ground`); returns ground x, y (m).
    pub fn project_to_ground(&self, tilted_m: [f64; 3]) -> [f64; 2] {
        let [x, y, z] = self.to_ground(tilted_m);
        let t = &self.ground_to_tilted;
        [x - t[2][0] * z / t[2][2], y - t[2][1] * z / t[2][2]]
    }
}

type Matrix3 = [[f64; 3]; 3];

/// Unit vector of spherical (lon, lat) in rad: (cos lat cos lon, cos lat sin lon, sin lat).
fn unit_vector(lon_rad: f64, lat_rad: f64) -> [f64; 3] {
    let (sin_lon, cos_lon) = lon_rad.sin_cos();
    let (sin_lat, cos_lat) = lat_rad.sin_cos();
    [cos_lat * cos_lon, cos_lat * sin_lon, sin_lat]
}

/// (lon, lat) in rad of a cartesian vector, as astropy's `UnitSphericalRepresentation`
/// computes them: `lon = atan2(y, x)`, `lat = atan2(z, hypot(x, y))`.
fn lon_lat(v: &[f64; 3]) -> (f64, f64) {
    (v[1].atan2(v[0]), v[2].atan2(v[0].hypot(v[1])))
}

/// astropy's `rotation_matrix(angle, "y")` (a rotation of the coordinate axes).
fn rotation_about_y(angle_rad: f64) -> Matrix3 {
    let (s, c) = angle_rad.sin_cos();
    [[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]]
}

/// astropy's `rotation_matrix(angle, "z")` (a rotation of the coordinate axes).
fn rotation_about_z(angle_rad: f64) -> Matrix3 {
    let (s, c) = angle_rad.sin_cos();
    [[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]]
}

fn matmul(a: &Matrix3, b: &Matrix3) -> Matrix3 {
    let mut out = [[0.0; 3]; 3];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, value) in row.iter_mut().enumerate() {
            *value = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
        }
    }
    out
}

fn matvec(m: &Matrix3, v: &[f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|i| m[i][0] * v[0] + m[i][1] * v[1] + m[i][2] * v[2])
}

fn matvec_transposed(m: &Matrix3, v: &[f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|i| m[0][i] * v[0] + m[1][i] * v[1] + m[2][i] * v[2])
}

fn rotate(x: f64, y: f64, angle_rad: f64) -> (f64, f64) {
    if angle_rad == 0.0 {
        return (x, y);
    }
    let (s, c) = angle_rad.sin_cos();
    (x * c - y * s, x * s + y * c)
}

/// Wraps an angle to [-180, 180) deg (astropy `Angle.wrap_at(180 deg)`).
fn wrap_at_180(deg: f64) -> f64 {
    if (-180.0..180.0).contains(&deg) {
        deg
    } else {
        (deg + 180.0).rem_euclid(360.0) - 180.0
    }
}

/// Wraps an angle to [0, 360) deg (astropy `Longitude`).
fn wrap_at_360(deg: f64) -> f64 {
    if (0.0..360.0).contains(&deg) {
        deg
    } else {
        let wrapped = deg.rem_euclid(360.0);
        // rem_euclid of a tiny negative number rounds to 360.0
        if wrapped >= 360.0 { 0.0 } else { wrapped }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EPS_DEG: f64 = 1e-9;

    fn angular_separation_deg(a: AltAz, b: AltAz) -> f64 {
        let va = altaz_to_righthanded_cartesian(a);
        let vb = altaz_to_righthanded_cartesian(b);
        let cross = [
            va[1] * vb[2] - va[2] * vb[1],
            va[2] * vb[0] - va[0] * vb[2],
            va[0] * vb[1] - va[1] * vb[0],
        ];
        let sin = (cross[0].powi(2) + cross[1].powi(2) + cross[2].powi(2)).sqrt();
        let cos = va[0] * vb[0] + va[1] * vb[1] + va[2] * vb[2];
        sin.atan2(cos).to_degrees()
    }

    #[test]
    fn origin_maps_to_zero_offset() {
        let origin = AltAz {
            alt_deg: 70.0,
            az_deg: 180.0,
        };
        let offset = SkyOffsetFrame::new(origin).from_altaz(origin);
        assert!(offset.fov_lon_deg.abs() < EPS_DEG && offset.fov_lat_deg.abs() < EPS_DEG);
    }

    #[test]
    fn fov_axes_follow_altitude_and_azimuth() {
        let frame = SkyOffsetFrame::new(AltAz {
            alt_deg: 0.0,
            az_deg: 0.0,
        });
        let up = frame.to_altaz(FovOffset {
            fov_lon_deg: 0.0,
            fov_lat_deg: 1.0,
        });
        assert!((up.alt_deg - 1.0).abs() < EPS_DEG && up.az_deg.abs() < EPS_DEG);
        let east = frame.to_altaz(FovOffset {
            fov_lon_deg: 1.0,
            fov_lat_deg: 0.0,
        });
        assert!(east.alt_deg.abs() < EPS_DEG && (east.az_deg - 1.0).abs() < EPS_DEG);
    }

    #[test]
    fn zenith_is_up_and_north_is_x() {
        let up = altaz_to_righthanded_cartesian(AltAz {
            alt_deg: 90.0,
            az_deg: 0.0,
        });
        assert!((up[2] - 1.0).abs() < 1e-15);
        let east = altaz_to_righthanded_cartesian(AltAz {
            alt_deg: 0.0,
            az_deg: 90.0,
        });
        assert!((east[1] + 1.0).abs() < 1e-15, "east is -y (y points west)");
    }

    #[test]
    fn tilted_frame_of_zenith_pointing_mirrors_y() {
        let frame = TiltedGroundFrame::new(AltAz {
            alt_deg: 90.0,
            az_deg: 0.0,
        });
        let tilted = frame.from_ground([3.0, 4.0, 0.0]);
        assert!((tilted[0] - 3.0).abs() < 1e-12 && (tilted[1] - 4.0).abs() < 1e-12);
    }

    #[test]
    fn wrapping() {
        assert_eq!(wrap_at_360(-1e-20), 0.0);
        assert_eq!(wrap_at_360(-90.0), 270.0);
        assert_eq!(wrap_at_180(190.0), -170.0);
        assert_eq!(wrap_at_180(-180.0), -180.0);
    }

    proptest! {
        #[test]
        fn offset_frame_round_trip(
            alt0 in -89.0..89.0f64, az0 in 0.0..360.0f64,
            lon in -20.0..20.0f64, lat in -20.0..20.0f64,
        ) {
            let frame = SkyOffsetFrame::new(AltAz { alt_deg: alt0, az_deg: az0 });
            let offset = FovOffset { fov_lon_deg: lon, fov_lat_deg: lat };
            let back = frame.from_altaz(frame.to_altaz(offset));
            prop_assert!((back.fov_lon_deg - lon).abs() < EPS_DEG);
            prop_assert!((back.fov_lat_deg - lat).abs() < EPS_DEG);
        }

        #[test]
        fn offset_preserves_angular_distance(
            alt0 in 5.0..89.0f64, az0 in 0.0..360.0f64,
            lon in -10.0..10.0f64, lat in -10.0..10.0f64,
        ) {
            // the distance from the origin is the great-circle distance of the offset
            let frame = SkyOffsetFrame::new(AltAz { alt_deg: alt0, az_deg: az0 });
            let direction = frame.to_altaz(FovOffset { fov_lon_deg: lon, fov_lat_deg: lat });
            let expected = (lat.to_radians().cos() * lon.to_radians().cos()).acos().to_degrees();
            prop_assert!((angular_separation_deg(direction, frame.origin()) - expected).abs() < 1e-7);
        }

        #[test]
        fn camera_round_trip(x in -1.5..1.5f64, y in -1.5..1.5f64, rot in -180.0..180.0f64) {
            let frame = CameraFrame { focal_length_m: 16.0, rotation_deg: rot };
            let back = frame.from_telescope(frame.to_telescope(CameraPoint { x_m: x, y_m: y }));
            prop_assert!((back.x_m - x).abs() < 1e-12 && (back.y_m - y).abs() < 1e-12);
        }

        #[test]
        fn altaz_cartesian_round_trip(alt in -89.9..89.9f64, az in 0.0..360.0f64) {
            let back = righthanded_cartesian_to_altaz(
                altaz_to_righthanded_cartesian(AltAz { alt_deg: alt, az_deg: az }));
            prop_assert!((back.alt_deg - alt).abs() < EPS_DEG);
            let daz = (back.az_deg - az).rem_euclid(360.0);
            prop_assert!(daz.min(360.0 - daz) < 1e-8);
        }

        #[test]
        fn tilted_round_trip_and_projection(
            alt in 20.0..90.0f64, az in 0.0..360.0f64,
            x in -500.0..500.0f64, y in -500.0..500.0f64, z in -50.0..50.0f64,
        ) {
            let frame = TiltedGroundFrame::new(AltAz { alt_deg: alt, az_deg: az });
            let back = frame.to_ground(frame.from_ground([x, y, z]));
            prop_assert!((back[0] - x).abs() < 1e-9 && (back[1] - y).abs() < 1e-9 && (back[2] - z).abs() < 1e-9);
            // a ground point (z = 0) seen in the tilted plane projects back onto itself
            let tilted = frame.from_ground([x, y, 0.0]);
            let [px, py] = frame.project_to_ground([tilted[0], tilted[1], 0.0]);
            prop_assert!((px - x).abs() < 1e-8 && (py - y).abs() < 1e-8);
        }
    }
}
