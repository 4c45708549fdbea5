//! The streaming runtime of cascade: stages over async streams of Arrow record batches.
//!
//! ```text
//!   source ──▶ [bounded channel] ──▶ stage ──▶ [bounded channel] ──┬──▶ sink
//!                                                                  └──▶ stage ──▶ sink
//! ```
//!
//! * A [`Stage`] maps input streams (DataFusion [`SendableRecordBatchStream`]s) to one output
//!   stream, and knows its output schema from its input schemas before any data flows.
//!   Per-batch stages implement the smaller [`BatchStage`] and run their kernels on rayon.
//! * A [`PipelineGraph`] wires named stages, checks names, cycles and schemas (reporting every
//!   problem), and compiles into a tree of DataFusion [`ExecutionPlan`] nodes ([`StageExec`]),
//!   one node per stage, so the same plan can later be shipped to Ballista executors.
//! * Every edge is a bounded channel (backpressure: memory stays bounded whatever the input
//!   size); a stage feeding several consumers fans out to one channel per consumer.
//! * The first error stops the pipeline: tasks are aborted and the error names its stage.
//!
//! Tokio only moves batches; computation happens in the stages' kernels on rayon.
//!
//! [`ExecutionPlan`]: datafusion_physical_plan::ExecutionPlan

mod error;
mod exec;
mod graph;
mod memory;
mod metrics;
mod stage;

pub use datafusion_execution::SendableRecordBatchStream;
pub use error::{FailureKind, RunError, StageError, StageFailure, ValuePosition};
pub use exec::StageExec;
pub use graph::{CompiledPipeline, GraphError, PipelineGraph, RunOptions};
pub use memory::MemorySource;
pub use metrics::{MetricsReport, StageMetrics, StageMetricsSnapshot, StageReport};
pub use stage::{
    Arity, BatchStage, MapStage, Stage, StageContext, StageRole, check_column, run_on_rayon,
};
