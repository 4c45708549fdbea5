//! The per-telescope constants of a subarray that the stereo reconstruction needs
//! (positions, camera radii, observation level), computed once per subarray as ctapipe's
//! `HillasReconstructor.__init__` does.

use std::collections::BTreeMap;

use cascade_instrument::frames::AltAz;
use cascade_instrument::{CameraGeometry, FocalLengthChoice, SubarrayDescription};

use crate::{HillasParameters, TelescopeEvent, camera_radius_deg};

/// Constants of one telescope for the stereo reconstruction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StereoTelescope {
    /// Position in the ground frame (m): x north, y west, z up.
    pub position_m: [f64; 3],
    /// Camera radius in the telescope frame (deg), see [`camera_radius_deg`].
    pub camera_radius_deg: f64,
}

/// The stereo constants of every telescope of a subarray, by telescope id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StereoSubarray {
    /// Constants by telescope id (telescopes without a position are left out).
    pub telescopes: BTreeMap<u16, StereoTelescope>,
    /// Altitude of the array reference location above sea level (m).
    pub observation_level_m: f64,
}

impl StereoSubarray {
    /// Computes the constants from a subarray description; `focal_length_choice` must be
    /// the one used to put the Hillas parameters into the telescope frame.
    pub fn new(subarray: &SubarrayDescription, focal_length_choice: FocalLengthChoice) -> Self {
        let telescopes = subarray
            .telescopes
            .iter()
            .filter_map(|(tel_id, telescope)| {
                let position_m = *subarray.positions_m.get(tel_id)?;
                let focal_length_m = telescope.optics.frame_focal_length_m(focal_length_choice);
                let camera_radius_deg = geometry_radius_deg(&telescope.camera, focal_length_m);
                Some((
                    *tel_id,
                    StereoTelescope {
                        position_m,
                        camera_radius_deg,
                    },
                ))
            })
            .collect();
        Self {
            telescopes,
            observation_level_m: subarray.reference_altitude_m,
        }
    }

    /// Position (m) of telescope `tel_id` in the ground frame (x north, y west, z up);
    /// `None` for an unknown telescope.
    pub fn position_m(&self, tel_id: u16) -> Option<[f64; 3]> {
        self.telescopes.get(&tel_id).map(|t| t.position_m)
    }

    /// The reconstruction input of one telescope event; `None` for an unknown telescope.
    pub fn telescope_event(
        &self,
        tel_id: u16,
        hillas: HillasParameters,
        morphology_n_pixels: i64,
        leakage_intensity_width_2: f64,
        pointing: AltAz,
    ) -> Option<TelescopeEvent> {
        let telescope = self.telescopes.get(&tel_id)?;
        Some(TelescopeEvent {
            tel_id,
            hillas,
            morphology_n_pixels,
            leakage_intensity_width_2,
            pointing,
            position_m: telescope.position_m,
            camera_radius_deg: telescope.camera_radius_deg,
        })
    }
}

/// [`camera_radius_deg`] of a camera geometry with its width-1 border pixels.
fn geometry_radius_deg(geometry: &CameraGeometry, focal_length_m: f64) -> f64 {
    camera_radius_deg(
        &geometry.pix_x_m,
        &geometry.pix_y_m,
        &geometry.border_pixel_mask(1),
        focal_length_m,
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cascade_instrument::{
        Neighbors, OpticsDescription, PixelShape, SubarrayDescription, TelescopeDescription,
    };

    use super::*;

    /// A centre pixel surrounded by four pixels at 0.1 m, which form the border.
    fn cross_camera() -> CameraGeometry {
        CameraGeometry {
            name: "cross".to_string(),
            pix_x_m: vec![0.0, 0.1, 0.0, -0.1, 0.0],
            pix_y_m: vec![0.0, 0.0, 0.1, 0.0, -0.1],
            pix_area_m2: vec![0.01; 5],
            pix_type: PixelShape::Square,
            pix_rotation_deg: 0.0,
            cam_rotation_deg: 0.0,
            neighbors: Neighbors::from_lists(&[
                vec![1, 2, 3, 4],
                vec![0],
                vec![0],
                vec![0],
                vec![0],
            ]),
        }
    }

    #[test]
    fn radius_and_positions_come_from_the_subarray() {
        let telescope = Arc::new(TelescopeDescription {
            name: "TEST".to_string(),
            optics: OpticsDescription {
                name: "TEST".to_string(),
                equivalent_focal_length_m: 10.0,
                effective_focal_length_m: f64::NAN,
                mirror_area_m2: 100.0,
                n_mirror_tiles: 1,
            },
            camera: Arc::new(cross_camera()),
        });
        let subarray = SubarrayDescription {
            name: "test".to_string(),
            telescopes: [(3, telescope)].into_iter().collect(),
            positions_m: [(3, [1.0, 2.0, 3.0])].into_iter().collect(),
            reference_altitude_m: 1800.0,
        };
        let stereo = StereoSubarray::new(&subarray, FocalLengthChoice::Equivalent);
        assert_eq!(stereo.observation_level_m, 1800.0);
        let constants = stereo.telescopes[&3];
        assert_eq!(constants.position_m, [1.0, 2.0, 3.0]);
        assert!((constants.camera_radius_deg - 0.01f64.to_degrees()).abs() < 1e-12);
        let pointing = AltAz {
            alt_deg: 70.0,
            az_deg: 0.0,
        };
        let hillas = HillasParameters {
            fov_lon_deg: 0.0,
            fov_lat_deg: 0.0,
            psi_deg: 0.0,
            length_deg: 0.1,
            width_deg: 0.05,
            intensity_pe: 100.0,
        };
        assert!(
            stereo
                .telescope_event(4, hillas, 10, 0.0, pointing)
                .is_none()
        );
        let event = stereo.telescope_event(3, hillas, 10, 0.0, pointing);
        assert_eq!(event.map(|e| e.position_m), Some([1.0, 2.0, 3.0]));
    }
}
