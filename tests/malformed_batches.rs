//! Stages that read raw (R0) waveforms reject malformed batches with an error naming the
//! telescope, never a panic: real R0 batches of `lst_muons` (two gains, 1855 pixels, 30
//! samples) from the simtel source of `pipelines/ctapipe_dl1_with_r1.toml`, altered one way
//! at a time, go through its `r0_to_r1` stage and through `calibrate` on R0.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Int8Array, Int16Array, ListArray, RecordBatch, UInt16Array,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{Field, UInt16Type};
use cascade_pipeline::{Edits, LoadedPipeline, Registry, load_pipeline};
use cascade_runtime::{MemorySource, PipelineGraph};
use cascade_testdata::simtel_path;
use futures::TryStreamExt;

fn pipeline() -> LoadedPipeline {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../pipelines/ctapipe_dl1_with_r1.toml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let edits = Edits {
        inputs: vec![simtel_path("lst_muons").display().to_string()],
        ..Edits::default()
    };
    let registry = Registry::new(cascade_stages::stages());
    load_pipeline(path, &text, &registry, &edits).unwrap_or_else(|d| panic!("{d}"))
}

/// The R0 batches of the pipeline's source (reading them also publishes the calibration).
async fn r0_batches(pipeline: &LoadedPipeline) -> Vec<RecordBatch> {
    let mut graph = PipelineGraph::new();
    let source = pipeline.graph.stage("events").unwrap();
    graph.add_stage("events", Arc::clone(source), vec![]);
    let compiled = graph.compile(pipeline.run_options()).unwrap();
    let context = Arc::new(datafusion_execution::TaskContext::default());
    let stream = compiled.roots()[0].execute(0, context).unwrap();
    stream.try_collect().await.unwrap()
}

/// Runs `batches` through the pipeline's stage `stage`; its error message, if it fails.
async fn run_stage(pipeline: &LoadedPipeline, stage: &str, batches: Vec<RecordBatch>) -> String {
    let schema = batches[0].schema();
    let mut graph = PipelineGraph::new();
    graph.add_stage(
        "events",
        Arc::new(MemorySource::new(schema, batches).unwrap()),
        vec![],
    );
    let under_test = pipeline.graph.stage(stage).unwrap();
    graph.add_stage(stage, Arc::clone(under_test), vec!["events".to_string()]);
    let compiled = graph.compile(pipeline.run_options()).unwrap();
    match compiled.run().await {
        Ok(_) => String::new(),
        Err(error) => error.to_string(),
    }
}

/// `batch` with column `name` replaced.
fn with_column(batch: &RecordBatch, name: &str, column: ArrayRef) -> RecordBatch {
    let index = batch.schema().index_of(name).unwrap();
    let mut columns = batch.columns().to_vec();
    columns[index] = column;
    RecordBatch::try_new(batch.schema(), columns).unwrap()
}

/// The waveform column with every row cut to `row_len` samples.
fn cut_waveforms(batch: &RecordBatch, row_len: usize) -> ArrayRef {
    let list = batch.column_by_name("waveform").unwrap().as_list::<i32>();
    let values: Vec<u16> = (0..list.len())
        .flat_map(|row| {
            let samples = list.value(row);
            let samples = samples.as_primitive::<UInt16Type>();
            samples.values()[..row_len].to_vec()
        })
        .collect();
    let item = Arc::new(Field::new(
        "item",
        arrow::datatypes::DataType::UInt16,
        false,
    ));
    Arc::new(ListArray::new(
        item,
        OffsetBuffer::from_lengths(std::iter::repeat_n(row_len, list.len())),
        Arc::new(UInt16Array::from(values)),
        None,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_r0_batches_are_errors_not_panics() {
    let pipeline = pipeline();
    let batches = r0_batches(&pipeline).await;
    let batch = &batches[0];
    let rows = batch.num_rows();
    assert!(rows >= 2);
    let row_len = batch
        .column_by_name("waveform")
        .unwrap()
        .as_list::<i32>()
        .value(0)
        .len();
    assert_eq!(row_len, 2 * 1855 * 30);

    // (what is wrong, the batch, the error expected from each stage)
    type Expected = fn(&str) -> &'static str;
    let cases: [(&str, RecordBatch, Expected); 3] = [
        (
            "waveforms one sample short",
            with_column(batch, "waveform", cut_waveforms(batch, row_len - 1)),
            |_| "telescope 1: waveform of 111299 samples is not 2 gains x 1855 pixels",
        ),
        (
            "one gain announced for two gains' samples",
            with_column(batch, "n_gains", Arc::new(Int8Array::from(vec![1; rows]))),
            |stage| match stage {
                "r0_to_r1" => {
                    "telescope 1: waveform of 111300 samples, but its calibration has 2 gains x 1855 pixels of 60 samples"
                }
                _ => "telescope 1: r0: expected shape [222600], got [111300]",
            },
        ),
        (
            "a telescope not in the instrument",
            with_column(batch, "tel_id", Arc::new(Int16Array::from(vec![999; rows]))),
            |_| "telescope 999 is not in the instrument",
        ),
    ];
    for (what, malformed, expected) in cases {
        for stage in ["r0_to_r1", "calibrate"] {
            let message = run_stage(&pipeline, stage, vec![malformed.clone()]).await;
            assert!(
                message.contains(expected(stage)),
                "{stage}, {what}: expected an error containing `{}`, got `{message}`",
                expected(stage)
            );
        }
    }
    // and the batch as read goes through both
    for stage in ["r0_to_r1", "calibrate"] {
        let message = run_stage(&pipeline, stage, vec![batch.clone()]).await;
        assert!(message.is_empty(), "{stage}: {message}");
    }
}
