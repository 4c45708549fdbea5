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

pub mod cleaning;
mod error;
pub mod params;
mod value;

pub use error::ImageError;
pub use value::PixelValue;
