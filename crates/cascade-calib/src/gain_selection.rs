//! Gain selection: which gain channel of each pixel goes on to R1
//! (`ctapipe.calib.camera.gainselection`).

use serde::{Deserialize, Serialize};

/// A gain channel (`ctapipe.calib.camera.gainselection.GainChannel`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GainChannel {
    /// High gain, channel index 0.
    #[default]
    #[serde(rename = "HIGH", alias = "high")]
    High,
    /// Low gain, channel index 1.
    #[serde(rename = "LOW", alias = "low")]
    Low,
}

impl GainChannel {
    /// Channel index (0 for high gain, 1 for low gain), as stored in `selected_gain_channel`.
    pub fn index(self) -> i8 {
        match self {
            GainChannel::High => 0,
            GainChannel::Low => 1,
        }
    }
}

/// The gain selector, tagged by ctapipe's class name in the field `type`:
/// ```toml
/// type = "ThresholdGainSelector"
/// threshold = 4000.0
/// ```
/// Default: `ThresholdGainSelector` with threshold 4000, as ctapipe's `SimTelEventSource`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum GainSelector {
    /// Low gain for every pixel whose raw high-gain waveform has a sample above the
    /// threshold, high gain otherwise (ctapipe `ThresholdGainSelector`).
    ThresholdGainSelector(ThresholdGainSelector),
    /// The same channel for every pixel (ctapipe `ManualGainSelector`).
    ManualGainSelector(ManualGainSelector),
}

impl Default for GainSelector {
    fn default() -> Self {
        Self::ThresholdGainSelector(ThresholdGainSelector::default())
    }
}

/// Options of `ThresholdGainSelector`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThresholdGainSelector {
    /// Threshold on the raw high-gain samples (ADC counts); a pixel with any sample strictly
    /// above it uses the low gain. Default 4000.
    pub threshold: f64,
}

impl Default for ThresholdGainSelector {
    fn default() -> Self {
        Self { threshold: 4000.0 }
    }
}

/// Options of `ManualGainSelector`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManualGainSelector {
    /// The channel to keep, `"HIGH"` or `"LOW"`. Default `"HIGH"`.
    pub channel: GainChannel,
}

impl GainSelector {
    /// Selected channel of one pixel from its raw waveforms `[channel][sample]` flattened
    /// (`n_channels` channels of `n_samples` samples each).
    ///
    /// As ctapipe's `GainSelector.__call__`: a single-channel camera always gets channel 0.
    #[inline]
    pub fn select_pixel(&self, high_gain_waveform: &[u16], n_channels: usize) -> i8 {
        self.select_by_maximum(n_channels, || {
            high_gain_waveform.iter().copied().max().unwrap_or(0)
        })
    }

    /// [`GainSelector::select_pixel`] with the largest raw high-gain sample computed by
    /// `high_gain_maximum` (ADC counts), called only when the selector needs it.
    #[inline]
    pub fn select_by_maximum(
        &self,
        n_channels: usize,
        high_gain_maximum: impl FnOnce() -> u16,
    ) -> i8 {
        if n_channels == 1 {
            return 0;
        }
        match self {
            GainSelector::ThresholdGainSelector(options) => {
                i8::from(f64::from(high_gain_maximum()) > options.threshold)
            }
            GainSelector::ManualGainSelector(options) => options.channel.index(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_is_strict_and_applies_to_high_gain() {
        let selector = GainSelector::default();
        assert_eq!(selector.select_pixel(&[10, 4000, 3], 2), 0);
        assert_eq!(selector.select_pixel(&[10, 4001, 3], 2), 1);
    }

    #[test]
    fn single_channel_cameras_always_use_channel_zero() {
        let selector = GainSelector::ManualGainSelector(ManualGainSelector {
            channel: GainChannel::Low,
        });
        assert_eq!(selector.select_pixel(&[65535], 1), 0);
        assert_eq!(selector.select_pixel(&[0], 2), 1);
    }

    #[test]
    fn parses_by_ctapipe_name() {
        let selector: Result<GainSelector, _> =
            toml::from_str("type = \"ThresholdGainSelector\"\nthreshold = 3500.0\n");
        assert_eq!(
            selector.ok(),
            Some(GainSelector::ThresholdGainSelector(ThresholdGainSelector {
                threshold: 3500.0
            }))
        );
        let manual: Result<GainSelector, _> =
            toml::from_str("type = \"ManualGainSelector\"\nchannel = \"LOW\"\n");
        assert!(matches!(
            manual,
            Ok(GainSelector::ManualGainSelector(ManualGainSelector {
                channel: GainChannel::Low
            }))
        ));
    }
}
