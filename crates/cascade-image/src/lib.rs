//! Image cleaning and image parameters of IACT camera images, following ctapipe 0.28
//! (`ctapipe.image`) in algorithms, names and units.
//!
//! Everything here is a plain function over per-pixel slices: no async, no Arrow, usable
//! outside pipelines, correct on hexagonal, square and gapped cameras of any size. Kernels
//! write into caller-provided buffers and take scratch memory from reusable workspaces, so
//! the per-event loop allocates nothing; memory is `O(n_pixels)` (neighbourhoods come from
//! the CSR lists of [`cascade_instrument::Neighbors`], never a dense pixel matrix).
//!
//! ```text
//!  image (p.e.), peak_time (ns)
//!      │
//!      ├─ cleaning::tailcuts_clean / mars_cleaning_1st_pass / fact_image_cleaning / ...
//!      │        └─> mask: &mut [bool]
//!      │
//!      └─ params::image_parameters(geometry, image, peak_time, mask)   (ctapipe ImageProcessor)
//!               ├─ hillas_parameters        hillas_* / camera_frame_hillas_*
//!               ├─ timing_parameters        timing_*
//!               ├─ leakage_parameters       leakage_*
//!               ├─ concentration_parameters concentration_*
//!               ├─ morphology_parameters    morphology_*
//!               └─ descriptive_statistics   intensity_*, peak_time_*
//! ```
//!
//! Results are small structs whose `columns()` list (column name, unit, value) with
//! ctapipe's names so that writers can build columns generically.
//!
//! # Agreement with ctapipe
//!
//! The tests in `tests/` run every kernel on ctapipe's own inputs from the shared
//! reference files: cleaning masks and island labels equal ctapipe's bit for bit (`f32`
//! images are thresholded in `f32`, like numpy does); parameters agree within 1e-4
//! relative or 1e-6 absolute with NaN in the same places. The timing fit is deterministic
//! where ctapipe's is seeded from a process-global generator; see [`params`]'s
//! `timing_parameters` for why and how. Intensity and peak-time statistics of `f32` input
//! repeat numpy's `float32` arithmetic, which matters for the skewness of peak times.

pub mod cleaning;
mod error;
pub mod params;
mod value;

pub use error::ImageError;
pub use value::PixelValue;
