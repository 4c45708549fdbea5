//! The `Stage` trait, the smaller `BatchStage` trait for per-batch stages, and the adapter
//! that runs a `BatchStage` on rayon.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Instant;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion_execution::SendableRecordBatchStream;
use datafusion_physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

use crate::{StageError, StageMetrics};

/// What a stage does in a pipeline, deciding where it may appear in a pipeline file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StageRole {
    /// Produces events; has no inputs (`[sources.NAME]`).
    Source,
    /// Transforms its inputs into an output (`[stages.NAME]`).
    Transform,
    /// Consumes its input and writes it somewhere; its output stream is empty (`[sinks.NAME]`).
    Sink,
}

/// How many inputs a stage takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// Exactly this many.
    Exactly(usize),
    /// At least this many (e.g. a join of telescope streams).
    AtLeast(usize),
}

impl Arity {
    /// Checks a count of inputs.
    pub fn check(self, found: usize) -> Result<(), StageError> {
        let ok = match self {
            Arity::Exactly(n) => found == n,
            Arity::AtLeast(n) => found >= n,
        };
        if ok {
            return Ok(());
        }
        let expected = match self {
            Arity::Exactly(n) => n.to_string(),
            Arity::AtLeast(n) => format!("at least {n}"),
        };
        Err(StageError::Arity { expected, found })
    }
}

/// What the runtime hands a stage when it starts.
#[derive(Debug, Clone)]
pub struct StageContext {
    /// The stage's name in the pipeline.
    pub name: String,
    /// The stage's live metrics (a stage may add busy time it spends off the async thread).
    pub metrics: Arc<StageMetrics>,
    /// Telescope events per batch requested by the pipeline (sources use it).
    pub batch_size: usize,
}

/// A pipeline stage: input streams in, one output stream out.
///
/// Implementations hold only their (serde) configuration and the instrument data they
/// need; the physics lives in plain kernel functions they call.
pub trait Stage: Debug + Send + Sync {
    /// The stage kind, as written in pipeline files (`kind = "..."`).
    fn kind(&self) -> &'static str;

    /// Whether the stage is a source, a transform or a sink.
    fn role(&self) -> StageRole {
        StageRole::Transform
    }

    /// How many inputs the stage takes.
    fn arity(&self) -> Arity {
        match self.role() {
            StageRole::Source => Arity::Exactly(0),
            _ => Arity::Exactly(1),
        }
    }

    /// The output schema for the given input schemas, or why the inputs do not fit
    /// (a missing or mistyped column). Called before any data flows.
    fn output_schema(&self, inputs: &[SchemaRef]) -> Result<SchemaRef, StageError>;

    /// Starts the stage on its input streams.
    fn execute(
        &self,
        inputs: Vec<SendableRecordBatchStream>,
        ctx: StageContext,
    ) -> Result<SendableRecordBatchStream, StageError>;

    /// The stage's configuration as JSON (provenance, and shipping plans to executors).
    fn config(&self) -> serde_json::Value;

    /// Called when every stage of the pipeline has finished without error: a sink
    /// publishes what it prepared (the second phase of a commit across sinks, so that a
    /// failure anywhere, even in a stage that does not feed this sink, publishes nothing).
    /// The default has nothing to publish.
    fn commit(&self) -> Result<(), StageError> {
        Ok(())
    }

    /// Called instead of [`Stage::commit`] when the run failed: a sink discards what it
    /// prepared. The default has nothing to discard.
    fn abort(&self) {}
}

/// A stage that maps each input batch to one output batch, independently of other batches
/// (calibration, cleaning, parameters, classification). Wrap it in [`MapStage`].
pub trait BatchStage: Debug + Send + Sync + 'static {
    /// The stage kind, as written in pipeline files.
    fn kind(&self) -> &'static str;

    /// The output schema for the input schema.
    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef, StageError>;

    /// Processes one batch (called on a rayon worker; may use rayon inside).
    fn process(&self, batch: RecordBatch, output: &SchemaRef) -> Result<RecordBatch, StageError>;

    /// The stage's configuration as JSON.
    fn config(&self) -> serde_json::Value;
}

/// Runs a [`BatchStage`] as a [`Stage`]: batches are processed on rayon, up to two at once,
/// and emitted in input order.
#[derive(Debug)]
pub struct MapStage<T>(pub Arc<T>);

impl<T: BatchStage> MapStage<T> {
    /// Wraps a per-batch stage.
    pub fn new(stage: T) -> Self {
        Self(Arc::new(stage))
    }
}

/// Batches of one map stage in flight at once: one being computed while the next waits.
const MAP_STAGE_CONCURRENCY: usize = 2;

impl<T: BatchStage> Stage for MapStage<T> {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }

    fn output_schema(&self, inputs: &[SchemaRef]) -> Result<SchemaRef, StageError> {
        Arity::Exactly(1).check(inputs.len())?;
        self.0.output_schema(&inputs[0])
    }

    fn execute(
        &self,
        mut inputs: Vec<SendableRecordBatchStream>,
        ctx: StageContext,
    ) -> Result<SendableRecordBatchStream, StageError> {
        Arity::Exactly(1).check(inputs.len())?;
        let input = inputs.remove(0);
        let output = self.0.output_schema(&input.schema())?;
        let stage = Arc::clone(&self.0);
        let schema = Arc::clone(&output);
        let stream = input
            .map(move |batch| {
                let stage = Arc::clone(&stage);
                let schema = Arc::clone(&schema);
                let metrics = Arc::clone(&ctx.metrics);
                async move {
                    let batch = batch?;
                    let result = run_on_rayon(move || {
                        let start = Instant::now();
                        let result = stage.process(batch, &schema);
                        metrics.add_busy(start.elapsed());
                        result
                    })
                    .await;
                    Ok(result??)
                }
            })
            .buffered(MAP_STAGE_CONCURRENCY);
        Ok(Box::pin(RecordBatchStreamAdapter::new(output, stream)))
    }

    fn config(&self) -> serde_json::Value {
        self.0.config()
    }
}

/// Runs CPU-bound work on the rayon pool and awaits its result without blocking tokio.
pub async fn run_on_rayon<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, StageError> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let _ = sender.send(work());
    });
    receiver
        .await
        .map_err(|_| StageError::Data("a rayon task panicked".to_string()))
}

/// Checks that `schema` has column `name` of type `expected`.
pub fn check_column(schema: &SchemaRef, name: &str, expected: &DataType) -> Result<(), StageError> {
    let field = schema
        .field_with_name(name)
        .map_err(|_| StageError::MissingColumn {
            column: name.to_string(),
            expected: expected.to_string(),
        })?;
    if !types_match(field.data_type(), expected) {
        return Err(StageError::WrongType {
            column: name.to_string(),
            found: field.data_type().to_string(),
            expected: expected.to_string(),
        });
    }
    Ok(())
}

/// Type equality that ignores list item names, nullability and metadata.
fn types_match(found: &DataType, expected: &DataType) -> bool {
    match (found, expected) {
        (DataType::List(a), DataType::List(b)) => types_match(a.data_type(), b.data_type()),
        (a, b) => a == b,
    }
}
