//! The toy air-shower and camera model: simple, deterministic and fast, with the
//! geometry right so that stereo reconstruction recovers the true direction.
//!
//! For each shower: a primary (gamma from the pointing direction, or a diffuse proton),
//! an energy from a power law, a core position on the ground, and a shower maximum at a
//! height that falls with energy. Each telescope sees an elliptical Gaussian image whose
//! centroid is the direction from the telescope to the shower maximum and whose major axis
//! points back to the source position, with a peak-time gradient along the axis. Waveforms
//! are a Gaussian pulse per pixel plus white noise, in p.e. (R1: pedestal subtracted).
//!
//! Every shower draws from its own random stream seeded by (seed, shower index), so the
//! output does not depend on threads or batch size.

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal, Poisson};
use rand_pcg::Pcg64Mcg;

use cascade_instrument::CameraGeometry;

/// The particle type of the toy primaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Primary {
    /// Gamma rays from the pointing direction (a point source).
    Gamma,
    /// Protons from within 5 deg of the pointing direction.
    Proton,
}

impl Primary {
    /// CORSIKA/sim_telarray particle id (0 gamma, 101 proton).
    pub fn shower_primary_id(self) -> i32 {
        match self {
            Primary::Gamma => 0,
            Primary::Proton => 101,
        }
    }
}

/// The simulated truth of one shower.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToyShower {
    /// Primary energy (TeV).
    pub energy_tev: f64,
    /// Shower direction altitude (deg).
    pub alt_deg: f64,
    /// Shower direction azimuth (deg).
    pub az_deg: f64,
    /// Core position, ground frame x (m).
    pub core_x_m: f64,
    /// Core position, ground frame y (m).
    pub core_y_m: f64,
    /// Height of the first interaction (m).
    pub h_first_int_m: f64,
    /// Height of the shower maximum (m).
    pub h_max_m: f64,
    /// Slant depth of the maximum (g/cm²).
    pub x_max_g_cm2: f64,
    /// Primary particle.
    pub primary: Primary,
}

/// Fixed parameters of the toy simulation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToySettings {
    /// Primary particle.
    pub primary: Primary,
    /// Array pointing altitude (deg).
    pub pointing_alt_deg: f64,
    /// Array pointing azimuth (deg).
    pub pointing_az_deg: f64,
    /// Power-law spectral index (positive: dN/dE ∝ E^-index).
    pub spectral_index: f64,
    /// Energy range (TeV).
    pub energy_range_tev: (f64, f64),
    /// Radius of the disc cores are drawn from (m).
    pub max_core_distance_m: f64,
    /// White noise per waveform sample (p.e.).
    pub noise_pe: f64,
    /// A telescope triggers when its image holds at least this many p.e.
    pub trigger_threshold_pe: f64,
}

/// Draws shower number `index` of the run with seed `seed`.
pub fn draw_shower(settings: &ToySettings, seed: u64, index: u64) -> (ToyShower, Pcg64Mcg) {
    let mut rng = shower_rng(seed, index);
    let (e_min, e_max) = settings.energy_range_tev;
    let energy_tev = power_law(&mut rng, e_min, e_max, settings.spectral_index);
    let (alt_deg, az_deg) = match settings.primary {
        Primary::Gamma => (settings.pointing_alt_deg, settings.pointing_az_deg),
        Primary::Proton => {
            let offset = 5.0 * rng.random::<f64>().sqrt();
            let angle = rng.random::<f64>() * std::f64::consts::TAU;
            (
                settings.pointing_alt_deg + offset * angle.sin(),
                settings.pointing_az_deg
                    + offset * angle.cos() / settings.pointing_alt_deg.to_radians().cos(),
            )
        }
    };
    let radius = settings.max_core_distance_m * rng.random::<f64>().sqrt();
    let phi = rng.random::<f64>() * std::f64::consts::TAU;
    let log_e = energy_tev.log10();
    let depth_shift = if settings.primary == Primary::Gamma {
        0.0
    } else {
        -60.0
    };
    let x_max_g_cm2 = 330.0 + 80.0 * log_e + depth_shift + 25.0 * standard_normal(&mut rng);
    // Isothermal atmosphere (scale height 8.4 km, 1030 g/cm² at sea level) along the axis.
    let vertical_depth = x_max_g_cm2 * alt_deg.to_radians().sin();
    let h_max_m = -8400.0 * (vertical_depth / 1030.0).ln();
    let h_first_int_m = h_max_m + 8000.0 + 2000.0 * rng.random::<f64>();
    let shower = ToyShower {
        energy_tev,
        alt_deg,
        az_deg,
        core_x_m: radius * phi.cos(),
        core_y_m: radius * phi.sin(),
        h_first_int_m,
        h_max_m,
        x_max_g_cm2,
        primary: settings.primary,
    };
    (shower, rng)
}

/// What a telescope sees of a shower: the ellipse in its field of view (deg) and the
/// expected number of photo-electrons.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToyImage {
    /// Centroid, field-of-view longitude (deg).
    pub cog_lon_deg: f64,
    /// Centroid, field-of-view latitude (deg).
    pub cog_lat_deg: f64,
    /// Orientation of the major axis (rad).
    pub psi_rad: f64,
    /// Standard deviation along the major axis (deg).
    pub length_deg: f64,
    /// Standard deviation along the minor axis (deg).
    pub width_deg: f64,
    /// Expected total charge (p.e.).
    pub intensity_pe: f64,
    /// Peak-time gradient along the major axis (ns/deg).
    pub time_gradient_ns_per_deg: f64,
}

/// The image of `shower` in a telescope at `position_m` (ground frame, m) with a mirror of
/// `mirror_area_m2`, pointing at the array pointing.
pub fn telescope_image(
    settings: &ToySettings,
    shower: &ToyShower,
    position_m: [f64; 3],
    mirror_area_m2: f64,
    rng: &mut Pcg64Mcg,
) -> ToyImage {
    let pointing = direction(settings.pointing_alt_deg, settings.pointing_az_deg);
    let axis = direction(shower.alt_deg, shower.az_deg);
    // Shower maximum: on the axis through the core, at height h_max.
    let along = shower.h_max_m / axis[2];
    let maximum = [
        shower.core_x_m + along * axis[0],
        shower.core_y_m + along * axis[1],
        shower.h_max_m,
    ];
    let to_maximum = normalise([
        maximum[0] - position_m[0],
        maximum[1] - position_m[1],
        maximum[2] - position_m[2],
    ]);
    let (cog_lon, cog_lat) = field_of_view(pointing, to_maximum);
    let (src_lon, src_lat) = field_of_view(pointing, axis);
    let impact = impact_distance(shower, axis, position_m);
    let psi = (cog_lat - src_lat).atan2(cog_lon - src_lon);
    let energy = shower.energy_tev;
    let proton = shower.primary == Primary::Proton;
    let width_deg =
        (0.05 + 0.02 * energy.log10().max(-1.0) + 0.0001 * impact) * if proton { 2.0 } else { 1.0 };
    let length_deg = width_deg * (1.5 + impact / 120.0) * if proton { 0.8 } else { 1.0 };
    // Cherenkov light pool: a plateau out to 120 m, then an exponential fall-off.
    let density = 25.0
        * energy
        * if impact < 120.0 {
            1.0
        } else {
            (-(impact - 120.0) / 80.0).exp()
        };
    let fluctuation = (1.0 + 0.2 * standard_normal(rng)).max(0.1);
    ToyImage {
        cog_lon_deg: cog_lon.to_degrees(),
        cog_lat_deg: cog_lat.to_degrees(),
        psi_rad: psi,
        length_deg,
        width_deg,
        intensity_pe: density * mirror_area_m2 * 0.1 * fluctuation,
        time_gradient_ns_per_deg: 2.0 + impact / 40.0,
    }
}

/// Fills `charges` (p.e. per pixel) with a Poisson-sampled elliptical Gaussian image.
/// `pix_lon`/`pix_lat` are the pixel positions in the field of view (deg).
pub fn fill_charges(
    image: &ToyImage,
    geometry: &CameraGeometry,
    pix_lon: &[f64],
    pix_lat: &[f64],
    focal_length_m: f64,
    charges: &mut [f32],
    rng: &mut Pcg64Mcg,
) {
    let (sin_psi, cos_psi) = image.psi_rad.sin_cos();
    let norm = image.intensity_pe / (std::f64::consts::TAU * image.length_deg * image.width_deg);
    for (pixel, charge) in charges.iter_mut().enumerate() {
        let dx = pix_lon[pixel] - image.cog_lon_deg;
        let dy = pix_lat[pixel] - image.cog_lat_deg;
        let longitudinal = dx * cos_psi + dy * sin_psi;
        let transverse = -dx * sin_psi + dy * cos_psi;
        let area_deg2 = geometry.pix_area_m2[pixel] / (focal_length_m * focal_length_m)
            * (180.0 / std::f64::consts::PI).powi(2);
        let expected = norm
            * area_deg2
            * (-0.5
                * ((longitudinal / image.length_deg).powi(2)
                    + (transverse / image.width_deg).powi(2)))
            .exp();
        *charge = if expected < 1e-3 {
            0.0
        } else {
            match Poisson::new(expected) {
                Ok(poisson) => poisson.sample(rng) as f32,
                Err(_) => expected as f32,
            }
        };
    }
}

/// Writes R1 waveforms [pixel][sample] (p.e. per sample): each pixel's charge as a
/// Gaussian pulse (σ = 1.5 ns) arriving along the time gradient, plus white noise.
#[allow(clippy::too_many_arguments)]
pub fn fill_waveforms(
    image: &ToyImage,
    charges: &[f32],
    pix_lon: &[f64],
    pix_lat: &[f64],
    n_samples: usize,
    sampling_rate_ghz: f64,
    noise_pe: f64,
    waveforms: &mut [f32],
    rng: &mut Pcg64Mcg,
) {
    let noise = Normal::new(0.0, noise_pe.max(0.0)).ok();
    let (sin_psi, cos_psi) = image.psi_rad.sin_cos();
    let sample_ns = 1.0 / sampling_rate_ghz;
    let sigma_samples = (1.5 / sample_ns).max(0.6);
    let centre = 0.4 * n_samples as f64;
    let mut pulse = vec![0.0f64; n_samples];
    for (pixel, samples) in waveforms.chunks_exact_mut(n_samples).enumerate() {
        if charges[pixel] == 0.0 {
            // Most pixels see no light: their pulse would be scaled by 0 (written as
            // `0.0 + noise`, which is what `shape * 0.0 + noise` gives).
            for sample in samples.iter_mut() {
                let white = noise.as_ref().map_or(0.0, |n| n.sample(rng));
                *sample = (0.0 + white) as f32;
            }
            continue;
        }
        let longitudinal = (pix_lon[pixel] - image.cog_lon_deg) * cos_psi
            + (pix_lat[pixel] - image.cog_lat_deg) * sin_psi;
        let arrival = centre + longitudinal * image.time_gradient_ns_per_deg / sample_ns;
        let mut total = 0.0;
        for (k, value) in pulse.iter_mut().enumerate() {
            *value = (-0.5 * ((k as f64 - arrival) / sigma_samples).powi(2)).exp();
            total += *value;
        }
        let scale = if total > 0.0 {
            f64::from(charges[pixel]) / total
        } else {
            0.0
        };
        for (sample, shape) in samples.iter_mut().zip(&pulse) {
            let white = noise.as_ref().map_or(0.0, |n| n.sample(rng));
            *sample = (shape * scale + white) as f32;
        }
    }
}

/// Field-of-view positions (deg) of the camera pixels for a focal length (m): the small-angle
/// mapping ctapipe uses (fov_lon = y / f, fov_lat = x / f).
pub fn pixel_fov_deg(geometry: &CameraGeometry, focal_length_m: f64) -> (Vec<f64>, Vec<f64>) {
    let lon = geometry
        .pix_y_m
        .iter()
        .map(|y| (y / focal_length_m).to_degrees())
        .collect();
    let lat = geometry
        .pix_x_m
        .iter()
        .map(|x| (x / focal_length_m).to_degrees())
        .collect();
    (lon, lat)
}

/// A per-shower random stream: SplitMix64 of (seed, index) seeds a PCG generator.
fn shower_rng(seed: u64, index: u64) -> Pcg64Mcg {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    Pcg64Mcg::seed_from_u64(z ^ (z >> 31))
}

fn standard_normal(rng: &mut Pcg64Mcg) -> f64 {
    rand_distr::StandardNormal.sample(rng)
}

/// Draws from dN/dE ∝ E^-index between `low` and `high` by inverting the CDF.
fn power_law(rng: &mut Pcg64Mcg, low: f64, high: f64, index: f64) -> f64 {
    let u: f64 = rng.random();
    if (index - 1.0).abs() < 1e-9 {
        return low * (high / low).powf(u);
    }
    let a = 1.0 - index;
    (low.powf(a) + u * (high.powf(a) - low.powf(a))).powf(1.0 / a)
}

/// Unit vector (x north, y west, z up) of an alt/az direction (deg; az from north to east).
fn direction(alt_deg: f64, az_deg: f64) -> [f64; 3] {
    let (alt, az) = (alt_deg.to_radians(), az_deg.to_radians());
    [alt.cos() * az.cos(), -alt.cos() * az.sin(), alt.sin()]
}

fn normalise(v: [f64; 3]) -> [f64; 3] {
    let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    [v[0] / n, v[1] / n, v[2] / n]
}

/// Field-of-view coordinates (rad) of direction `d` for a telescope pointing at `p`:
/// gnomonic projection on the tangent plane, lon towards the horizontal "left", lat up.
fn field_of_view(p: [f64; 3], d: [f64; 3]) -> (f64, f64) {
    // Basis of the tangent plane: `up` towards the zenith, `left` = p × up.
    let zenith = [0.0, 0.0, 1.0];
    let dot_pz = p[2];
    let up = normalise([
        zenith[0] - dot_pz * p[0],
        zenith[1] - dot_pz * p[1],
        zenith[2] - dot_pz * p[2],
    ]);
    let left = [
        p[1] * up[2] - p[2] * up[1],
        p[2] * up[0] - p[0] * up[2],
        p[0] * up[1] - p[1] * up[0],
    ];
    let along = d[0] * p[0] + d[1] * p[1] + d[2] * p[2];
    let lon = (d[0] * left[0] + d[1] * left[1] + d[2] * left[2]) / along;
    let lat = (d[0] * up[0] + d[1] * up[1] + d[2] * up[2]) / along;
    (lon.atan(), lat.atan())
}

/// Distance (m) of the telescope from the shower axis.
fn impact_distance(shower: &ToyShower, axis: [f64; 3], position_m: [f64; 3]) -> f64 {
    let r = [
        position_m[0] - shower.core_x_m,
        position_m[1] - shower.core_y_m,
        position_m[2],
    ];
    let along = r[0] * axis[0] + r[1] * axis[1] + r[2] * axis[2];
    let perpendicular = [
        r[0] - along * axis[0],
        r[1] - along * axis[1],
        r[2] - along * axis[2],
    ];
    (perpendicular[0].powi(2) + perpendicular[1].powi(2) + perpendicular[2].powi(2)).sqrt()
}
