//! Pixel value types the kernels accept (`f32` images as calibrated by ctapipe, `f64`,
//! and `i32` true images), with comparisons done in the same precision as numpy does them.

/// A per-pixel number (charge in p.e. or time in ns).
///
/// numpy compares a `float32` array with a Python float in `float32` (NEP 50), and takes
/// differences of `float32` times in `float32`; the `f32` implementation does the same so
/// that masks equal ctapipe's bit for bit. Everything else is computed in `f64`.
pub trait PixelValue: Copy + Send + Sync + 'static {
    /// True for `f32`: statistics then follow numpy's `float32` arithmetic (see
    /// [`crate::params::descriptive_statistics`]).
    const SINGLE_PRECISION: bool = false;
    /// The value as `f64`.
    fn to_f64(self) -> f64;
    /// `self >= threshold`, compared like numpy compares an array of this type with a
    /// Python float.
    fn at_least(self, threshold: f64) -> bool;
    /// `|self - other| < limit`, with the difference taken in this type like numpy.
    fn within(self, other: Self, limit: f64) -> bool;
}

impl PixelValue for f32 {
    const SINGLE_PRECISION: bool = true;
    #[inline]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline]
    fn at_least(self, threshold: f64) -> bool {
        self >= threshold as f32
    }
    #[inline]
    fn within(self, other: Self, limit: f64) -> bool {
        (self - other).abs() < limit as f32
    }
}

impl PixelValue for f64 {
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn at_least(self, threshold: f64) -> bool {
        self >= threshold
    }
    #[inline]
    fn within(self, other: Self, limit: f64) -> bool {
        (self - other).abs() < limit
    }
}

impl PixelValue for i32 {
    #[inline]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline]
    fn at_least(self, threshold: f64) -> bool {
        f64::from(self) >= threshold
    }
    #[inline]
    fn within(self, other: Self, limit: f64) -> bool {
        (f64::from(self) - f64::from(other)).abs() < limit
    }
}
