//! Decoders of the calibration objects ctapipe takes its R1 calibration from: camera
//! monitoring (2022, the pedestals) and laser calibration (2023, the dc-to-pe factors).
//!
//! Layouts follow sim_telarray's `io_hess.c` as documented by pyeventio
//! (`eventio/simtel/objects.py`: `CameraMonitoring`, `LaserCalibration`).

use crate::bytes::{ByteReader, DecodeResult};
use crate::eventio::Object;
use crate::objects::event::{MAX_GAINS, MAX_PIXELS};

/// The parts of a camera monitoring object ctapipe uses.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CameraMonitoring {
    /// Telescope id.
    pub tel_id: u16,
    /// Number of gains.
    pub n_gains: usize,
    /// Number of pixels.
    pub n_pixels: usize,
    /// Number of samples the stored pedestal sums over (`n_ped_slices`), if the pedestal
    /// part is present.
    pub n_ped_slices: Option<i16>,
    /// Pedestal `[gain][pixel]` as stored: the sum over `n_ped_slices` samples (ADC counts).
    pub pedestal: Vec<f32>,
    /// Pedestal noise `[gain][pixel]` as stored (ADC counts).
    pub noise: Vec<f32>,
}

/// Decodes a camera monitoring object (versions 0-1) up to and including the pedestal part
/// (`what & 0x04`); later parts (HV, currents, DAQ settings) are not needed and skipped.
pub fn decode_camera_monitoring(object: &Object<'_>) -> DecodeResult<CameraMonitoring> {
    let version = object.header.version;
    let mut r = object.reader();
    if version > 1 {
        return Err(r.unsupported(format!("CameraMonitoring version {version}")));
    }
    let id = object.header.id;
    let tel_id = ((id & 0xff) | ((id & 0x3f00_0000) >> 16)) as u16;
    let what = ((id & 0x00ff_ff00) >> 8) & 0xffff;
    r.skip(8, "known, new_parts, monitor_id")?;
    r.skip(8, "moni_time")?;
    let (n_sectors, n_pixels, _n_drawers, n_gains) = if version == 0 {
        (
            i64::from(r.i16("n_sectors")?),
            i64::from(r.i16("n_pixels")?),
            i64::from(r.i16("n_drawers")?),
            i64::from(r.i16("n_gains")?),
        )
    } else {
        (
            r.varint("n_sectors")?,
            r.varint("n_pixels")?,
            r.varint("n_drawers")?,
            r.varint("n_gains")?,
        )
    };
    let n_sectors = r.dimension(n_sectors, MAX_PIXELS, "n_sectors")?;
    let n_pixels = r.dimension(n_pixels, MAX_PIXELS, "n_pixels")?;
    let n_gains = r.dimension(n_gains, MAX_GAINS, "n_gains")?;
    let mut monitoring = CameraMonitoring {
        tel_id,
        n_gains,
        n_pixels,
        ..Default::default()
    };
    if what & 0x01 != 0 {
        r.skip(12, "status time and bits")?;
    }
    if what & 0x02 != 0 {
        r.skip(8 + 4 + 4 + 4, "trigger counts and rates")?;
        r.skip(4usize.saturating_mul(n_sectors), "sector rates")?;
        r.skip(12, "event and data rates")?;
    }
    if what & 0x04 != 0 {
        r.skip(8, "ped_noise_time")?;
        monitoring.n_ped_slices = Some(r.i16("n_ped_slices")?);
        let n = n_gains.saturating_mul(n_pixels);
        r.check_count(n as i64, 8, "pedestal and noise")?;
        monitoring.pedestal = r.f32_vec(n, "pedestal")?;
        monitoring.noise = r.f32_vec(n, "noise")?;
    }
    Ok(monitoring)
}

/// Laser calibration (type 2023, versions 0-3).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LaserCalibration {
    /// Telescope id.
    pub tel_id: u16,
    /// Number of gains.
    pub n_gains: usize,
    /// Number of pixels.
    pub n_pixels: usize,
    /// dc-to-pe factors `[gain][pixel]` (p.e. per ADC count of the integrated signal).
    pub calib: Vec<f32>,
    /// Time calibration `[gain][pixel]` (ns, version >= 2), empty otherwise.
    pub tm_calib: Vec<f32>,
}

/// Decodes a laser calibration (pyeventio `LaserCalibration`).
pub fn decode_laser_calibration(object: &Object<'_>) -> DecodeResult<LaserCalibration> {
    let version = object.header.version;
    let mut r: ByteReader<'_> = object.reader();
    if version > 3 {
        return Err(r.unsupported(format!("LaserCalibration version {version}")));
    }
    let n_pixels = usize::from(r.u16("n_pixels")?);
    let n_gains = r.i16("n_gains")?;
    let n_gains = r.dimension(i64::from(n_gains), MAX_GAINS, "n_gains")?;
    r.i32("lascal_id")?;
    let n = n_gains.saturating_mul(n_pixels);
    r.check_count(n as i64, 4, "calib")?;
    let calib = r.f32_vec(n, "calib")?;
    if version >= 1 {
        r.skip(
            8usize.saturating_mul(n_gains),
            "max_int_frac, max_pixtm_frac",
        )?;
    }
    let tm_calib = if version >= 2 {
        r.check_count(n as i64, 4, "tm_calib")?;
        r.f32_vec(n, "tm_calib")?
    } else {
        Vec::new()
    };
    Ok(LaserCalibration {
        tel_id: object.header.id as u16,
        n_gains,
        n_pixels,
        calib,
        tm_calib,
    })
}
