//! Leakage: how much of the image lies on the camera border (ctapipe `leakage_parameters`).

use super::columns::Column;
use crate::error::{ImageError, check_len};
use crate::value::PixelValue;

/// Fractions of the selected pixels and of their intensity in the camera border of width
/// 1 and 2 pixels (dimensionless; NaN for an empty selection).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakageParameters {
    /// Fraction of selected pixels in the border of width 1.
    pub pixels_width_1: f64,
    /// Fraction of selected pixels in the border of width 2.
    pub pixels_width_2: f64,
    /// Fraction of selected intensity in the border of width 1.
    pub intensity_width_1: f64,
    /// Fraction of selected intensity in the border of width 2.
    pub intensity_width_2: f64,
}

impl LeakageParameters {
    /// ctapipe's container prefix.
    pub const PREFIX: &'static str = "leakage";

    /// All-NaN parameters (ctapipe's default container).
    pub fn nan() -> Self {
        let nan = f64::NAN;
        Self {
            pixels_width_1: nan,
            pixels_width_2: nan,
            intensity_width_1: nan,
            intensity_width_2: nan,
        }
    }

    /// Columns in ctapipe's order (all dimensionless).
    pub fn columns(&self) -> [Column; 4] {
        let p = Self::PREFIX;
        [
            Column::float(p, "pixels_width_1", "", self.pixels_width_1),
            Column::float(p, "pixels_width_2", "", self.pixels_width_2),
            Column::float(p, "intensity_width_1", "", self.intensity_width_1),
            Column::float(p, "intensity_width_2", "", self.intensity_width_2),
        ]
    }
}

/// Leakage of the pixels selected by `mask` (ctapipe `leakage_parameters`). The border
/// masks come from `cascade_instrument::border::get_border_pixel_mask` with widths 1 and 2;
/// `image` in p.e.
pub fn leakage_parameters<T: PixelValue>(
    border_width_1: &[bool],
    border_width_2: &[bool],
    image: &[T],
    mask: &[bool],
) -> Result<LeakageParameters, ImageError> {
    let n = image.len();
    check_len("border_width_1", n, border_width_1.len())?;
    check_len("border_width_2", n, border_width_2.len())?;
    check_len("mask", n, mask.len())?;
    Ok(leakage_of_selected(
        border_width_1,
        border_width_2,
        image,
        (0..n).filter(|&i| mask[i]),
    ))
}

/// [`leakage_parameters`] of the pixels `selected` yields (indices into arrays of checked
/// lengths, ascending).
pub(super) fn leakage_of_selected<T: PixelValue>(
    border_width_1: &[bool],
    border_width_2: &[bool],
    image: &[T],
    selected: impl Iterator<Item = usize>,
) -> LeakageParameters {
    let (mut n_pixels, mut n_pixels_1, mut n_pixels_2) = (0usize, 0usize, 0usize);
    let (mut intensity, mut intensity_1, mut intensity_2) = (0.0, 0.0, 0.0);
    for i in selected {
        let value = image[i].to_f64();
        n_pixels += 1;
        intensity += value;
        if border_width_1[i] {
            n_pixels_1 += 1;
            intensity_1 += value;
        }
        if border_width_2[i] {
            n_pixels_2 += 1;
            intensity_2 += value;
        }
    }
    let n_pixels = n_pixels as f64;
    LeakageParameters {
        pixels_width_1: n_pixels_1 as f64 / n_pixels,
        pixels_width_2: n_pixels_2 as f64 / n_pixels,
        intensity_width_1: intensity_1 / intensity,
        intensity_width_2: intensity_2 / intensity,
    }
}
