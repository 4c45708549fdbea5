//! Configuration of the image extractors, selected by ctapipe's class name.
//!
//! In a pipeline file:
//! ```toml
//! extractor = "NeighborPeakWindowSum"
//! window_width = 7
//! window_shift = 3
//! ```
//! Every option has ctapipe 0.28's default; unknown options are errors.

use serde::{Deserialize, Serialize};

use crate::CalibError;

/// Which image extractor to run and its options, tagged by ctapipe's class name in the
/// field `extractor`. The default is ctapipe's default, `NeighborPeakWindowSum`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "extractor")]
pub enum ImageExtractorConfig {
    /// Sum of the whole waveform (ctapipe `FullWaveformSum`). No integration correction.
    FullWaveformSum(FullWaveformSum),
    /// Sum in a window at a fixed position (ctapipe `FixedWindowSum`).
    FixedWindowSum(FixedWindowSum),
    /// Sum in a window around the peak of the camera-average waveform (ctapipe
    /// `GlobalPeakWindowSum`).
    GlobalPeakWindowSum(GlobalPeakWindowSum),
    /// Sum in a window around each pixel's own peak (ctapipe `LocalPeakWindowSum`).
    LocalPeakWindowSum(LocalPeakWindowSum),
    /// Sum in a window around the peak of the sum of the neighbours' waveforms (ctapipe
    /// `NeighborPeakWindowSum`, ctapipe's default extractor).
    NeighborPeakWindowSum(NeighborPeakWindowSum),
    /// Largest sum of `window_width` consecutive samples (ctapipe `SlidingWindowMaxSum`).
    SlidingWindowMaxSum(SlidingWindowMaxSum),
}

impl Default for ImageExtractorConfig {
    fn default() -> Self {
        Self::NeighborPeakWindowSum(NeighborPeakWindowSum::default())
    }
}

impl ImageExtractorConfig {
    /// ctapipe's class name of the extractor.
    pub fn name(&self) -> &'static str {
        match self {
            Self::FullWaveformSum(_) => "FullWaveformSum",
            Self::FixedWindowSum(_) => "FixedWindowSum",
            Self::GlobalPeakWindowSum(_) => "GlobalPeakWindowSum",
            Self::LocalPeakWindowSum(_) => "LocalPeakWindowSum",
            Self::NeighborPeakWindowSum(_) => "NeighborPeakWindowSum",
            Self::SlidingWindowMaxSum(_) => "SlidingWindowMaxSum",
        }
    }

    /// True when the extractor needs the pixel neighbours.
    pub fn requires_neighbors(&self) -> bool {
        matches!(self, Self::NeighborPeakWindowSum(_))
    }

    /// Checks the options that do not depend on the camera (widths, fractions).
    pub fn validate(&self) -> Result<(), CalibError> {
        let positive_width = |name: &str, width: i64| {
            if width < 1 {
                Err(CalibError::InvalidConfig(format!(
                    "{name}: window_width must be at least 1, got {width}"
                )))
            } else {
                Ok(())
            }
        };
        match self {
            Self::FullWaveformSum(_) => Ok(()),
            Self::FixedWindowSum(c) => positive_width(self.name(), c.window_width),
            Self::GlobalPeakWindowSum(c) => {
                positive_width(self.name(), c.window_width)?;
                if !(c.pixel_fraction > 0.0 && c.pixel_fraction <= 1.0) {
                    return Err(CalibError::InvalidConfig(format!(
                        "GlobalPeakWindowSum: pixel_fraction must be in (0, 1], got {}",
                        c.pixel_fraction
                    )));
                }
                Ok(())
            }
            Self::LocalPeakWindowSum(c) => positive_width(self.name(), c.window_width),
            Self::NeighborPeakWindowSum(c) => positive_width(self.name(), c.window_width),
            Self::SlidingWindowMaxSum(c) => positive_width(self.name(), c.window_width),
        }
    }
}

/// Options of `FullWaveformSum` (none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullWaveformSum {}

/// Options of `FixedWindowSum`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FixedWindowSum {
    /// Sample index where the peak is assumed (samples). Default 0.
    pub peak_index: i64,
    /// Width of the integration window (samples). Default 7.
    pub window_width: i64,
    /// Shift of the window start before `peak_index` (samples). Default 0.
    pub window_shift: i64,
    /// Apply the integration correction from the reference pulse shape. Default true.
    pub apply_integration_correction: bool,
}

impl Default for FixedWindowSum {
    fn default() -> Self {
        Self {
            peak_index: 0,
            window_width: 7,
            window_shift: 0,
            apply_integration_correction: true,
        }
    }
}

/// Options of `GlobalPeakWindowSum`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalPeakWindowSum {
    /// Width of the integration window (samples). Default 7.
    pub window_width: i64,
    /// Shift of the window start before the peak (samples). Default 3.
    pub window_shift: i64,
    /// Apply the integration correction from the reference pulse shape. Default true.
    pub apply_integration_correction: bool,
    /// Fraction of the pixels, the brightest by maximum sample, averaged to find the peak
    /// (dimensionless, in (0, 1]). Default 1.0: all pixels that are not broken.
    pub pixel_fraction: f64,
}

impl Default for GlobalPeakWindowSum {
    fn default() -> Self {
        Self {
            window_width: 7,
            window_shift: 3,
            apply_integration_correction: true,
            pixel_fraction: 1.0,
        }
    }
}

/// Options of `LocalPeakWindowSum`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalPeakWindowSum {
    /// Width of the integration window (samples). Default 7.
    pub window_width: i64,
    /// Shift of the window start before the peak (samples). Default 3.
    pub window_shift: i64,
    /// Apply the integration correction from the reference pulse shape. Default true.
    pub apply_integration_correction: bool,
}

impl Default for LocalPeakWindowSum {
    fn default() -> Self {
        Self {
            window_width: 7,
            window_shift: 3,
            apply_integration_correction: true,
        }
    }
}

/// Options of `NeighborPeakWindowSum`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NeighborPeakWindowSum {
    /// Width of the integration window (samples). Default 7.
    pub window_width: i64,
    /// Shift of the window start before the peak (samples). Default 3.
    pub window_shift: i64,
    /// Weight of the pixel's own waveform in the neighbour sum (0: peak from the
    /// neighbours only, 1: the pixel counts as much as any neighbour). Default 0.
    /// Also accepted as `lwt`, its name before ctapipe 0.12.
    #[serde(alias = "lwt")]
    pub local_weight: i64,
    /// Apply the integration correction from the reference pulse shape. Default true.
    pub apply_integration_correction: bool,
}

impl Default for NeighborPeakWindowSum {
    fn default() -> Self {
        Self {
            window_width: 7,
            window_shift: 3,
            local_weight: 0,
            apply_integration_correction: true,
        }
    }
}

/// Options of `SlidingWindowMaxSum`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlidingWindowMaxSum {
    /// Width of the sliding window (samples). Default 7.
    pub window_width: i64,
    /// Apply the integration correction from the reference pulse shape. Default true.
    pub apply_integration_correction: bool,
}

impl Default for SlidingWindowMaxSum {
    fn default() -> Self {
        Self {
            window_width: 7,
            apply_integration_correction: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ImageExtractorConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn name_selects_extractor_and_defaults_fill_the_rest() {
        let config = parse("extractor = \"NeighborPeakWindowSum\"\nwindow_width = 5\n");
        let expected = ImageExtractorConfig::NeighborPeakWindowSum(NeighborPeakWindowSum {
            window_width: 5,
            ..Default::default()
        });
        assert_eq!(config.ok(), Some(expected));
    }

    #[test]
    fn lwt_is_an_alias_of_local_weight() {
        let config = parse("extractor = \"NeighborPeakWindowSum\"\nlwt = 1\n");
        let Ok(ImageExtractorConfig::NeighborPeakWindowSum(options)) = config else {
            panic!("not parsed: {config:?}");
        };
        assert_eq!(options.local_weight, 1);
    }

    #[test]
    fn unknown_options_and_names_are_errors() {
        assert!(parse("extractor = \"LocalPeakWindowSum\"\nlocal_weight = 1\n").is_err());
        assert!(parse("extractor = \"FullWaveformSum\"\nwindow_width = 1\n").is_err());
        assert!(parse("extractor = \"TwoPassWindowSum\"\n").is_err());
    }

    #[test]
    fn every_extractor_parses_by_name_with_defaults() {
        for name in [
            "FullWaveformSum",
            "FixedWindowSum",
            "GlobalPeakWindowSum",
            "LocalPeakWindowSum",
            "NeighborPeakWindowSum",
            "SlidingWindowMaxSum",
        ] {
            let config = parse(&format!("extractor = \"{name}\"\n"));
            assert_eq!(config.map(|c| c.name()).ok(), Some(name));
        }
    }

    #[test]
    fn default_is_ctapipe_default() {
        assert_eq!(
            ImageExtractorConfig::default().name(),
            "NeighborPeakWindowSum"
        );
        assert!(ImageExtractorConfig::default().validate().is_ok());
    }

    #[test]
    fn invalid_widths_and_fractions_are_rejected() {
        let zero_width = ImageExtractorConfig::LocalPeakWindowSum(LocalPeakWindowSum {
            window_width: 0,
            ..Default::default()
        });
        assert!(zero_width.validate().is_err());
        let fraction = ImageExtractorConfig::GlobalPeakWindowSum(GlobalPeakWindowSum {
            pixel_fraction: 0.0,
            ..Default::default()
        });
        assert!(fraction.validate().is_err());
    }
}
