//! Decoders of the run- and telescope-setup objects that precede the events: run header
//! (2000), MC run header (2001), camera settings (2002), camera organisation (2003), pixel
//! settings (2004), disabled pixels (2005), camera software settings (2006), pointing
//! correction (2007), drive settings (2008) and metadata (75).
//!
//! Layouts follow sim_telarray's `io_hess.c` as documented by pyeventio
//! (`eventio/simtel/objects.py`, `runheader_dtypes.py`, `pixelset.py`).

use crate::bytes::{ByteReader, DecodeResult};
use crate::eventio::Object;

/// Run header (type 2000, versions 0-2): run number, pointing and telescope positions.
#[derive(Debug, Clone, PartialEq)]
pub struct RunHeader {
    /// Run number (ctapipe's `obs_id`).
    pub run: i32,
    /// Start time (unix seconds).
    pub time: i32,
    /// Run type.
    pub run_type: i32,
    /// Tracking mode: 0 alt/az, 1 ra/dec.
    pub tracking_mode: i32,
    /// Array pointing direction (rad): (az, alt) or (ra, dec) depending on the mode.
    pub direction_rad: [f32; 2],
    /// Telescope ids, in file order.
    pub tel_ids: Vec<i16>,
    /// Telescope positions in the ground frame (m), same order as `tel_ids`.
    pub tel_positions_m: Vec<[f32; 3]>,
}

/// Decodes a run header (pyeventio `RunHeader`, `build_dtype_part1/2`).
pub fn decode_run_header(object: &Object<'_>) -> DecodeResult<RunHeader> {
    let version = object.header.version;
    let mut r = object.reader();
    if version > 2 {
        return Err(r.unsupported(format!("RunHeader version {version}")));
    }
    let run = r.i32("run")?;
    let time = r.i32("time")?;
    let run_type = r.i32("run_type")?;
    let tracking_mode = r.i32("tracking_mode")?;
    if version >= 2 {
        r.i32("reverse_flag")?;
    }
    let direction_rad = [r.f32("direction")?, r.f32("direction")?];
    r.skip(8, "offset_fov")?;
    r.f32("conv_depth")?;
    if version >= 1 {
        r.skip(8, "conv_ref_pos")?;
    }
    let n_telescopes = r.i32("n_telescopes")?;
    let n = r.check_count(i64::from(n_telescopes), 14, "telescope list")?;
    let tel_ids = r.i16_vec(n, "tel_id")?;
    let flat = r.f32_vec(3 * n, "tel_pos")?;
    let tel_positions_m = flat.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
    Ok(RunHeader {
        run,
        time,
        run_type,
        tracking_mode,
        direction_rad,
        tel_ids,
        tel_positions_m,
    })
}

/// MC run header (type 2001, version 4): simulation configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct McRunHeader {
    /// Shower program id (1 = CORSIKA).
    pub shower_prog_id: i32,
    /// Shower program version.
    pub shower_prog_vers: i32,
    /// Detector program version (sim_telarray).
    pub detector_prog_vers: i32,
    /// Observation level (m above sea level).
    pub obsheight_m: f32,
    /// Number of showers simulated.
    pub n_showers: i32,
    /// Number of uses of each shower.
    pub n_use: i32,
    /// Core scatter range (m).
    pub core_range_m: [f32; 2],
    /// Altitude range (rad).
    pub alt_range_rad: [f32; 2],
    /// Azimuth range (rad).
    pub az_range_rad: [f32; 2],
    /// Diffuse flag.
    pub diffuse: i32,
    /// View-cone radii (deg).
    pub viewcone_deg: [f32; 2],
    /// Energy range (TeV).
    pub energy_range_tev: [f32; 2],
    /// Spectral index.
    pub spectral_index: f32,
    /// Atmosphere model id.
    pub atmosphere: i32,
}

/// Decodes an MC run header (pyeventio `MCRunHeader`).
pub fn decode_mc_run_header(object: &Object<'_>) -> DecodeResult<McRunHeader> {
    let mut r = object.reader();
    let pair = |r: &mut ByteReader<'_>, what| -> DecodeResult<[f32; 2]> {
        Ok([r.f32(what)?, r.f32(what)?])
    };
    let shower_prog_id = r.i32("shower_prog_id")?;
    let shower_prog_vers = r.i32("shower_prog_vers")?;
    r.i32("shower_prog_start")?;
    r.i32("detector_prog_id")?;
    let detector_prog_vers = r.i32("detector_prog_vers")?;
    r.i32("detector_prog_start")?;
    let obsheight_m = r.f32("obsheight")?;
    let n_showers = r.i32("n_showers")?;
    let n_use = r.i32("n_use")?;
    r.i32("core_pos_mode")?;
    let core_range_m = pair(&mut r, "core_range")?;
    let alt_range_rad = pair(&mut r, "alt_range")?;
    let az_range_rad = pair(&mut r, "az_range")?;
    let diffuse = r.i32("diffuse")?;
    let viewcone_deg = pair(&mut r, "viewcone")?;
    let energy_range_tev = pair(&mut r, "E_range")?;
    let spectral_index = r.f32("spectral_index")?;
    r.skip(16, "B field and injection height")?;
    let atmosphere = r.i32("atmosphere")?;
    Ok(McRunHeader {
        shower_prog_id,
        shower_prog_vers,
        detector_prog_vers,
        obsheight_m,
        n_showers,
        n_use,
        core_range_m,
        alt_range_rad,
        az_range_rad,
        diffuse,
        viewcone_deg,
        energy_range_tev,
        spectral_index,
        atmosphere,
    })
}

/// Camera settings (type 2002, versions 0-6): pixel positions, shapes, areas, optics.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraSettings {
    /// Telescope id (object id).
    pub tel_id: u16,
    /// Number of pixels.
    pub n_pixels: usize,
    /// Equivalent ("nominal") focal length (m).
    pub focal_length_m: f32,
    /// Effective focal length (m), if stored (version >= 5).
    pub effective_focal_length_m: Option<f32>,
    /// Pixel x positions (m), as stored (before ctapipe's de-rotation).
    pub pixel_x_m: Vec<f32>,
    /// Pixel y positions (m).
    pub pixel_y_m: Vec<f32>,
    /// sim_telarray pixel shape code per pixel (0 circle, 1 hexagon, 2 square, 3 hexagon
    /// rotated by 30 deg; -1 unknown for version < 4).
    pub pixel_shape: Vec<i32>,
    /// Pixel areas (m²).
    pub pixel_area_m2: Vec<f32>,
    /// Number of mirror tiles.
    pub n_mirrors: i32,
    /// Total mirror area (m²).
    pub mirror_area_m2: f32,
    /// Camera rotation (rad).
    pub cam_rot_rad: f32,
}

/// Decodes camera settings (pyeventio `CameraSettings`).
pub fn decode_camera_settings(object: &Object<'_>) -> DecodeResult<CameraSettings> {
    let version = object.header.version;
    let mut r = object.reader();
    if version > 6 {
        return Err(r.unsupported(format!("CameraSettings version {version}")));
    }
    let n_pixels = r.i32("n_pixels")?;
    let n = r.check_count(i64::from(n_pixels), 8, "pixel positions")?;
    let focal_length_m = r.f32("focal_length")?;
    let effective_focal_length_m = if version > 4 {
        Some(r.f32("effective_focal_length")?)
    } else {
        None
    };
    if version > 5 {
        r.skip(16, "effective focal length x/y/dx/dy")?;
    }
    let pixel_x_m = r.f32_vec(n, "pixel_x")?;
    let pixel_y_m = r.f32_vec(n, "pixel_y")?;
    let (pixel_shape, pixel_area_m2) = if version >= 4 {
        let curved_surface = r.varint("curved_surface")?;
        let pixels_parallel = r.varint("pixels_parallel")?;
        if curved_surface != 0 {
            r.skip(4 * n, "pixel_z")?;
        }
        if pixels_parallel == 0 {
            r.skip(8 * n, "pixel normals")?;
        }
        let common_pixel_shape = r.varint("common_pixel_shape")?;
        if common_pixel_shape == 0 {
            let shapes = r.varint_vec(n, "pixel_shape")?;
            let areas = r.f32_vec(n, "pixel_area")?;
            r.skip(4 * n, "pixel_size")?;
            (shapes.into_iter().map(|s| s as i32).collect(), areas)
        } else {
            let shape = r.varint("pixel_shape")? as i32;
            let area = r.f32("pixel_area")?;
            r.f32("pixel_size")?;
            (vec![shape; n], vec![area; n])
        }
    } else {
        let areas = r.f32_vec(n, "pixel_area")?;
        if version >= 1 {
            r.skip(4 * n, "pixel_size")?;
        }
        (vec![-1; n], areas)
    };
    let (n_mirrors, mirror_area_m2) = if version >= 2 {
        (r.i32("n_mirrors")?, r.f32("mirror_area")?)
    } else {
        (0, 0.0)
    };
    let cam_rot_rad = if version >= 3 { r.f32("cam_rot")? } else { 0.0 };
    Ok(CameraSettings {
        tel_id: object_tel_id(object),
        n_pixels: n,
        focal_length_m,
        effective_focal_length_m,
        pixel_x_m,
        pixel_y_m,
        pixel_shape,
        pixel_area_m2,
        n_mirrors,
        mirror_area_m2,
        cam_rot_rad,
    })
}

/// Camera organisation (type 2003, versions 1-2): readout channel layout. Only the
/// dimensions are kept (drawer/card/chip/channel maps and trigger sectors are skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CameraOrganization {
    /// Telescope id.
    pub tel_id: u16,
    /// Number of pixels.
    pub n_pixels: i32,
    /// Number of drawers.
    pub n_drawers: i32,
    /// Number of gain channels.
    pub n_gains: i32,
    /// Number of trigger sectors.
    pub n_sectors: i32,
}

/// Decodes a camera organisation (pyeventio `CameraOrganization`).
pub fn decode_camera_organization(object: &Object<'_>) -> DecodeResult<CameraOrganization> {
    let mut r = object.reader();
    Ok(CameraOrganization {
        tel_id: object_tel_id(object),
        n_pixels: r.i32("n_pixels")?,
        n_drawers: r.i32("n_drawers")?,
        n_gains: r.i32("n_gains")?,
        n_sectors: r.i32("n_sectors")?,
    })
}

/// Pixel settings (type 2004, versions 0-3): sampling and the reference pulse shape.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelSettings {
    /// Telescope id.
    pub tel_id: u16,
    /// Number of pixels.
    pub n_pixels: i32,
    /// Width of one readout sample (ns); 0 when not stored (version 0).
    pub time_slice_ns: f32,
    /// Number of samples read out (ctapipe's `n_samples`).
    pub sum_bins: i32,
    /// Sample width of the reference pulse shape (ns).
    pub ref_step_ns: f32,
    /// Reference pulse shape per gain, each `ref_shape_len` samples.
    pub ref_shapes: Vec<Vec<f32>>,
    /// Offset of the summation window (version >= 3).
    pub sum_offset: Option<i32>,
}

/// Decodes pixel settings (pyeventio `PixelSettings`, `pixelset.py`).
pub fn decode_pixel_settings(object: &Object<'_>) -> DecodeResult<PixelSettings> {
    let version = object.header.version;
    let mut r = object.reader();
    if version > 3 {
        return Err(r.unsupported(format!("PixelSettings version {version}")));
    }
    r.skip(12, "setup_id, trigger_mode, min_pixel_mult")?;
    let n_pixels = r.i32("n_pixels")?;
    let n = r.check_count(i64::from(n_pixels), 4, "pixel_HV_DAC")?;
    r.skip(4 * n, "pixel_HV_DAC")?;
    let n_drawers = r.i32("n_drawers")?;
    let nd = r.check_count(i64::from(n_drawers), 4, "threshold_DAC")?;
    r.skip(4 * nd, "threshold_DAC")?;
    let n_drawers_again = r.i32("n_drawers")?;
    let nd = r.check_count(i64::from(n_drawers_again), 4, "ADC_start/ADC_count")?;
    r.skip(4 * nd, "ADC_start/ADC_count")?;
    let (time_slice_ns, sum_bins) = if version >= 1 {
        (r.f32("time_slice")?, r.i32("sum_bins")?)
    } else {
        (0.0, 0)
    };
    let mut ref_step_ns = 0.0;
    let mut ref_shapes = Vec::new();
    if version >= 2 {
        let n_shapes = r.varint("n_ref_shape")?;
        let len = r.varint("l_ref_shape")?;
        let n_shapes = r.check_count(n_shapes, 0, "n_ref_shape")?;
        let len = r.check_count(len, 0, "l_ref_shape")?;
        r.check_count(n_shapes.saturating_mul(len) as i64, 2, "ref_shape")?;
        ref_step_ns = r.f32("ref_step")?;
        for _ in 0..n_shapes {
            let shape = (0..len)
                .map(|_| r.f16("ref_shape"))
                .collect::<DecodeResult<Vec<f32>>>()?;
            ref_shapes.push(shape);
        }
    }
    let sum_offset = if version >= 3 {
        Some(r.i32("sum_offset")?)
    } else {
        None
    };
    Ok(PixelSettings {
        tel_id: object_tel_id(object),
        n_pixels,
        time_slice_ns,
        sum_bins,
        ref_step_ns,
        ref_shapes,
        sum_offset,
    })
}

/// Disabled pixels (type 2005, version 0).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DisabledPixels {
    /// Telescope id.
    pub tel_id: u16,
    /// Pixels excluded from the trigger.
    pub trigger_disabled: Vec<i32>,
    /// Pixels with the high voltage switched off.
    pub hv_disabled: Vec<i32>,
}

/// Decodes disabled pixels (pyeventio `DisabledPixels`).
pub fn decode_disabled_pixels(object: &Object<'_>) -> DecodeResult<DisabledPixels> {
    let mut r = object.reader();
    let n_trig = r.i32("n_trig_disabled")?;
    let n_trig = r.check_count(i64::from(n_trig), 4, "trigger_disabled")?;
    let trigger_disabled = r.i32_vec(n_trig, "trigger_disabled")?;
    let n_hv = r.i32("n_HV_disabled")?;
    let n_hv = r.check_count(i64::from(n_hv), 4, "HV_disabled")?;
    let hv_disabled = r.i32_vec(n_hv, "HV_disabled")?;
    Ok(DisabledPixels {
        tel_id: object_tel_id(object),
        trigger_disabled,
        hv_disabled,
    })
}

/// Camera software settings (type 2006, version 0): zero suppression and data reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CameraSoftwareSettings {
    /// Telescope id.
    pub tel_id: u16,
    /// Data reduction mode.
    pub data_red_mode: i32,
    /// Zero suppression mode.
    pub zero_sup_mode: i32,
}

/// Decodes camera software settings (pyeventio `CameraSoftwareSettings`).
pub fn decode_camera_software_settings(
    object: &Object<'_>,
) -> DecodeResult<CameraSoftwareSettings> {
    let mut r = object.reader();
    r.skip(16, "dynamic trigger and HV settings")?;
    let data_red_mode = r.i32("data_red_mode")?;
    let zero_sup_mode = r.i32("zero_sup_mode")?;
    Ok(CameraSoftwareSettings {
        tel_id: object_tel_id(object),
        data_red_mode,
        zero_sup_mode,
    })
}

/// Metadata key/value pairs (type 75): global (`id == -1`) or for one telescope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryMeta {
    /// Telescope id, or `None` for the global metadata.
    pub tel_id: Option<u16>,
    /// The pairs, in file order.
    pub items: Vec<(String, String)>,
}

/// Decodes metadata (pyeventio `HistoryMeta`).
pub fn decode_history_meta(object: &Object<'_>) -> DecodeResult<HistoryMeta> {
    let mut r = object.reader();
    let n = r.uvarint("n_items")?;
    let n = r.check_count(i64::try_from(n).unwrap_or(i64::MAX), 2, "metadata items")?;
    let items = (0..n)
        .map(|_| {
            Ok((
                r.var_string("metadata key")?,
                r.var_string("metadata value")?,
            ))
        })
        .collect::<DecodeResult<Vec<_>>>()?;
    let id = object.header.id;
    let tel_id = if id < 0 { None } else { Some(id as u16) };
    Ok(HistoryMeta { tel_id, items })
}

/// Telescope id of the per-telescope setup objects: the object id.
fn object_tel_id(object: &Object<'_>) -> u16 {
    object.header.id as u16
}
