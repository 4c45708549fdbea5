//! Runtime behaviour: schema propagation, fan-out, backpressure, cancellation.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use cascade_runtime::{
    BatchStage, FailureKind, GraphError, MapStage, MemorySource, PipelineGraph, RunError,
    RunOptions, SendableRecordBatchStream, Stage, StageContext, StageError, StageRole,
    check_column,
};
use datafusion_physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

fn counter_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "event_id",
        DataType::Int64,
        false,
    )]))
}

/// Emits `batches` batches of `rows` event ids each.
#[derive(Debug)]
struct Counter {
    batches: usize,
    rows: usize,
}

impl Stage for Counter {
    fn kind(&self) -> &'static str {
        "counter"
    }
    fn role(&self) -> StageRole {
        StageRole::Source
    }
    fn output_schema(&self, _: &[SchemaRef]) -> Result<SchemaRef, StageError> {
        Ok(counter_schema())
    }
    fn execute(
        &self,
        _: Vec<SendableRecordBatchStream>,
        _: StageContext,
    ) -> Result<SendableRecordBatchStream, StageError> {
        let rows = self.rows;
        let stream = futures::stream::iter(0..self.batches).map(move |b| {
            let ids = Int64Array::from_iter_values((b * rows..(b + 1) * rows).map(|i| i as i64));
            Ok(RecordBatch::try_new(counter_schema(), vec![Arc::new(ids)])?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            counter_schema(),
            stream,
        )))
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "batches": self.batches, "rows": self.rows })
    }
}

/// Needs column `needs`; fails on the batch containing `fail_at`; otherwise passes through.
#[derive(Debug)]
struct Check {
    needs: &'static str,
    fail_at: Option<i64>,
}

impl BatchStage for Check {
    fn kind(&self) -> &'static str {
        "check"
    }
    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef, StageError> {
        check_column(input, self.needs, &DataType::Int64)?;
        Ok(Arc::clone(input))
    }
    fn process(&self, batch: RecordBatch, _: &SchemaRef) -> Result<RecordBatch, StageError> {
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        if let Some(bad) = self.fail_at.filter(|bad| ids.values().contains(bad)) {
            return Err(StageError::Data(format!("corrupt event {bad}")));
        }
        Ok(batch)
    }
    fn config(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// Consumes batches slowly, recording how many rows it saw.
#[derive(Debug)]
struct SlowSink {
    delay: Duration,
    rows: Arc<AtomicUsize>,
}

impl Stage for SlowSink {
    fn kind(&self) -> &'static str {
        "slow_sink"
    }
    fn role(&self) -> StageRole {
        StageRole::Sink
    }
    fn output_schema(&self, inputs: &[SchemaRef]) -> Result<SchemaRef, StageError> {
        Ok(Arc::clone(&inputs[0]))
    }
    fn execute(
        &self,
        mut inputs: Vec<SendableRecordBatchStream>,
        _: StageContext,
    ) -> Result<SendableRecordBatchStream, StageError> {
        let input = inputs.remove(0);
        let schema = input.schema();
        let delay = self.delay;
        let rows = Arc::clone(&self.rows);
        let stream =
            input
                .then(move |batch| {
                    let rows = Arc::clone(&rows);
                    async move {
                        tokio::time::sleep(delay).await;
                        rows.fetch_add(batch?.num_rows(), Ordering::SeqCst);
                        Ok(None)
                    }
                })
                .filter_map(
                    |item: datafusion_common::Result<Option<RecordBatch>>| async move {
                        item.transpose()
                    },
                );
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
    fn config(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

fn sink(delay_ms: u64) -> (Arc<SlowSink>, Arc<AtomicUsize>) {
    let rows = Arc::new(AtomicUsize::new(0));
    (
        Arc::new(SlowSink {
            delay: Duration::from_millis(delay_ms),
            rows: Arc::clone(&rows),
        }),
        rows,
    )
}

#[test]
fn schema_errors_name_stage_and_column_before_running() {
    let mut graph = PipelineGraph::new();
    graph.add_stage(
        "events",
        Arc::new(Counter {
            batches: 1,
            rows: 1,
        }),
        vec![],
    );
    graph.add_stage(
        "clean",
        Arc::new(MapStage::new(Check {
            needs: "image",
            fail_at: None,
        })),
        vec!["events".into()],
    );
    graph.add_stage(
        "dangling",
        Arc::new(MapStage::new(Check {
            needs: "event_id",
            fail_at: None,
        })),
        vec!["nowhere".into()],
    );
    let errors = graph.check().unwrap_err();
    let messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages.contains(&"stage `dangling`: unknown input `nowhere`".to_string()));
    assert!(
        messages
            .contains(&"stage `clean`: input has no column `image` (expected Int64)".to_string()),
        "{messages:?}"
    );
}

#[test]
fn cycles_are_reported_with_their_path() {
    let mut graph = PipelineGraph::new();
    let check = || {
        Arc::new(MapStage::new(Check {
            needs: "event_id",
            fail_at: None,
        }))
    };
    graph.add_stage("a", check(), vec!["c".into()]);
    graph.add_stage("b", check(), vec!["a".into()]);
    graph.add_stage("c", check(), vec!["b".into()]);
    let errors = graph.check().unwrap_err();
    assert_eq!(errors.len(), 1);
    match &errors[0] {
        GraphError::Cycle { cycle, .. } => assert_eq!(cycle, &["a", "b", "c", "a"]),
        other => panic!("expected a cycle, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_feeds_every_consumer_everything() {
    let mut graph = PipelineGraph::new();
    graph.add_stage(
        "events",
        Arc::new(Counter {
            batches: 50,
            rows: 10,
        }),
        vec![],
    );
    let check = || {
        Arc::new(MapStage::new(Check {
            needs: "event_id",
            fail_at: None,
        }))
    };
    graph.add_stage("first", check(), vec!["events".into()]);
    let (direct, direct_rows) = sink(0);
    let (further, further_rows) = sink(0);
    graph.add_stage("direct", direct, vec!["first".into()]);
    graph.add_stage("second", check(), vec!["first".into()]);
    graph.add_stage("further", further, vec!["second".into()]);
    let pipeline = graph.compile(RunOptions::default()).unwrap();
    assert_eq!(pipeline.roots().len(), 2);
    let report = pipeline.run().await.unwrap();
    assert_eq!(direct_rows.load(Ordering::SeqCst), 500);
    assert_eq!(further_rows.load(Ordering::SeqCst), 500);
    let first = report.stages.iter().find(|s| s.name == "first").unwrap();
    assert_eq!((first.metrics.rows, first.metrics.batches), (500, 50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_sink_keeps_buffered_batches_within_capacity() {
    let capacity = 3;
    let mut graph = PipelineGraph::new();
    graph.add_stage(
        "events",
        Arc::new(Counter {
            batches: 2000,
            rows: 100,
        }),
        vec![],
    );
    graph.add_stage(
        "pass",
        Arc::new(MapStage::new(Check {
            needs: "event_id",
            fail_at: None,
        })),
        vec!["events".into()],
    );
    let (slow, rows) = sink(1);
    graph.add_stage("slow", slow, vec!["pass".into()]);
    let options = RunOptions {
        channel_capacity: capacity,
        batch_size: 100,
    };
    let report = graph.compile(options).unwrap().run().await.unwrap();
    assert_eq!(rows.load(Ordering::SeqCst), 200_000);
    for stage in &report.stages {
        assert!(
            stage.metrics.peak_buffered_batches <= capacity as u64,
            "{} buffered {} batches with capacity {capacity}",
            stage.name,
            stage.metrics.peak_buffered_batches
        );
    }
    let source = &report.stages[0];
    assert!(
        source.metrics.peak_buffered_batches >= 1,
        "the channel was never used"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_error_cancels_the_run_and_names_the_stage() {
    let mut graph = PipelineGraph::new();
    graph.add_stage(
        "events",
        Arc::new(Counter {
            batches: 1_000_000,
            rows: 10,
        }),
        vec![],
    );
    graph.add_stage(
        "calibrate",
        Arc::new(MapStage::new(Check {
            needs: "event_id",
            fail_at: Some(55),
        })),
        vec!["events".into()],
    );
    let (slow, rows) = sink(0);
    graph.add_stage("write", slow, vec!["calibrate".into()]);
    let pipeline = graph
        .compile(RunOptions {
            channel_capacity: 2,
            batch_size: 10,
        })
        .unwrap();
    let error = tokio::time::timeout(Duration::from_secs(30), pipeline.run())
        .await
        .expect("the failing run did not stop")
        .unwrap_err();
    match error {
        RunError::Stage {
            stage,
            message,
            kind,
        } => {
            assert_eq!(stage, "calibrate");
            assert_eq!(message, "corrupt event 55");
            assert_eq!(kind, FailureKind::Data);
        }
        other => panic!("unexpected {other}"),
    }
    assert!(
        rows.load(Ordering::SeqCst) <= 50,
        "events after the failure were written"
    );
    let emitted = pipeline.live_metrics()[0].1.rows_out();
    assert!(
        emitted < 1000,
        "the source kept running after the failure ({emitted} rows)"
    );
}

#[test]
fn plan_tree_has_one_node_per_stage() {
    let mut graph = PipelineGraph::new();
    graph.add_stage(
        "events",
        Arc::new(Counter {
            batches: 1,
            rows: 1,
        }),
        vec![],
    );
    let (s, _) = sink(0);
    graph.add_stage("write", s, vec!["events".into()]);
    let pipeline = graph.compile(RunOptions::default()).unwrap();
    let plan = datafusion_physical_plan::displayable(pipeline.roots()[0].as_ref())
        .indent(false)
        .to_string();
    assert_eq!(
        plan,
        "StageExec: name=write, kind=slow_sink\n  StageExec: name=events, kind=counter\n"
    );
    assert!(graph.to_dot().contains("\"events\" -> \"write\";"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_source_replays_its_batches_for_every_pass() {
    let batch = |ids: Vec<i64>| {
        RecordBatch::try_new(counter_schema(), vec![Arc::new(Int64Array::from(ids))]).unwrap()
    };
    let memory = MemorySource::new(counter_schema(), vec![batch(vec![1, 2, 3]), batch(vec![4])])
        .unwrap()
        .with_passes(3);
    assert_eq!(memory.rows_per_pass(), 4);
    let mut graph = PipelineGraph::new();
    graph.add_stage("events", Arc::new(memory), vec![]);
    let (sink_stage, rows) = sink(0);
    graph.add_stage("sink", sink_stage, vec!["events".into()]);
    assert_eq!(graph.stage("events").unwrap().kind(), "memory");
    assert!(graph.stage("nothing").is_none());
    let report = graph
        .compile(RunOptions::default())
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(rows.load(Ordering::SeqCst), 12);
    let events = report.stages.iter().find(|s| s.name == "events").unwrap();
    assert_eq!((events.metrics.rows, events.metrics.batches), (12, 6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_source_pass_key_makes_every_pass_distinct() {
    let batch = RecordBatch::try_new(
        counter_schema(),
        vec![Arc::new(Int64Array::from(vec![10, 20]))],
    )
    .unwrap();
    let memory = MemorySource::new(counter_schema(), vec![batch])
        .unwrap()
        .with_passes(3)
        .with_pass_key("event_id")
        .unwrap();
    let stream = memory
        .execute(
            vec![],
            StageContext {
                name: "events".into(),
                metrics: Default::default(),
                batch_size: 2,
            },
        )
        .unwrap();
    let batches: Vec<RecordBatch> = stream.map(|b| b.unwrap()).collect().await;
    let ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(ids, [10, 20, 11, 21, 12, 22]);
    let error = MemorySource::new(counter_schema(), vec![])
        .unwrap()
        .with_pass_key("obs_id")
        .unwrap_err();
    assert!(error.to_string().contains("no column `obs_id`"), "{error}");
}

#[test]
fn memory_source_rejects_batches_of_another_schema() {
    let other = Arc::new(Schema::new(vec![Field::new(
        "tel_id",
        DataType::Int64,
        false,
    )]));
    let batch = RecordBatch::try_new(other, vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
    let error = MemorySource::new(counter_schema(), vec![batch]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "batch 0 does not have the schema of the memory source"
    );
}
