//! R0 -> R1 for sim_telarray data: gain selection, pedestal subtraction and conversion to
//! photo-electrons with the calibration stored in the file, as ctapipe's
//! `SimTelEventSource` does it (`ctapipe.io.simteleventsource.apply_simtel_r1_calibration`):
//!
//! ```text
//! pedestal_per_sample = pedestal / n_ped_slices                 (camera monitoring, f32)
//! r1[pixel][sample]   = (r0[g][pixel][sample] - pedestal_per_sample[g][pixel])
//!                       * (dc_to_pe[g][pixel] * calib_scale) + calib_shift   (f32 arithmetic)
//! g                   = selected_gain_channel[pixel]            (gain selector on raw R0)
//! ```

use ndarray::{Array2, ArrayView2, ArrayView4, ArrayViewMut2, ArrayViewMut3};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{CalibError, GainSelector};

/// Options of the R0 -> R1 step (ctapipe `SimTelEventSource` traits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct R1Config {
    /// Gain selector applied to the raw waveforms. Default `ThresholdGainSelector`
    /// (threshold 4000 ADC counts).
    pub gain_selector: GainSelector,
    /// Extra global factor on top of dc_to_pe (dimensionless). Default 1.0.
    pub calib_scale: f64,
    /// Shift added to every R1 sample (p.e.), to simulate miscalibration. Default 0.0.
    pub calib_shift: f64,
}

impl Default for R1Config {
    fn default() -> Self {
        Self {
            gain_selector: GainSelector::default(),
            calib_scale: 1.0,
            calib_shift: 0.0,
        }
    }
}

/// Calibration of one telescope as stored in a sim_telarray file.
#[derive(Debug, Clone, PartialEq)]
pub struct TelescopeCalibration {
    /// Pedestal per sample, `[channel][pixel]` (ADC counts): the camera monitoring's
    /// pedestal divided by `n_ped_slices` (see [`pedestal_per_sample`]).
    pub pedestal_per_sample: Array2<f32>,
    /// Conversion factor from pedestal-subtracted ADC counts to p.e., `[channel][pixel]`
    /// (p.e. per ADC count): the laser calibration's `calib`.
    pub dc_to_pe: Array2<f32>,
    /// Per-pixel time offsets, `[channel][pixel]` (ns): the laser calibration's `tm_calib`,
    /// subtracted from the peak time (ctapipe's `apply_peak_time_shift`). `None`: no shift.
    pub time_shift_ns: Option<Array2<f32>>,
    /// Pixels to treat as broken, one flag per pixel: the HV-disabled pixels of the
    /// telescope description (ctapipe's `outlier_mask`, identical for all channels).
    pub broken_pixels: Vec<bool>,
}

impl TelescopeCalibration {
    /// Number of gain channels.
    pub fn n_channels(&self) -> usize {
        self.dc_to_pe.nrows()
    }

    /// Number of pixels.
    pub fn n_pixels(&self) -> usize {
        self.dc_to_pe.ncols()
    }

    /// Checks that all arrays agree on the number of channels and pixels.
    pub fn validate(&self) -> Result<(), CalibError> {
        let expected = [self.n_channels(), self.n_pixels()];
        check_shape(
            "pedestal_per_sample",
            self.pedestal_per_sample.shape(),
            &expected,
        )?;
        if let Some(time_shift) = &self.time_shift_ns {
            check_shape("time_shift_ns", time_shift.shape(), &expected)?;
        }
        check_shape(
            "broken_pixels",
            &[self.broken_pixels.len()],
            &[self.n_pixels()],
        )
    }
}

/// Pedestal per sample from the summed pedestal of the camera monitoring, in `f32` as
/// ctapipe computes `cam_mon["pedestal"] / cam_mon["n_ped_slices"]` (ADC counts).
pub fn pedestal_per_sample(pedestal_sum: ArrayView2<'_, f32>, n_ped_slices: u32) -> Array2<f32> {
    let slices = n_ped_slices as f32;
    pedestal_sum.mapv(|sum| sum / slices)
}

/// Broken-pixel flags from a list of pixel ids (e.g. the HV-disabled pixels).
/// Ids outside `0..n_pixels` are ignored.
pub fn broken_pixels_from_ids(n_pixels: usize, ids: &[u32]) -> Vec<bool> {
    let mut broken = vec![false; n_pixels];
    for &id in ids {
        if let Some(flag) = broken.get_mut(id as usize) {
            *flag = true;
        }
    }
    broken
}

/// R0 -> R1 for one telescope event.
///
/// `r0` is `[channel][pixel][sample]` (ADC counts), `r1` is `[pixel][sample]` (p.e.),
/// `selected_gain_channel` one entry per pixel. Shapes must agree with `calibration`
/// (checked by [`r0_to_r1`]; here a mismatch panics).
///
/// On x86-64 CPUs with AVX2 (checked at run time) waveforms of at least 8 samples are
/// converted 8 samples per vector (16 with AVX-512, for 16 to 64 samples), with the same
/// `f32` operations in the same order, so the results are identical.
pub fn r0_to_r1_event(
    r0: &[u16],
    n_samples: usize,
    calibration: &TelescopeCalibration,
    config: &R1Config,
    r1: &mut [f32],
    selected_gain_channel: &mut [i8],
) {
    // The AVX2 kernel reads the calibration arrays as slices: they are in standard layout
    // unless a caller built them otherwise.
    #[cfg(target_arch = "x86_64")]
    if n_samples >= avx2::LANES
        && std::arch::is_x86_feature_detected!("avx2")
        && let (Some(pedestals), Some(dc_to_pe)) = (
            calibration.pedestal_per_sample.as_slice(),
            calibration.dc_to_pe.as_slice(),
        )
    {
        let event = avx2::Event {
            r0,
            n_samples,
            n_channels: calibration.n_channels(),
            n_pixels: calibration.n_pixels(),
            pedestals,
            dc_to_pe,
            config,
        };
        if avx512::takes(n_samples) {
            // SAFETY: `avx512::r0_to_r1_event` needs AVX-512 F, BW and VL and AVX2, which
            // the CPU has (`avx512::takes`, `crate::has_avx512`).
            #[allow(unsafe_code)]
            unsafe {
                avx512::r0_to_r1_event(&event, r1, selected_gain_channel)
            };
            return;
        }
        // SAFETY: `avx2::r0_to_r1_event` needs AVX2, which the CPU has.
        #[allow(unsafe_code)]
        unsafe {
            avx2::r0_to_r1_event(&event, r1, selected_gain_channel)
        };
        return;
    }
    r0_to_r1_event_scalar(
        r0,
        n_samples,
        calibration,
        config,
        r1,
        selected_gain_channel,
    );
}

/// [`r0_to_r1_event`] one sample at a time.
fn r0_to_r1_event_scalar(
    r0: &[u16],
    n_samples: usize,
    calibration: &TelescopeCalibration,
    config: &R1Config,
    r1: &mut [f32],
    selected_gain_channel: &mut [i8],
) {
    let n_channels = calibration.n_channels();
    let n_pixels = calibration.n_pixels();
    let scale = config.calib_scale as f32;
    let shift = config.calib_shift as f32;
    for (pixel, (r1_pixel, selected)) in r1
        .chunks_exact_mut(n_samples)
        .zip(selected_gain_channel.iter_mut())
        .enumerate()
    {
        let waveform = |channel: usize| {
            let start = (channel * n_pixels + pixel) * n_samples;
            &r0[start..start + n_samples]
        };
        let channel = config.gain_selector.select_pixel(waveform(0), n_channels);
        *selected = channel;
        let channel = channel as usize;
        let pedestal = calibration.pedestal_per_sample[[channel, pixel]];
        let gain = calibration.dc_to_pe[[channel, pixel]] * scale;
        for (out, &adc) in r1_pixel.iter_mut().zip(waveform(channel)) {
            *out = (f32::from(adc) - pedestal) * gain + shift;
        }
    }
}

/// R0 -> R1 for a batch of events of one telescope, in parallel over events.
///
/// Shapes: `r0` `[event][channel][pixel][sample]` (ADC counts), `r1`
/// `[event][pixel][sample]` (p.e.), `selected_gain_channel` `[event][pixel]`; all
/// contiguous in standard layout.
pub fn r0_to_r1(
    r0: ArrayView4<'_, u16>,
    calibration: &TelescopeCalibration,
    config: &R1Config,
    mut r1: ArrayViewMut3<'_, f32>,
    mut selected_gain_channel: ArrayViewMut2<'_, i8>,
) -> Result<(), CalibError> {
    calibration.validate()?;
    let (n_events, _, _, n_samples) = r0.dim();
    let n_pixels = calibration.n_pixels();
    check_shape(
        "r0",
        r0.shape(),
        &[n_events, calibration.n_channels(), n_pixels, n_samples],
    )?;
    check_shape("r1", r1.shape(), &[n_events, n_pixels, n_samples])?;
    check_shape(
        "selected_gain_channel",
        selected_gain_channel.shape(),
        &[n_events, n_pixels],
    )?;
    let r0 = r0
        .as_slice()
        .ok_or(CalibError::NotContiguous { what: "r0" })?;
    let r1 = r1
        .as_slice_mut()
        .ok_or(CalibError::NotContiguous { what: "r1" })?;
    let gains = selected_gain_channel
        .as_slice_mut()
        .ok_or(CalibError::NotContiguous {
            what: "selected_gain_channel",
        })?;
    if n_events == 0 || n_pixels == 0 || n_samples == 0 {
        return Ok(());
    }
    let r0_event_len = r0.len() / n_events;
    r0.par_chunks_exact(r0_event_len)
        .zip(r1.par_chunks_exact_mut(n_pixels * n_samples))
        .zip(gains.par_chunks_exact_mut(n_pixels))
        .for_each(|((r0_event, r1_event), gain_event)| {
            r0_to_r1_event(
                r0_event,
                n_samples,
                calibration,
                config,
                r1_event,
                gain_event,
            );
        });
    Ok(())
}

/// [`r0_to_r1_event`] with AVX2: each pixel's samples in vectors of 8, the last vector
/// overlapping the one before it when the waveform length is not a multiple of 8 (its
/// overlapping samples get the same values twice). The loads and stores are unchecked
/// within rows whose length was checked once; for waveforms of up to 64 samples the loops
/// over a pixel's vectors unroll, and the high-gain vectors loaded for the gain selection
/// are the ones converted when that channel is selected. In cache, per LSTCam-sized event
/// of 30 samples: 24.8 µs with checked loads and stores and loops, 10.9 µs this way.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m128i, __m256, _mm_cvtsi128_si32, _mm_loadu_si128, _mm_max_epu16, _mm_minpos_epu16,
        _mm_set1_epi16, _mm_setzero_si128, _mm_xor_si128, _mm256_add_ps, _mm256_cvtepi32_ps,
        _mm256_cvtepu16_epi32, _mm256_mul_ps, _mm256_set1_ps, _mm256_storeu_ps, _mm256_sub_ps,
    };

    use super::R1Config;

    /// Samples per vector.
    pub(super) const LANES: usize = 8;

    /// [`super::r0_to_r1_event`] for `event.n_samples >= 8`.
    #[target_feature(enable = "avx2")]
    pub(super) fn r0_to_r1_event(event: &Event<'_>, r1: &mut [f32], selected: &mut [i8]) {
        // Waveforms of up to 64 samples have their loops unrolled.
        match event.n_samples.div_ceil(LANES) {
            1 => pixels_of::<1>(event, r1, selected),
            2 => pixels_of::<2>(event, r1, selected),
            3 => pixels_of::<3>(event, r1, selected),
            4 => pixels_of::<4>(event, r1, selected),
            5 => pixels_of::<5>(event, r1, selected),
            6 => pixels_of::<6>(event, r1, selected),
            7 => pixels_of::<7>(event, r1, selected),
            8 => pixels_of::<8>(event, r1, selected),
            _ => pixels_of_long_waveforms(event, r1, selected),
        }
    }

    /// One event's raw waveforms and what converts them.
    pub(super) struct Event<'a> {
        /// `[channel][pixel][sample]` (ADC counts).
        pub(super) r0: &'a [u16],
        pub(super) n_samples: usize,
        pub(super) n_channels: usize,
        pub(super) n_pixels: usize,
        /// Pedestal per sample and dc-to-pe, `[channel][pixel]` in standard layout.
        pub(super) pedestals: &'a [f32],
        pub(super) dc_to_pe: &'a [f32],
        pub(super) config: &'a R1Config,
    }

    impl Event<'_> {
        /// The selected channel's waveform, pedestal and gain (dc-to-pe times the scale)
        /// of `pixel`.
        #[inline]
        pub(super) fn channel(&self, pixel: usize, channel: i8) -> (&[u16], f32, f32) {
            let at = channel as usize * self.n_pixels + pixel;
            let scale = self.config.calib_scale as f32;
            (
                &self.r0[at * self.n_samples..(at + 1) * self.n_samples],
                self.pedestals[at],
                self.dc_to_pe[at] * scale,
            )
        }

        /// [`Event::channel`] with the pedestal and gain in every lane.
        #[inline]
        #[target_feature(enable = "avx2")]
        fn channel_of(&self, pixel: usize, channel: i8) -> (&[u16], __m256, __m256) {
            let (adc, pedestal, gain) = self.channel(pixel, channel);
            (adc, _mm256_set1_ps(pedestal), _mm256_set1_ps(gain))
        }
    }

    /// Every pixel of an event whose waveforms are `V` vectors long (`n_samples` in
    /// `8 (V - 1) + 1..=8 V`, `n_samples >= 8`): the high-gain vectors are loaded once
    /// for the gain selection and converted when that channel is selected.
    #[inline]
    #[target_feature(enable = "avx2")]
    #[allow(unsafe_code)]
    fn pixels_of<const V: usize>(event: &Event<'_>, r1: &mut [f32], selected: &mut [i8]) {
        let n_samples = event.n_samples;
        let start = |v: usize| {
            if v + 1 < V {
                v * LANES
            } else {
                n_samples - LANES
            }
        };
        let shift = _mm256_set1_ps(event.config.calib_shift as f32);
        let high_gain = event.r0[..event.n_pixels * n_samples].chunks_exact(n_samples);
        let pixels = r1.chunks_exact_mut(n_samples).zip(selected).zip(high_gain);
        for (pixel, ((r1_row, selected), high_gain)) in pixels.enumerate() {
            // SAFETY (every load and store): the rows hold `n_samples` samples, and each
            // vector starts at most at `n_samples - 8`.
            let high: [__m128i; V] = std::array::from_fn(|v| unsafe { load8(high_gain, start(v)) });
            let channel = event
                .config
                .gain_selector
                .select_by_maximum(event.n_channels, || {
                    horizontal_maximum(
                        high.iter()
                            .fold(_mm_setzero_si128(), |m, &v| _mm_max_epu16(m, v)),
                    )
                });
            *selected = channel;
            let (adc, pedestal, gain) = event.channel_of(pixel, channel);
            let adc: [__m128i; V] = if channel == 0 {
                high
            } else {
                std::array::from_fn(|v| unsafe { load8(adc, start(v)) })
            };
            for (v, adc) in adc.into_iter().enumerate() {
                let value = convert(adc, pedestal, gain, shift);
                unsafe { store8(r1_row, start(v), value) };
            }
        }
    }

    /// [`pixels_of`] for waveforms of more than 64 samples, with loops over the vectors.
    #[target_feature(enable = "avx2")]
    #[allow(unsafe_code)]
    fn pixels_of_long_waveforms(event: &Event<'_>, r1: &mut [f32], selected: &mut [i8]) {
        let n_samples = event.n_samples;
        let shift = _mm256_set1_ps(event.config.calib_shift as f32);
        let high_gain = event.r0[..event.n_pixels * n_samples].chunks_exact(n_samples);
        let pixels = r1.chunks_exact_mut(n_samples).zip(selected).zip(high_gain);
        for (pixel, ((r1_row, selected), high_gain)) in pixels.enumerate() {
            let channel = event
                .config
                .gain_selector
                .select_by_maximum(event.n_channels, || {
                    let mut lanes = _mm_setzero_si128();
                    // SAFETY: the row holds `n_samples >= 8` samples (`each_vector`).
                    each_vector(n_samples, |at| {
                        lanes = _mm_max_epu16(lanes, unsafe { load8(high_gain, at) });
                    });
                    horizontal_maximum(lanes)
                });
            *selected = channel;
            let (adc, pedestal, gain) = event.channel_of(pixel, channel);
            each_vector(n_samples, |at| {
                // SAFETY: both rows hold `n_samples >= 8` samples (`each_vector`).
                let value = convert(unsafe { load8(adc, at) }, pedestal, gain, shift);
                unsafe { store8(r1_row, at, value) };
            });
        }
    }

    /// `(f32(adc) - pedestal) * gain + shift` for 8 samples, as the scalar loop (the
    /// conversion of a `u16` to `f32` is exact).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn convert(adc: __m128i, pedestal: __m256, gain: __m256, shift: __m256) -> __m256 {
        let samples = _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(adc));
        _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(samples, pedestal), gain), shift)
    }

    /// Calls `f` with the start of every vector of a waveform of `n_samples >= 8` samples:
    /// every 8 samples, the last one at `n_samples - 8`, so that each start `at` has
    /// `at + 8 <= n_samples`.
    #[inline(always)]
    fn each_vector(n_samples: usize, mut f: impl FnMut(usize)) {
        let last = n_samples - LANES;
        let mut at = 0;
        while at < last {
            f(at);
            at += LANES;
        }
        f(last);
    }

    /// The largest of the eight lanes: the complement of the minimum of the complements
    /// (`minpos`).
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn horizontal_maximum(lanes: __m128i) -> u16 {
        let all_ones = _mm_set1_epi16(-1);
        let minimum = _mm_minpos_epu16(_mm_xor_si128(lanes, all_ones));
        !(_mm_cvtsi128_si32(minimum) as u16)
    }

    /// The eight samples `values[at..at + 8]`.
    ///
    /// # Safety
    /// `at + 8 <= values.len()`.
    #[inline]
    #[target_feature(enable = "avx2")]
    #[allow(unsafe_code)]
    unsafe fn load8(values: &[u16], at: usize) -> __m128i {
        debug_assert!(at + LANES <= values.len());
        // SAFETY: the 8 `u16` (16 bytes) from `at` are within `values` (the contract).
        unsafe { _mm_loadu_si128(values.as_ptr().add(at).cast()) }
    }

    /// Stores eight lanes to `values[at..at + 8]`.
    ///
    /// # Safety
    /// `at + 8 <= values.len()`.
    #[inline]
    #[target_feature(enable = "avx2")]
    #[allow(unsafe_code)]
    unsafe fn store8(values: &mut [f32], at: usize, lanes: __m256) {
        debug_assert!(at + LANES <= values.len());
        // SAFETY: the 8 `f32` from `at` are within `values` (the contract).
        unsafe { _mm256_storeu_ps(values.as_mut_ptr().add(at), lanes) }
    }
}

/// [`r0_to_r1_event`] with AVX-512: the AVX2 kernel's steps on 16 samples per vector,
/// for waveforms of 16 to 64 samples (the last vector overlapping the one before it).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __m256i, _mm_max_epu16, _mm256_castsi256_si128, _mm256_extracti128_si256,
        _mm256_loadu_si256, _mm256_max_epu16, _mm256_setzero_si256, _mm512_add_ps,
        _mm512_cvtepi32_ps, _mm512_cvtepu16_epi32, _mm512_mul_ps, _mm512_set1_ps, _mm512_storeu_ps,
        _mm512_sub_ps,
    };

    use super::avx2::{Event, horizontal_maximum};

    /// Samples per vector.
    const LANES: usize = 16;

    /// Whether this kernel takes waveforms of `n_samples` on this CPU.
    pub(super) fn takes(n_samples: usize) -> bool {
        (LANES..=4 * LANES).contains(&n_samples) && crate::has_avx512()
    }

    /// [`super::r0_to_r1_event`] for `16 <= event.n_samples <= 64` ([`takes`]).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2")]
    pub(super) fn r0_to_r1_event(event: &Event<'_>, r1: &mut [f32], selected: &mut [i8]) {
        match event.n_samples.div_ceil(LANES) {
            1 => pixels_of::<1>(event, r1, selected),
            2 => pixels_of::<2>(event, r1, selected),
            3 => pixels_of::<3>(event, r1, selected),
            _ => pixels_of::<4>(event, r1, selected),
        }
    }

    /// Every pixel of an event whose waveforms are `V` vectors long, as the AVX2 kernel's
    /// `pixels_of`: the high-gain vectors are loaded once for the gain selection and
    /// converted when that channel is selected.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2")]
    #[allow(unsafe_code)]
    fn pixels_of<const V: usize>(event: &Event<'_>, r1: &mut [f32], selected: &mut [i8]) {
        let n_samples = event.n_samples;
        let start = |v: usize| {
            if v + 1 < V {
                v * LANES
            } else {
                n_samples - LANES
            }
        };
        let shift = _mm512_set1_ps(event.config.calib_shift as f32);
        let high_gain = event.r0[..event.n_pixels * n_samples].chunks_exact(n_samples);
        let pixels = r1.chunks_exact_mut(n_samples).zip(selected).zip(high_gain);
        for (pixel, ((r1_row, selected), high_gain)) in pixels.enumerate() {
            // SAFETY (every load and store): the rows hold `n_samples` samples, and each
            // vector starts at most at `n_samples - 16`.
            let load = |adc: &[u16], v: usize| unsafe {
                debug_assert!(start(v) + LANES <= adc.len());
                _mm256_loadu_si256(adc.as_ptr().add(start(v)).cast())
            };
            let high: [__m256i; V] = std::array::from_fn(|v| load(high_gain, v));
            let channel = event
                .config
                .gain_selector
                .select_by_maximum(event.n_channels, || {
                    let lanes = high
                        .iter()
                        .fold(_mm256_setzero_si256(), |m, &v| _mm256_max_epu16(m, v));
                    horizontal_maximum(_mm_max_epu16(
                        _mm256_castsi256_si128(lanes),
                        _mm256_extracti128_si256::<1>(lanes),
                    ))
                });
            *selected = channel;
            let (adc, pedestal, gain) = event.channel(pixel, channel);
            let (pedestal, gain) = (_mm512_set1_ps(pedestal), _mm512_set1_ps(gain));
            let adc: [__m256i; V] = if channel == 0 {
                high
            } else {
                std::array::from_fn(|v| load(adc, v))
            };
            for (v, adc) in adc.into_iter().enumerate() {
                // `(f32(adc) - pedestal) * gain + shift`, as the scalar loop.
                let samples = _mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(adc));
                let value =
                    _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(samples, pedestal), gain), shift);
                debug_assert!(start(v) + LANES <= r1_row.len());
                unsafe { _mm512_storeu_ps(r1_row.as_mut_ptr().add(start(v)), value) };
            }
        }
    }
}

pub(crate) fn check_shape(
    what: &'static str,
    actual: &[usize],
    expected: &[usize],
) -> Result<(), CalibError> {
    if actual == expected {
        Ok(())
    } else {
        Err(CalibError::ShapeMismatch {
            what,
            expected: expected.to_vec(),
            actual: actual.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array3, Array4, array};
    use proptest::prelude::*;

    use super::*;
    use crate::{GainChannel, ManualGainSelector};

    fn two_gain_calibration() -> TelescopeCalibration {
        TelescopeCalibration {
            pedestal_per_sample: array![[100.0, 200.0], [10.0, 20.0]],
            dc_to_pe: array![[0.5, 0.25], [5.0, 2.5]],
            time_shift_ns: None,
            broken_pixels: vec![false; 2],
        }
    }

    #[test]
    fn pedestal_and_dc_to_pe_of_the_selected_gain() {
        // 1 event, 2 channels, 2 pixels, 3 samples; pixel 1 saturates the high gain.
        let mut r0 = Array4::<u16>::zeros((1, 2, 2, 3));
        r0.slice_mut(ndarray::s![0, 0, 0, ..])
            .assign(&array![100, 102, 104]);
        r0.slice_mut(ndarray::s![0, 0, 1, ..])
            .assign(&array![200, 4001, 200]);
        r0.slice_mut(ndarray::s![0, 1, 1, ..])
            .assign(&array![20, 30, 20]);
        let mut r1 = Array3::<f32>::zeros((1, 2, 3));
        let mut gains = Array2::<i8>::zeros((1, 2));
        let result = r0_to_r1(
            r0.view(),
            &two_gain_calibration(),
            &R1Config::default(),
            r1.view_mut(),
            gains.view_mut(),
        );
        assert_eq!(result, Ok(()));
        assert_eq!(gains, array![[0, 1]]);
        assert_eq!(r1, array![[[0.0, 1.0, 2.0], [0.0, 25.0, 0.0]]]);
    }

    #[test]
    fn manual_low_gain_and_scale_and_shift() {
        let mut r0 = Array4::<u16>::zeros((1, 2, 2, 1));
        r0[[0, 1, 0, 0]] = 12;
        r0[[0, 1, 1, 0]] = 22;
        let config = R1Config {
            gain_selector: GainSelector::ManualGainSelector(ManualGainSelector {
                channel: GainChannel::Low,
            }),
            calib_scale: 2.0,
            calib_shift: 1.0,
        };
        let mut r1 = Array3::<f32>::zeros((1, 2, 1));
        let mut gains = Array2::<i8>::zeros((1, 2));
        r0_to_r1(
            r0.view(),
            &two_gain_calibration(),
            &config,
            r1.view_mut(),
            gains.view_mut(),
        )
        .expect("valid shapes");
        assert_eq!(gains, array![[1, 1]]);
        assert_eq!(r1, array![[[21.0], [11.0]]]);
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        let r0 = Array4::<u16>::zeros((1, 1, 2, 3));
        let mut r1 = Array3::<f32>::zeros((1, 2, 3));
        let mut gains = Array2::<i8>::zeros((1, 2));
        let result = r0_to_r1(
            r0.view(),
            &two_gain_calibration(),
            &R1Config::default(),
            r1.view_mut(),
            gains.view_mut(),
        );
        assert!(matches!(
            result,
            Err(CalibError::ShapeMismatch { what: "r0", .. })
        ));
    }

    /// One event: samples per pixel (the scalar loop below 8, the unrolled loops up to 64,
    /// the general one above), channels, pixels, its raw waveforms, calibration and
    /// options, with samples near the default threshold and odd calibration values.
    fn events() -> impl Strategy<Value = (usize, TelescopeCalibration, R1Config, Vec<u16>)> {
        let n_samples = prop_oneof![1usize..40, 60usize..80];
        (n_samples, 1usize..3, 1usize..12).prop_flat_map(|(n_samples, n_channels, n_pixels)| {
            // Samples that reach the threshold are rare, so that the one sample that decides
            // a pixel's gain falls anywhere in its waveform.
            let adc = prop_oneof![40 => 0u16..600, 1 => 3990u16..4010, 1 => Just(u16::MAX)];
            let value = prop_oneof![-50.0f32..500.0, Just(0.0f32), Just(-0.0f32)];
            let table = move || prop::collection::vec(value.clone(), n_channels * n_pixels);
            let config = (
                prop_oneof![
                    (3990.0f64..4010.0).prop_map(|threshold| GainSelector::ThresholdGainSelector(
                        crate::ThresholdGainSelector { threshold }
                    )),
                    Just(GainSelector::ManualGainSelector(ManualGainSelector {
                        channel: GainChannel::Low
                    })),
                ],
                prop_oneof![Just(1.0f64), 0.5f64..2.0],
                prop_oneof![Just(0.0f64), -1.0f64..1.0],
            )
                .prop_map(|(gain_selector, calib_scale, calib_shift)| R1Config {
                    gain_selector,
                    calib_scale,
                    calib_shift,
                });
            (
                Just(n_samples),
                (table(), table()).prop_map(move |(pedestal, dc_to_pe)| TelescopeCalibration {
                    pedestal_per_sample: Array2::from_shape_vec((n_channels, n_pixels), pedestal)
                        .expect("n_channels x n_pixels values"),
                    dc_to_pe: Array2::from_shape_vec((n_channels, n_pixels), dc_to_pe)
                        .expect("n_channels x n_pixels values"),
                    time_shift_ns: None,
                    broken_pixels: vec![false; n_pixels],
                }),
                config,
                prop::collection::vec(adc, n_channels * n_pixels * n_samples),
            )
        })
    }

    /// The signature of [`r0_to_r1_event`].
    type R0ToR1 = fn(&[u16], usize, &TelescopeCalibration, &R1Config, &mut [f32], &mut [i8]);

    proptest! {
        #[test]
        fn vectorised_r1_equals_the_scalar_loop_bit_for_bit(
            (n_samples, calibration, config, r0) in events(),
        ) {
            let n_pixels = calibration.n_pixels();
            let run = |convert: R0ToR1| {
                let mut r1 = vec![f32::NAN; n_pixels * n_samples];
                let mut gains = vec![-1i8; n_pixels];
                convert(&r0, n_samples, &calibration, &config, &mut r1, &mut gains);
                (r1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), gains)
            };
            let scalar = run(r0_to_r1_event_scalar);
            prop_assert_eq!(run(r0_to_r1_event), scalar.clone());
            // The AVX2 kernel too, where the dispatch takes the AVX-512 one.
            #[cfg(target_arch = "x86_64")]
            if n_samples >= avx2::LANES && is_x86_feature_detected!("avx2") {
                let avx2_only: R0ToR1 = |r0, n_samples, calibration, config, r1, gains| {
                    let event = avx2::Event {
                        r0,
                        n_samples,
                        n_channels: calibration.n_channels(),
                        n_pixels: calibration.n_pixels(),
                        pedestals: calibration.pedestal_per_sample.as_slice().unwrap_or_default(),
                        dc_to_pe: calibration.dc_to_pe.as_slice().unwrap_or_default(),
                        config,
                    };
                    // SAFETY: the kernel needs AVX2, which the CPU has.
                    #[allow(unsafe_code)]
                    unsafe {
                        avx2::r0_to_r1_event(&event, r1, gains)
                    };
                };
                prop_assert_eq!(run(avx2_only), scalar);
            }
        }
    }

    #[test]
    fn pedestal_per_sample_divides_in_f32() {
        let sums = array![[4000.0_f32, 4001.0]];
        assert_eq!(
            pedestal_per_sample(sums.view(), 10),
            array![[400.0, 400.1_f32]]
        );
        assert_eq!(broken_pixels_from_ids(3, &[2, 7]), vec![false, false, true]);
    }
}
