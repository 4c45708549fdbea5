//! The instrument model of an IACT array: telescopes, their optics and camera geometries,
//! and the coordinate frames that relate them.
//!
//! Mirrors ctapipe's `ctapipe.instrument` (and the parts of `ctapipe.coordinates` that
//! stereo reconstruction needs). Everything here is plain data plus the geometric
//! algorithms that belong to it (pixel neighbours, border pixels, frame conversions); it
//! never does I/O. Readers (the sim_telarray reader, the toy generator) build these types.
//!
//! ```text
//!  SubarrayDescription ── tel_id ──> TelescopeDescription ─┬─> OpticsDescription
//!                                                          └─> Arc<CameraGeometry>
//! ```

pub mod border;
mod camera;
pub mod frames;
pub mod neighbors;
mod readout;
mod subarray;

pub use camera::{CameraGeometry, GeometryError, Neighbors, NeighborsId, PixelShape};
pub use readout::{PixelCalibration, ReadoutDescription};
pub use subarray::{
    FocalLengthChoice, OpticsDescription, SubarrayDescription, TelescopeDescription,
};
