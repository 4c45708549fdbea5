//! R1 waveforms as CTAO's camera data stream stores them: `uint16` samples with one
//! `waveform_scale` and `waveform_offset` per telescope data stream (the R1v1/DL0v1
//! protobuf event format of ACADA, read by `ctapipe_io_zfits`).
//!
//! A sample's value in p.e. is `value as f32 / scale - offset`, both operations in `f32`,
//! exactly as `ctapipe_io_zfits` converts the stream
//! (`waveform.astype(np.float32) / scale - offset`). Every kernel that takes
//! [`QuantizedWaveforms`] gives the results of the `f32` kernel on the converted samples,
//! bit for bit; the default extractor finds its peaks on the integers (see
//! `extractor::neighbor_peak`), which is where the narrower type pays.

/// The `uint16` samples of one or more telescope events with their stream's scale and
/// offset: sample value (p.e.) = `values[i] as f32 / scale - offset`.
#[derive(Debug, Clone, Copy)]
pub struct QuantizedWaveforms<'a> {
    /// The stored samples, laid out as the `f32` waveforms they stand for.
    pub values: &'a [u16],
    /// `waveform_scale` of the data stream (stored units per p.e.).
    pub scale: f32,
    /// `waveform_offset` of the data stream (p.e.).
    pub offset: f32,
}

impl<'a> QuantizedWaveforms<'a> {
    /// The value (p.e.) of sample `index`.
    ///
    /// # Panics
    /// When `index` is out of bounds.
    #[inline]
    pub fn sample(&self, index: usize) -> f32 {
        f32::from(self.values[index]) / self.scale - self.offset
    }

    /// The samples `range` with the same scale and offset.
    ///
    /// # Panics
    /// When `range` is out of bounds.
    pub fn slice(&self, range: std::ops::Range<usize>) -> QuantizedWaveforms<'a> {
        QuantizedWaveforms {
            values: &self.values[range],
            ..*self
        }
    }

    /// Writes every sample's value (p.e.) to `out`, replacing its contents.
    pub fn convert_into(&self, out: &mut Vec<f32>) {
        out.clear();
        out.extend(
            self.values
                .iter()
                .map(|&value| f32::from(value) / self.scale - self.offset),
        );
    }

    /// A bound on the magnitude of every sample value (p.e.) and of every `value / scale`
    /// (at least both, rounded up; `None` for a scale that is not finite and positive or
    /// an offset that is not finite).
    pub(crate) fn magnitude_bound(&self) -> Option<f64> {
        let (scale, offset) = (f64::from(self.scale), f64::from(self.offset));
        let finite = scale.is_finite() && scale > 0.0 && offset.is_finite();
        // 1 % headroom covers the f32 roundings of the conversion many times over.
        finite.then(|| (f64::from(u16::MAX) / scale + offset.abs()) * 1.01)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_convert_in_f32_as_ctapipe_io_zfits() {
        // ctapipe_io_zfits' test stream: scale 80, offset 5.
        let values = [0, 400, 401, 65535];
        let waveforms = QuantizedWaveforms {
            values: &values,
            scale: 80.0,
            offset: 5.0,
        };
        assert_eq!(waveforms.sample(0), -5.0);
        assert_eq!(waveforms.sample(1), 0.0);
        assert_eq!(waveforms.sample(2), 401.0f32 / 80.0 - 5.0);
        assert_eq!(waveforms.sample(3), 65535.0f32 / 80.0 - 5.0);
        let mut out = vec![1.0; 9];
        waveforms.slice(1..3).convert_into(&mut out);
        assert_eq!(out, [0.0, 401.0f32 / 80.0 - 5.0]);
        assert!(waveforms.magnitude_bound().is_some_and(|m| m > 814.0));
        let bad = QuantizedWaveforms {
            scale: 0.0,
            ..waveforms
        };
        assert_eq!(bad.magnitude_bound(), None);
    }
}
