//! Pipeline files: the declarative TOML that names sources, stages and sinks and wires them.
//!
//! ```toml
//! [pipeline]
//! batch_size = 256
//!
//! [sources.events]
//! kind = "toy"
//! n_events = 1000
//!
//! [stages.clean]
//! kind = "tailcuts_clean"
//! inputs = ["events"]
//! [stages.clean.overrides."LST*"]
//! picture_threshold_pe = 8.0
//!
//! [sinks.dl1]
//! kind = "parquet"
//! inputs = ["clean"]
//! ```
//!
//! [`load_pipeline`] checks a file in phases and reports every problem with its line and
//! column ([`Diagnostics`]); on success it returns a [`LoadedPipeline`] whose
//! [`PipelineGraph`](cascade_runtime::PipelineGraph) the runtime compiles and runs.
//! Stage kinds come from an explicit [`Registry`] of [`StageFactory`]s; their options
//! are [`StageConfig`] structs declared with [`stage_config!`], the single source of the
//! options' names, types, defaults and documentation.

pub mod config;
mod diagnostics;
mod load;
mod per_telescope;
mod registry;

pub use config::{OptionDoc, StageConfig};
pub use diagnostics::{Diagnostic, Diagnostics, Location, did_you_mean};
pub use load::{Edits, EntryInfo, LoadedPipeline, PipelineSettings, load_pipeline};
pub use per_telescope::{PerTelescope, TelescopeSelector};
pub use registry::{
    BuildContext, BuildError, BuildFn, BuiltStage, OptionValue, Registry, SharedObject,
    StageFactory, TypedFactory, deserialize_options,
};
