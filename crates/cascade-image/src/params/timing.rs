//! Timing parameters: a robust straight-line fit of pixel arrival times along the shower
//! axis (ctapipe `timing_parameters`, `ctapipe.fitting.lts_linear_regression`).
//!
//! # Why and how the fit is deterministic
//!
//! ctapipe fits with a least-trimmed-squares (LTS) regression (`lts_linear_regression`,
//! after Rousseeuw & Van Driessen 2006, FAST-LTS): from 5 random pairs of points it
//! iterates "C-steps" (refit on the 85 % of points with the smallest squared residuals,
//! at most 20 times, until the trimmed residual sum of squares changes by less than
//! 1e-12) and keeps the solution with the smallest trimmed residual sum of squares. The
//! pairs are drawn from a process-global random generator, so ctapipe's result depends on
//! how many fits ran before in the same process; about a third of real images get a
//! different answer with a different seed. A parallel pipeline cannot reproduce that
//! stream, and should not.
//!
//! cascade runs the same C-steps (same trimming fraction, iteration limit, convergence
//! test and singularity check) from starts that depend on nothing but the data: the
//! ordinary least-squares fit of all points, and [`N_PAIR_STARTS`] pairs of points drawn
//! by a SplitMix64 generator that is re-seeded with a fixed constant for every fit. The
//! best result by ctapipe's criterion (smallest trimmed residual sum of squares) is
//! returned. The result is therefore identical on every run, thread and batch split.
//!
//! Why 20 pair starts: a C-step never increases the trimmed sum of squares, so every
//! start ends in a fixed point, and the LTS optimum is the fixed point with the smallest
//! sum. Where ctapipe's answer does not depend on its seed, it is that optimum, reached
//! (on the reference images, running C-steps from every pair of points) from at least
//! 31 % of all pairs. ctapipe's 5 starts then miss it up to 16 % of the time; 20 miss it
//! with probability below 0.07 %, so the two agree; the reference tests check this on
//! every such image. ctapipe run on the 837 toy LST-like telescope events of `cascade
//! bench` (`benches/ctapipe_toy_throughput.py`'s input, its fits re-seeded 8 times as the
//! shared reference does) agrees too on every seed-stable fit but 6 of 305, all of
//! images of 3 pixels: there the trimmed subset is 2 points, every pair fits exactly, and
//! which pair ctapipe keeps depends on how its arithmetic rounds the zero residual sums
//! (`0` against `1e-30`), which cascade's closed-form sums do not reproduce. Beyond 3
//! pixels `benches/ctapipe_toy_sweep.py` finds no disagreement either, on 828 to 1097
//! seed-stable fits per image cleaner over 1000 toy array events of every toy camera.
//!
//! # Cost
//!
//! Most starts end where an earlier one went. Each trimmed subset is identified by a
//! 128-bit hash of the points left out (the XOR of fixed random keys per point, so it does
//! not depend on the order of anything); a start that reaches a subset an earlier start
//! visited would repeat that start's path and is stopped there, and a start whose subset
//! repeats has converged (ctapipe's test would stop one C-step later with the same fit).
//! On the LSTCam reference images a fit takes ~57 C-steps in all instead of up to 420.
//!
//! A C-step is one pass over the points plus work on a short tail: the pass computes the
//! squared residuals and gathers those above a guess of the cut (an order statistic of a
//! sample of ~24 residuals for the first step of a start, a multiple of the last fit's
//! mean squared residual after that; a lower guess, then every point, when too few are
//! above it). A sorting network (9 to 32 values, `select`) or a quickselect on the
//! gathered ~25 % finds the cut, one more pass over the tail the points left out, and the
//! subset's sums are the sums over all points minus theirs. Every step reproduces
//! ctapipe's `argsort` exactly (the tests compare it with a stable sort on data full of
//! ties); residuals that are NaN, possible only for non-finite lines, are selected on
//! their bits instead (`select_nth_unstable`). On small images (at most 8 points left out,
//! up to ~50 pixels) the guess, the gathering and the selection cost more than they save:
//! there one pass stores the squared residuals and one more per point left out takes the
//! largest (a maximum in four lanes, then the last point equal to it). The sums are taken
//! in coordinates centred on the mean point, so the closed-form line and residual sum of
//! squares of one pass keep full `f64` precision. Beyond that network nothing is sorted,
//! and nothing is allocated once the [`TimingWorkspace`] has grown to the image size.

mod gather;
mod select;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::columns::Column;
use super::hillas::HillasParameters;
use super::{Frame, PixelCoordinates};
use crate::error::ImageError;
use crate::value::PixelValue;

/// ctapipe `fitting.EPS`: a design matrix with `det(XᵀX)` below this is singular.
const SINGULAR_DET: f64 = 2.0 * f64::EPSILON;
/// ctapipe `timing_parameters` calls `lts_linear_regression` with these settings.
const RELATIVE_SAMPLE_SIZE: f64 = 0.85;
const MAX_ITERATIONS: usize = 20;
const CONVERGENCE_EPS: f64 = 1e-12;
/// Number of two-point starts of the LTS fit (ctapipe draws 5 from its global generator).
pub const N_PAIR_STARTS: usize = 20;
/// Seed of the per-fit generator of start pairs.
const START_SEED: u64 = 0x0ca5_cade_5eed;
/// Seed of the per-point keys that identify trimmed subsets.
const SUBSET_KEY_SEED: u64 = 0x5eed_0f5b_5e7e_e5a1;
/// Number of guesses of the cut tried before a C-step takes every point into the tail.
const N_GUESSES: usize = 2;
/// The cut of the first C-step of a start is guessed as an order statistic of a sample of
/// about this many squared residuals, evenly spaced over the points.
const CUT_GUESS_SAMPLE: usize = 24;
/// The guesses from the sample: its 6th largest, then its 12th largest value (of 25 on a
/// 122-pixel image: a little and well below the cut at [`RELATIVE_SAMPLE_SIZE`]).
const SAMPLE_GUESS_RANKS: [usize; N_GUESSES] = [6, 12];
/// After the first C-step of a start, the cut is guessed from the last fit instead: these
/// times its mean squared residual over the trimmed subset (the cut is about 3.4 times
/// that for normal residuals at 85 %).
const FIT_GUESS_FACTORS: [f64; N_GUESSES] = [2.5, 1.0];
/// [`kth_largest`] compares every pair of candidates once at most this many are left.
const SMALL_BAND: usize = 4;
/// C-steps that leave out at most this many points (images of up to ~50 pixels) find them
/// with one pass over the points per point left out ([`LtsScratch::few_left_out`]; 16
/// made lst_muons' rings, 18 points left out, ~12 % slower).
const FEW_LEFT_OUT: usize = 8;

/// Where a C-step's guesses of its cut come from.
#[derive(Debug, Clone, Copy)]
enum CutGuess {
    /// Order statistics of a sample of the squared residuals (the first C-step of a start).
    Sample,
    /// The mean squared residual over the trimmed subset of the last fit.
    Fit(f64),
}

/// Timing parameters of one image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimingParameters {
    /// Frame of the coordinates (unit of the slope).
    pub frame: Frame,
    /// Slope of arrival time along the major axis (ns/m or ns/deg; ctapipe unit
    /// `1 / m` or `1 / deg`).
    pub slope: f64,
    /// Arrival time at the centroid (ns; unitless in ctapipe).
    pub intercept: f64,
    /// Root-mean-square deviation of the arrival times from the fitted line over all
    /// selected pixels (ns; unitless in ctapipe).
    pub deviation: f64,
}

impl TimingParameters {
    /// All-NaN parameters (ctapipe's default container).
    pub fn nan(frame: Frame) -> Self {
        Self {
            frame,
            slope: f64::NAN,
            intercept: f64::NAN,
            deviation: f64::NAN,
        }
    }

    /// ctapipe's container prefix: `"timing"` or `"camera_frame_timing"`.
    pub fn prefix(&self) -> &'static str {
        match self.frame {
            Frame::Camera => "camera_frame_timing",
            Frame::Telescope => "timing",
        }
    }

    /// Columns in ctapipe's order: intercept, deviation, slope.
    pub fn columns(&self) -> [Column; 3] {
        let p = self.prefix();
        let slope_unit = match self.frame {
            Frame::Camera => "1 / m",
            Frame::Telescope => "1 / deg",
        };
        [
            Column::float(p, "intercept", "", self.intercept),
            Column::float(p, "deviation", "", self.deviation),
            Column::float(p, "slope", slope_unit, self.slope),
        ]
    }
}

/// Reusable scratch memory of the timing fit; buffers grow to the largest image seen and
/// are then reused, so a fit allocates nothing.
#[derive(Debug, Default, Clone)]
pub struct TimingWorkspace {
    /// Longitudinal coordinates of the fitted pixels (unit of the pixel coordinates).
    x: Vec<f64>,
    /// Arrival times of the fitted pixels (ns).
    y: Vec<f64>,
    scratch: LtsScratch,
}

/// Scratch of the C-steps.
#[derive(Debug, Default, Clone)]
struct LtsScratch {
    /// The points minus their mean, which keeps the one-pass sums of squares accurate.
    x: Vec<f64>,
    y: Vec<f64>,
    /// Sums over all points.
    totals: Sums,
    /// Indices of the points above the guessed cut, in index order, and their squared
    /// residuals.
    tail_index: Vec<u32>,
    tail_squares: Vec<f64>,
    /// Indices of the points left out, by descending index.
    left_out: Vec<u32>,
    /// Squared residuals of the points sampled for a guess of the cut.
    sample: Vec<f64>,
    /// Candidates for the cut that [`kth_largest`] narrows down.
    band: Vec<f64>,
    /// Squared residuals (f64 bits: non-negative floats order like their bits) that
    /// selection reorders.
    selection: Vec<u64>,
    /// A random 128-bit key per point; the XOR of the keys of the points left out
    /// identifies a trimmed subset whatever the order its sums were taken in.
    keys: Vec<[u64; 2]>,
    /// Every subset visited in this regression and the start that reached it first: a
    /// start that reaches a visited subset follows that start's path from there on, so it
    /// is stopped.
    visited: HashMap<u128, usize, BuildHasherDefault<FitHasher>>,
}

/// Timing parameters of the pixels selected by `mask` (ctapipe `timing_parameters`):
/// arrival times `peak_time` (ns) against the longitudinal coordinate along the Hillas
/// axis, fitted with a deterministic least-trimmed-squares regression (see the module
/// docs). `hillas` must be computed in the same frame as `pixels`.
///
/// Fails like ctapipe if a selected pixel has negative signal.
pub fn timing_parameters<T: PixelValue, U: PixelValue>(
    pixels: &PixelCoordinates<'_>,
    image: &[T],
    peak_time: &[U],
    mask: &[bool],
    hillas: &HillasParameters,
    workspace: &mut TimingWorkspace,
) -> Result<TimingParameters, ImageError> {
    pixels.check(&[
        ("image", image.len()),
        ("peak_time", peak_time.len()),
        ("mask", mask.len()),
    ])?;
    timing_of_selected(
        pixels,
        image,
        peak_time,
        (0..mask.len()).filter(|&i| mask[i]),
        hillas,
        workspace,
    )
}

/// [`timing_parameters`] of the pixels `selected` yields (ascending indices into arrays of
/// checked lengths).
pub(super) fn timing_of_selected<T: PixelValue, U: PixelValue>(
    pixels: &PixelCoordinates<'_>,
    image: &[T],
    peak_time: &[U],
    selected: impl Iterator<Item = usize> + Clone,
    hillas: &HillasParameters,
    workspace: &mut TimingWorkspace,
) -> Result<TimingParameters, ImageError> {
    if let Some(pixel) = selected.clone().find(|&i| image[i].to_f64() < 0.0) {
        return Err(ImageError::NegativeSignal {
            pixel,
            value: image[pixel].to_f64(),
        });
    }
    // camera_to_shower_coordinates(pix_x, pix_y, cog_x, cog_y, psi)
    let (sin_psi, cos_psi) = hillas.psi_rad.sin_cos();
    workspace.x.clear();
    workspace.y.clear();
    for i in selected {
        let longi = (pixels.x[i] - hillas.x) * cos_psi + (pixels.y[i] - hillas.y) * sin_psi;
        workspace.x.push(longi);
        workspace.y.push(peak_time[i].to_f64());
    }
    let TimingWorkspace { x, y, scratch } = workspace;
    let (beta, _) = lts_fit(x, y, scratch);
    // rmse(longi * beta[0] + beta[1], peak_time) over all selected pixels
    let n = x.len();
    let sum_squares: f64 = x
        .iter()
        .zip(y.iter())
        .map(|(&xi, &yi)| (xi * beta[0] + beta[1] - yi).powi(2))
        .sum();
    let deviation = (sum_squares / n as f64).sqrt();
    Ok(TimingParameters {
        frame: hillas.frame,
        slope: beta[0],
        intercept: beta[1],
        deviation,
    })
}

/// Least-trimmed-squares line fit `y = beta[0] * x + beta[1]` with ctapipe's settings
/// (85 % of the points, at most 20 C-steps, convergence at 1e-12), from the deterministic
/// starts described in the module docs. Non-finite points are dropped first. Returns
/// `(beta, residual sum of squares of the trimmed subset)`; beta is NaN when there are
/// fewer than 2 points (error NaN) or no start gives a regular fit (error infinite), like
/// ctapipe `lts_linear_regression`.
pub fn lts_linear_regression(
    x: &[f64],
    y: &[f64],
    workspace: &mut TimingWorkspace,
) -> ([f64; 2], f64) {
    let TimingWorkspace {
        x: xs,
        y: ys,
        scratch,
    } = workspace;
    xs.clear();
    ys.clear();
    xs.extend_from_slice(x);
    ys.extend_from_slice(y);
    lts_fit(xs, ys, scratch)
}

/// [`lts_linear_regression`] on owned buffers (filtered in place).
fn lts_fit(x: &mut Vec<f64>, y: &mut Vec<f64>, scratch: &mut LtsScratch) -> ([f64; 2], f64) {
    // mask = np.isfinite(x) & np.isfinite(y)
    let mut kept = 0;
    for i in 0..x.len() {
        if x[i].is_finite() && y[i].is_finite() {
            x[kept] = x[i];
            y[kept] = y[i];
            kept += 1;
        }
    }
    x.truncate(kept);
    y.truncate(kept);
    let n = x.len();
    if n < 2 {
        return ([f64::NAN, f64::NAN], f64::NAN);
    }
    let sample_size = (RELATIVE_SAMPLE_SIZE * n as f64) as usize;
    let x_mean = x.iter().sum::<f64>() / n as f64;
    let y_mean = y.iter().sum::<f64>() / n as f64;
    scratch.prepare(x, y, x_mean, y_mean);

    // starts: all points, then pairs drawn like ctapipe's choose_two_without_replacement
    let mut generator = SplitMix64(START_SEED);
    let (mut best_beta, mut best_error) = ([f64::NAN, f64::NAN], f64::INFINITY);
    for start_index in 0..=N_PAIR_STARTS {
        let start = if start_index == 0 {
            scratch.totals.line()
        } else {
            let first = generator.below(n);
            let mut second = generator.below(n - 1);
            if second >= first {
                second += 1;
            }
            pair_line(&scratch.x, &scratch.y, first, second)
        };
        let Some((start, _)) = start else {
            continue;
        };
        if let Some((beta, error)) = scratch.c_steps(start, start_index, sample_size)
            && error < best_error
        {
            best_beta = beta;
            best_error = error;
        }
    }
    // back from centred coordinates
    best_beta[1] += y_mean - best_beta[0] * x_mean;
    (best_beta, best_error)
}

impl LtsScratch {
    /// Centres the points, sums them, and sizes the buffers for `x.len()` points.
    fn prepare(&mut self, x: &[f64], y: &[f64], x_mean: f64, y_mean: f64) {
        let n = x.len();
        self.x.clear();
        self.x.extend(x.iter().map(|&v| v - x_mean));
        self.y.clear();
        self.y.extend(y.iter().map(|&v| v - y_mean));
        let mut totals = Sums::default();
        for (&xi, &yi) in self.x.iter().zip(&self.y) {
            totals.add(xi, yi);
        }
        self.totals = totals;
        self.tail_squares.clear();
        self.tail_squares.resize(n, 0.0);
        for buffer in [&mut self.tail_index, &mut self.left_out] {
            buffer.clear();
            buffer.resize(n, 0);
        }
        let mut generator = SplitMix64(SUBSET_KEY_SEED.wrapping_add(self.keys.len() as u64));
        while self.keys.len() < n {
            self.keys.push([generator.next(), generator.next()]);
        }
        self.visited.clear();
    }

    /// ctapipe `_lts_single_sample` after the initial fit: repeatedly refit on the
    /// `sample_size` points with the smallest squared residuals until the trimmed residual
    /// sum of squares changes by less than 1e-12 or the subset repeats, at most
    /// [`MAX_ITERATIONS`] times. Returns `None` when a subset is singular (ctapipe's NaN
    /// fit, never the best) or when the path reaches a subset an earlier start visited (it
    /// would repeat that start's path).
    fn c_steps(
        &mut self,
        start: [f64; 2],
        start_index: usize,
        sample_size: usize,
    ) -> Option<([f64; 2], f64)> {
        let mut beta = start;
        // ctapipe starts from the residuals of the two-point start, i.e. 0
        let mut last_error = 0.0;
        let mut last_subset = None;
        let mut guess = CutGuess::Sample;
        for _ in 0..MAX_ITERATIONS {
            let (subset, sums) = self.trimmed_subset(beta, sample_size, guess);
            let (next, error) = sums.line()?;
            beta = next;
            guess = CutGuess::Fit(error / sample_size as f64);
            if (last_error - error).abs() < CONVERGENCE_EPS || last_subset == Some(subset) {
                return Some((beta, error));
            }
            if *self.visited.entry(subset).or_insert(start_index) != start_index {
                return None;
            }
            last_error = error;
            last_subset = Some(subset);
        }
        Some((beta, last_error))
    }

    /// The `sample_size` points with the smallest squared residuals from the line `beta`
    /// (ctapipe `np.argsort(squared_residuals)[:sample_size]`; of equal residuals, those
    /// with the lower index): their identity (a 128-bit hash of the points left out) and
    /// their sums.
    ///
    /// One pass computes the squared residuals and gathers those above a guess of the cut
    /// into the tail; when a guess is too high (fewer points above it than are left out),
    /// the next lower guess of `guess` is tried, and at last every point. The cut is
    /// selected in that short tail only ([`kth_largest`]), and the subset's sums are the
    /// totals minus those of the points left out.
    fn trimmed_subset(
        &mut self,
        beta: [f64; 2],
        sample_size: usize,
        guess: CutGuess,
    ) -> (u128, Sums) {
        let n_left_out = self.x.len() - sample_size;
        if n_left_out <= FEW_LEFT_OUT
            && let Some(n_left) = self.few_left_out(beta, n_left_out)
        {
            return self.subset_without(n_left);
        }
        let (mut len, mut nan) = (0, false);
        for attempt in 0..N_GUESSES {
            let cut = match guess {
                CutGuess::Fit(mean_square) => FIT_GUESS_FACTORS[attempt] * mean_square,
                CutGuess::Sample => self.sampled_cut(beta, SAMPLE_GUESS_RANKS[attempt]),
            };
            (len, nan) = self.gather_above(beta, Some(cut));
            if nan || len >= n_left_out {
                break;
            }
        }
        if nan || len < n_left_out {
            len = self.gather_above(beta, None).0;
        }
        let n_left = if nan {
            // a NaN residual: order by bits like the values' total order
            self.select_tail(len, n_left_out)
        } else {
            let cut = kth_largest(&self.tail_squares[..len], n_left_out, &mut self.band);
            self.collect_left_out(len, cut, n_left_out)
        };
        self.subset_without(n_left)
    }

    /// The identity and the sums of the subset without the first `n_left` points of
    /// `left_out` (written by descending index, the order of the sums).
    fn subset_without(&self, n_left: usize) -> (u128, Sums) {
        let Self {
            x,
            y,
            left_out,
            keys,
            totals,
            ..
        } = self;
        let mut left_out_sums = Sums::default();
        let mut hash = [0u64; 2];
        for &i in &left_out[..n_left] {
            let i = i as usize;
            left_out_sums.add(x[i], y[i]);
            hash[0] ^= keys[i][0];
            hash[1] ^= keys[i][1];
        }
        let subset = (u128::from(hash[0]) << 64) | u128::from(hash[1]);
        (subset, totals.minus(&left_out_sums))
    }

    /// The `n_left_out` (at most [`FEW_LEFT_OUT`]) points with the largest squared
    /// residuals from the line `beta`, of equal ones those with the higher index, written
    /// to `left_out` by descending index: for small images, where the sampled guess, the
    /// gathering pass and the selection cost more than the passes here. One pass computes
    /// the squared residuals, then each of `n_left_out` passes takes the largest left (the
    /// last of equal ones, as ctapipe's stable argsort leaves the later point out first,
    /// [`last_of_largest`]). Returns `n_left_out`, or `None` when a squared residual is
    /// NaN (the general path orders those).
    fn few_left_out(&mut self, beta: [f64; 2], n_left_out: usize) -> Option<usize> {
        let squares = &mut self.tail_squares[..self.x.len()];
        let mut nan = false;
        for ((square, &xi), &yi) in squares.iter_mut().zip(&self.x).zip(&self.y) {
            let residual = yi - (xi * beta[0] + beta[1]);
            *square = residual * residual;
            nan |= square.is_nan();
        }
        if nan {
            return None;
        }
        for index in &mut self.left_out[..n_left_out] {
            let at = last_of_largest(squares);
            *index = at as u32;
            // Below every square (they are +0 or more): never taken again.
            squares[at] = -1.0;
        }
        self.left_out[..n_left_out].sort_unstable_by(|a, b| b.cmp(a));
        Some(n_left_out)
    }

    /// A guess of the cut a little below it: the `rank`-th largest of the squared
    /// residuals from the line `beta` of about [`CUT_GUESS_SAMPLE`] evenly spaced points.
    fn sampled_cut(&mut self, beta: [f64; 2], rank: usize) -> f64 {
        let n = self.x.len();
        let stride = (n / CUT_GUESS_SAMPLE).max(1);
        self.sample.clear();
        for i in (0..n).step_by(stride) {
            let residual = self.y[i] - (self.x[i] * beta[0] + beta[1]);
            self.sample.push(residual * residual);
        }
        let rank = rank.clamp(1, self.sample.len());
        kth_largest(&self.sample, rank, &mut self.band)
    }

    /// [`gather::gather_above`] on the points and the tail buffers.
    fn gather_above(&mut self, beta: [f64; 2], cut: Option<f64>) -> (usize, bool) {
        let Self {
            x,
            y,
            tail_index,
            tail_squares,
            ..
        } = self;
        gather::gather_above(x, y, beta, cut, tail_index, tail_squares)
    }

    /// Writes the points of the tail's first `len` that are left out at `cut` (the
    /// `n_left_out`-th largest squared residual) to `left_out`, by descending index: every
    /// point above the cut and, of those at it, the highest indices. Returns `n_left_out`.
    fn collect_left_out(&mut self, len: usize, cut: f64, n_left_out: usize) -> usize {
        let tail = &self.tail_squares[..len];
        let tail_index = &self.tail_index[..len];
        let (mut n_above, mut n_at_or_above) = (0, 0);
        for &square in tail {
            n_above += usize::from(square > cut);
            n_at_or_above += usize::from(square >= cut);
        }
        let mut n = 0;
        if n_at_or_above == n_left_out {
            // no tie at the cut to break (the usual case)
            for (&square, &i) in tail.iter().zip(tail_index).rev() {
                self.left_out[n] = i;
                n += usize::from(square >= cut);
            }
            return n;
        }
        let mut ties_left_out = n_left_out - n_above;
        for (&square, &i) in tail.iter().zip(tail_index).rev() {
            let at_cut = square == cut && ties_left_out > 0;
            ties_left_out -= usize::from(at_cut);
            self.left_out[n] = i;
            n += usize::from(square > cut || at_cut);
        }
        n
    }

    /// The points of the tail's first `len` left out, as [`LtsScratch::collect_left_out`]
    /// writes them, for squares that may be NaN: the cut is selected on the squares' bits
    /// (`select_nth_unstable`), which order like the values where those are not NaN.
    fn select_tail(&mut self, len: usize, n_left_out: usize) -> usize {
        let Self {
            tail_index,
            tail_squares,
            left_out,
            selection,
            ..
        } = self;
        let (tail_squares, tail_index) = (&tail_squares[..len], &tail_index[..len]);
        selection.clear();
        selection.extend(tail_squares.iter().map(|square| square.to_bits()));
        let (_, &mut cut, _) = selection.select_nth_unstable(len - n_left_out);
        let n_above = tail_squares
            .iter()
            .filter(|&&square| square.to_bits() > cut)
            .count();
        let mut ties_left_out = n_left_out - n_above;
        let mut n = 0;
        for (&square, &i) in tail_squares.iter().zip(tail_index).rev() {
            let bits = square.to_bits();
            let at_cut = bits == cut && ties_left_out > 0;
            if bits > cut || at_cut {
                ties_left_out -= usize::from(at_cut);
                left_out[n] = i;
                n += 1;
            }
        }
        n
    }
}

/// The `rank`-th largest of `values` (`1 <= rank <= values.len()`, none NaN), counting
/// equal values separately (`np.sort(values)[-rank]`). 9 to 32 values go through the
/// sorting network of [`select::kth_largest_of_few`] (with AVX2); otherwise a quickselect:
/// each round counts the values above and at a median-of-three pivot and keeps only the
/// side holding the answer (in `band`, without branches), until 9 to 32 are left for the
/// sorting network (rounds on so few mispredict, and each costs a pass) or, once at most
/// [`SMALL_BAND`] are left, the answer is the smallest value with fewer than `rank` values
/// above it.
fn kth_largest(values: &[f64], rank: usize, band: &mut Vec<f64>) -> f64 {
    if values.len() >= select::MIN_VALUES
        && let Some(kth) = select::kth_largest_of_few(values, rank)
    {
        return kth;
    }
    band.clear();
    band.extend_from_slice(values);
    let mut rank = rank;
    let mut len = band.len();
    while len > SMALL_BAND {
        // Few enough left for the sorting network.
        if (select::MIN_VALUES..=select::MAX_VALUES).contains(&len)
            && let Some(kth) = select::kth_largest_of_few(&band[..len], rank)
        {
            return kth;
        }
        let candidates = &mut band[..len];
        let (a, b, c) = (candidates[0], candidates[len / 2], candidates[len - 1]);
        let pivot = a.max(b).min(a.min(b).max(c));
        let (mut above, mut at_or_above) = (0, 0);
        for &v in candidates.iter() {
            above += usize::from(v > pivot);
            at_or_above += usize::from(v >= pivot);
        }
        let mut kept = 0;
        if above >= rank {
            for i in 0..len {
                let v = candidates[i];
                candidates[kept] = v;
                kept += usize::from(v > pivot);
            }
        } else if at_or_above >= rank {
            return pivot;
        } else {
            rank -= at_or_above;
            for i in 0..len {
                let v = candidates[i];
                candidates[kept] = v;
                kept += usize::from(v < pivot);
            }
        }
        len = kept;
    }
    let candidates = &band[..len];
    candidates
        .iter()
        .filter(|&&v| candidates.iter().filter(|&&other| other > v).count() < rank)
        .fold(f64::INFINITY, |cut, &v| cut.min(v))
}

/// Sums of a subset of points for a least-squares line.
#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    n: f64,
    x: f64,
    y: f64,
    xx: f64,
    xy: f64,
    yy: f64,
}

impl Sums {
    /// Adds one point.
    fn add(&mut self, x: f64, y: f64) {
        self.n += 1.0;
        self.x += x;
        self.y += y;
        self.xx += x * x;
        self.xy += x * y;
        self.yy += y * y;
    }

    /// The sums of the points in `self` but not in `part` (a subset of them).
    fn minus(&self, part: &Sums) -> Sums {
        Sums {
            n: self.n - part.n,
            x: self.x - part.x,
            y: self.y - part.y,
            xx: self.xx - part.xx,
            xy: self.xy - part.xy,
            yy: self.yy - part.yy,
        }
    }

    /// Ordinary least squares (ctapipe `linear_regression`) and the residual sum of
    /// squares, or `None` when `det(XᵀX) = n Σx² - (Σx)² < 2 ε` (ctapipe's NaN fit).
    fn line(&self) -> Option<([f64; 2], f64)> {
        let (x_mean, y_mean) = (self.x / self.n, self.y / self.n);
        // centred second moments: Σ(x - x̄)², Σ(x - x̄)(y - ȳ), Σ(y - ȳ)²
        let sxx = self.xx - self.x * x_mean;
        let sxy = self.xy - self.x * y_mean;
        let syy = self.yy - self.y * y_mean;
        let det = self.n * sxx;
        if det.is_nan() || det < SINGULAR_DET {
            return None;
        }
        let slope = sxy / sxx;
        let intercept = y_mean - slope * x_mean;
        // Σ(y - ŷ)² = Syy - slope Sxy
        let error = (syy - slope * sxy).max(0.0);
        Some(([slope, intercept], error))
    }
}

/// The index of the largest of `squares` (none NaN), the last of equal ones: their maximum
/// in four independent lanes, then a search from the end (0 when `squares` is empty).
fn last_of_largest(squares: &[f64]) -> usize {
    let mut lanes = [f64::NEG_INFINITY; 4];
    let mut chunks = squares.chunks_exact(4);
    for chunk in &mut chunks {
        for (lane, &square) in lanes.iter_mut().zip(chunk) {
            *lane = if square > *lane { square } else { *lane };
        }
    }
    let largest =
        chunks
            .remainder()
            .iter()
            .chain(&lanes)
            .fold(f64::NEG_INFINITY, |largest, &square| {
                if square > largest { square } else { largest }
            });
    squares
        .iter()
        .rposition(|&square| square == largest)
        .unwrap_or(0)
}

/// The line through points `a` and `b` (ctapipe `linear_regression` of two points), or
/// `None` when `det(XᵀX) = (x_a - x_b)² < 2 ε`.
fn pair_line(x: &[f64], y: &[f64], a: usize, b: usize) -> Option<([f64; 2], f64)> {
    let dx = x[b] - x[a];
    if dx * dx < SINGULAR_DET {
        return None;
    }
    let slope = (y[b] - y[a]) / dx;
    Some(([slope, y[a] - slope * x[a]], 0.0))
}

/// rustc's FxHash: a multiply-rotate hasher, plenty for keys that are bit patterns of
/// fitted lines and much cheaper than the default SipHash.
#[derive(Debug, Default, Clone, Copy)]
struct FitHasher(u64);

impl Hasher for FitHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_u128(&mut self, value: u128) {
        self.write_u64(value as u64);
        self.write_u64((value >> 64) as u64);
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny deterministic generator for start pairs.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform integer in `0..n` (Lemire's multiply-shift; `n > 0`).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Values with many ties (small integers, zero included) among others.
    fn values() -> impl Strategy<Value = Vec<f64>> {
        values_from(1)
    }

    /// [`values`], at least `min_len` of them.
    fn values_from(min_len: usize) -> impl Strategy<Value = Vec<f64>> {
        let value = prop_oneof![3 => (0u32..6).prop_map(f64::from), 1 => 0.0f64..6.0];
        prop::collection::vec(value, min_len..120)
    }

    /// The left-out points of a C-step as ctapipe finds them: the last of
    /// `np.argsort(squares, kind="stable")`, by descending index.
    fn naive_left_out(squares: &[f64], n_left_out: usize) -> Vec<u32> {
        let mut order: Vec<u32> = (0..squares.len() as u32).collect();
        order.sort_by(|&a, &b| squares[a as usize].total_cmp(&squares[b as usize]));
        let mut left_out = order[squares.len() - n_left_out..].to_vec();
        left_out.sort_unstable_by(|a, b| b.cmp(a));
        left_out
    }

    proptest! {
        #[test]
        fn kth_largest_is_the_sorted_value(values in values(), rank in any::<prop::sample::Index>()) {
            let rank = rank.index(values.len()) + 1;
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let mut band = Vec::new();
            let kth = kth_largest(&values, rank, &mut band);
            prop_assert_eq!(kth.to_bits(), sorted[values.len() - rank].to_bits());
        }

        /// Whatever the guess of the cut (too high, too low, sampled), a C-step leaves out
        /// exactly ctapipe's points and sums the rest in the same order as ever.
        #[test]
        fn trimmed_subset_leaves_out_the_largest_residuals(
            y in values_from(2),
            slope in -2.0f64..2.0,
            guess in prop::option::of(prop_oneof![0.0f64..1.0, 0.0f64..100.0, 0.0f64..1e4]),
        ) {
            let n = y.len();
            let x: Vec<f64> = (0..n).map(|i| (i % 7) as f64).collect();
            let mut scratch = LtsScratch::default();
            scratch.prepare(&x, &y, 0.0, 0.0);
            let beta = [slope, 1.0];
            let sample_size = (RELATIVE_SAMPLE_SIZE * n as f64) as usize;
            let guess = guess.map_or(CutGuess::Sample, CutGuess::Fit);
            let (subset, sums) = scratch.trimmed_subset(beta, sample_size, guess);

            let squares: Vec<f64> = x
                .iter()
                .zip(&y)
                .map(|(&xi, &yi)| (yi - (xi * beta[0] + beta[1])).powi(2))
                .collect();
            let mut left_out = Sums::default();
            let mut hash = [0u64; 2];
            for i in naive_left_out(&squares, n - sample_size) {
                let i = i as usize;
                left_out.add(scratch.x[i], scratch.y[i]);
                hash[0] ^= scratch.keys[i][0];
                hash[1] ^= scratch.keys[i][1];
            }
            let expected = scratch.totals.minus(&left_out);
            prop_assert_eq!(subset, (u128::from(hash[0]) << 64) | u128::from(hash[1]));
            for (ours, theirs) in [
                (sums.n, expected.n), (sums.x, expected.x), (sums.y, expected.y),
                (sums.xx, expected.xx), (sums.xy, expected.xy), (sums.yy, expected.yy),
            ] {
                prop_assert_eq!(ours.to_bits(), theirs.to_bits());
            }
        }
    }

    /// When fewer points are off the line than are left out, the rest of those left out
    /// are the last of the points on it (squares of exactly 0), each once.
    #[test]
    fn a_line_through_all_but_one_point_leaves_out_the_last_exact_ones() {
        let x: Vec<f64> = (0..10).map(f64::from).collect();
        let mut y: Vec<f64> = x.iter().map(|&xi| 2.0 * xi + 1.0).collect();
        y[9] = 100.0;
        let mut scratch = LtsScratch::default();
        scratch.prepare(&x, &y, 0.0, 0.0);
        // 10 points, 8 kept: points 9 (off the line) and 8 (the last on it) are left out.
        let (subset, sums) = scratch.trimmed_subset([2.0, 1.0], 8, CutGuess::Sample);
        let expected_hash = [0, 1].map(|half| scratch.keys[9][half] ^ scratch.keys[8][half]);
        assert_eq!(
            subset,
            (u128::from(expected_hash[0]) << 64) | u128::from(expected_hash[1])
        );
        assert_eq!(sums.n, 8.0);
        assert_eq!(sums.x, (0..8).map(f64::from).sum::<f64>());
    }
}
