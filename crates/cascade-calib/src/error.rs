//! Errors of the calibration kernels.

/// Everything that can go wrong when configuring or running a calibration kernel.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibError {
    /// An array does not have the shape the kernel needs.
    #[error("{what}: expected shape {expected:?}, got {actual:?}")]
    ShapeMismatch {
        /// Which array.
        what: &'static str,
        /// Expected shape.
        expected: Vec<usize>,
        /// Actual shape.
        actual: Vec<usize>,
    },
    /// An array is not contiguous in standard (row-major) layout.
    #[error("{what} must be contiguous in standard layout")]
    NotContiguous {
        /// Which array.
        what: &'static str,
    },
    /// A configuration value is out of its valid range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The scale or offset of quantized R1 samples cannot convert them.
    #[error(
        "waveform_scale {scale} and waveform_offset {offset}: the scale must be finite and \
         positive, the offset finite"
    )]
    InvalidQuantization {
        /// The stream's `waveform_scale`.
        scale: f32,
        /// The stream's `waveform_offset`.
        offset: f32,
    },
    /// A selected gain channel does not exist in the calibration arrays.
    #[error(
        "pixel {pixel}: selected gain channel {channel} but the camera has {n_channels} channel(s)"
    )]
    InvalidGainChannel {
        /// Pixel index.
        pixel: usize,
        /// The selected channel.
        channel: i8,
        /// Number of gain channels available.
        n_channels: usize,
    },
}
