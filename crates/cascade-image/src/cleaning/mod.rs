//! Image cleaning: selecting the pixels that carry shower light (`ctapipe.image.cleaning`)
//! and finding connected islands of selected pixels (`ctapipe.image.morphology`).
//!
//! Every kernel writes its mask into a caller-provided `&mut [bool]` with one entry per
//! camera pixel and takes its scratch buffers from a reusable [`CleaningWorkspace`], so a
//! loop over events allocates nothing once the workspace has grown to the camera size.
//! Neighbourhoods come from the CSR lists of [`Neighbors`], so the kernels work on any
//! camera layout and need `O(n_pixels)` memory (ctapipe's dense `neighbor_matrix` is never
//! built).
//!
//! ```
//! use cascade_image::cleaning::{tailcuts_clean, CleaningWorkspace, TailcutsParams};
//! use cascade_instrument::Neighbors;
//!
//! // three pixels in a row
//! let neighbors = Neighbors::from_lists(&[vec![1], vec![0, 2], vec![1]]);
//! let image = [12.0_f32, 6.0, 1.0];
//! let params = TailcutsParams { min_number_picture_neighbors: 0, ..TailcutsParams::default() };
//! let mut workspace = CleaningWorkspace::default();
//! let mut mask = [false; 3];
//! tailcuts_clean(&neighbors, &image, &params, &mut workspace, &mut mask).unwrap();
//! assert_eq!(mask, [true, true, false]);
//! ```

mod islands;
mod tailcuts;
mod time;

pub(crate) use islands::islands_of_selected;
pub use islands::{
    IslandSizes, brightest_island, largest_island, number_of_island_sizes, number_of_islands,
};
pub use tailcuts::{TailcutsParams, dilate, mars_cleaning_1st_pass, tailcuts_clean};
pub use time::{
    FactParams, TimeAverageParams, TimeConstrainedParams, apply_time_average_cleaning,
    apply_time_delta_cleaning, fact_image_cleaning, time_constrained_clean,
};

#[cfg(doc)]
use cascade_instrument::Neighbors;

/// Reusable scratch memory of the cleaning kernels. Create one per worker thread and pass
/// it to every call; buffers grow to the largest camera seen and are then reused.
#[derive(Debug, Default, Clone)]
pub struct CleaningWorkspace {
    pub(crate) first: Vec<bool>,
    pub(crate) second: Vec<bool>,
    pub(crate) third: Vec<bool>,
    pub(crate) candidates: Vec<u32>,
    /// Island labels of the morphology parameters, kept from call to call: no entry is
    /// ever left at -1 (a pixel not yet labelled), so a call labels its selected pixels
    /// only, instead of zeroing the whole camera first.
    pub(crate) labels: Vec<i32>,
    pub(crate) stack: Vec<u32>,
    pub(crate) island_sizes: Vec<u32>,
    pub(crate) island_brightness: Vec<f64>,
}

/// Resets `buffer` to `n` `false` entries (allocating only when it must grow).
fn cleared(buffer: &mut Vec<bool>, n: usize) -> &mut [bool] {
    buffer.clear();
    buffer.resize(n, false);
    buffer
}
