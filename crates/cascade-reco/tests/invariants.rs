//! Property tests: a synthetic shower whose images are built from a known axis (direction,
//! core and shower-maximum point) is reconstructed back by both reconstructors, and the
//! result does not depend on the order of the telescopes.
#![allow(clippy::unwrap_used)]

use cascade_instrument::frames::{
    AltAz, FovOffset, TelescopeFrame, altaz_to_righthanded_cartesian,
    righthanded_cartesian_to_altaz,
};
use cascade_reco::{
    ArrayEvent, HillasParameters, ReconstructedGeometry, ReconstructorType, StereoQualityQuery,
    TelescopeEvent,
};
use proptest::prelude::*;

const OBSERVATION_LEVEL_M: f64 = 2000.0;

/// A shower axis: the direction it comes from, where it hits the ground (z = 0) and the
/// slant distance of its maximum from the core.
#[derive(Debug, Clone, Copy)]
struct Shower {
    direction: AltAz,
    core_m: [f64; 2],
    max_slant_m: f64,
}

impl Shower {
    fn point_m(&self, slant_m: f64) -> [f64; 3] {
        let d = altaz_to_righthanded_cartesian(self.direction);
        [
            self.core_m[0] + slant_m * d[0],
            self.core_m[1] + slant_m * d[1],
            slant_m * d[2],
        ]
    }

    /// The image of the shower seen from `position_m` by a telescope pointing at
    /// `pointing`: centroid at the shower maximum, axis towards a point deeper in the
    /// shower.
    fn image(&self, tel_id: u16, position_m: [f64; 3], pointing: AltAz) -> TelescopeEvent {
        let frame = TelescopeFrame::new(pointing);
        let seen = |slant_m: f64| {
            let p = self.point_m(slant_m);
            let v = [
                p[0] - position_m[0],
                p[1] - position_m[1],
                p[2] - position_m[2],
            ];
            frame.from_altaz(righthanded_cartesian_to_altaz(v))
        };
        let cog: FovOffset = seen(self.max_slant_m);
        let deeper = seen(self.max_slant_m * 0.999);
        let psi_deg = (deeper.fov_lat_deg - cog.fov_lat_deg)
            .atan2(deeper.fov_lon_deg - cog.fov_lon_deg)
            .to_degrees();
        TelescopeEvent {
            tel_id,
            hillas: HillasParameters {
                fov_lon_deg: cog.fov_lon_deg,
                fov_lat_deg: cog.fov_lat_deg,
                psi_deg,
                length_deg: 0.3,
                width_deg: 0.08,
                intensity_pe: 100.0 + f64::from(tel_id) * 37.0,
            },
            morphology_n_pixels: 30,
            leakage_intensity_width_2: 0.0,
            pointing,
            position_m,
            camera_radius_deg: 2.2,
        }
    }
}

fn angular_distance_deg(a: AltAz, b: AltAz) -> f64 {
    let (u, v) = (
        altaz_to_righthanded_cartesian(a),
        altaz_to_righthanded_cartesian(b),
    );
    let dot = u[0] * v[0] + u[1] * v[1] + u[2] * v[2];
    dot.clamp(-1.0, 1.0).acos().to_degrees()
}

fn reconstruct(
    kind: ReconstructorType,
    pointing: AltAz,
    telescopes: &[TelescopeEvent],
) -> ReconstructedGeometry {
    let event = ArrayEvent {
        array_pointing: pointing,
        observation_level_m: OBSERVATION_LEVEL_M,
        telescopes,
    };
    kind.reconstruct(&event, &StereoQualityQuery::default())
        .unwrap()
}

/// Four telescopes on a square of side `2 * half_side_m`, at slightly different heights.
fn square_array(half_side_m: f64) -> [[f64; 3]; 4] {
    [
        [half_side_m, half_side_m, 10.0],
        [-half_side_m, half_side_m, -5.0],
        [-half_side_m, -half_side_m, 0.0],
        [half_side_m, -half_side_m, 20.0],
    ]
}

fn shower_strategy() -> impl Strategy<Value = (AltAz, Shower)> {
    (
        55.0..85.0f64,
        0.0..360.0f64,
        -1.0..1.0f64,
        -1.0..1.0f64,
        -120.0..120.0f64,
        -120.0..120.0f64,
        8_000.0..14_000.0f64,
    )
        .prop_map(|(alt, az, d_lon, d_lat, core_x, core_y, max_slant_m)| {
            let pointing = AltAz {
                alt_deg: alt,
                az_deg: az,
            };
            let direction = TelescopeFrame::new(pointing).to_altaz(FovOffset {
                fov_lon_deg: d_lon,
                fov_lat_deg: d_lat,
            });
            (
                pointing,
                Shower {
                    direction,
                    core_m: [core_x, core_y],
                    max_slant_m,
                },
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn hillas_reconstructor_recovers_the_shower_axis((pointing, shower) in shower_strategy()) {
        let telescopes: Vec<TelescopeEvent> = square_array(150.0)
            .iter()
            .zip(1u16..)
            .map(|(position, tel_id)| shower.image(tel_id, *position, pointing))
            .collect();
        let geometry = reconstruct(ReconstructorType::HillasReconstructor, pointing, &telescopes);
        prop_assert!(geometry.is_valid);
        let direction = AltAz { alt_deg: geometry.alt_deg, az_deg: geometry.az_deg };
        prop_assert!(angular_distance_deg(direction, shower.direction) < 0.01,
            "direction off by {} deg", angular_distance_deg(direction, shower.direction));
        // The core is found in the tilted plane, where the telescopes of this array sit at
        // different heights (up to 20 m): a few metres off at low altitude, as in ctapipe.
        let core_error = (geometry.core_x_m - shower.core_m[0]).hypot(geometry.core_y_m - shower.core_m[1]);
        prop_assert!(core_error < 5.0, "core off by {core_error} m");
        // the centroid directions meet exactly at the shower maximum
        let expected_h_max = shower.point_m(shower.max_slant_m)[2] + OBSERVATION_LEVEL_M;
        prop_assert!((geometry.h_max_m - expected_h_max).abs() < 1.0,
            "h_max {} vs {expected_h_max}", geometry.h_max_m);
    }

    #[test]
    fn hillas_intersection_recovers_the_shower_axis((pointing, shower) in shower_strategy()) {
        let telescopes: Vec<TelescopeEvent> = square_array(150.0)
            .iter()
            .zip(1u16..)
            .map(|(position, tel_id)| shower.image(tel_id, *position, pointing))
            .collect();
        let geometry = reconstruct(ReconstructorType::HillasIntersection, pointing, &telescopes);
        prop_assert!(geometry.is_valid);
        let direction = AltAz { alt_deg: geometry.alt_deg, az_deg: geometry.az_deg };
        prop_assert!(angular_distance_deg(direction, shower.direction) < 0.01,
            "direction off by {} deg", angular_distance_deg(direction, shower.direction));
        let core_error = (geometry.core_x_m - shower.core_m[0]).hypot(geometry.core_y_m - shower.core_m[1]);
        // HillasIntersection intersects the image axes in the tilted plane, where the
        // telescopes of this array sit at different heights (up to 20 m): its core is a
        // projection, a few metres off at low altitude (2.2 m seen at alt 55 deg).
        prop_assert!(core_error < 5.0, "core off by {core_error} m");
    }

    #[test]
    fn telescope_order_does_not_matter((pointing, shower) in shower_strategy(), rotate_by in 1usize..4) {
        let telescopes: Vec<TelescopeEvent> = square_array(100.0)
            .iter()
            .zip(1u16..)
            .map(|(position, tel_id)| shower.image(tel_id, *position, pointing))
            .collect();
        let mut rotated = telescopes.clone();
        rotated.rotate_left(rotate_by);
        for kind in [ReconstructorType::HillasReconstructor, ReconstructorType::HillasIntersection] {
            let a = reconstruct(kind, pointing, &telescopes);
            let b = reconstruct(kind, pointing, &rotated);
            prop_assert!((a.alt_deg - b.alt_deg).abs() < 1e-9 && (a.az_deg - b.az_deg).abs() < 1e-9);
            prop_assert!((a.core_x_m - b.core_x_m).abs() < 1e-6 && (a.core_y_m - b.core_y_m).abs() < 1e-6);
            prop_assert!((a.h_max_m - b.h_max_m).abs() < 1e-6);
        }
    }
}

#[test]
fn fewer_than_two_good_telescopes_give_an_invalid_result() {
    let pointing = AltAz {
        alt_deg: 70.0,
        az_deg: 0.0,
    };
    let shower = Shower {
        direction: pointing,
        core_m: [30.0, -20.0],
        max_slant_m: 10_000.0,
    };
    let mut telescopes: Vec<TelescopeEvent> = square_array(100.0)
        .iter()
        .zip(1u16..)
        .map(|(position, tel_id)| shower.image(tel_id, *position, pointing))
        .collect();
    for telescope in &mut telescopes[1..] {
        telescope.hillas.intensity_pe = 20.0; // below the 50 p.e. cut
    }
    for kind in [
        ReconstructorType::HillasReconstructor,
        ReconstructorType::HillasIntersection,
    ] {
        let geometry = reconstruct(kind, pointing, &telescopes);
        assert!(!geometry.is_valid);
        assert!(geometry.telescopes.is_empty() && geometry.alt_deg.is_nan());
        assert!(geometry.impact_distance_m([0.0; 3]).is_nan());
    }
}

#[test]
fn repeated_telescope_is_an_error() {
    let pointing = AltAz {
        alt_deg: 70.0,
        az_deg: 0.0,
    };
    let shower = Shower {
        direction: pointing,
        core_m: [0.0, 0.0],
        max_slant_m: 10_000.0,
    };
    let telescope = shower.image(1, [100.0, 0.0, 0.0], pointing);
    let event = ArrayEvent {
        array_pointing: pointing,
        observation_level_m: 0.0,
        telescopes: &[telescope, telescope],
    };
    let result =
        ReconstructorType::HillasReconstructor.reconstruct(&event, &StereoQualityQuery::default());
    assert_eq!(
        result,
        Err(cascade_reco::RecoError::DuplicateTelescope { tel_id: 1 })
    );
}

#[test]
fn impact_distance_of_a_vertical_shower_is_the_ground_distance() {
    let mut geometry = ReconstructedGeometry::invalid();
    geometry.is_valid = true;
    geometry.alt_deg = 90.0;
    geometry.az_deg = 0.0;
    geometry.core_x_m = 10.0;
    geometry.core_y_m = 0.0;
    assert!((geometry.impact_distance_m([13.0, 4.0, 50.0]) - 5.0).abs() < 1e-9);
}

#[test]
fn reconstructor_is_chosen_by_ctapipe_name() {
    let config: cascade_reco::ShowerProcessorConfig = serde_json::from_str(
        r#"{"reconstructor_types": ["HillasReconstructor", "HillasIntersection"]}"#,
    )
    .unwrap();
    assert_eq!(
        config.reconstructor_types,
        [
            ReconstructorType::HillasReconstructor,
            ReconstructorType::HillasIntersection
        ]
    );
    assert_eq!(config.stereo_quality_query, StereoQualityQuery::default());
    assert!(serde_json::from_str::<ReconstructorType>(r#""ImPACT""#).is_err());
    assert_eq!(
        ReconstructorType::HillasIntersection.column_name("core_x"),
        "HillasIntersection_core_x"
    );
}
