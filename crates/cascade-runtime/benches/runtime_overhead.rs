//! Runtime overhead: batches per second through a chain of 5 pass-through stages.
//!
//! Each batch crosses 6 bounded channels and 5 rayon round trips; the per-batch, per-stage
//! cost divided into a realistic stage's time per batch is the runtime's share
//! (see docs/performance.md).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use cascade_runtime::{
    BatchStage, MapStage, PipelineGraph, RunOptions, SendableRecordBatchStream, Stage,
    StageContext, StageError, StageRole,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datafusion_physical_plan::stream::RecordBatchStreamAdapter;

const BATCHES: usize = 2000;

#[derive(Debug)]
struct Repeat(RecordBatch);

impl Stage for Repeat {
    fn kind(&self) -> &'static str {
        "repeat"
    }
    fn role(&self) -> StageRole {
        StageRole::Source
    }
    fn output_schema(&self, _: &[SchemaRef]) -> Result<SchemaRef, StageError> {
        Ok(self.0.schema())
    }
    fn execute(
        &self,
        _: Vec<SendableRecordBatchStream>,
        _: StageContext,
    ) -> Result<SendableRecordBatchStream, StageError> {
        let batch = self.0.clone();
        let stream = futures::stream::iter((0..BATCHES).map(move |_| Ok(batch.clone())));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.0.schema(),
            stream,
        )))
    }
    fn config(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

#[derive(Debug)]
struct PassThrough;

impl BatchStage for PassThrough {
    fn kind(&self) -> &'static str {
        "pass"
    }
    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef, StageError> {
        Ok(Arc::clone(input))
    }
    fn process(&self, batch: RecordBatch, _: &SchemaRef) -> Result<RecordBatch, StageError> {
        Ok(batch)
    }
    fn config(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

fn chain() -> PipelineGraph {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "event_id",
        DataType::Int64,
        false,
    )]));
    let batch =
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..256))]).unwrap();
    let mut graph = PipelineGraph::new();
    graph.add_stage("source", Arc::new(Repeat(batch)), vec![]);
    let mut previous = "source".to_string();
    for i in 0..5 {
        let name = format!("pass{i}");
        graph.add_stage(
            name.clone(),
            Arc::new(MapStage::new(PassThrough)),
            vec![previous],
        );
        previous = name;
    }
    graph
}

fn runtime_overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("runtime");
    group.throughput(Throughput::Elements(BATCHES as u64));
    group.sample_size(10);
    group.bench_function("5_pass_through_stages_batches", |b| {
        b.iter(|| {
            let pipeline = chain().compile(RunOptions::default()).unwrap();
            runtime.block_on(pipeline.run()).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, runtime_overhead);
criterion_main!(benches);
