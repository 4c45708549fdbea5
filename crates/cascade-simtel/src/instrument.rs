//! Builds cascade's instrument model from the setup objects of a file, naming telescopes and
//! cameras the way ctapipe's `SimTelEventSource.prepare_subarray_info` does.
//!
//! * Names come from the telescope metadata (`OPTICS_CONFIG_NAME`, `CAMERA_CONFIG_NAME`,
//!   `MIRROR_CLASS`) when all three are present, with the size class from the mirror area
//!   (`type_from_mirror_area`); otherwise from `guess_telescope(n_pixels, focal_length,
//!   n_mirror_tiles)` (ctapipe `instrument/guess.py`), and failing that
//!   `UNKNOWN-<area>M2` / `UNKNOWN-<n>PX`.
//! * The telescope type name is `<size>_<optics>_<camera>` (ctapipe `TelescopeDescription`).
//! * Geometry: pixel shape and rotation from the sim_telarray shape code
//!   (`SIMTEL_PIXEL_SHAPES`), camera rotation `-cam_rot`, then ctapipe's de-rotation
//!   (`CameraGeometry.rotate(cam_rotation)`), so `cam_rotation_deg` is always 0.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use cascade_instrument::neighbors::compute_neighbors;
use cascade_instrument::{
    CameraGeometry, OpticsDescription, PixelShape, SubarrayDescription, TelescopeDescription,
};

use crate::objects::setup::{CameraSettings, HistoryMeta, RunHeader};

/// ctapipe's telescope size class, optics name, camera name and number of mirrors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelescopeNames {
    /// Size class: `"LST"`, `"MST"` or `"SST"`.
    pub size_type: String,
    /// Optics name.
    pub optics_name: String,
    /// Camera name.
    pub camera_name: String,
    /// Number of mirrors of the optical design (1, 2, or -1 when unknown).
    pub n_mirrors: i32,
}

impl TelescopeNames {
    /// ctapipe's telescope type string `<size>_<optics>_<camera>`.
    pub fn type_name(&self) -> String {
        format!(
            "{}_{}_{}",
            self.size_type, self.optics_name, self.camera_name
        )
    }
}

/// Names of a telescope from its metadata, else from ctapipe's lookup table.
pub fn telescope_names(
    settings: &CameraSettings,
    meta: Option<&HashMap<String, String>>,
) -> TelescopeNames {
    let mirror_area = f64::from(settings.mirror_area_m2);
    if let Some(meta) = meta
        && let (Some(optics), Some(camera), Some(mirror_class)) = (
            meta.get("OPTICS_CONFIG_NAME"),
            meta.get("CAMERA_CONFIG_NAME"),
            meta.get("MIRROR_CLASS"),
        )
    {
        let dual_mirror = mirror_class.trim().parse::<i32>().ok() == Some(2);
        return TelescopeNames {
            size_type: size_type_from_mirror_area(mirror_area).to_string(),
            optics_name: optics.clone(),
            camera_name: camera.clone(),
            n_mirrors: if dual_mirror { 2 } else { 1 },
        };
    }
    guess_telescope(
        settings.n_pixels,
        f64::from(settings.focal_length_m),
        settings.n_mirrors,
    )
    .unwrap_or_else(|| TelescopeNames {
        size_type: size_type_from_mirror_area(mirror_area).to_string(),
        optics_name: format!("UNKNOWN-{:.0}M2", mirror_area),
        camera_name: format!("UNKNOWN-{}PX", settings.n_pixels),
        n_mirrors: -1,
    })
}

/// ctapipe's `type_from_mirror_area`: size class from the equivalent mirror diameter.
pub fn size_type_from_mirror_area(mirror_area_m2: f64) -> &'static str {
    let diameter = 2.0 * (mirror_area_m2 / std::f64::consts::PI).sqrt();
    if diameter < 8.0 {
        "SST"
    } else if diameter < 16.0 {
        "MST"
    } else {
        "LST"
    }
}

/// ctapipe's `guess_telescope` lookup: (n_pixels, focal length rounded to cm, optional
/// number of mirror tiles) -> (size, optics, camera, n_mirrors).
pub fn guess_telescope(
    n_pixels: usize,
    focal_length_m: f64,
    n_mirror_tiles: i32,
) -> Option<TelescopeNames> {
    /// (n_pixels, focal length m, n_mirror_tiles, size, optics, camera, n_mirrors)
    type Entry = (
        usize,
        f64,
        Option<i32>,
        &'static str,
        &'static str,
        &'static str,
        i32,
    );
    const TABLE: &[Entry] = &[
        (2048, 2.28, None, "SST", "GCT", "CHEC", 2),
        (2368, 2.15, None, "SST", "ASTRI", "ASTRICam", 2),
        (2048, 2.15, None, "SST", "ASTRI", "CHEC", 2),
        (1296, 5.60, None, "SST", "1M", "DigiCam", 1),
        (1764, 16.0, None, "MST", "MST", "FlashCam", 1),
        (1855, 16.0, None, "MST", "MST", "NectarCam", 1),
        (1855, 28.0, None, "LST", "LST", "LSTCam", 1),
        (11328, 5.59, None, "MST", "SCT", "SCTCam", 1),
        (1039, 16.97, Some(964), "LST", "MAGIC-1", "MAGICCam", 1),
        (1039, 16.97, Some(247), "LST", "MAGIC-2", "MAGICCam", 1),
        (1039, 17.0, Some(964), "LST", "MAGIC-1", "MAGICCam", 1),
        (1039, 17.0, Some(247), "LST", "MAGIC-2", "MAGICCam", 1),
        (960, 15.0, None, "MST", "HESS-I", "HESS-I", 1),
        (2048, 36.0, None, "LST", "HESS-II", "HESS-II", 1),
        (1440, 4.89, None, "SST", "FACT", "FACT", 1),
    ];
    let focal_cm = (focal_length_m * 100.0).round();
    let matches = |entry: &&Entry, tiles: Option<i32>| {
        entry.0 == n_pixels && (entry.1 * 100.0).round() == focal_cm && entry.2 == tiles
    };
    TABLE
        .iter()
        .find(|e| matches(e, Some(n_mirror_tiles)))
        .or_else(|| TABLE.iter().find(|e| matches(e, None)))
        .map(|e| TelescopeNames {
            size_type: e.3.to_string(),
            optics_name: e.4.to_string(),
            camera_name: e.5.to_string(),
            n_mirrors: e.6,
        })
}

/// ctapipe's `SIMTEL_PIXEL_SHAPES`: sim_telarray shape code -> (shape, pixel rotation deg).
/// Unknown codes become hexagons without rotation, as ctapipe does (with a warning).
pub fn pixel_shape_from_simtel(code: i32) -> (PixelShape, f64) {
    match code {
        0 => (PixelShape::Circle, 0.0),
        2 => (PixelShape::Square, 0.0),
        3 => (PixelShape::Hexagon, 30.0),
        _ => (PixelShape::Hexagon, 0.0),
    }
}

/// The camera geometry ctapipe builds from camera settings (`build_camera` with
/// `apply_derotation=True`): positions rotated by the camera rotation, which is then 0.
pub fn camera_geometry(name: &str, settings: &CameraSettings) -> CameraGeometry {
    let (pix_type, pix_rotation_deg) =
        pixel_shape_from_simtel(settings.pixel_shape.first().copied().unwrap_or(-1));
    // cam_rotation = -cam_rot; rotate(angle) applies R(angle)^T and subtracts the angle
    // from the pixel rotation.
    let angle = -f64::from(settings.cam_rot_rad);
    let (sin, cos) = angle.sin_cos();
    let (pix_x_m, pix_y_m): (Vec<f64>, Vec<f64>) = settings
        .pixel_x_m
        .iter()
        .zip(&settings.pixel_y_m)
        .map(|(&x, &y)| {
            let (x, y) = (f64::from(x), f64::from(y));
            (cos * x + sin * y, -sin * x + cos * y)
        })
        .unzip();
    let neighbors = compute_neighbors(&pix_x_m, &pix_y_m, pix_type);
    CameraGeometry {
        name: name.to_string(),
        pix_x_m,
        pix_y_m,
        pix_area_m2: settings
            .pixel_area_m2
            .iter()
            .map(|&a| f64::from(a))
            .collect(),
        pix_type,
        pix_rotation_deg: pix_rotation_deg - angle.to_degrees(),
        cam_rotation_deg: 0.0,
        neighbors,
    }
}

/// Builds the subarray from the run header, the camera settings of every telescope and the
/// metadata. Telescopes sharing camera name and pixel layout share one geometry.
pub fn build_subarray(
    run_header: &RunHeader,
    settings: &BTreeMap<u16, CameraSettings>,
    telescope_meta: &HashMap<u16, HashMap<String, String>>,
    global_meta: &HashMap<String, String>,
    reference_altitude_m: f64,
) -> (SubarrayDescription, BTreeMap<u16, TelescopeNames>) {
    let mut cameras: Vec<Arc<CameraGeometry>> = Vec::new();
    let mut telescopes = BTreeMap::new();
    let mut names = BTreeMap::new();
    let mut positions_m = BTreeMap::new();
    for (&tel_id, cam) in settings {
        let tel_names = telescope_names(cam, telescope_meta.get(&tel_id));
        let camera = match cameras
            .iter()
            .find(|c| same_layout(c, &tel_names.camera_name, cam))
        {
            Some(existing) => Arc::clone(existing),
            None => {
                let geometry = Arc::new(camera_geometry(&tel_names.camera_name, cam));
                cameras.push(Arc::clone(&geometry));
                geometry
            }
        };
        let optics = OpticsDescription {
            name: tel_names.optics_name.clone(),
            equivalent_focal_length_m: f64::from(cam.focal_length_m),
            effective_focal_length_m: cam.effective_focal_length_m.map_or(f64::NAN, f64::from),
            mirror_area_m2: f64::from(cam.mirror_area_m2),
            n_mirror_tiles: u32::try_from(cam.n_mirrors).unwrap_or(0),
        };
        telescopes.insert(
            tel_id,
            Arc::new(TelescopeDescription {
                name: tel_names.type_name(),
                optics,
                camera,
            }),
        );
        if let Some(index) = run_header
            .tel_ids
            .iter()
            .position(|&id| i32::from(id) == i32::from(tel_id))
            && let Some(p) = run_header.tel_positions_m.get(index)
        {
            positions_m.insert(tel_id, [f64::from(p[0]), f64::from(p[1]), f64::from(p[2])]);
        }
        names.insert(tel_id, tel_names);
    }
    let name = global_meta
        .get("ARRAY_CONFIG_NAME")
        .cloned()
        .unwrap_or_else(|| "MonteCarloArray".to_string());
    let subarray = SubarrayDescription {
        name,
        telescopes,
        positions_m,
        reference_altitude_m,
    };
    (subarray, names)
}

fn same_layout(existing: &CameraGeometry, name: &str, settings: &CameraSettings) -> bool {
    existing.name == name
        && existing.n_pixels() == settings.n_pixels
        && camera_geometry_matches(existing, settings)
}

fn camera_geometry_matches(existing: &CameraGeometry, settings: &CameraSettings) -> bool {
    let angle = -f64::from(settings.cam_rot_rad);
    let (sin, cos) = angle.sin_cos();
    existing
        .pix_x_m
        .iter()
        .zip(&existing.pix_y_m)
        .zip(settings.pixel_x_m.iter().zip(&settings.pixel_y_m))
        .all(|((&ex, &ey), (&x, &y))| {
            let (x, y) = (f64::from(x), f64::from(y));
            ex == cos * x + sin * y && ey == -sin * x + cos * y
        })
        && existing
            .pix_area_m2
            .iter()
            .zip(&settings.pixel_area_m2)
            .all(|(&a, &b)| a == f64::from(b))
}

/// Converts metadata items to a map (later duplicates win). Keys keep sim_telarray's case
/// (`*LATITUDE`-style keys keep their leading `*`).
pub fn meta_map(meta: &HistoryMeta) -> HashMap<String, String> {
    meta.items.iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guessing_follows_ctapipe_table() {
        let lst = guess_telescope(1855, 28.0, 198).expect("LST");
        assert_eq!(lst.type_name(), "LST_LST_LSTCam");
        let magic = guess_telescope(1039, 17.0, 247).expect("MAGIC");
        assert_eq!(magic.optics_name, "MAGIC-2");
        assert!(guess_telescope(1855, 12.0, 0).is_none());
        assert_eq!(size_type_from_mirror_area(106.0), "MST");
        assert_eq!(size_type_from_mirror_area(387.0), "LST");
    }
}
