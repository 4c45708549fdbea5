//! The Parquet sink: a round trip through the files, and atomicity when a run fails.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::sync::Arc;

use arrow::array::{AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use cascade_runtime::{
    PipelineGraph, RunOptions, SendableRecordBatchStream, Stage, StageContext, StageError,
    StageRole,
};
use cascade_stages::parquet_sink::{ParquetSink, ParquetSinkConfig};
use datafusion_physical_plan::stream::RecordBatchStreamAdapter;

/// Emits `batches` batches of 100 event ids, then fails if `fail` is set.
#[derive(Debug)]
struct Events {
    batches: usize,
    fail: bool,
}

fn schema() -> SchemaRef {
    let unit = std::collections::HashMap::from([("unit".to_string(), "".to_string())]);
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Int64, false).with_metadata(unit),
    ]))
}

impl Stage for Events {
    fn kind(&self) -> &'static str {
        "events"
    }
    fn role(&self) -> StageRole {
        StageRole::Source
    }
    fn output_schema(&self, _: &[SchemaRef]) -> Result<SchemaRef, StageError> {
        Ok(schema())
    }
    fn execute(
        &self,
        _: Vec<SendableRecordBatchStream>,
        _: StageContext,
    ) -> Result<SendableRecordBatchStream, StageError> {
        let fail = self.fail;
        let items = (0..self.batches)
            .map(|b| {
                let ids = Int64Array::from_iter_values((b as i64 * 100)..(b as i64 + 1) * 100);
                Ok(RecordBatch::try_new(schema(), vec![Arc::new(ids)])?)
            })
            .chain(fail.then(|| Err(StageError::Data("corrupt input at byte 1234".into()).into())));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema(),
            futures::stream::iter(items),
        )))
    }
    fn config(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

fn run(
    dir: &Path,
    batches: usize,
    fail: bool,
    max_rows_per_file: usize,
) -> Result<(), cascade_runtime::RunError> {
    let mut graph = PipelineGraph::new();
    graph.add_stage("events", Arc::new(Events { batches, fail }), vec![]);
    let config = ParquetSinkConfig {
        output_dir: dir.display().to_string(),
        row_group_size: 150,
        max_rows_per_file,
        ..ParquetSinkConfig::default()
    };
    graph.add_stage(
        "table",
        Arc::new(ParquetSink::new(config)),
        vec!["events".into()],
    );
    let pipeline = graph
        .compile(RunOptions {
            channel_capacity: 2,
            batch_size: 100,
        })
        .unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(pipeline.run())
        .map(|_| ())
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("table"))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn read_ids(dir: &Path) -> Vec<i64> {
    let mut ids = Vec::new();
    for name in files(dir) {
        let file = std::fs::File::open(dir.join("table").join(name)).unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        assert_eq!(reader.schema().field(0).metadata()["unit"], "");
        for batch in reader.build().unwrap() {
            let batch = batch.unwrap();
            ids.extend(batch.column(0).as_primitive::<Int64Type>().values().iter());
        }
    }
    ids
}

#[test]
fn round_trip_splits_files_and_keeps_every_row_in_order() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 10, false, 400).unwrap();
    assert_eq!(
        files(dir.path()),
        [
            "part-00000.parquet",
            "part-00001.parquet",
            "part-00002.parquet"
        ]
    );
    assert_eq!(read_ids(dir.path()), (0..1000).collect::<Vec<i64>>());
}

#[test]
fn failed_run_leaves_no_file_and_keeps_the_previous_dataset() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 3, false, 1000).unwrap();
    assert_eq!(read_ids(dir.path()).len(), 300);

    let error = run(dir.path(), 20, true, 700).unwrap_err().to_string();
    assert!(
        error.contains("stage `events` failed: corrupt input at byte 1234"),
        "{error}"
    );
    // The earlier, complete dataset is untouched and nothing of the failed run remains.
    assert_eq!(files(dir.path()), ["part-00000.parquet"]);
    assert_eq!(read_ids(dir.path()), (0..300).collect::<Vec<i64>>());

    let fresh = tempfile::tempdir().unwrap();
    assert!(run(fresh.path(), 5, true, 1000).is_err());
    assert!(
        files(fresh.path()).is_empty(),
        "a failed run left {:?}",
        files(fresh.path())
    );
}

#[test]
fn empty_input_gives_a_readable_empty_dataset() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 0, false, 1000).unwrap();
    assert_eq!(files(dir.path()), ["part-00000.parquet"]);
    assert!(read_ids(dir.path()).is_empty());
}
