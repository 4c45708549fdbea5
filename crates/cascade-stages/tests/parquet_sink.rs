//! The Parquet sink: a round trip through the files, atomicity when a run fails, and the
//! encodings it picks.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    AsArray, FixedSizeListArray, Float32Array, Float64Array, Int64Array, RecordBatch,
};
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Int64Type, Schema, SchemaRef};
use cascade_runtime::{
    MetricsReport, PipelineGraph, RunError, RunOptions, SendableRecordBatchStream, Stage,
    StageContext, StageError, StageRole,
};
use cascade_stages::parquet_sink::{ParquetSink, ParquetSinkConfig};
use datafusion_physical_plan::stream::RecordBatchStreamAdapter;

/// Emits `batches` batches of 100 events (an id, a measured value and a 3-pixel image), then
/// fails if `fail` is set.
#[derive(Debug)]
struct Events {
    batches: usize,
    fail: bool,
}

fn schema() -> SchemaRef {
    let unit = std::collections::HashMap::from([("unit".to_string(), "".to_string())]);
    let pixel = Arc::new(Field::new("item", DataType::Float32, false));
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Int64, false).with_metadata(unit),
        Field::new("intensity", DataType::Float64, false),
        Field::new("image", DataType::FixedSizeList(pixel, 3), false),
    ]))
}

/// The measured value of event `id`.
fn intensity(id: i64) -> f64 {
    id as f64 * 0.37 + 0.5
}

/// The value of pixel `pixel` of event `id`'s image.
fn pixel_value(id: i64, pixel: usize) -> f32 {
    (id as f32).sqrt() * (pixel as f32 + 1.0)
}

fn event_batch(ids: std::ops::Range<i64>) -> RecordBatch {
    let intensities = Float64Array::from_iter_values(ids.clone().map(intensity));
    let pixels = Float32Array::from_iter_values(
        ids.clone()
            .flat_map(|id| (0..3).map(move |pixel| pixel_value(id, pixel))),
    );
    let DataType::FixedSizeList(pixel, _) = schema().field(2).data_type().clone() else {
        unreachable!("the image is a fixed-size list")
    };
    let image = FixedSizeListArray::new(pixel, 3, Arc::new(pixels), None);
    let ids = Int64Array::from_iter_values(ids);
    RecordBatch::try_new(
        schema(),
        vec![Arc::new(ids), Arc::new(intensities), Arc::new(image)],
    )
    .unwrap()
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
            .map(|b| Ok(event_batch((b as i64 * 100)..(b as i64 + 1) * 100)))
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
    let config = ParquetSinkConfig {
        output_dir: dir.display().to_string(),
        row_group_size: 150,
        max_rows_per_file,
        ..ParquetSinkConfig::default()
    };
    run_with(config, batches, fail)
}

fn run_with(
    config: ParquetSinkConfig,
    batches: usize,
    fail: bool,
) -> Result<(), cascade_runtime::RunError> {
    let mut graph = PipelineGraph::new();
    graph.add_stage("events", Arc::new(Events { batches, fail }), vec![]);
    graph.add_stage(
        "table",
        Arc::new(ParquetSink::new(config)),
        vec!["events".into()],
    );
    run_graph(graph).map(|_| ())
}

/// Compiles and runs `graph` to its end.
fn run_graph(graph: PipelineGraph) -> Result<MetricsReport, RunError> {
    let pipeline = graph
        .compile(RunOptions {
            channel_capacity: 2,
            batch_size: 100,
        })
        .unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(pipeline.run())
}

/// The files of the dataset `table` in `dir`, sorted.
fn files(dir: &Path) -> Vec<String> {
    entries(&dir.join("table"))
}

/// The names of the entries of `dir`, sorted (none when it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The event ids of the dataset, in order, after checking every event's other columns.
fn read_ids(dir: &Path) -> Vec<i64> {
    let mut ids = Vec::new();
    for name in files(dir) {
        let file = std::fs::File::open(dir.join("table").join(name)).unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        assert_eq!(reader.schema().field(0).metadata()["unit"], "");
        for batch in reader.build().unwrap() {
            let batch = batch.unwrap();
            let intensities = batch.column(1).as_primitive::<Float64Type>();
            let images = batch.column(2).as_fixed_size_list();
            for (row, &id) in batch
                .column(0)
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .enumerate()
            {
                assert_eq!(intensities.value(row), intensity(id));
                let image = images.value(row);
                let image = image.as_primitive::<Float32Type>().values();
                assert_eq!(image[..], [0, 1, 2].map(|pixel| pixel_value(id, pixel)));
                ids.push(id);
            }
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

    // A failed first run leaves not even the (empty) dataset directory it created, which
    // readers would take for an empty dataset.
    let fresh = tempfile::tempdir().unwrap();
    let output = fresh.path().join("new").join("output");
    assert!(run(&output, 5, true, 1000).is_err());
    assert!(!fresh.path().join("new").exists());
    assert!(fresh.path().exists());
}

#[test]
fn an_output_directory_that_is_a_file_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("output");
    std::fs::write(&file, b"not a directory").unwrap();
    let error = run(&file, 1, false, 1000).unwrap_err().to_string();
    assert!(
        error.contains(&format!("{} is a file, not a directory", file.display())),
        "{error}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
}

/// Temporary part files left by a run that was killed (SIGKILL, a crash) are removed by the
/// next run of the dataset, which holds its lock; other files stay.
#[test]
fn temporary_files_of_runs_that_were_killed_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("table");
    std::fs::create_dir_all(&table).unwrap();
    for name in [
        ".4000000000-17-part-00000.parquet.inprogress",
        ".1-17-part-00003.parquet.inprogress",
        "notes.txt",
    ] {
        std::fs::write(table.join(name), b"x").unwrap();
    }
    run(dir.path(), 2, false, 1000).unwrap();
    assert_eq!(files(dir.path()), ["notes.txt", "part-00000.parquet"]);
}

/// A run that finds the dataset locked by another (live) run fails at once and touches
/// nothing; once the lock is released the dataset can be written.
#[test]
fn a_dataset_another_run_writes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 3, false, 1000).unwrap();
    let lock = std::fs::File::open(dir.path().join(".table.lock")).unwrap();
    lock.lock().unwrap();
    let error = run(dir.path(), 5, false, 1000).unwrap_err().to_string();
    assert!(
        error.contains("another run is writing the dataset"),
        "{error}"
    );
    assert_eq!(read_ids(dir.path()), (0..300).collect::<Vec<i64>>());
    drop(lock);
    run(dir.path(), 5, false, 1000).unwrap();
    assert_eq!(read_ids(dir.path()), (0..500).collect::<Vec<i64>>());
}

/// Fails on its first input batch: a stage that breaks on one branch of a pipeline.
#[derive(Debug)]
struct Rejects;

impl Stage for Rejects {
    fn kind(&self) -> &'static str {
        "rejects"
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
        let failed = futures::StreamExt::map(input, |_| {
            Err(StageError::Data("no batch is acceptable".into()).into())
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, failed)))
    }
    fn config(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// A stage that fails on another branch than a sink's (the sink's own input ends
/// normally) still keeps the sink from publishing: all sinks commit only when the whole
/// pipeline succeeded, and the earlier dataset stays as it was.
#[test]
fn a_failure_on_another_branch_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 3, false, 1000).unwrap();
    let sink = |name: &str| {
        ParquetSink::new(ParquetSinkConfig {
            output_dir: dir.path().display().to_string(),
            ..ParquetSinkConfig::default()
        })
        .with_pipeline_name(name)
    };
    let mut graph = PipelineGraph::new();
    graph.add_stage(
        "events",
        Arc::new(Events {
            batches: 5,
            fail: false,
        }),
        vec![],
    );
    graph.add_stage("table", Arc::new(sink("branches")), vec!["events".into()]);
    graph.add_stage("rejects", Arc::new(Rejects), vec!["events".into()]);
    graph.add_stage("other", Arc::new(sink("branches")), vec!["rejects".into()]);
    let error = run_graph(graph).unwrap_err().to_string();
    assert!(error.contains("no batch is acceptable"), "{error}");
    assert_eq!(files(dir.path()), ["part-00000.parquet"]);
    assert_eq!(read_ids(dir.path()), (0..300).collect::<Vec<i64>>());
    assert!(!dir.path().join("other").exists());
}

#[test]
fn empty_input_gives_a_readable_empty_dataset() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 0, false, 1000).unwrap();
    assert_eq!(files(dir.path()), ["part-00000.parquet"]);
    assert!(read_ids(dir.path()).is_empty());
}

#[test]
fn floats_are_byte_stream_split_without_a_dictionary_and_pixels_without_statistics() {
    use parquet::basic::Encoding;
    for byte_stream_split in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let config = ParquetSinkConfig {
            output_dir: dir.path().display().to_string(),
            row_group_size: 150,
            byte_stream_split,
            ..ParquetSinkConfig::default()
        };
        run_with(config, 3, false).unwrap();
        assert_eq!(read_ids(dir.path()), (0..300).collect::<Vec<i64>>());
        let file = std::fs::File::open(dir.path().join("table/part-00000.parquet")).unwrap();
        let reader = parquet::file::serialized_reader::SerializedFileReader::new(file).unwrap();
        let metadata = parquet::file::reader::FileReader::metadata(&reader);
        for row_group in metadata.row_groups() {
            let encodings = |column: usize| {
                let chunk = row_group.column(column);
                (
                    chunk.column_path().string(),
                    chunk.encodings().collect::<Vec<_>>(),
                )
            };
            let (path, ids) = encodings(0);
            assert!(ids.contains(&Encoding::RLE_DICTIONARY), "{path}: {ids:?}");
            // Statistics for whole-row values, none for the pixels of an image.
            for (column, statistics) in [(0, true), (1, true), (2, false)] {
                let chunk = row_group.column(column);
                assert_eq!(
                    chunk.statistics().is_some(),
                    statistics,
                    "{}",
                    chunk.column_path()
                );
            }
            for column in [1, 2] {
                let (path, floats) = encodings(column);
                assert!(
                    !floats.contains(&Encoding::RLE_DICTIONARY),
                    "{path}: {floats:?}"
                );
                assert_eq!(
                    floats.contains(&Encoding::BYTE_STREAM_SPLIT),
                    byte_stream_split,
                    "{path}: {floats:?}"
                );
            }
        }
    }
}

/// The instrument sink publishes its two tables with a successful run, and nothing when a
/// stage on another branch fails.
#[test]
fn the_instrument_is_published_with_the_run_only() {
    use cascade_stages::instrument_sink::{InstrumentSink, InstrumentSinkConfig};
    let run_with = |dir: &Path, fail: bool| {
        let subarray = cascade_stages::toy::toy_array().subarray;
        let sink = InstrumentSink::new(
            InstrumentSinkConfig {
                output_dir: dir.display().to_string(),
                ..InstrumentSinkConfig::default()
            },
            &subarray,
        )
        .unwrap();
        let mut graph = PipelineGraph::new();
        graph.add_stage(
            "events",
            Arc::new(Events {
                batches: 3,
                fail: false,
            }),
            vec![],
        );
        graph.add_stage("instrument", Arc::new(sink), vec!["events".into()]);
        if fail {
            graph.add_stage("rejects", Arc::new(Rejects), vec!["events".into()]);
            let other = ParquetSink::new(ParquetSinkConfig {
                output_dir: dir.display().to_string(),
                ..ParquetSinkConfig::default()
            });
            graph.add_stage("other", Arc::new(other), vec!["rejects".into()]);
        }
        run_graph(graph)
    };
    let failed = tempfile::tempdir().unwrap();
    assert!(run_with(failed.path(), true).is_err());
    assert!(!failed.path().join("instrument").exists());

    let done = tempfile::tempdir().unwrap();
    run_with(done.path(), false).unwrap();
    let table = |name: &str| {
        let path = done.path().join("instrument").join(name);
        assert_eq!(entries(&path), ["part-00000.parquet"]);
        let file = std::fs::File::open(path.join("part-00000.parquet")).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        reader.map(|b| b.unwrap().num_rows()).sum::<usize>()
    };
    // The 18 telescopes of the toy array; the pixels of its three camera types.
    assert_eq!(table("subarray"), 18);
    assert_eq!(table("camera_geometry"), 1855 + 1764 + 2048);
}
