//! Cleanings that use pixel arrival times: time-delta and time-average cleaning, the FACT
//! cleaning and MAGIC's time-constrained cleaning.

use cascade_instrument::Neighbors;

use super::islands::{brightest_island_into, label_islands_of};
use super::tailcuts::count_selected;
use super::{CleaningWorkspace, cleared};
use crate::error::{ImageError, check_len};
use crate::value::PixelValue;

/// Parameters of [`fact_image_cleaning`]; `Default` gives ctapipe's function defaults.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FactParams {
    /// Picture threshold (p.e.).
    pub picture_threshold_pe: f64,
    /// Boundary threshold (p.e.).
    pub boundary_threshold_pe: f64,
    /// Minimum number of selected (and, in the time steps, coincident) neighbours.
    pub min_number_neighbors: usize,
    /// Arrival time limit between neighbouring pixels (ns).
    pub time_limit_ns: f64,
}

impl Default for FactParams {
    fn default() -> Self {
        Self {
            picture_threshold_pe: 4.0,
            boundary_threshold_pe: 2.0,
            min_number_neighbors: 2,
            time_limit_ns: 5.0,
        }
    }
}

/// Parameters of [`time_constrained_clean`]; `Default` gives ctapipe's function defaults.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimeConstrainedParams {
    /// Picture (core) threshold (p.e.).
    pub picture_threshold_pe: f64,
    /// Boundary threshold (p.e.).
    pub boundary_threshold_pe: f64,
    /// Time limit of core pixels with respect to the main island's average time (ns).
    pub time_limit_core_ns: f64,
    /// Time limit of boundary pixels with respect to neighbouring core pixels (ns).
    pub time_limit_boundary_ns: f64,
    /// Minimum number of picture neighbours of core pixels and of coincident core
    /// neighbours of boundary pixels.
    pub min_number_picture_neighbors: usize,
}

impl Default for TimeConstrainedParams {
    fn default() -> Self {
        Self {
            picture_threshold_pe: 7.0,
            boundary_threshold_pe: 5.0,
            time_limit_core_ns: 4.5,
            time_limit_boundary_ns: 1.5,
            min_number_picture_neighbors: 1,
        }
    }
}

/// Parameters of [`apply_time_average_cleaning`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimeAverageParams {
    /// Pixels with `image >= 2 * picture_threshold_pe` (p.e.) get twice the time limit.
    pub picture_threshold_pe: f64,
    /// Time limit with respect to the average time of the brightest island (ns).
    pub time_limit_ns: f64,
}

/// Keeps the selected pixels that have at least `min_number_neighbors` selected
/// neighbours arriving within `time_limit_ns` of themselves (ctapipe
/// `apply_time_delta_cleaning`). `arrival_times` in ns.
pub fn apply_time_delta_cleaning<T: PixelValue>(
    neighbors: &Neighbors,
    mask: &[bool],
    arrival_times: &[T],
    min_number_neighbors: usize,
    time_limit_ns: f64,
    cleaned: &mut [bool],
) -> Result<(), ImageError> {
    let n_pixels = neighbors.n_pixels();
    check_len("mask", n_pixels, mask.len())?;
    check_len("arrival_times", n_pixels, arrival_times.len())?;
    check_len("cleaned mask", n_pixels, cleaned.len())?;
    time_delta_into(
        neighbors,
        mask,
        arrival_times,
        min_number_neighbors,
        time_limit_ns,
        cleaned,
    );
    Ok(())
}

/// Keeps the selected pixels that arrive within `time_limit_ns` of the average time of
/// the brightest island (weights `image²`); pixels with `image >= 2 * picture_threshold_pe`
/// get twice the limit (ctapipe `apply_time_average_cleaning`).
///
/// The average is computed in `f64`; ctapipe averages `float32` times in `float32`, so a
/// pixel whose time difference lies within a `float32` rounding of the limit can differ.
pub fn apply_time_average_cleaning<T: PixelValue, U: PixelValue>(
    neighbors: &Neighbors,
    mask: &[bool],
    image: &[T],
    arrival_times: &[U],
    params: &TimeAverageParams,
    workspace: &mut CleaningWorkspace,
    cleaned: &mut [bool],
) -> Result<(), ImageError> {
    let n_pixels = neighbors.n_pixels();
    check_len("mask", n_pixels, mask.len())?;
    check_len("image", n_pixels, image.len())?;
    check_len("arrival_times", n_pixels, arrival_times.len())?;
    check_len("cleaned mask", n_pixels, cleaned.len())?;
    time_average_into(
        neighbors,
        mask,
        image,
        arrival_times,
        params,
        workspace,
        cleaned,
    );
    Ok(())
}

/// FACT image cleaning (ctapipe `fact_image_cleaning`): picture pixels with enough picture
/// neighbours, dilated into pixels above the boundary threshold, then the time-delta
/// cleaning, a neighbour-count cut and the time-delta cleaning again. `image` in p.e.,
/// `arrival_times` in ns.
pub fn fact_image_cleaning<T: PixelValue, U: PixelValue>(
    neighbors: &Neighbors,
    image: &[T],
    arrival_times: &[U],
    params: &FactParams,
    workspace: &mut CleaningWorkspace,
    mask: &mut [bool],
) -> Result<(), ImageError> {
    let n_pixels = neighbors.n_pixels();
    check_len("image", n_pixels, image.len())?;
    check_len("arrival_times", n_pixels, arrival_times.len())?;
    check_len("mask", n_pixels, mask.len())?;
    // Every step keeps a subset of the pixels the step before kept, so each one looks at
    // those pixels only (a list, and flags to test neighbours against): most pixels are
    // below the picture threshold, and dense passes over every pixel and neighbour list
    // cost several times more on LSTCam images.
    let min = params.min_number_neighbors;
    let CleaningWorkspace {
        first,
        second,
        candidates,
        stack,
        ..
    } = workspace;
    let first = cleared(first, n_pixels);
    let second = cleared(second, n_pixels);
    let within_limit = |pixel: u32, selected: &[bool]| {
        neighbors_in_time(
            neighbors,
            pixel as usize,
            selected,
            arrival_times,
            params.time_limit_ns,
        ) >= min
    };
    // Step 1: pixels above the picture threshold (`candidates`, flags in `first`).
    candidates.clear();
    for (pixel, &value) in image.iter().enumerate() {
        if value.at_least(params.picture_threshold_pe) {
            candidates.push(pixel as u32);
            first[pixel] = true;
        }
    }
    // Step 2: with at least `min` picture neighbours (`stack`, flags in `second`).
    keep_where(candidates, stack, second, |pixel| {
        count_selected(neighbors.of(pixel as usize), first) >= min
    });
    // Step 3: dilate and require the boundary threshold (`candidates`, flags in `first`).
    unflag(candidates, first);
    candidates.clear();
    for &pixel in stack.iter() {
        for &next in std::iter::once(&pixel).chain(neighbors.of(pixel as usize)) {
            let next_index = next as usize;
            if !first[next_index] && image[next_index].at_least(params.boundary_threshold_pe) {
                first[next_index] = true;
                candidates.push(next);
            }
        }
    }
    if min == 0 {
        mask.copy_from_slice(first);
        return Ok(());
    }
    // Step 4: time-delta cleaning (`stack`, flags in `second`).
    unflag(stack, second);
    keep_where(candidates, stack, second, |pixel| {
        within_limit(pixel, first)
    });
    // Step 5: at least `min` selected neighbours (`candidates`, flags in `first`).
    unflag(candidates, first);
    keep_where(stack, candidates, first, |pixel| {
        count_selected(neighbors.of(pixel as usize), second) >= min
    });
    // Step 6: time-delta cleaning again.
    mask.fill(false);
    for &pixel in candidates.iter() {
        mask[pixel as usize] = within_limit(pixel, first);
    }
    Ok(())
}

/// Lists in `kept` (emptied first) the pixels of `pixels` for which `keep` holds, and flags
/// them in `flags`.
fn keep_where(
    pixels: &[u32],
    kept: &mut Vec<u32>,
    flags: &mut [bool],
    mut keep: impl FnMut(u32) -> bool,
) {
    kept.clear();
    for &pixel in pixels {
        if keep(pixel) {
            kept.push(pixel);
            flags[pixel as usize] = true;
        }
    }
}

/// Clears the flags of `pixels`.
fn unflag(pixels: &[u32], flags: &mut [bool]) {
    for &pixel in pixels {
        flags[pixel as usize] = false;
    }
}

/// MAGIC's time-constrained cleaning (ctapipe `time_constrained_clean`): core pixels above
/// the picture threshold with enough picture neighbours and within `time_limit_core_ns`
/// of the brightest island's average time (see [`apply_time_average_cleaning`]), plus
/// boundary pixels next to the core with enough core neighbours arriving within
/// `time_limit_boundary_ns`. `image` in p.e., `arrival_times` in ns.
pub fn time_constrained_clean<T: PixelValue, U: PixelValue>(
    neighbors: &Neighbors,
    image: &[T],
    arrival_times: &[U],
    params: &TimeConstrainedParams,
    workspace: &mut CleaningWorkspace,
    mask: &mut [bool],
) -> Result<(), ImageError> {
    let n_pixels = neighbors.n_pixels();
    check_len("image", n_pixels, image.len())?;
    check_len("arrival_times", n_pixels, arrival_times.len())?;
    check_len("mask", n_pixels, mask.len())?;
    // The first steps look at the pixels the step before kept (a list, and flags to test
    // neighbours against), as `fact_image_cleaning`; dense passes cost more on LSTCam.
    let min = params.min_number_picture_neighbors;
    let CleaningWorkspace {
        first,
        second,
        candidates,
        labels,
        stack,
        island_brightness,
        ..
    } = workspace;
    // Pixels above the picture threshold (`candidates`, flags in `above_picture`), then
    // those with at least `min` of them as neighbours.
    let above_picture = cleared(first, n_pixels);
    candidates.clear();
    for (pixel, &value) in image.iter().enumerate() {
        if value.at_least(params.picture_threshold_pe) {
            candidates.push(pixel as u32);
            above_picture[pixel] = true;
        }
    }
    candidates.retain(|&pixel| count_selected(neighbors.of(pixel as usize), above_picture) >= min);
    mask.fill(false);
    if candidates.is_empty() {
        return Ok(());
    }
    // The core: those within `time_limit_core_ns` of the brightest island's mean time
    // (ctapipe `apply_time_average_cleaning`), flags in `core`.
    let core = cleared(second, n_pixels);
    let core_params = TimeAverageParams {
        picture_threshold_pe: params.picture_threshold_pe,
        time_limit_ns: params.time_limit_core_ns,
    };
    let islands = Islands {
        labels,
        stack,
        brightness: island_brightness,
    };
    time_average_of_listed(
        neighbors,
        candidates,
        image,
        arrival_times,
        &core_params,
        islands,
        core,
    );
    // Plus the boundary pixels: above the boundary threshold, next to the core, with at
    // least `min` core neighbours arriving within `time_limit_boundary_ns`.
    for (pixel, out) in mask.iter_mut().enumerate() {
        if core[pixel] {
            *out = true;
            continue;
        }
        let nbrs = neighbors.of(pixel);
        let boundary = image[pixel].at_least(params.boundary_threshold_pe)
            && nbrs.iter().any(|&j| core[j as usize]);
        *out = boundary
            && neighbors_in_time(
                neighbors,
                pixel,
                core,
                arrival_times,
                params.time_limit_boundary_ns,
            ) >= min;
    }
    Ok(())
}

/// [`apply_time_delta_cleaning`] on buffers of the right length.
fn time_delta_into<U: PixelValue>(
    neighbors: &Neighbors,
    mask: &[bool],
    arrival_times: &[U],
    min_number_neighbors: usize,
    time_limit_ns: f64,
    cleaned: &mut [bool],
) {
    for (pixel, out) in cleaned.iter_mut().enumerate() {
        *out = mask[pixel]
            && neighbors_in_time(neighbors, pixel, mask, arrival_times, time_limit_ns)
                >= min_number_neighbors;
    }
}

/// How many neighbours of `pixel` flagged in `selected` arrive within `time_limit_ns` of it.
fn neighbors_in_time<U: PixelValue>(
    neighbors: &Neighbors,
    pixel: usize,
    selected: &[bool],
    arrival_times: &[U],
    time_limit_ns: f64,
) -> usize {
    let time = arrival_times[pixel];
    neighbors
        .of(pixel)
        .iter()
        .filter(|&&j| {
            let j = j as usize;
            selected[j] && time.within(arrival_times[j], time_limit_ns)
        })
        .count()
}

/// [`apply_time_average_cleaning`] on buffers of the right length.
fn time_average_into<T: PixelValue, U: PixelValue>(
    neighbors: &Neighbors,
    mask: &[bool],
    image: &[T],
    arrival_times: &[U],
    params: &TimeAverageParams,
    workspace: &mut CleaningWorkspace,
    cleaned: &mut [bool],
) {
    let CleaningWorkspace {
        candidates,
        labels,
        stack,
        island_brightness,
        ..
    } = workspace;
    candidates.clear();
    candidates.extend((0..mask.len() as u32).filter(|&pixel| mask[pixel as usize]));
    cleaned.fill(false);
    let islands = Islands {
        labels,
        stack,
        brightness: island_brightness,
    };
    time_average_of_listed(
        neighbors,
        candidates,
        image,
        arrival_times,
        params,
        islands,
        cleaned,
    );
}

/// Scratch of the island search of [`time_average_of_listed`].
struct Islands<'a> {
    labels: &'a mut Vec<i32>,
    stack: &'a mut Vec<u32>,
    brightness: &'a mut Vec<f64>,
}

/// Flags in `kept` (cleared by the caller) the pixels of `pixels` (ascending) that arrive
/// within the time limit of the brightest island's average time among them (ctapipe
/// `apply_time_average_cleaning`).
fn time_average_of_listed<T: PixelValue, U: PixelValue>(
    neighbors: &Neighbors,
    pixels: &[u32],
    image: &[T],
    arrival_times: &[U],
    params: &TimeAverageParams,
    islands: Islands<'_>,
    kept: &mut [bool],
) {
    if pixels.is_empty() {
        return;
    }
    let n_pixels = kept.len();
    let Islands {
        labels,
        stack,
        brightness,
    } = islands;
    labels.clear();
    labels.resize(n_pixels, 0);
    let n_islands = label_islands_of(neighbors, pixels, labels, stack);
    let listed = || pixels.iter().map(|&pixel| pixel as usize);
    let brightest = brightest_island_into(n_islands, labels, image, listed(), brightness);
    // np.average(arrival_times[main], weights=image[main] ** 2); with no island brighter
    // than 0, ctapipe's argmax picks label 0: the pixels outside every island.
    let (mut weighted_sum, mut weight_sum) = (0.0, 0.0);
    let mut add = |pixel: usize| {
        let weight = image[pixel].to_f64().powi(2);
        weighted_sum += arrival_times[pixel].to_f64() * weight;
        weight_sum += weight;
    };
    if brightest > 0 {
        listed()
            .filter(|&pixel| labels[pixel] == brightest)
            .for_each(&mut add);
    } else {
        (0..n_pixels)
            .filter(|&pixel| labels[pixel] == 0)
            .for_each(&mut add);
    }
    let time_average = weighted_sum / weight_sum;
    for pixel in listed() {
        let limit = if image[pixel].to_f64() < 2.0 * params.picture_threshold_pe {
            params.time_limit_ns
        } else {
            2.0 * params.time_limit_ns
        };
        kept[pixel] = (arrival_times[pixel].to_f64() - time_average).abs() < limit;
    }
}
