//! Quality queries: which images get parameters (ctapipe's `ImageQualityQuery`, used by
//! the ImageProcessor) and which telescopes enter the stereo reconstruction (ctapipe's
//! `StereoQualityQuery`, `ctapipe.reco.reconstructor`).
//!
//! ctapipe's queries are lists of Python expressions; these are their default criteria
//! with the thresholds configurable. A comparison with NaN fails, as in numpy.

use serde::{Deserialize, Serialize};

use crate::TelescopeEvent;

/// Telescope selection for stereo reconstruction. Defaults are ctapipe 0.28's
/// `StereoQualityQuery`: `hillas.intensity > 50`, `hillas.width > 0`,
/// `morphology.n_pixels > 3`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StereoQualityQuery {
    /// Keep images with Hillas intensity strictly above this (p.e.); ctapipe: `"> 50 phe"`.
    pub intensity_greater_than_pe: f64,
    /// Keep only images with a Hillas width strictly above 0; ctapipe: `"Positive width"`.
    pub require_positive_width: bool,
    /// Keep images with strictly more pixels than this in the cleaning mask; ctapipe:
    /// `"> 3 pixels"`.
    pub n_pixels_greater_than: i64,
    /// Optional extra cut (not in ctapipe's default): keep images whose
    /// `leakage_intensity_width_2` is at most this fraction.
    pub max_leakage_intensity_width_2: Option<f64>,
}

impl Default for StereoQualityQuery {
    fn default() -> Self {
        Self {
            intensity_greater_than_pe: 50.0,
            require_positive_width: true,
            n_pixels_greater_than: 3,
            max_leakage_intensity_width_2: None,
        }
    }
}

impl StereoQualityQuery {
    /// Whether the telescope event passes every criterion.
    pub fn passes(&self, telescope: &TelescopeEvent) -> bool {
        let hillas = &telescope.hillas;
        hillas.intensity_pe > self.intensity_greater_than_pe
            && (!self.require_positive_width || hillas.width_deg > 0.0)
            && telescope.morphology_n_pixels > self.n_pixels_greater_than
            && self
                .max_leakage_intensity_width_2
                .is_none_or(|max| telescope.leakage_intensity_width_2 <= max)
    }
}

/// Image selection before parametrisation. Defaults are ctapipe 0.28's
/// `ImageQualityQuery`, evaluated on the cleaned image (`image[mask]`):
/// `image.sum() > 0` (`"size_greater_0"`) and `image.size > 1` (`"at_least_2_pixels"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageQualityQuery {
    /// Keep images whose cleaned charge sum is strictly above this (p.e.).
    pub size_greater_than_pe: f64,
    /// Keep images with strictly more cleaned pixels than this.
    pub n_pixels_greater_than: usize,
}

impl Default for ImageQualityQuery {
    fn default() -> Self {
        Self {
            size_greater_than_pe: 0.0,
            n_pixels_greater_than: 1,
        }
    }
}

impl ImageQualityQuery {
    /// Whether the image (p.e. per pixel) restricted to `mask` passes.
    pub fn passes(&self, image_pe: &[f32], mask: &[bool]) -> bool {
        let (n_pixels, size_pe) = image_pe
            .iter()
            .zip(mask)
            .filter(|(_, selected)| **selected)
            .fold((0usize, 0.0f64), |(n, sum), (charge, _)| {
                (n + 1, sum + f64::from(*charge))
            });
        self.passes_summary(n_pixels, size_pe)
    }

    /// Whether an image with `n_pixels` cleaned pixels holding `size_pe` p.e. passes.
    pub fn passes_summary(&self, n_pixels: usize, size_pe: f64) -> bool {
        size_pe > self.size_greater_than_pe && n_pixels > self.n_pixels_greater_than
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HillasParameters;
    use cascade_instrument::frames::AltAz;

    fn telescope(intensity_pe: f64, width_deg: f64, n_pixels: i64) -> TelescopeEvent {
        TelescopeEvent {
            tel_id: 1,
            hillas: HillasParameters {
                fov_lon_deg: 0.0,
                fov_lat_deg: 0.0,
                psi_deg: 0.0,
                length_deg: 0.2,
                width_deg,
                intensity_pe,
            },
            morphology_n_pixels: n_pixels,
            leakage_intensity_width_2: 0.5,
            pointing: AltAz {
                alt_deg: 70.0,
                az_deg: 0.0,
            },
            position_m: [0.0; 3],
            camera_radius_deg: 2.0,
        }
    }

    #[test]
    fn stereo_query_defaults_are_strict_inequalities() {
        let query = StereoQualityQuery::default();
        assert!(query.passes(&telescope(50.1, 0.1, 4)));
        assert!(!query.passes(&telescope(50.0, 0.1, 4)));
        assert!(!query.passes(&telescope(60.0, 0.0, 4)));
        assert!(!query.passes(&telescope(60.0, 0.1, 3)));
        assert!(!query.passes(&telescope(f64::NAN, 0.1, 4)));
        assert!(!query.passes(&telescope(60.0, f64::NAN, 4)));
    }

    #[test]
    fn optional_leakage_cut() {
        let query = StereoQualityQuery {
            max_leakage_intensity_width_2: Some(0.2),
            ..StereoQualityQuery::default()
        };
        assert!(!query.passes(&telescope(60.0, 0.1, 4)));
    }

    #[test]
    fn image_query_needs_two_pixels_and_positive_size() {
        let query = ImageQualityQuery::default();
        assert!(query.passes(&[3.0, 4.0, 100.0], &[true, true, false]));
        assert!(!query.passes(&[3.0, 4.0], &[true, false]));
        assert!(!query.passes(&[3.0, -4.0], &[true, true]));
    }

    #[test]
    fn config_reads_partial_toml_like_json() {
        let query: StereoQualityQuery =
            serde_json::from_str(r#"{"intensity_greater_than_pe": 100.0}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(query.intensity_greater_than_pe, 100.0);
        assert_eq!(query.n_pixels_greater_than, 3);
        assert!(serde_json::from_str::<StereoQualityQuery>(r#"{"typo": 1}"#).is_err());
    }
}
