//! Hillas parameters: moments of the light distribution (ctapipe `hillas_parameters`).

use std::f64::consts::FRAC_PI_2;

use super::columns::Column;
use super::{Frame, PixelCoordinates};
use crate::error::ImageError;
use crate::value::PixelValue;

/// ctapipe `HILLAS_ATOL`: eigenvalues this close to 0 are set to 0.
const HILLAS_ATOL: f64 = f64::EPSILON;

/// Hillas parameters of one image. Lengths are in the unit of the pixel coordinates
/// (m in the camera frame, deg in the telescope frame); angles are kept in radians and
/// reported in degrees by [`HillasParameters::columns`], like ctapipe writes them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HillasParameters {
    /// Frame of the coordinates.
    pub frame: Frame,
    /// Total intensity (size), p.e.
    pub intensity: f64,
    /// Skewness along the major axis (dimensionless).
    pub skewness: f64,
    /// Kurtosis along the major axis (Pearson, dimensionless).
    pub kurtosis: f64,
    /// Centroid x (m) or fov_lon (deg).
    pub x: f64,
    /// Centroid y (m) or fov_lat (deg).
    pub y: f64,
    /// Radial coordinate of the centroid (m or deg).
    pub r: f64,
    /// Polar angle of the centroid (rad).
    pub phi_rad: f64,
    /// Standard deviation along the major axis (m or deg).
    pub length: f64,
    /// Uncertainty of `length` (m or deg).
    pub length_uncertainty: f64,
    /// Standard deviation along the minor axis (m or deg).
    pub width: f64,
    /// Uncertainty of `width` (m or deg).
    pub width_uncertainty: f64,
    /// Orientation of the major axis in (-π/2, π/2] (rad).
    pub psi_rad: f64,
    /// Uncertainty of `psi` (rad).
    pub psi_uncertainty_rad: f64,
    /// Uncertainty of the centroid across the major axis (m or deg).
    pub transverse_cog_uncertainty: f64,
}

impl HillasParameters {
    /// All-NaN parameters (ctapipe's default container).
    pub fn nan(frame: Frame) -> Self {
        let nan = f64::NAN;
        Self {
            frame,
            intensity: nan,
            skewness: nan,
            kurtosis: nan,
            x: nan,
            y: nan,
            r: nan,
            phi_rad: nan,
            length: nan,
            length_uncertainty: nan,
            width: nan,
            width_uncertainty: nan,
            psi_rad: nan,
            psi_uncertainty_rad: nan,
            transverse_cog_uncertainty: nan,
        }
    }

    /// ctapipe's container prefix: `"hillas"` (telescope frame) or `"camera_frame_hillas"`.
    pub fn prefix(&self) -> &'static str {
        match self.frame {
            Frame::Camera => "camera_frame_hillas",
            Frame::Telescope => "hillas",
        }
    }

    /// Columns in ctapipe's order: intensity, skewness, kurtosis, x/fov_lon, y/fov_lat, r,
    /// phi (deg), length, length_uncertainty, width, width_uncertainty, psi (deg),
    /// psi_uncertainty (deg), transverse_cog_uncertainty.
    pub fn columns(&self) -> [Column; 14] {
        let p = self.prefix();
        let unit = self.frame.length_unit();
        let (x_name, y_name) = match self.frame {
            Frame::Camera => ("x", "y"),
            Frame::Telescope => ("fov_lon", "fov_lat"),
        };
        [
            Column::float(p, "intensity", "", self.intensity),
            Column::float(p, "skewness", "", self.skewness),
            Column::float(p, "kurtosis", "", self.kurtosis),
            Column::float(p, x_name, unit, self.x),
            Column::float(p, y_name, unit, self.y),
            Column::float(p, "r", unit, self.r),
            Column::float(p, "phi", "deg", self.phi_rad.to_degrees()),
            Column::float(p, "length", unit, self.length),
            Column::float(p, "length_uncertainty", unit, self.length_uncertainty),
            Column::float(p, "width", unit, self.width),
            Column::float(p, "width_uncertainty", unit, self.width_uncertainty),
            Column::float(p, "psi", "deg", self.psi_rad.to_degrees()),
            Column::float(
                p,
                "psi_uncertainty",
                "deg",
                self.psi_uncertainty_rad.to_degrees(),
            ),
            Column::float(
                p,
                "transverse_cog_uncertainty",
                unit,
                self.transverse_cog_uncertainty,
            ),
        ]
    }
}

/// Hillas parameters of the pixels selected by `mask` (ctapipe `hillas_parameters(geom[mask],
/// image[mask])`, equivalently `hillas_parameters(geom, image * mask)`). `image` in p.e.
///
/// ctapipe raises `HillasParameterizationError` for zero intensity; this returns
/// [`HillasParameters::nan`] instead (also for an empty mask).
pub fn hillas_parameters<T: PixelValue>(
    pixels: &PixelCoordinates<'_>,
    image: &[T],
    mask: &[bool],
) -> Result<HillasParameters, ImageError> {
    pixels.check(&[("image", image.len()), ("mask", mask.len())])?;
    Ok(hillas_of_selected(
        pixels,
        image,
        (0..mask.len()).filter(|&i| mask[i]),
    ))
}

/// [`hillas_parameters`] of the pixels `selected` yields (ascending indices into arrays of
/// checked lengths), so that callers that list the selected pixels once skip the mask.
/// Inlined: called, it made the mask-based [`hillas_parameters`] ~10 % slower.
#[inline]
pub(super) fn hillas_of_selected<T: PixelValue>(
    pixels: &PixelCoordinates<'_>,
    image: &[T],
    selected: impl Iterator<Item = usize> + Clone,
) -> HillasParameters {
    let (px, py, area) = (pixels.x, pixels.y, pixels.area);
    let selected = || selected.clone();

    // size = np.sum(image); cog = np.average(pix, weights=image)
    let (mut size, mut sum_x, mut sum_y) = (0.0, 0.0, 0.0);
    for i in selected() {
        let w = image[i].to_f64();
        size += w;
        sum_x += w * px[i];
        sum_y += w * py[i];
    }
    if size == 0.0 {
        return HillasParameters::nan(pixels.frame);
    }
    let cog_x = sum_x / size;
    let cog_y = sum_y / size;
    let cog_r = cog_x.hypot(cog_y);
    let cog_phi = cog_y.atan2(cog_x);

    // cov = np.cov(delta_x, delta_y, aweights=image, ddof=0): np.cov re-centres the deltas
    // on their weighted mean before taking the weighted second moments.
    let (mut s_dx, mut s_dy, mut s_xx, mut s_yy, mut s_xy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for i in selected() {
        let w = image[i].to_f64();
        let (dx, dy) = (px[i] - cog_x, py[i] - cog_y);
        s_dx += w * dx;
        s_dy += w * dy;
        s_xx += w * dx * dx;
        s_yy += w * dy * dy;
        s_xy += w * dx * dy;
    }
    let (mean_dx, mean_dy) = (s_dx / size, s_dy / size);
    let cov_xx = s_xx / size - mean_dx * mean_dx;
    let cov_yy = s_yy / size - mean_dy * mean_dy;
    let cov_xy = s_xy / size - mean_dx * mean_dy;

    // np.linalg.eigh of the symmetric 2x2 matrix, solved in closed form; eigenvalues
    // within HILLAS_ATOL of 0 are set to 0 like ctapipe.
    let half_trace = 0.5 * (cov_xx + cov_yy);
    let radius = (0.5 * (cov_xx - cov_yy)).hypot(cov_xy);
    let clip = |eig: f64| if eig.abs() <= HILLAS_ATOL { 0.0 } else { eig };
    let eig_large = clip(half_trace + radius);
    let eig_small = clip(half_trace - radius);
    let length = eig_large.sqrt();
    let width = eig_small.sqrt();

    let (psi, psi_uncertainty, transverse_cog_uncertainty, skewness, kurtosis);
    if length == 0.0 {
        psi = f64::NAN;
        psi_uncertainty = f64::NAN;
        transverse_cog_uncertainty = f64::NAN;
        skewness = f64::NAN;
        kurtosis = f64::NAN;
    } else {
        psi = major_axis_angle(cov_xx, cov_yy, cov_xy, eig_large);
        let (sin_psi, cos_psi) = psi.sin_cos();
        // higher moments along the axis, and the weighted least-squares line
        // trans = p0 * longi + p1 with weights image / pix_area (ctapipe hillas_parameters)
        let (mut m3, mut m4) = (0.0, 0.0);
        let (mut s_ll, mut s_l, mut s_1, mut s_lt, mut s_t) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for i in selected() {
            let w = image[i].to_f64();
            let (dx, dy) = (px[i] - cog_x, py[i] - cog_y);
            let longi = dx * cos_psi + dy * sin_psi;
            let trans = -dx * sin_psi + dy * cos_psi;
            let longi2 = longi * longi;
            m3 += w * longi2 * longi;
            m4 += w * longi2 * longi2;
            let lw = w / area[i];
            s_ll += lw * longi2;
            s_l += lw * longi;
            s_1 += lw;
            s_lt += lw * longi * trans;
            s_t += lw * trans;
        }
        skewness = (m3 / size) / length.powi(3);
        kurtosis = (m4 / size) / length.powi(4);
        // lsq_cov = inv(X^T W X) with X = [longi, 1]; p = lsq_cov X^T W trans
        let det = s_ll * s_1 - s_l * s_l;
        let (inv_00, inv_01, inv_11) = (s_1 / det, -s_l / det, s_ll / det);
        let p0 = inv_00 * s_lt + inv_01 * s_t;
        let elongation = (width / length * FRAC_PI_2).tan();
        psi_uncertainty = (inv_00 + p0 * p0).sqrt() * (1.0 + elongation * elongation);
        let sin_p0 = p0.sin();
        transverse_cog_uncertainty = (inv_11 * (1.0 + sin_p0 * sin_p0)).sqrt();
    }

    // Uncertainties of length and width (ctapipe, after the MAGIC internal note).
    let cos_2psi = (2.0 * psi).cos();
    let a = (1.0 + cos_2psi) / 2.0;
    let b = (1.0 - cos_2psi) / 2.0;
    let c = (2.0 * psi).sin();
    let (mut sum_length, mut sum_width) = (0.0, 0.0);
    for i in selected() {
        let w = image[i].to_f64();
        let (dx, dy) = (px[i] - cog_x, py[i] - cog_y);
        let big_a = (dx * dx - cov_xx) / size;
        let big_b = (dy * dy - cov_yy) / size;
        let big_c = (dx * dy - cov_xy) / size;
        sum_length += (a * big_a + b * big_b + c * big_c).powi(2) * w;
        sum_width += (b * big_a + a * big_b - c * big_c).powi(2) * w;
    }
    let length_uncertainty = if length == 0.0 {
        f64::NAN
    } else {
        sum_length.sqrt() / (2.0 * length)
    };
    let width_uncertainty = if width == 0.0 {
        f64::NAN
    } else {
        sum_width.sqrt() / (2.0 * width)
    };

    HillasParameters {
        frame: pixels.frame,
        intensity: size,
        skewness,
        kurtosis,
        x: cog_x,
        y: cog_y,
        r: cog_r,
        phi_rad: cog_phi,
        length,
        length_uncertainty,
        width,
        width_uncertainty,
        psi_rad: psi,
        psi_uncertainty_rad: psi_uncertainty,
        transverse_cog_uncertainty,
    }
}

/// Angle of the eigenvector of the larger eigenvalue to the x axis, `arctan(vy / vx)` in
/// (-π/2, π/2], and π/2 when `vx == 0` (ctapipe `hillas_parameters`, where numpy's
/// `eigh` returns unit vectors for a diagonal matrix).
fn major_axis_angle(cov_xx: f64, cov_yy: f64, cov_xy: f64, eig_large: f64) -> f64 {
    // two expressions of the same eigenvector; take the better conditioned one
    let (ax, ay) = (cov_xy, eig_large - cov_xx);
    let (bx, by) = (eig_large - cov_yy, cov_xy);
    let (vx, vy) = if ax.hypot(ay) >= bx.hypot(by) {
        (ax, ay)
    } else {
        (bx, by)
    };
    if vx != 0.0 {
        (vy / vx).atan()
    } else {
        FRAC_PI_2
    }
}
