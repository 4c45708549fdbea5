//! The toy source's built-in array: three telescope types with realistic cameras.
//!
//! | tel_id | type                  | camera                                   | focal length |
//! |--------|-----------------------|------------------------------------------|--------------|
//! | 1-4    | `LST_LST_ToyLSTCam`   | 1855 hexagonal pixels, 0.05 m pitch      | 28 m         |
//! | 5-12   | `MST_MST_ToyFlashCam` | 1764 hexagonal pixels, 0.05 m pitch      | 16 m         |
//! | 13-18  | `SST_ASTRI_ToyCHEC`   | 2048 square pixels in 32 gapped modules  | 2.15 m       |
//!
//! Cameras are built on a pixel lattice (hexagonal: the N lattice points closest to the
//! centre; square: 8x8-pixel modules with gaps between them), so neighbour finding and
//! cleaning meet the same layouts as on real cameras.

use std::collections::BTreeMap;
use std::sync::Arc;

use cascade_instrument::neighbors::compute_neighbors;
use cascade_instrument::{
    CameraGeometry, OpticsDescription, PixelShape, SubarrayDescription, TelescopeDescription,
};

/// Readout of one toy camera type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToyReadout {
    /// Waveform samples per pixel.
    pub n_samples: usize,
    /// Sampling rate (GHz).
    pub sampling_rate_ghz: f64,
}

/// The built-in array and each telescope type's readout.
#[derive(Debug, Clone)]
pub struct ToyArray {
    /// Telescopes, positions and cameras.
    pub subarray: Arc<SubarrayDescription>,
    /// Readout by telescope type name.
    pub readout: BTreeMap<String, ToyReadout>,
}

/// Builds the built-in array.
pub fn toy_array() -> ToyArray {
    let lst = telescope(
        "LST_LST_ToyLSTCam",
        optics("LST", 28.0, 386.0, 198),
        hexagonal_camera("ToyLSTCam", 1855, 0.05),
    );
    let mst = telescope(
        "MST_MST_ToyFlashCam",
        optics("MST", 16.0, 106.0, 86),
        hexagonal_camera("ToyFlashCam", 1764, 0.05),
    );
    let sst = telescope(
        "SST_ASTRI_ToyCHEC",
        optics("ASTRI", 2.15, 7.6, 2),
        square_module_camera("ToyCHEC"),
    );
    let mut telescopes = BTreeMap::new();
    let mut positions_m = BTreeMap::new();
    let mut tel_id = 1u16;
    let mut place = |description: &Arc<TelescopeDescription>, positions: &[[f64; 2]]| {
        for &[x, y] in positions {
            telescopes.insert(tel_id, Arc::clone(description));
            positions_m.insert(tel_id, [x, y, 0.0]);
            tel_id += 1;
        }
    };
    place(
        &lst,
        &[[70.0, 70.0], [-70.0, 70.0], [-70.0, -70.0], [70.0, -70.0]],
    );
    place(&mst, &ring(8, 220.0, 0.0));
    place(&sst, &ring(6, 420.0, 30.0));
    let readout = BTreeMap::from([
        (
            lst.name.clone(),
            ToyReadout {
                n_samples: 40,
                sampling_rate_ghz: 1.0,
            },
        ),
        (
            mst.name.clone(),
            ToyReadout {
                n_samples: 25,
                sampling_rate_ghz: 0.25,
            },
        ),
        (
            sst.name.clone(),
            ToyReadout {
                n_samples: 40,
                sampling_rate_ghz: 1.0,
            },
        ),
    ]);
    let subarray = SubarrayDescription {
        name: "toy".to_string(),
        telescopes,
        positions_m,
        reference_altitude_m: 2200.0,
    };
    ToyArray {
        subarray: Arc::new(subarray),
        readout,
    }
}

fn telescope(
    name: &str,
    optics: OpticsDescription,
    camera: CameraGeometry,
) -> Arc<TelescopeDescription> {
    Arc::new(TelescopeDescription {
        name: name.to_string(),
        optics,
        camera: Arc::new(camera),
    })
}

fn optics(
    name: &str,
    focal_length_m: f64,
    mirror_area_m2: f64,
    n_mirror_tiles: u32,
) -> OpticsDescription {
    OpticsDescription {
        name: name.to_string(),
        equivalent_focal_length_m: focal_length_m,
        effective_focal_length_m: focal_length_m,
        mirror_area_m2,
        n_mirror_tiles,
    }
}

/// `n` positions evenly spaced on a circle of `radius` m, starting at `phase` deg.
fn ring(n: usize, radius: f64, phase: f64) -> Vec<[f64; 2]> {
    (0..n)
        .map(|i| {
            let angle = (phase + 360.0 * i as f64 / n as f64).to_radians();
            [radius * angle.cos(), radius * angle.sin()]
        })
        .collect()
}

/// The `n_pixels` points of a hexagonal lattice of pitch `pitch` (m) closest to the centre.
fn hexagonal_camera(name: &str, n_pixels: usize, pitch: f64) -> CameraGeometry {
    let rings = ((n_pixels as f64 / 3.0).sqrt() as i64) + 2;
    let mut points: Vec<(f64, f64)> = Vec::new();
    for j in -rings..=rings {
        for i in -rings..=rings {
            let x = pitch * (i as f64 + 0.5 * j as f64);
            let y = pitch * j as f64 * 3f64.sqrt() / 2.0;
            points.push((x, y));
        }
    }
    // Closest first; ties broken by angle so the layout is deterministic and symmetric.
    points.sort_by(|a, b| {
        let key = |p: &(f64, f64)| {
            (
                (p.0.hypot(p.1) / pitch * 1e6).round() as i64,
                p.1.atan2(p.0),
            )
        };
        let (ra, pa) = key(a);
        let (rb, pb) = key(b);
        ra.cmp(&rb).then(pa.total_cmp(&pb))
    });
    points.truncate(n_pixels);
    let area = 3f64.sqrt() / 2.0 * pitch * pitch;
    camera(name, points, area, PixelShape::Hexagon)
}

/// A CHEC-like camera: 32 modules of 8x8 square pixels (6.4 mm pitch) on a 6x6 module grid
/// without its corners, 1.6 mm gaps between modules.
fn square_module_camera(name: &str) -> CameraGeometry {
    const PITCH: f64 = 0.0064;
    const GAP: f64 = 0.0016;
    let module_size = 8.0 * PITCH + GAP;
    let mut points = Vec::with_capacity(2048);
    for module_row in 0..6 {
        for module_col in 0..6 {
            let corner =
                (module_row == 0 || module_row == 5) && (module_col == 0 || module_col == 5);
            if corner {
                continue;
            }
            for row in 0..8 {
                for col in 0..8 {
                    let x = (module_col as f64 - 2.5) * module_size + (col as f64 - 3.5) * PITCH;
                    let y = (module_row as f64 - 2.5) * module_size + (row as f64 - 3.5) * PITCH;
                    points.push((x, y));
                }
            }
        }
    }
    camera(name, points, PITCH * PITCH, PixelShape::Square)
}

fn camera(name: &str, points: Vec<(f64, f64)>, area: f64, shape: PixelShape) -> CameraGeometry {
    let (pix_x_m, pix_y_m): (Vec<f64>, Vec<f64>) = points.into_iter().unzip();
    let neighbors = compute_neighbors(&pix_x_m, &pix_y_m, shape);
    CameraGeometry {
        name: name.to_string(),
        pix_area_m2: vec![area; pix_x_m.len()],
        pix_x_m,
        pix_y_m,
        pix_type: shape,
        pix_rotation_deg: 0.0,
        cam_rotation_deg: 0.0,
        neighbors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cameras_have_the_documented_sizes_and_lattice_neighbours() {
        let array = toy_array();
        let sizes: Vec<(u16, usize)> = array
            .subarray
            .telescopes
            .iter()
            .map(|(&id, t)| (id, t.camera.n_pixels()))
            .collect();
        assert_eq!(sizes.len(), 18);
        assert_eq!(sizes[0], (1, 1855));
        assert_eq!(sizes[4], (5, 1764));
        assert_eq!(sizes[12], (13, 2048));
        for telescope in array.subarray.telescopes.values() {
            let camera = &telescope.camera;
            let max = (0..camera.n_pixels())
                .map(|p| camera.neighbors.of(p).len())
                .max();
            let expected = if camera.pix_type == PixelShape::Square {
                4
            } else {
                6
            };
            assert_eq!(max, Some(expected), "{}", camera.name);
            // The central pixel of the hexagonal cameras has all six neighbours.
            if camera.pix_type == PixelShape::Hexagon {
                assert_eq!(camera.neighbors.of(0).len(), 6);
            }
        }
    }

    #[test]
    fn square_camera_corners_have_two_neighbours_across_module_gaps() {
        let array = toy_array();
        let chec = &array.subarray.telescopes[&13].camera;
        // The 1.6 mm gaps between modules are below ctapipe's 1.5-pitch neighbour radius, so
        // pixels on module edges keep their neighbours in the next module; only the corners
        // of the camera outline have two.
        let corner_pixels = (0..chec.n_pixels())
            .filter(|&p| chec.neighbors.of(p).len() == 2)
            .count();
        assert!(
            corner_pixels >= 4,
            "camera corners must have two neighbours"
        );
        let edge_of_module = (0..chec.n_pixels())
            .filter(|&p| chec.neighbors.of(p).len() == 4)
            .count();
        assert!(
            edge_of_module > 1500,
            "module edges lost neighbours across the gaps"
        );
    }
}
