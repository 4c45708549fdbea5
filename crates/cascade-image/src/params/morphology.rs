//! Morphology: number of selected pixels and of islands by size (ctapipe
//! `morphology_parameters`).

use cascade_instrument::Neighbors;

use super::columns::Column;
use crate::cleaning::{
    CleaningWorkspace, islands_of_selected, number_of_island_sizes, number_of_islands,
};
use crate::error::ImageError;

/// Morphology parameters (counts; -1 in ctapipe's default container).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MorphologyParameters {
    /// Number of selected pixels.
    pub n_pixels: i64,
    /// Number of islands.
    pub n_islands: i64,
    /// Islands of at most 2 pixels.
    pub n_small_islands: i64,
    /// Islands of 3 to 50 pixels.
    pub n_medium_islands: i64,
    /// Islands of more than 50 pixels.
    pub n_large_islands: i64,
}

impl MorphologyParameters {
    /// ctapipe's container prefix.
    pub const PREFIX: &'static str = "morphology";

    /// ctapipe's default container: every count -1.
    pub fn missing() -> Self {
        Self {
            n_pixels: -1,
            n_islands: -1,
            n_small_islands: -1,
            n_medium_islands: -1,
            n_large_islands: -1,
        }
    }

    /// Columns in ctapipe's order (integers, dimensionless).
    pub fn columns(&self) -> [Column; 5] {
        let p = Self::PREFIX;
        [
            Column::int(p, "n_pixels", self.n_pixels),
            Column::int(p, "n_islands", self.n_islands),
            Column::int(p, "n_small_islands", self.n_small_islands),
            Column::int(p, "n_medium_islands", self.n_medium_islands),
            Column::int(p, "n_large_islands", self.n_large_islands),
        ]
    }
}

/// Morphology of the mask (ctapipe `morphology_parameters`).
pub fn morphology_parameters(
    neighbors: &Neighbors,
    mask: &[bool],
    workspace: &mut CleaningWorkspace,
) -> Result<MorphologyParameters, ImageError> {
    let mut labels = std::mem::take(&mut workspace.labels);
    labels.clear();
    labels.resize(mask.len(), 0);
    let result = number_of_islands(neighbors, mask, &mut labels, workspace).map(|n_islands| {
        let sizes = number_of_island_sizes(&labels, workspace);
        MorphologyParameters {
            n_pixels: mask.iter().filter(|&&m| m).count() as i64,
            n_islands: n_islands as i64,
            n_small_islands: sizes.small as i64,
            n_medium_islands: sizes.medium as i64,
            n_large_islands: sizes.large as i64,
        }
    });
    workspace.labels = labels;
    result
}

/// [`morphology_parameters`] of the mask whose pixels `selected` lists (ascending indices
/// of a camera of `neighbors.n_pixels()` pixels).
pub(super) fn morphology_of_selected(
    neighbors: &Neighbors,
    selected: &[u32],
    workspace: &mut CleaningWorkspace,
) -> MorphologyParameters {
    // the labels of earlier calls stay (see `CleaningWorkspace::labels`)
    let mut labels = std::mem::take(&mut workspace.labels);
    labels.resize(neighbors.n_pixels(), 0);
    let (n_islands, sizes) = islands_of_selected(neighbors, selected, &mut labels, workspace);
    workspace.labels = labels;
    MorphologyParameters {
        n_pixels: selected.len() as i64,
        n_islands: n_islands as i64,
        n_small_islands: sizes.small as i64,
        n_medium_islands: sizes.medium as i64,
        n_large_islands: sizes.large as i64,
    }
}
