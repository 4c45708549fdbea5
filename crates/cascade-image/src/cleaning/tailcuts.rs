//! Threshold cleanings: tail cuts, the MARS first pass, and mask dilation.

use cascade_instrument::Neighbors;

use super::{CleaningWorkspace, cleared};
use crate::error::{ImageError, check_len};
use crate::value::PixelValue;

/// [`tailcuts_clean`] tests only the pixels above a threshold when at most one in this many
/// pixels is.
const SPARSE_CANDIDATES: usize = 4;

/// Parameters of [`tailcuts_clean`] and [`mars_cleaning_1st_pass`].
///
/// `Default` gives ctapipe's `TailcutsImageCleaner` defaults (10 p.e., 5 p.e., 2, false),
/// which `ctapipe-process` uses; the bare ctapipe function defaults differ (7, 5, 0, false).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TailcutsParams {
    /// Picture threshold (p.e.): pixels at or above it are picture (core) pixels.
    pub picture_threshold_pe: f64,
    /// Boundary threshold (p.e.): pixels at or above it are kept next to a picture pixel.
    pub boundary_threshold_pe: f64,
    /// A picture pixel survives only with at least this many picture neighbours
    /// (no effect when `keep_isolated_pixels` is true).
    pub min_number_picture_neighbors: usize,
    /// Keep picture pixels even without any selected neighbour.
    pub keep_isolated_pixels: bool,
}

impl Default for TailcutsParams {
    fn default() -> Self {
        Self {
            picture_threshold_pe: 10.0,
            boundary_threshold_pe: 5.0,
            min_number_picture_neighbors: 2,
            keep_isolated_pixels: false,
        }
    }
}

/// Two-threshold tail-cuts cleaning (ctapipe `tailcuts_clean`).
///
/// Picture pixels are those `>= picture_threshold_pe` with at least
/// `min_number_picture_neighbors` picture neighbours (unless isolated pixels are kept).
/// The mask is `(above boundary & has picture neighbour) | (picture & has neighbour above
/// boundary)`, or `(above boundary & has picture neighbour) | picture` when
/// `keep_isolated_pixels` is set. `image` is in p.e.; `mask` receives one entry per pixel.
pub fn tailcuts_clean<T: PixelValue>(
    neighbors: &Neighbors,
    image: &[T],
    params: &TailcutsParams,
    workspace: &mut CleaningWorkspace,
    mask: &mut [bool],
) -> Result<(), ImageError> {
    let n_pixels = neighbors.n_pixels();
    check_len("image", n_pixels, image.len())?;
    check_len("mask", n_pixels, mask.len())?;
    let above_picture = cleared(&mut workspace.first, n_pixels);
    let in_picture = cleared(&mut workspace.second, n_pixels);
    let candidates = &mut workspace.candidates;
    tailcuts_into(
        neighbors,
        image,
        params,
        above_picture,
        in_picture,
        candidates,
        mask,
    );
    Ok(())
}

/// MARS-like three-level cleaning, first pass (ctapipe `mars_cleaning_1st_pass`): tail
/// cuts, then additionally every pixel above the boundary threshold that neighbours a
/// pixel selected by the tail cuts (neighbours of neighbours of picture pixels).
pub fn mars_cleaning_1st_pass<T: PixelValue>(
    neighbors: &Neighbors,
    image: &[T],
    params: &TailcutsParams,
    workspace: &mut CleaningWorkspace,
    mask: &mut [bool],
) -> Result<(), ImageError> {
    let n_pixels = neighbors.n_pixels();
    check_len("image", n_pixels, image.len())?;
    check_len("mask", n_pixels, mask.len())?;
    let above_picture = cleared(&mut workspace.first, n_pixels);
    let in_picture = cleared(&mut workspace.second, n_pixels);
    let from_tailcuts = cleared(&mut workspace.third, n_pixels);
    let listed = tailcuts_into(
        neighbors,
        image,
        params,
        above_picture,
        in_picture,
        &mut workspace.candidates,
        from_tailcuts,
    );
    // ctapipe mars_cleaning_1st_pass: the last step of tailcuts_clean, started from the
    // tail-cuts mask instead of the picture pixels.
    let boundary = params.boundary_threshold_pe;
    let selected = |pixel: usize| {
        let nbrs = neighbors.of(pixel);
        let above_boundary = image[pixel].at_least(boundary);
        let next_to_selected = above_boundary && nbrs.iter().any(|&j| from_tailcuts[j as usize]);
        next_to_selected
            || (from_tailcuts[pixel]
                && (params.keep_isolated_pixels
                    || nbrs.iter().any(|&j| image[j as usize].at_least(boundary))))
    };
    if listed {
        // Only the listed pixels (at or above a threshold) can be selected.
        mask.fill(false);
        for &pixel in &workspace.candidates {
            mask[pixel as usize] = selected(pixel as usize);
        }
    } else {
        for (pixel, out) in mask.iter_mut().enumerate() {
            *out = selected(pixel);
        }
    }
    Ok(())
}

/// Adds one row of neighbours to a mask (ctapipe `dilate`): `dilated = mask | any
/// neighbour in mask`.
pub fn dilate(
    neighbors: &Neighbors,
    mask: &[bool],
    dilated: &mut [bool],
) -> Result<(), ImageError> {
    let n_pixels = neighbors.n_pixels();
    check_len("mask", n_pixels, mask.len())?;
    check_len("dilated mask", n_pixels, dilated.len())?;
    dilate_into(neighbors, mask, dilated);
    Ok(())
}

/// [`tailcuts_clean`] on buffers of the right length. Only pixels at or above a threshold
/// can be selected, so one pass counts them; when they are few (a shower image in a large
/// camera), they are listed in `candidates`, the neighbourhood tests run on those only and
/// every other mask entry is `false`; else the tests run on every pixel. Returns whether
/// `candidates` lists them.
pub(super) fn tailcuts_into<T: PixelValue>(
    neighbors: &Neighbors,
    image: &[T],
    params: &TailcutsParams,
    above_picture: &mut [bool],
    in_picture: &mut [bool],
    candidates: &mut Vec<u32>,
    mask: &mut [bool],
) -> bool {
    let picture = params.picture_threshold_pe;
    let boundary = params.boundary_threshold_pe;
    // in_picture holds the candidate flags until the picture tests overwrite it
    // a 32-bit count lets this pass run four pixels per vector instruction
    let mut len = 0u32;
    for ((above, candidate), &value) in above_picture
        .iter_mut()
        .zip(in_picture.iter_mut())
        .zip(image)
    {
        let is_above = value.at_least(picture);
        let is_candidate = is_above | value.at_least(boundary);
        *above = is_above;
        *candidate = is_candidate;
        len += u32::from(is_candidate);
    }
    if len as usize * SPARSE_CANDIDATES <= image.len() {
        list_flagged(in_picture, candidates);
        // picture pixels are candidates: in_picture is false everywhere else
        in_picture.fill(false);
        mask.fill(false);
        let candidates = || candidates.iter().map(|&pixel| pixel as usize);
        picture_pixels(neighbors, params, above_picture, candidates(), in_picture);
        tailcuts_mask(neighbors, image, params, in_picture, candidates(), mask);
        true
    } else {
        let n_pixels = image.len();
        picture_pixels(neighbors, params, above_picture, 0..n_pixels, in_picture);
        tailcuts_mask(neighbors, image, params, in_picture, 0..n_pixels, mask);
        false
    }
}

/// Writes the indices of the `true` entries of `flags` to `list`, ascending. Skips eight
/// `false` entries at a time, so it is fast on sparse flags; a group of eight with a `true`
/// entry writes all eight indices and advances past the flagged ones only, without a branch
/// per entry (scattered flags, like the noise pixels above the boundary threshold around a
/// muon ring, made a branch per entry mispredict).
fn list_flagged(flags: &[bool], list: &mut Vec<u32>) {
    list.clear();
    // room for the eight indices written after the last listed one
    list.resize(flags.len() + 8, 0);
    let mut n = 0;
    let chunks = flags.chunks_exact(8);
    let rest = chunks.remainder();
    for (chunk_index, chunk) in chunks.enumerate() {
        // eight flags read as one word
        if u64::from_le_bytes(std::array::from_fn(|j| u8::from(chunk[j]))) != 0 {
            let first = chunk_index * 8;
            for (j, &flag) in chunk.iter().enumerate() {
                list[n] = (first + j) as u32;
                n += usize::from(flag);
            }
        }
    }
    let first = flags.len() - rest.len();
    for (j, &flag) in rest.iter().enumerate() {
        list[n] = (first + j) as u32;
        n += usize::from(flag);
    }
    list.truncate(n);
}

/// Marks in `in_picture` which of `pixels` are picture pixels: above the picture threshold
/// with enough neighbours above it.
fn picture_pixels(
    neighbors: &Neighbors,
    params: &TailcutsParams,
    above_picture: &[bool],
    pixels: impl Iterator<Item = usize>,
    in_picture: &mut [bool],
) {
    let need_neighbors = !params.keep_isolated_pixels && params.min_number_picture_neighbors > 0;
    for pixel in pixels {
        in_picture[pixel] = above_picture[pixel]
            && (!need_neighbors
                || count_selected(neighbors.of(pixel), above_picture)
                    >= params.min_number_picture_neighbors);
    }
}

/// The tail-cuts mask of `pixels`: above the boundary threshold next to a picture pixel,
/// or a picture pixel next to one above the boundary threshold (or isolated ones kept).
fn tailcuts_mask<T: PixelValue>(
    neighbors: &Neighbors,
    image: &[T],
    params: &TailcutsParams,
    in_picture: &[bool],
    pixels: impl Iterator<Item = usize>,
    mask: &mut [bool],
) {
    let boundary = params.boundary_threshold_pe;
    for pixel in pixels {
        let nbrs = neighbors.of(pixel);
        let above_boundary = image[pixel].at_least(boundary);
        let next_to_picture = above_boundary && nbrs.iter().any(|&j| in_picture[j as usize]);
        mask[pixel] = next_to_picture
            || (in_picture[pixel]
                && (params.keep_isolated_pixels
                    || nbrs.iter().any(|&j| image[j as usize].at_least(boundary))));
    }
}

/// [`dilate`] on buffers of the right length.
fn dilate_into(neighbors: &Neighbors, mask: &[bool], dilated: &mut [bool]) {
    for (pixel, out) in dilated.iter_mut().enumerate() {
        *out = mask[pixel] || neighbors.of(pixel).iter().any(|&j| mask[j as usize]);
    }
}

/// Number of pixels in `pixels` that are selected in `mask`.
#[inline]
pub(super) fn count_selected(pixels: &[u32], mask: &[bool]) -> usize {
    pixels.iter().filter(|&&j| mask[j as usize]).count()
}
