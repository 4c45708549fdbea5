//! ctapipe's `HillasIntersection` (`ctapipe/reco/hillas_intersection.py`, algorithm I of
//! Hofmann et al. 1999): the image axes, moved into the nominal frame of the array
//! pointing, cross pairwise; the direction is the weighted mean of the crossings. The
//! core is found the same way with the axes drawn through the telescope positions in the
//! tilted ground frame, and h_max from the ratio of impact distance to centroid offset.
//! Weights per pair: Konrad's `I1 I2 / (I1 + I2)` times `|sin(psi1 - psi2)|`.

use cascade_instrument::frames::{
    AltAz, FovOffset, NominalFrame, TelescopeFrame, TiltedGroundFrame,
};

use crate::{ArrayEvent, RecoError, ReconstructedGeometry, ReconstructorType, TelescopeEvent};

/// Source positions further than this from the nominal-frame centre, in either
/// coordinate, give an invalid result (`FOV_ANGULAR_DISTANCE_LIMIT_RAD`, 45 deg).
const FOV_ANGULAR_DISTANCE_LIMIT_RAD: f64 = std::f64::consts::FRAC_PI_4;

/// h_max above this (m) is replaced by NaN (`H_MAX_UPPER_LIMIT_M`).
const H_MAX_UPPER_LIMIT_M: f64 = 100_000.0;

/// Reconstructs the geometry from the selected telescopes (at least two, widths valid).
pub(crate) fn reconstruct(
    event: &ArrayEvent<'_>,
    telescopes: &[&TelescopeEvent],
) -> Result<ReconstructedGeometry, RecoError> {
    let nominal = NominalFrame::new(event.array_pointing);
    let tilted = TiltedGroundFrame::new(event.array_pointing);
    let images: Vec<NominalImage> = telescopes
        .iter()
        .map(|t| NominalImage::new(t, &nominal, &tilted))
        .collect();

    let source = weighted_crossing(&images, |image| (image.cog_lon_rad, image.cog_lat_rad))
        .ok_or_else(|| degenerate("image axes in the nominal frame"))?;
    if source.x.abs() > FOV_ANGULAR_DISTANCE_LIMIT_RAD
        || source.y.abs() > FOV_ANGULAR_DISTANCE_LIMIT_RAD
    {
        return Ok(ReconstructedGeometry::invalid());
    }
    // ctapipe's reconstruct_tilted intersects with x and y swapped: the axis angle psi
    // is then measured from the tilted y axis.
    let swapped_core = weighted_crossing(&images, |image| (image.tilted_y_m, image.tilted_x_m))
        .ok_or_else(|| degenerate("image axes on the ground"))?;
    let core = Crossing {
        x: swapped_core.y,
        y: swapped_core.x,
        spread_x: swapped_core.spread_y,
        spread_y: swapped_core.spread_x,
    };

    let direction = nominal.to_altaz(FovOffset {
        fov_lon_deg: source.x.to_degrees(),
        fov_lat_deg: source.y.to_degrees(),
    });
    let [core_x_m, core_y_m] = tilted.project_to_ground([core.x, core.y, 0.0]);
    let zenith_rad = (90.0 - event.array_pointing.alt_deg).to_radians();
    let h_max_m = reconstruct_h_max(
        &images,
        &source,
        &core,
        zenith_rad,
        event.observation_level_m,
    );
    let source_uncert_deg = source.spread_x.hypot(source.spread_y).to_degrees();
    let AltAz { alt_deg, az_deg } = direction;

    let mut geometry = ReconstructedGeometry::invalid();
    geometry.alt_deg = alt_deg;
    geometry.az_deg = az_deg;
    geometry.alt_uncert_deg = source_uncert_deg;
    geometry.az_uncert_deg = source_uncert_deg;
    geometry.core_x_m = core_x_m;
    geometry.core_y_m = core_y_m;
    geometry.core_tilted_x_m = core.x;
    geometry.core_tilted_y_m = core.y;
    geometry.core_tilted_uncert_x_m = core.spread_x;
    geometry.core_tilted_uncert_y_m = core.spread_y;
    geometry.h_max_m = h_max_m;
    geometry.is_valid = true;
    geometry.average_intensity =
        images.iter().map(|i| i.intensity_pe).sum::<f64>() / images.len() as f64;
    geometry.telescopes = telescopes.iter().map(|t| t.tel_id).collect();
    Ok(geometry)
}

/// One image moved into the nominal frame, with its telescope's tilted position.
struct NominalImage {
    /// Centroid longitude in the nominal frame (rad).
    cog_lon_rad: f64,
    /// Centroid latitude in the nominal frame (rad).
    cog_lat_rad: f64,
    /// Image axis angle, unchanged from the telescope frame (rad).
    psi_rad: f64,
    /// Hillas intensity (p.e.).
    intensity_pe: f64,
    /// Telescope x in the tilted frame (m).
    tilted_x_m: f64,
    /// Telescope y in the tilted frame (m).
    tilted_y_m: f64,
}

impl NominalImage {
    fn new(telescope: &TelescopeEvent, nominal: &NominalFrame, tilted: &TiltedGroundFrame) -> Self {
        let cog = TelescopeFrame::new(telescope.pointing).transform_to(
            FovOffset {
                fov_lon_deg: telescope.hillas.fov_lon_deg,
                fov_lat_deg: telescope.hillas.fov_lat_deg,
            },
            nominal,
        );
        let [tilted_x_m, tilted_y_m, _] = tilted.from_ground(telescope.position_m);
        Self {
            cog_lon_rad: cog.fov_lon_deg.to_radians(),
            cog_lat_rad: cog.fov_lat_deg.to_radians(),
            psi_rad: telescope.hillas.psi_deg.to_radians(),
            intensity_pe: telescope.hillas.intensity_pe,
            tilted_x_m,
            tilted_y_m,
        }
    }
}

/// Weighted mean of pairwise line crossings and its weighted spread (standard deviation).
struct Crossing {
    x: f64,
    y: f64,
    spread_x: f64,
    spread_y: f64,
}

/// `reconstruct_nominal` / `reconstruct_tilted`: every pair of images (in order) crosses
/// the lines through `anchor(image)` at angle psi; the crossings are averaged with
/// weights `weight_konrad * weight_sin`. `None` when the weights sum to 0 (numpy's
/// `ZeroDivisionError`).
fn weighted_crossing(
    images: &[NominalImage],
    anchor: impl Fn(&NominalImage) -> (f64, f64),
) -> Option<Crossing> {
    let mut crossings = Vec::with_capacity(images.len() * (images.len() - 1) / 2);
    for (i, first) in images.iter().enumerate() {
        for second in &images[i + 1..] {
            let (x1, y1) = anchor(first);
            let (x2, y2) = anchor(second);
            let (x, y) = intersect_lines(x1, y1, first.psi_rad, x2, y2, second.psi_rad);
            let weight = weight_konrad(first.intensity_pe, second.intensity_pe)
                * (first.psi_rad - second.psi_rad).sin().abs();
            crossings.push((x, y, weight));
        }
    }
    let weight_sum: f64 = crossings.iter().map(|(_, _, w)| w).sum();
    if weight_sum == 0.0 {
        return None;
    }
    let average = |value: &dyn Fn(&(f64, f64, f64)) -> f64| {
        crossings.iter().map(|c| value(c) * c.2).sum::<f64>() / weight_sum
    };
    let x = average(&|c| c.0);
    let y = average(&|c| c.1);
    let var_x = average(&|c| (c.0 - x).powi(2));
    let var_y = average(&|c| (c.1 - y).powi(2));
    Some(Crossing {
        x,
        y,
        spread_x: var_x.sqrt(),
        spread_y: var_y.sqrt(),
    })
}

/// `intersect_lines` (from read_hess): crossing of the line through (x1, y1) at angle
/// phi1 with the line through (x2, y2) at angle phi2 (infinite or NaN when parallel).
fn intersect_lines(x1: f64, y1: f64, phi1: f64, x2: f64, y2: f64, phi2: f64) -> (f64, f64) {
    let (sin_1, cos_1) = phi1.sin_cos();
    let (a1, b1, c1) = (sin_1, -cos_1, y1 * cos_1 - x1 * sin_1);
    let (sin_2, cos_2) = phi2.sin_cos();
    let (a2, b2, c2) = (sin_2, -cos_2, y2 * cos_2 - x2 * sin_2);
    let det_ab = a1 * b2 - a2 * b1;
    let det_bc = b1 * c2 - b2 * c1;
    let det_ca = c1 * a2 - c2 * a1;
    (det_bc / det_ab, det_ca / det_ab)
}

/// `weight_konrad`: `I1 I2 / (I1 + I2)`.
fn weight_konrad(intensity_1: f64, intensity_2: f64) -> f64 {
    intensity_1 * intensity_2 / (intensity_1 + intensity_2)
}

/// `reconstruct_h_max` with `get_shower_height`: per image, the impact distance in the
/// tilted frame divided by the centroid's angular offset from the source (small-angle
/// height above the telescope), intensity-weighted mean, times cos(zenith), plus the
/// observation level; NaN above 100 km.
fn reconstruct_h_max(
    images: &[NominalImage],
    source: &Crossing,
    core: &Crossing,
    zenith_rad: f64,
    observation_level_m: f64,
) -> f64 {
    let (weighted_sum, weight_sum) = images.iter().fold((0.0, 0.0), |(sum, weights), image| {
        let disp = ((image.cog_lon_rad - source.x).powi(2)
            + (image.cog_lat_rad - source.y).powi(2))
        .sqrt();
        let impact =
            ((image.tilted_x_m - core.x).powi(2) + (image.tilted_y_m - core.y).powi(2)).sqrt();
        (
            sum + impact / disp * image.intensity_pe,
            weights + image.intensity_pe,
        )
    });
    let mean_distance = weighted_sum / weight_sum;
    let h_max_m = mean_distance * zenith_rad.cos() + observation_level_m;
    if h_max_m > H_MAX_UPPER_LIMIT_M {
        f64::NAN
    } else {
        h_max_m
    }
}

fn degenerate(what: &'static str) -> RecoError {
    RecoError::Degenerate {
        reconstructor: ReconstructorType::HillasIntersection,
        what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossing_of_axes() {
        // the x axis and the line x = 2
        let (x, y) = intersect_lines(0.0, 0.0, 0.0, 2.0, 5.0, std::f64::consts::FRAC_PI_2);
        assert!((x - 2.0).abs() < 1e-12 && y.abs() < 1e-12);
    }

    #[test]
    fn konrad_weight_is_half_harmonic_mean() {
        assert_eq!(weight_konrad(100.0, 100.0), 50.0);
    }
}
