//! Decoders of the per-event objects: MC shower (2020) and MC event (2021) truth, central
//! trigger (2009), tracking positions (2100+), telescope event header (2011), ADC samples
//! (2013), ADC sums (2012) and pixel timing (2016).
//!
//! Layouts follow sim_telarray's `io_hess.c` as documented by pyeventio
//! (`eventio/simtel/objects.py`, `parsing.pyx`, `var_int.pyx`).

use crate::bytes::{ByteReader, DecodeResult};
use crate::eventio::{Object, tracking_tel_id};

/// Largest number of gain channels accepted (sim_telarray's `H_MAX_GAINS` is 2).
pub const MAX_GAINS: usize = 4;
/// Largest number of pixels accepted.
pub const MAX_PIXELS: usize = 1 << 20;
/// Largest number of samples per waveform accepted.
pub const MAX_SAMPLES: usize = 1 << 15;
/// Largest number of decoded samples per telescope event (gains x pixels x samples).
pub const MAX_SAMPLES_PER_EVENT: usize = 1 << 26;

/// MC shower (type 2020, versions 0-2): the simulated air shower.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct McShower {
    /// Shower number (object id).
    pub shower_num: i32,
    /// CORSIKA primary id (0 gamma, 1 electron, 101 proton, ...).
    pub primary_id: i32,
    /// Energy (TeV).
    pub energy_tev: f32,
    /// Azimuth (rad).
    pub azimuth_rad: f32,
    /// Altitude (rad).
    pub altitude_rad: f32,
    /// Atmospheric depth where the particle started (g/cm²), version >= 1.
    pub depth_start_g_cm2: Option<f32>,
    /// Height of the first interaction (m).
    pub h_first_int_m: f32,
    /// Depth of the shower maximum (g/cm²).
    pub x_max_g_cm2: f32,
}

/// Decodes an MC shower; longitudinal profiles and extra parameters are skipped.
pub fn decode_mc_shower(object: &Object<'_>) -> DecodeResult<McShower> {
    let version = object.header.version;
    let mut r = object.reader();
    if version > 2 {
        return Err(r.unsupported(format!("MCShower version {version}")));
    }
    let primary_id = r.i32("primary_id")?;
    let energy_tev = r.f32("energy")?;
    let azimuth_rad = r.f32("azimuth")?;
    let altitude_rad = r.f32("altitude")?;
    let depth_start_g_cm2 = if version >= 1 {
        Some(r.f32("depth_start")?)
    } else {
        None
    };
    let h_first_int_m = r.f32("h_first_int")?;
    let x_max_g_cm2 = r.f32("xmax")?;
    Ok(McShower {
        shower_num: object.header.id,
        primary_id,
        energy_tev,
        azimuth_rad,
        altitude_rad,
        depth_start_g_cm2,
        h_first_int_m,
        x_max_g_cm2,
    })
}

/// MC event (type 2021, versions 0-2): one use of a shower, with its core position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct McEvent {
    /// Event id (object id).
    pub event_id: i32,
    /// Shower number.
    pub shower_num: i32,
    /// Core position x (m, ground frame).
    pub core_x_m: f32,
    /// Core position y (m, ground frame).
    pub core_y_m: f32,
    /// Importance-sampling weight (1 for version < 2).
    pub weight: f32,
}

/// Decodes an MC event (pyeventio `parse_mc_event`).
pub fn decode_mc_event(object: &Object<'_>) -> DecodeResult<McEvent> {
    let version = object.header.version;
    let mut r = object.reader();
    if version > 2 {
        return Err(r.unsupported(format!("MCEvent version {version}")));
    }
    let shower_num = r.i32("shower_num")?;
    let core_x_m = r.f32("xcore")?;
    let core_y_m = r.f32("ycore")?;
    let weight = if version >= 2 { r.f32("aweight")? } else { 1.0 };
    Ok(McEvent {
        event_id: object.header.id,
        shower_num,
        core_x_m,
        core_y_m,
        weight,
    })
}

/// Central trigger information (type 2009, versions 0-3).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CentralTrigger {
    /// Event id in the object id (0 in some files).
    pub event_id: i32,
    /// GPS time (seconds, nanoseconds).
    pub gps_time: (i32, i32),
    /// Triggered telescopes.
    pub triggered_telescopes: Vec<u16>,
    /// Trigger time of each triggered telescope relative to the central trigger (ns).
    pub trigger_times_ns: Vec<f32>,
    /// Telescopes with data.
    pub telescopes_with_data: Vec<u16>,
    /// Trigger type mask per triggered telescope (version >= 2), with sim_telarray's
    /// pre-2024 bit-shift bug fixed as pyeventio does.
    pub trigger_type_mask: Vec<u32>,
}

/// Decodes the central trigger (pyeventio `TriggerInformation`).
pub fn decode_central_trigger(object: &Object<'_>) -> DecodeResult<CentralTrigger> {
    let version = object.header.version;
    let mut r = object.reader();
    if version > 3 {
        return Err(r.unsupported(format!("TriggerInformation version {version}")));
    }
    r.skip(8, "cpu_time")?;
    let gps_time = (r.i32("gps_time")?, r.i32("gps_time")?);
    r.skip(8, "trigger_pattern, data_pattern")?;
    let mut trigger = CentralTrigger {
        event_id: object.header.id,
        gps_time,
        ..Default::default()
    };
    if version >= 1 {
        let n_trig = r.i16("n_triggered_telescopes")?;
        let n_trig = r.check_count(i64::from(n_trig), 6, "triggered_telescopes")?;
        trigger.triggered_telescopes =
            tel_ids(&r, r.clone().i16_vec(n_trig, "triggered_telescopes")?)?;
        r.skip(2 * n_trig, "triggered_telescopes")?;
        trigger.trigger_times_ns = r.f32_vec(n_trig, "trigger_times")?;
        let n_data = r.i16("n_telescopes_with_data")?;
        let n_data = r.check_count(i64::from(n_data), 2, "telescopes_with_data")?;
        trigger.telescopes_with_data =
            tel_ids(&r, r.clone().i16_vec(n_data, "telescopes_with_data")?)?;
        r.skip(2 * n_data, "telescopes_with_data")?;
        if version >= 2 {
            let masks = r.uvarint_vec(n_trig, "teltrg_type_mask")?;
            let mut fixed = Vec::with_capacity(n_trig);
            for mask in masks {
                let mut mask = mask as u32;
                if (mask & 0xf).count_ones() > 1 {
                    for bit in 0..4 {
                        if mask & (1 << bit) != 0 {
                            r.f32("teltrg_time_by_type")?;
                        }
                    }
                }
                if version <= 3 {
                    let wrong = mask & 0x70;
                    mask = (mask | (wrong << 4)) & !0x70;
                }
                fixed.push(mask);
            }
            trigger.trigger_type_mask = fixed;
        }
    }
    Ok(trigger)
}

fn tel_ids(r: &ByteReader<'_>, raw: Vec<i16>) -> DecodeResult<Vec<u16>> {
    raw.into_iter()
        .map(|id| u16::try_from(id).map_err(|_| r.invalid(format!("negative telescope id {id}"))))
        .collect()
}

/// Tracking position of one telescope (types 2100 + id % 100 + 1000 * (id / 100)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackingPosition {
    /// Telescope id.
    pub tel_id: u16,
    /// Raw azimuth and altitude (rad), if stored.
    pub raw_rad: Option<(f32, f32)>,
    /// Pointing-corrected azimuth and altitude (rad), if stored.
    pub corrected_rad: Option<(f32, f32)>,
}

impl TrackingPosition {
    /// Pointing (alt, az) in deg as ctapipe takes it: corrected when present and not NaN,
    /// else raw; altitudes a float32 rounding above 90 deg are clipped to 90 deg.
    pub fn alt_az_deg(&self) -> (f64, f64) {
        let (raw_az, raw_alt) = self.raw_rad.unwrap_or((f32::NAN, f32::NAN));
        let (cor_az, cor_alt) = self.corrected_rad.unwrap_or((f32::NAN, f32::NAN));
        let az = if cor_az.is_nan() { raw_az } else { cor_az };
        let alt = if cor_alt.is_nan() { raw_alt } else { cor_alt };
        (
            clip_altitude(f64::from(alt)).to_degrees(),
            f64::from(az).to_degrees(),
        )
    }
}

/// ctapipe's `_clip_altitude_if_close`: float32(pi/2) > float64(pi/2), so values within a
/// relative 1e-6 above ±pi/2 are set to ±pi/2 (rad).
pub fn clip_altitude(alt_rad: f64) -> f64 {
    let half_pi = std::f64::consts::FRAC_PI_2;
    let max = (1.0 + 1e-6) * half_pi;
    if alt_rad > half_pi && alt_rad < max {
        half_pi
    } else if alt_rad < -half_pi && alt_rad > -max {
        -half_pi
    } else {
        alt_rad
    }
}

/// Decodes a tracking position (pyeventio `TrackingPosition`).
pub fn decode_tracking_position(object: &Object<'_>) -> DecodeResult<TrackingPosition> {
    let mut r = object.reader();
    let tel_id = tracking_tel_id(object.header.object_type)
        .ok_or_else(|| r.invalid("not a tracking position type"))?;
    let id = object.header.id;
    let raw_rad = if id & 0x100 != 0 {
        Some((r.f32("azimuth_raw")?, r.f32("altitude_raw")?))
    } else {
        None
    };
    let corrected_rad = if id & 0x200 != 0 {
        Some((r.f32("azimuth_cor")?, r.f32("altitude_cor")?))
    } else {
        None
    };
    Ok(TrackingPosition {
        tel_id,
        raw_rad,
        corrected_rad,
    })
}

/// Telescope event header (type 2011, versions 0-4).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TelescopeEventHeader {
    /// Telescope id (object id).
    pub tel_id: i32,
    /// Local event counter.
    pub loc_count: i32,
    /// Global event counter.
    pub glob_count: i32,
    /// GPS time (seconds, nanoseconds).
    pub gps_time: (i32, i32),
    /// Trigger source.
    pub trg_source: i16,
    /// Readout time (ns, version >= 3).
    pub readout_time_ns: Option<f32>,
}

/// Decodes a telescope event header (pyeventio `TelescopeEventHeader`); the trigger sector
/// and physical address lists are skipped.
pub fn decode_telescope_event_header(object: &Object<'_>) -> DecodeResult<TelescopeEventHeader> {
    let version = object.header.version;
    let mut r = object.reader();
    if version > 4 {
        return Err(r.unsupported(format!("TelescopeEventHeader version {version}")));
    }
    let loc_count = r.i32("loc_count")?;
    let glob_count = r.i32("glob_count")?;
    r.skip(8, "cpu_time")?;
    let gps_time = (r.i32("gps_time")?, r.i32("gps_time")?);
    let t = r.i16("trg_source")?;
    if t & 0x100 != 0 {
        let n = if version <= 1 {
            i64::from(r.i16("n_list_trgsect")?)
        } else {
            r.varint("n_list_trgsect")?
        };
        let n = r.check_count(n, 1, "list_trgsect")?;
        if version <= 1 {
            r.skip(2 * n, "list_trgsect")?;
        } else {
            r.varint_vec(n, "list_trgsect")?;
        }
        if version >= 1 && t & 0x400 != 0 {
            r.skip(4 * n, "time_trgsect")?;
        }
    }
    if t & 0x200 != 0 {
        let n = if version <= 1 {
            i64::from(r.i16("n_phys_addr")?)
        } else {
            r.varint("n_phys_addr")?
        };
        let n = r.check_count(n, 1, "phys_addr")?;
        if version <= 1 {
            r.skip(2 * n, "phys_addr")?;
        } else {
            r.varint_vec(n, "phys_addr")?;
        }
    }
    let readout_time_ns = if version >= 3 {
        let readout = r.f32("readout_time")?;
        r.f32("relative_trigger_time")?;
        Some(readout)
    } else {
        None
    };
    Ok(TelescopeEventHeader {
        tel_id: object.header.id,
        loc_count,
        glob_count,
        gps_time,
        trg_source: t & 0xff,
        readout_time_ns,
    })
}

/// Raw waveforms of one telescope event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdcSamples {
    /// Number of gain channels.
    pub n_gains: usize,
    /// Number of pixels.
    pub n_pixels: usize,
    /// Number of samples per waveform.
    pub n_samples: usize,
    /// ADC counts laid out `[gain][pixel][sample]`; pixels not read out are 0.
    pub samples: Vec<u16>,
}

/// Decodes ADC samples (type 2013, version 3) into `out` (its buffer is reused).
///
/// The object id carries the flags (`io_hess.c` `read_simtel_adcsample`): bits 0-4 the zero
/// suppression mode, 5-9 the data reduction mode, bit 10 "pixel list known", bits 12-27 the
/// telescope id. With zero suppression, a list of pixel ranges precedes the samples (a
/// negative start `-p-1` is the single pixel `p`, else `start, end` inclusive); only those
/// pixels are stored, gain by gain. Each waveform is coded differentially.
pub fn decode_adc_samples(object: &Object<'_>, out: &mut AdcSamples) -> DecodeResult<()> {
    let version = object.header.version;
    let mut r = object.reader();
    if version != 3 {
        return Err(r.unsupported(format!("ADCSamples version {version}")));
    }
    let flags = object.header.id;
    let zero_sup_mode = flags & 0x1f;
    let data_red_mode = (flags >> 5) & 0x1f;
    let list_known = (flags >> 10) & 1 != 0;
    if data_red_mode != 0 || list_known {
        return Err(r.unsupported(format!(
            "ADCSamples data reduction mode {data_red_mode} with list_known={list_known}"
        )));
    }
    let n_pixels = r.i32("n_pixels")?;
    let n_gains = r.i16("n_gains")?;
    let n_samples = r.i16("n_samples")?;
    let n_pixels = r.dimension(i64::from(n_pixels), MAX_PIXELS, "n_pixels")?;
    let n_gains = r.dimension(i64::from(n_gains), MAX_GAINS, "n_gains")?;
    let n_samples = r.dimension(i64::from(n_samples), MAX_SAMPLES, "n_samples")?;
    let total = n_gains * n_pixels * n_samples;
    if total > MAX_SAMPLES_PER_EVENT {
        return Err(r.invalid(format!(
            "{n_gains} x {n_pixels} x {n_samples} samples exceed the limit"
        )));
    }

    if zero_sup_mode == 0 {
        // Every sample takes at least one byte.
        r.check_count(total as i64, 1, "ADC samples")?;
        resize_zeroed(&mut out.samples, total);
        // Each waveform is coded on its own, starting from 0.
        for waveform in out.samples.chunks_exact_mut(n_samples.max(1)) {
            r.differential_u16(waveform, "ADC samples")?;
        }
    } else {
        let n_ranges = r.varint("pixel range count")?;
        let n_ranges = r.check_count(n_ranges, 1, "pixel ranges")?;
        let mut ranges = Vec::with_capacity(n_ranges);
        let mut n_listed = 0usize;
        for _ in 0..n_ranges {
            let start = r.varint("pixel range start")?;
            // A single pixel `p` is coded as `-p - 1`; `-(start + 1)` cannot overflow.
            let (first, last) = if start < 0 {
                (-(start + 1), -(start + 1))
            } else {
                (start, r.varint("pixel range end")?)
            };
            if first < 0 || last < first || last >= n_pixels as i64 {
                return Err(r.invalid(format!(
                    "pixel range {first}..={last} outside 0..{n_pixels}"
                )));
            }
            n_listed += (last - first + 1) as usize;
            ranges.push((first as usize, last as usize + 1));
        }
        r.check_count(
            n_gains.saturating_mul(n_listed).saturating_mul(n_samples) as i64,
            1,
            "ADC samples",
        )?;
        out.samples.clear();
        out.samples.resize(total, 0);
        for gain in 0..n_gains {
            for &(first, end) in &ranges {
                let start = (gain * n_pixels + first) * n_samples;
                let stop = (gain * n_pixels + end) * n_samples;
                for waveform in out.samples[start..stop].chunks_exact_mut(n_samples.max(1)) {
                    r.differential_u16(waveform, "ADC samples")?;
                }
            }
        }
    }
    out.n_gains = n_gains;
    out.n_pixels = n_pixels;
    out.n_samples = n_samples;
    Ok(())
}

fn resize_zeroed(buffer: &mut Vec<u16>, len: usize) {
    buffer.clear();
    buffer.resize(len, 0);
}

/// Integrated ADC sums of one telescope event (type 2012, version 3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdcSums {
    /// Number of gain channels.
    pub n_gains: usize,
    /// Number of pixels.
    pub n_pixels: usize,
    /// Sums laid out `[gain][pixel]`; pixels not stored are 0.
    pub sums: Vec<u32>,
}

/// Decodes ADC sums (pyeventio `ADCSums`): zero suppression modes 0 (all pixels), 1 (bit
/// patterns per group of 16 pixels) and 2 (pixel list with 8-bit/16-bit/no-low-gain
/// markers), data reduction mode 0.
pub fn decode_adc_sums(object: &Object<'_>) -> DecodeResult<AdcSums> {
    let version = object.header.version;
    let mut r = object.reader();
    if version != 3 {
        return Err(r.unsupported(format!("ADCSums version {version}")));
    }
    let flags = object.header.id;
    let zero_sup_mode = flags & 0x1f;
    let data_red_mode = (flags >> 5) & 0x1f;
    if data_red_mode != 0 {
        return Err(r.unsupported(format!("ADCSums data reduction mode {data_red_mode}")));
    }
    let n_pixels = r.i32("n_pixels")?;
    let n_gains = r.i16("n_gains")?;
    let n_pixels = r.dimension(i64::from(n_pixels), MAX_PIXELS, "n_pixels")?;
    let n_gains = r.dimension(i64::from(n_gains), MAX_GAINS, "n_gains")?;
    if n_gains == 0 && n_pixels > 0 {
        // the pixel list of mode 2 would name pixels that have no sums
        return Err(r.invalid(format!("ADC sums of {n_pixels} pixels in no gain channel")));
    }
    let total = n_gains * n_pixels;
    if zero_sup_mode == 0 {
        r.check_count(total as i64, 1, "ADC sums")?;
    }
    let mut sums = vec![0u32; total];
    match zero_sup_mode {
        0 => {
            for gain in sums.chunks_exact_mut(n_pixels.max(1)) {
                r.differential_u32(gain, "ADC sums")?;
            }
        }
        1 => {
            let mut base = 0;
            while base < n_pixels {
                let group = (n_pixels - base).min(16);
                let bits = r.u16("zero suppression bits")?;
                let listed: Vec<usize> = (0..group).filter(|j| bits & (1 << j) != 0).collect();
                let m = (bits as u32).count_ones() as usize;
                let mut low = vec![0u32; r.check_count(m as i64, 0, "ADC sums")?];
                if n_gains == 2 {
                    r.differential_u32(&mut low, "low-gain ADC sums")?;
                }
                let mut high = vec![0u32; m];
                r.differential_u32(&mut high, "high-gain ADC sums")?;
                for (k, &j) in listed.iter().enumerate() {
                    if let (Some(&h), Some(slot)) = (high.get(k), sums.get_mut(base + j)) {
                        *slot = h;
                    }
                    if n_gains == 2
                        && let (Some(&l), Some(slot)) =
                            (low.get(k), sums.get_mut(n_pixels + base + j))
                    {
                        *slot = l;
                    }
                }
                base += group;
            }
        }
        2 => {
            let list_size = r.i16("ADC list size")?;
            let list_size = r.check_count(i64::from(list_size), 2, "ADC list")?;
            let list: Vec<u16> = (0..list_size)
                .map(|_| r.u16("ADC list"))
                .collect::<DecodeResult<_>>()?;
            let (mut n_low, mut n_high16, mut n_high8) = (0usize, 0usize, 0usize);
            for &entry in &list {
                let without_low = entry & 0x2000 != 0;
                let reduced_width = entry & 0x4000 != 0;
                if reduced_width {
                    n_high8 += 1;
                } else {
                    n_high16 += 1;
                }
                if !(reduced_width || n_gains < 2 || without_low) {
                    n_low += 1;
                }
            }
            let mut low = vec![0u32; if n_gains >= 2 { n_low } else { 0 }];
            r.differential_u32(&mut low, "low-gain ADC sums")?;
            let mut high = vec![0u32; n_high16];
            r.differential_u32(&mut high, "high-gain ADC sums")?;
            let high8 = r.bytes(n_high8, "8-bit ADC sums")?;
            let (mut il, mut ih, mut ih8) = (0usize, 0usize, 0usize);
            for &entry in &list {
                let pixel = usize::from(entry & 0x1fff);
                if pixel >= n_pixels {
                    return Err(r.invalid(format!("ADC list pixel {pixel} >= {n_pixels}")));
                }
                if entry & 0x4000 != 0 {
                    sums[pixel] = u32::from(high8[ih8]);
                    ih8 += 1;
                } else {
                    sums[pixel] = high[ih];
                    ih += 1;
                    if entry & 0x2000 == 0 && n_gains > 1 {
                        sums[n_pixels + pixel] = low[il];
                        il += 1;
                    }
                }
            }
        }
        mode => return Err(r.unsupported(format!("ADCSums zero suppression mode {mode}"))),
    }
    Ok(AdcSums {
        n_gains,
        n_pixels,
        sums,
    })
}

/// Pixel timing of one telescope event (type 2016, versions 1-2).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PixelTiming {
    /// Number of pixels.
    pub n_pixels: usize,
    /// Number of gains of the pulse sums.
    pub n_gains: usize,
    /// Time types stored (sim_telarray codes: 0 peak, 1..=n threshold crossings, ...).
    pub time_types: Vec<i16>,
    /// Times per pixel and type, laid out `[pixel][type]`, in units of samples (NaN where
    /// not stored).
    pub times: Vec<f32>,
    /// Local pulse sums `[gain][pixel]` (ADC counts), when stored.
    pub pulse_sum_local: Vec<i32>,
    /// Global-window pulse sums `[gain][pixel]` (ADC counts), when stored.
    pub pulse_sum_global: Vec<i32>,
}

/// Decodes pixel timing (pyeventio `PixelTiming`, `simtel_pixel_timing_parse_list_type_*`).
pub fn decode_pixel_timing(object: &Object<'_>) -> DecodeResult<PixelTiming> {
    let version = object.header.version;
    let mut r = object.reader();
    if !(1..=2).contains(&version) {
        return Err(r.unsupported(format!("PixelTiming version {version}")));
    }
    let n_pixels = if version <= 1 {
        i64::from(r.i16("n_pixels")?)
    } else {
        r.varint("n_pixels")?
    };
    let n_pixels = r.dimension(n_pixels, MAX_PIXELS, "n_pixels")?;
    let n_gains = r.i16("n_gains")?;
    let n_gains = r.dimension(i64::from(n_gains), MAX_GAINS, "n_gains")?;
    let before_peak = r.i16("before_peak")?;
    let after_peak = r.i16("after_peak")?;
    let with_sum = before_peak >= 0 && after_peak >= 0;
    let list_type = r.i16("list_type")?;
    if list_type != 1 && list_type != 2 {
        return Err(r.invalid(format!("pixel timing list_type {list_type}")));
    }
    let list_size = if version <= 1 {
        i64::from(r.i16("list_size")?)
    } else {
        r.varint("list_size")?
    };
    let list_len = r.check_count(
        list_size.saturating_mul(i64::from(list_type)),
        1,
        "pixel list",
    )?;
    let raw_list: Vec<i64> = if version <= 1 {
        r.i16_vec(list_len, "pixel list")?
            .into_iter()
            .map(i64::from)
            .collect()
    } else {
        r.varint_vec(list_len, "pixel list")?
    };
    let mut pixels = Vec::new();
    if list_type == 1 {
        pixels = raw_list;
    } else {
        for pair in raw_list.chunks_exact(2) {
            // `saturating_sub`: corrupt ends may be any i64; a range (and all of them
            // together) lists at most every pixel once.
            let len = pair[1].saturating_sub(pair[0]).saturating_add(1);
            if pair[1] < pair[0] || len > (n_pixels - pixels.len().min(n_pixels)) as i64 {
                return Err(r.invalid(format!(
                    "pixel timing range {}..={} (of {n_pixels} pixels)",
                    pair[0], pair[1]
                )));
            }
            pixels.extend(pair[0]..=pair[1]);
        }
    }
    let threshold = r.i16("threshold")?;
    let glob_only_selected = threshold < 0;
    let n_types = r.i16("n_types")?;
    let n_types = r.check_count(i64::from(n_types), 6, "time types")?;
    let time_types = r.i16_vec(n_types, "time_type")?;
    r.skip(4 * n_types, "time_level")?;
    let granularity = r.f32("granularity")?;
    r.f32("peak_global")?;
    r.check_count(
        pixels.len().saturating_mul(n_types) as i64,
        2,
        "pixel times",
    )?;
    let mut times = vec![f32::NAN; n_pixels * n_types];
    let sums_len = if with_sum {
        n_gains.saturating_mul(n_pixels)
    } else {
        0
    };
    let mut pulse_sum_local = vec![0i32; sums_len];
    let mut pulse_sum_global = vec![0i32; sums_len];
    for &pixel in &pixels {
        let p = usize::try_from(pixel)
            .ok()
            .filter(|&p| p < n_pixels)
            .ok_or_else(|| {
                r.invalid(format!("pixel timing pixel {pixel} outside 0..{n_pixels}"))
            })?;
        for t in 0..n_types {
            times[p * n_types + t] = granularity * f32::from(r.i16("pixel time")?);
        }
        if with_sum {
            for g in 0..n_gains {
                pulse_sum_local[g * n_pixels + p] = r.varint("local pulse sum")? as i32;
            }
            if glob_only_selected {
                for g in 0..n_gains {
                    pulse_sum_global[g * n_pixels + p] = r.varint("global pulse sum")? as i32;
                }
            }
        }
    }
    if with_sum && !pixels.is_empty() && !glob_only_selected {
        r.check_count(sums_len as i64, 1, "global pulse sums")?;
        for slot in pulse_sum_global.iter_mut() {
            *slot = r.varint("global pulse sum")? as i32;
        }
    }
    Ok(PixelTiming {
        n_pixels,
        n_gains,
        time_types,
        times,
        pulse_sum_local,
        pulse_sum_global,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventio::ObjectHeader;

    /// eventio's unsigned varint (1-3 byte codes suffice here).
    fn put_uvarint(out: &mut Vec<u8>, v: u64) {
        if v < 0x80 {
            out.push(v as u8);
        } else if v < 0x4000 {
            out.extend([0x80 | (v >> 8) as u8, v as u8]);
        } else {
            out.extend([0xc0 | (v >> 16) as u8, (v >> 8) as u8, v as u8]);
        }
    }

    fn put_varint(out: &mut Vec<u8>, v: i64) {
        put_uvarint(
            out,
            if v < 0 {
                ((-v - 1) as u64) << 1 | 1
            } else {
                (v as u64) << 1
            },
        );
    }

    fn object(object_type: u16, version: u16, id: i32, payload: &[u8]) -> Object<'_> {
        let header = ObjectHeader {
            object_type,
            version,
            user_flag: false,
            id,
            length: payload.len() as u64,
            only_sub_objects: false,
            extended: false,
            big_endian: false,
        };
        Object {
            header,
            payload,
            payload_offset: 0,
        }
    }

    #[test]
    fn zero_suppressed_samples_fill_listed_pixels_only() {
        let (n_pixels, n_gains, n_samples) = (6i32, 2i16, 3i16);
        let mut payload = Vec::new();
        payload.extend(n_pixels.to_le_bytes());
        payload.extend(n_gains.to_le_bytes());
        payload.extend(n_samples.to_le_bytes());
        // Ranges: single pixel 1 (coded -2), then pixels 3..=4.
        put_varint(&mut payload, 2);
        put_varint(&mut payload, -2);
        put_varint(&mut payload, 3);
        put_varint(&mut payload, 4);
        let waveform = |base: i64| [base, base + 5, base - 2];
        for gain in 0..2 {
            for pixel in [1i64, 3, 4] {
                let mut previous = 0;
                for sample in waveform(100 * (gain + 1) + pixel) {
                    put_varint(&mut payload, sample - previous);
                    previous = sample;
                }
            }
        }
        let flags = 1 | (7 << 12); // zero suppression mode 1, telescope 7
        let mut out = AdcSamples::default();
        decode_adc_samples(&object(2013, 3, flags, &payload), &mut out).expect("decodes");
        assert_eq!((out.n_gains, out.n_pixels, out.n_samples), (2, 6, 3));
        let at = |g: usize, p: usize| &out.samples[(g * 6 + p) * 3..(g * 6 + p + 1) * 3];
        assert_eq!(at(0, 0), &[0, 0, 0]);
        assert_eq!(at(0, 1), &[101, 106, 99]);
        assert_eq!(at(0, 3), &[103, 108, 101]);
        assert_eq!(at(1, 4), &[204, 209, 202]);
        assert_eq!(at(1, 5), &[0, 0, 0]);
    }

    #[test]
    fn corrupt_dimensions_are_errors_not_allocations() {
        let mut payload = Vec::new();
        payload.extend(i32::MAX.to_le_bytes());
        payload.extend(2i16.to_le_bytes());
        payload.extend(i16::MAX.to_le_bytes());
        let mut out = AdcSamples::default();
        assert!(decode_adc_samples(&object(2013, 3, 1, &payload), &mut out).is_err());
        assert!(decode_adc_samples(&object(2013, 3, 0, &payload), &mut out).is_err());
    }

    /// Found by `cargo fuzz`: the most negative pixel range start (a single pixel coded as
    /// `-p - 1`) overflowed when negated.
    #[test]
    fn extreme_pixel_range_start_is_an_error() {
        let mut payload = Vec::new();
        payload.extend(6i32.to_le_bytes());
        payload.extend(1i16.to_le_bytes());
        payload.extend(3i16.to_le_bytes());
        put_varint(&mut payload, 1);
        // i64::MIN, zig-zagged to u64::MAX: eventio's nine-byte code
        payload.extend([0xff; 9]);
        let mut out = AdcSamples::default();
        let error = decode_adc_samples(&object(2013, 3, 1, &payload), &mut out).unwrap_err();
        assert!(error.to_string().contains("outside 0..6"), "{error}");
    }

    /// Found by `cargo fuzz`: a pixel list (zero suppression mode 2) with no gain channel
    /// indexed sums that were never allocated.
    #[test]
    fn adc_sums_without_gain_channel_are_an_error() {
        let mut payload = Vec::new();
        payload.extend(4i32.to_le_bytes());
        payload.extend(0i16.to_le_bytes());
        payload.extend(1i16.to_le_bytes());
        payload.extend(0u16.to_le_bytes());
        put_varint(&mut payload, 1000);
        let error = decode_adc_sums(&object(2012, 3, 2, &payload)).unwrap_err();
        assert!(error.to_string().contains("no gain channel"), "{error}");
    }

    /// Found by `cargo fuzz`: the length of a pixel timing range between extreme ends
    /// overflowed.
    #[test]
    fn extreme_pixel_timing_ranges_are_errors() {
        let header = |payload: &mut Vec<u8>| {
            put_varint(payload, 4); // n_pixels
            for value in [1i16, 0, 0, 2] {
                // n_gains, before_peak, after_peak, list_type (ranges)
                payload.extend(value.to_le_bytes());
            }
        };
        let mut payload = Vec::new();
        header(&mut payload);
        put_varint(&mut payload, 1); // one range
        payload.extend([0xff; 9]); // i64::MIN, zig-zagged to u64::MAX
        payload.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]); // i64::MAX
        let error = decode_pixel_timing(&object(2016, 2, 0, &payload)).unwrap_err();
        assert!(error.to_string().contains("pixel timing range"), "{error}");
        // two ranges that together list more pixels than the camera has
        let mut payload = Vec::new();
        header(&mut payload);
        put_varint(&mut payload, 2);
        for end in [0, 3, 0, 3] {
            put_varint(&mut payload, end);
        }
        let error = decode_pixel_timing(&object(2016, 2, 0, &payload)).unwrap_err();
        assert!(error.to_string().contains("0..=3 (of 4 pixels)"), "{error}");
    }

    #[test]
    fn adc_sums_with_pixel_list() {
        let mut payload = Vec::new();
        payload.extend(4i32.to_le_bytes());
        payload.extend(2i16.to_le_bytes());
        // List: pixel 0 (both gains), pixel 2 without low gain, pixel 3 reduced width.
        payload.extend(3i16.to_le_bytes());
        for entry in [0u16, 2 | 0x2000, 3 | 0x4000] {
            payload.extend(entry.to_le_bytes());
        }
        put_varint(&mut payload, 50); // low gain of pixel 0
        put_varint(&mut payload, 1000); // high gain of pixel 0
        put_varint(&mut payload, -10); // high gain of pixel 2 = 990
        payload.push(77); // 8-bit high gain of pixel 3
        let sums = decode_adc_sums(&object(2012, 3, 2, &payload)).expect("decodes");
        assert_eq!(sums.sums, vec![1000, 0, 990, 77, 50, 0, 0, 0]);
    }
}
