//! A source that replays record batches held in memory, a given number of passes.
//!
//! It feeds benchmarks (`cascade bench` measures stages without any I/O or event
//! generation in the timed run) and tests that need a source with known content. Passes
//! can be made distinct by adding the pass number to an integer key column (e.g. `obs_id`),
//! so that stages that group rows by key (the stereo join) never mix two passes.

use std::sync::Arc;

use arrow::array::{Int32Array, Int64Array};
use arrow::compute::kernels::numeric::add_wrapping;
use arrow::datatypes::{DataType, SchemaRef};
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
    /// Index of the integer column the pass number is added to.
    pass_key: Option<usize>,
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
            pass_key: None,
        })
    }

    /// Replays the batches `passes` times (0 emits nothing).
    pub fn with_passes(mut self, passes: usize) -> Self {
        self.passes = passes;
        self
    }

    /// Adds the pass number (0, 1, ...) to the Int32 or Int64 column `column` of every
    /// replayed row, so that each pass has keys of its own.
    pub fn with_pass_key(mut self, column: &str) -> Result<Self, StageError> {
        let index = self
            .schema
            .index_of(column)
            .map_err(|_| StageError::MissingColumn {
                column: column.to_string(),
                expected: "Int32 or Int64".to_string(),
            })?;
        let data_type = self.schema.field(index).data_type();
        if !matches!(data_type, DataType::Int32 | DataType::Int64) {
            return Err(StageError::WrongType {
                column: column.to_string(),
                found: data_type.to_string(),
                expected: "Int32 or Int64".to_string(),
            });
        }
        self.pass_key = Some(index);
        Ok(self)
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
        let pass_key = self.pass_key;
        let replay = (0..self.passes.saturating_mul(n_batches)).map(move |k| {
            let batch = &batches[k % n_batches];
            match pass_key {
                Some(column) if k >= n_batches => {
                    Ok(with_pass_added(batch, column, k / n_batches)?)
                }
                _ => Ok(batch.clone()),
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream::iter(replay),
        )))
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "batches": self.batches.len(), "passes": self.passes })
    }
}

/// `batch` with `pass` added to its integer column `column` (checked Int32 or Int64).
fn with_pass_added(
    batch: &RecordBatch,
    column: usize,
    pass: usize,
) -> Result<RecordBatch, StageError> {
    let keys = batch.column(column);
    let shifted = match keys.data_type() {
        DataType::Int32 => add_wrapping(keys, &Int32Array::new_scalar(pass as i32))?,
        _ => add_wrapping(keys, &Int64Array::new_scalar(pass as i64))?,
    };
    let mut columns = batch.columns().to_vec();
    columns[column] = shifted;
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}
