//! Islands: connected groups of selected pixels (ctapipe `ctapipe.image.morphology`).

use cascade_instrument::Neighbors;

use super::CleaningWorkspace;
use crate::error::{ImageError, check_len};
use crate::value::PixelValue;

/// Island counts by size, with ctapipe's thresholds (`number_of_island_sizes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IslandSizes {
    /// Islands of at most 2 pixels.
    pub small: usize,
    /// Islands of 3 to 50 pixels.
    pub medium: usize,
    /// Islands of more than 50 pixels.
    pub large: usize,
}

/// Labels the connected islands of selected pixels (ctapipe `number_of_islands`).
///
/// `island_labels` receives 0 for pixels outside `mask` and `1..=n_islands` otherwise;
/// islands are numbered in the order of their lowest pixel index, exactly like ctapipe.
/// Returns the number of islands.
pub fn number_of_islands(
    neighbors: &Neighbors,
    mask: &[bool],
    island_labels: &mut [i32],
    workspace: &mut CleaningWorkspace,
) -> Result<usize, ImageError> {
    let n_pixels = neighbors.n_pixels();
    check_len("mask", n_pixels, mask.len())?;
    check_len("island_labels", n_pixels, island_labels.len())?;
    Ok(label_islands(
        neighbors,
        mask,
        island_labels,
        &mut workspace.stack,
    ))
}

/// Counts small (<= 2 pixels), medium (3..=50) and large (> 50) islands from island
/// labels (ctapipe `number_of_island_sizes`).
pub fn number_of_island_sizes(
    island_labels: &[i32],
    workspace: &mut CleaningWorkspace,
) -> IslandSizes {
    size_classes(island_sizes(island_labels, &mut workspace.island_sizes))
}

/// [`number_of_islands`] and [`number_of_island_sizes`] of the pixels listed in
/// `selected` (ascending, the pixels of the mask), without scanning the unselected pixels
/// for islands. Only the selected pixels' labels are written: the others may hold anything
/// but the mark of a pixel not yet labelled (-1), such as the labels of an earlier call.
/// Returns the number of islands and their size classes.
pub(crate) fn islands_of_selected(
    neighbors: &Neighbors,
    selected: &[u32],
    island_labels: &mut [i32],
    workspace: &mut CleaningWorkspace,
) -> (usize, IslandSizes) {
    let n_islands = label_islands_of(neighbors, selected, island_labels, &mut workspace.stack);
    let sizes = &mut workspace.island_sizes;
    sizes.clear();
    sizes.resize(n_islands + 1, 0);
    for &pixel in selected {
        sizes[island_labels[pixel as usize] as usize] += 1;
    }
    (n_islands, size_classes(sizes))
}

/// Counts small (<= 2 pixels), medium (3..=50) and large (> 50) islands from the pixels
/// per label (label 0, no island, first).
fn size_classes(sizes: &[u32]) -> IslandSizes {
    let mut counts = IslandSizes::default();
    for &size in sizes.iter().skip(1).filter(|&&size| size > 0) {
        match size {
            0..=2 => counts.small += 1,
            3..=50 => counts.medium += 1,
            _ => counts.large += 1,
        }
    }
    counts
}

/// Selects the island with the most pixels (ctapipe `largest_island`; the first such
/// island on ties). The mask is all `false` when no pixel is labelled.
pub fn largest_island(
    island_labels: &[i32],
    workspace: &mut CleaningWorkspace,
    mask: &mut [bool],
) -> Result<(), ImageError> {
    check_len("mask", island_labels.len(), mask.len())?;
    let sizes = island_sizes(island_labels, &mut workspace.island_sizes);
    // np.argmax(np.bincount(labels[labels > 0])): index 0 never wins unless all are 0
    let mut largest = 0;
    for (label, &size) in sizes.iter().enumerate().skip(1) {
        if size > sizes[largest] {
            largest = label;
        }
    }
    for (out, &label) in mask.iter_mut().zip(island_labels) {
        *out = largest > 0 && label == largest as i32;
    }
    Ok(())
}

/// Selects the island with the largest summed signal (ctapipe `brightest_island`; the
/// first such island on ties). All `false` when `n_islands` is 0.
pub fn brightest_island<T: PixelValue>(
    n_islands: usize,
    island_labels: &[i32],
    image: &[T],
    workspace: &mut CleaningWorkspace,
    mask: &mut [bool],
) -> Result<(), ImageError> {
    check_len("image", island_labels.len(), image.len())?;
    check_len("mask", island_labels.len(), mask.len())?;
    if n_islands == 0 {
        mask.fill(false);
        return Ok(());
    }
    let brightest = brightest_island_into(
        n_islands,
        island_labels,
        image,
        0..island_labels.len(),
        &mut workspace.island_brightness,
    );
    for (out, &label) in mask.iter_mut().zip(island_labels) {
        *out = label == brightest;
    }
    Ok(())
}

/// Connected-component labelling with an explicit stack (ctapipe
/// `_n_islands_sparse_indices`); returns the number of islands.
pub(crate) fn label_islands(
    neighbors: &Neighbors,
    mask: &[bool],
    labels: &mut [i32],
    stack: &mut Vec<u32>,
) -> usize {
    for (label, &selected) in labels.iter_mut().zip(mask) {
        *label = if selected { UNVISITED } else { 0 };
    }
    grow_islands(neighbors, 0..labels.len(), labels, stack)
}

/// [`label_islands`] of the pixels `selected` (ascending pixel indices) only: no label may
/// be -1 on entry (0 or an earlier call's labels will do); those of `selected` are their
/// islands' numbers on return.
pub(crate) fn label_islands_of(
    neighbors: &Neighbors,
    selected: &[u32],
    labels: &mut [i32],
    stack: &mut Vec<u32>,
) -> usize {
    for &pixel in selected {
        labels[pixel as usize] = UNVISITED;
    }
    grow_islands(
        neighbors,
        selected.iter().map(|&pixel| pixel as usize),
        labels,
        stack,
    )
}

/// Label of a selected pixel not yet assigned to an island.
const UNVISITED: i32 = -1;

/// Numbers the islands of the pixels labelled [`UNVISITED`], in the order of `starts`
/// (ascending pixel indices, including every unvisited pixel), by depth-first search.
fn grow_islands(
    neighbors: &Neighbors,
    starts: impl Iterator<Item = usize>,
    labels: &mut [i32],
    stack: &mut Vec<u32>,
) -> usize {
    // A pixel enters the stack once, when it is labelled, so the stack never holds more
    // than every pixel, plus the slot where the next neighbour is written before it is
    // known to be new. Its top is a local variable: as a `Vec`'s length it went through
    // memory at every neighbour.
    if stack.len() <= labels.len() {
        stack.resize(labels.len() + 1, 0);
    }
    let mut n_islands = 0;
    for start in starts {
        if labels[start] != UNVISITED {
            continue;
        }
        n_islands += 1;
        let island = n_islands as i32;
        labels[start] = island;
        stack[0] = start as u32;
        let mut top = 1;
        while top > 0 {
            top -= 1;
            let pixel = stack[top];
            // without a branch per neighbour (half of them are in the island already, which
            // made that branch mispredict): every neighbour is written to the top, which
            // moves past it only if it is new
            for &neighbor in neighbors.of(pixel as usize) {
                let label = &mut labels[neighbor as usize];
                let new = *label == UNVISITED;
                *label = if new { island } else { *label };
                stack[top] = neighbor;
                top += usize::from(new);
            }
        }
    }
    n_islands
}

/// Label of the island with the largest summed signal (`np.argmax` of the per-island sums,
/// index 0 being "no island" with sum 0). `pixels` (ascending) must include every pixel of
/// an island; the sums are taken in their order.
pub(crate) fn brightest_island_into<T: PixelValue>(
    n_islands: usize,
    labels: &[i32],
    image: &[T],
    pixels: impl Iterator<Item = usize>,
    brightness: &mut Vec<f64>,
) -> i32 {
    brightness.clear();
    brightness.resize(n_islands + 1, 0.0);
    for pixel in pixels {
        let label = labels[pixel];
        if label > 0 {
            brightness[label as usize] += image[pixel].to_f64();
        }
    }
    let mut brightest = 0;
    for (label, &sum) in brightness.iter().enumerate() {
        if sum > brightness[brightest] {
            brightest = label;
        }
    }
    brightest as i32
}

/// Pixels per label (`np.bincount`), label 0 included.
fn island_sizes<'a>(labels: &[i32], sizes: &'a mut Vec<u32>) -> &'a [u32] {
    sizes.clear();
    for &label in labels {
        if label > 0 {
            let label = label as usize;
            if sizes.len() <= label {
                sizes.resize(label + 1, 0);
            }
            sizes[label] += 1;
        }
    }
    if sizes.is_empty() {
        sizes.push(0);
    }
    sizes
}
