//! Concentration: fractions of the intensity near the centroid, inside the Hillas ellipse
//! and in the brightest pixel (ctapipe `concentration_parameters`).

use cascade_instrument::PixelShape;

use super::PixelCoordinates;
use super::columns::Column;
use super::hillas::HillasParameters;
use crate::error::ImageError;
use crate::value::PixelValue;

/// Concentration parameters (dimensionless fractions of the Hillas intensity).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConcentrationParameters {
    /// Fraction of the intensity in pixels closer to the centroid than one pixel width.
    pub cog: f64,
    /// Fraction of the intensity in pixels inside the Hillas ellipse (0 for zero width).
    pub core: f64,
    /// Fraction of the intensity in the brightest pixel.
    pub pixel: f64,
}

impl ConcentrationParameters {
    /// ctapipe's container prefix.
    pub const PREFIX: &'static str = "concentration";

    /// All-NaN parameters (ctapipe's default container).
    pub fn nan() -> Self {
        Self {
            cog: f64::NAN,
            core: f64::NAN,
            pixel: f64::NAN,
        }
    }

    /// Columns in ctapipe's order (all dimensionless).
    pub fn columns(&self) -> [Column; 3] {
        let p = Self::PREFIX;
        [
            Column::float(p, "cog", "", self.cog),
            Column::float(p, "core", "", self.core),
            Column::float(p, "pixel", "", self.pixel),
        ]
    }
}

/// Pixel width from its area (ctapipe `CameraGeometry.pixel_width`): in-circle diameter
/// of hexagons, edge of squares, diameter of circles; unit is the square root of the area's.
pub fn pixel_width(shape: PixelShape, area: f64) -> f64 {
    match shape {
        PixelShape::Hexagon => 2.0 * (area / (2.0 * 3f64.sqrt())).sqrt(),
        PixelShape::Square => area.sqrt(),
        PixelShape::Circle => 2.0 * (area / std::f64::consts::PI).sqrt(),
    }
}

/// Concentration of the pixels selected by `mask` (ctapipe `concentration_parameters` on
/// the selected geometry and image). `hillas` must be computed in the same frame.
pub fn concentration_parameters<T: PixelValue>(
    pixels: &PixelCoordinates<'_>,
    image: &[T],
    mask: &[bool],
    hillas: &HillasParameters,
) -> Result<ConcentrationParameters, ImageError> {
    pixels.check(&[("image", image.len()), ("mask", mask.len())])?;
    Ok(concentration_of_selected(
        pixels,
        image,
        (0..mask.len()).filter(|&i| mask[i]),
        hillas,
    ))
}

/// [`concentration_parameters`] of the pixels `selected` yields (indices into arrays of
/// checked lengths, ascending).
pub(super) fn concentration_of_selected<T: PixelValue>(
    pixels: &PixelCoordinates<'_>,
    image: &[T],
    selected: impl Iterator<Item = usize>,
    hillas: &HillasParameters,
) -> ConcentrationParameters {
    let (sin_psi, cos_psi) = hillas.psi_rad.sin_cos();
    let (length2, width2) = (hillas.length * hillas.length, hillas.width * hillas.width);
    let with_core = hillas.width != 0.0;
    let (mut sum_cog, mut sum_core, mut max) = (0.0, 0.0, f64::NEG_INFINITY);
    let mut any = false;
    for i in selected {
        any = true;
        let value = image[i].to_f64();
        max = max.max(value);
        let (dx, dy) = (pixels.x[i] - hillas.x, pixels.y[i] - hillas.y);
        let width = pixel_width(pixels.shape, pixels.area[i]);
        // pixels within one pixel diameter of the cog
        if dx * dx + dy * dy < width * width {
            sum_cog += value;
        }
        // pixels inside the Hillas ellipse
        if with_core {
            let longi = dx * cos_psi + dy * sin_psi;
            let trans = -dx * sin_psi + dy * cos_psi;
            if longi * longi / length2 + trans * trans / width2 <= 1.0 {
                sum_core += value;
            }
        }
    }
    if !any {
        return ConcentrationParameters::nan();
    }
    let intensity = hillas.intensity;
    ConcentrationParameters {
        cog: sum_cog / intensity,
        core: if with_core { sum_core / intensity } else { 0.0 },
        pixel: max / intensity,
    }
}
