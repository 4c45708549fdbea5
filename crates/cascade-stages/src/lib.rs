//! The stages of cascade: one module per stage kind, each a configuration struct, a
//! `Stage` implementation that calls the physics kernels, and a registry entry.
//!
//! [`stages()`] is the explicit registry the CLI hands to the pipeline loader.

mod blocking_source;
pub mod calibrate;
pub mod calibration_board;
pub mod clean;
pub mod columns;
pub mod expr;
pub mod filter;
pub mod instrument_sink;
pub mod parameters;
pub mod parquet_sink;
pub mod quality;
pub mod r0_to_r1;
pub mod select;
pub mod simtel_source;
pub mod stereo;
pub mod toy;

use std::sync::Arc;

use cascade_pipeline::StageFactory;

/// Every stage kind this crate provides.
pub fn stages() -> Vec<Arc<dyn StageFactory>> {
    vec![
        Arc::new(toy::factory()),
        Arc::new(r0_to_r1::factory()),
        Arc::new(calibrate::factory()),
        Arc::new(clean::factory()),
        Arc::new(clean::tailcuts_factory()),
        Arc::new(parameters::factory()),
        Arc::new(select::factory()),
        Arc::new(filter::factory()),
        Arc::new(simtel_source::factory()),
        Arc::new(stereo::factory()),
        Arc::new(parquet_sink::factory()),
        Arc::new(instrument_sink::factory()),
    ]
}
