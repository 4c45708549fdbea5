//! Decoders of the sim_telarray object types, one function per type, each taking the
//! framed [`Object`] and returning a plain struct.

pub mod calibration;
pub mod event;
pub mod setup;

use crate::error::DecodeError;
use crate::eventio::Object;

/// Decodes `object` with the decoder of its type, discarding the result (used by the fuzz
/// target to reach every decoder); types without a decoder succeed.
pub fn decode_any(object: &Object<'_>) -> Result<(), DecodeError> {
    match object.header.object_type {
        75 => setup::decode_history_meta(object).map(drop),
        2000 => setup::decode_run_header(object).map(drop),
        2001 => setup::decode_mc_run_header(object).map(drop),
        2002 => setup::decode_camera_settings(object).map(drop),
        2003 => setup::decode_camera_organization(object).map(drop),
        2004 => setup::decode_pixel_settings(object).map(drop),
        2005 => setup::decode_disabled_pixels(object).map(drop),
        2006 => setup::decode_camera_software_settings(object).map(drop),
        2009 => event::decode_central_trigger(object).map(drop),
        2011 => event::decode_telescope_event_header(object).map(drop),
        2012 => event::decode_adc_sums(object).map(drop),
        2013 => event::decode_adc_samples(object, &mut event::AdcSamples::default()),
        2016 => event::decode_pixel_timing(object).map(drop),
        2020 => event::decode_mc_shower(object).map(drop),
        2021 => event::decode_mc_event(object).map(drop),
        2022 => calibration::decode_camera_monitoring(object).map(drop),
        2023 => calibration::decode_laser_calibration(object).map(drop),
        t if crate::eventio::tracking_tel_id(t).is_some() => {
            event::decode_tracking_position(object).map(drop)
        }
        _ => Ok(()),
    }
}
