//! Errors of the image kernels.

/// Errors of the cleaning and parametrisation kernels. Kernels only fail on inputs that
/// do not fit together (array lengths) or that ctapipe rejects; an image that cannot be
/// parametrised (empty mask, zero intensity) gives NaN parameters, not an error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImageError {
    /// A per-pixel array does not have one entry per camera pixel.
    #[error("{what} has {got} entries but the camera has {expected} pixels")]
    LengthMismatch {
        /// Which array is wrong (`"image"`, `"mask"`, `"peak_time"`...).
        what: &'static str,
        /// Number of camera pixels.
        expected: usize,
        /// Length of the array given.
        got: usize,
    },
    /// A selected pixel has negative signal where ctapipe requires `signal >= 0`
    /// (`ctapipe.image.timing_parameters` raises `ValueError`).
    #[error("selected pixel {pixel} has negative signal {value} p.e.")]
    NegativeSignal {
        /// Pixel index.
        pixel: usize,
        /// Its signal (p.e.).
        value: f64,
    },
    /// A list of selected pixels is not strictly ascending or names a pixel the camera
    /// does not have.
    #[error(
        "selected pixel {pixel} at position {position} is not above the one before or not below {n_pixels}"
    )]
    InvalidSelection {
        /// Position in the list.
        position: usize,
        /// The pixel index there.
        pixel: usize,
        /// Number of camera pixels.
        n_pixels: usize,
    },
}

/// Checks that a per-pixel array has `expected` entries.
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), ImageError> {
    if expected == got {
        Ok(())
    } else {
        Err(ImageError::LengthMismatch {
            what,
            expected,
            got,
        })
    }
}
