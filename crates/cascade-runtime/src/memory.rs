//! A source that replays record batches held in memory, a given number of passes.
//!
//! It feeds benchmarks (`cascade bench` measures stages without any I/O or event
//! generation in the timed run) and tests that need a source with known content.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion_physical_plan::stream::RecordBatchStreamAdapter;
use futures::stream;

use crate::{Arity, SendableRecordBatchStream, Stage, StageContext, StageError, StageRole};

/// Replays its batches, in order, `passes` times.
#[derive(Debug, Clone)]
pub struct MemorySource {
    schema: SchemaRef,
    batches: Arc<[RecordBatch]>,
    passes: usize,
}

impl MemorySource {
    /// A source emitting `batches` once. Every batch must have exactly `schema`.
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Self, StageError> {
        if let Some(position) = batches
            .iter()
            .position(|batch| batch.schema().fields() != schema.fields())
        {
            return Err(StageError::Data(format!(
                "batch {position} does not have the schema of the memory source"
            )));
        }
        Ok(Self {
            schema,
            batches: batches.into(),
            passes: 1,
        })
    }

    /// Replays the batches `passes` times (0 emits nothing).
    pub fn with_passes(mut self, passes: usize) -> Self {
        self.passes = passes;
        self
    }

    /// Rows emitted per pass.
    pub fn rows_per_pass(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

impl Stage for MemorySource {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn role(&self) -> StageRole {
        StageRole::Source
    }

    fn output_schema(&self, inputs: &[SchemaRef]) -> Result<SchemaRef, StageError> {
        Arity::Exactly(0).check(inputs.len())?;
        Ok(Arc::clone(&self.schema))
    }

    fn execute(
        &self,
        inputs: Vec<SendableRecordBatchStream>,
        _ctx: StageContext,
    ) -> Result<SendableRecordBatchStream, StageError> {
        Arity::Exactly(0).check(inputs.len())?;
        let batches = Arc::clone(&self.batches);
        let n_batches = batches.len();
        let replay = (0..self.passes * n_batches).map(move |k| Ok(batches[k % n_batches].clone()));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream::iter(replay),
        )))
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "batches": self.batches.len(), "passes": self.passes })
    }
}
