//! `cascade bench`: end-to-end throughput of cascade's stages, per core, on toy events (or
//! the events of a sim_telarray file) held in memory, compared with ctapipe's measured
//! throughput.
//!
//! Each scenario is a small pipeline built from the registry exactly as a pipeline file
//! would build it. Its inputs are generated once by the toy source (or read once from
//! `--input`) and kept in memory; the timed runs replay them through a [`MemorySource`], so
//! generation, reading, I/O and Parquet writing are not timed. A run replays the inputs as
//! many passes as needed to last `min_time`, and the scenario is run `repeat` times: the
//! median and best process CPU rates are reported (CPU time of every thread of the
//! process, like ctapipe's `time.process_time` figures; wall time for runs of less than
//! 0.1 s of CPU, which the 10 ms clock ticks of that count cannot time).
//!
//! | scenario | input | stages | unit | ctapipe figure |
//! |---|---|---|---|---|
//! | `calibrate` | R1 waveforms | calibrate | telescope event | CameraCalibrator |
//! | `dl1_image_to_parameters` | DL1 images | tailcuts_clean, image_parameters | telescope event | ImageProcessor without true images |
//! | `r1_to_dl1_parameters` | R1 waveforms | the three above | telescope event | CameraCalibrator + ImageProcessor |
//! | `calibrate_quantized` (toy only) | R1 as CTAO's camera stream stores it (`uint16`, scale 80, offset 5) | calibrate | telescope event | CameraCalibrator |
//! | `r1_quantized_to_dl1_parameters` (toy only) | the same | calibrate, tailcuts_clean, image_parameters | telescope event | CameraCalibrator + ImageProcessor |
//! | `r0_to_dl1_image` (`--input` only) | R0 waveforms | calibrate (from R0) | telescope event | CameraCalibrator |
//! | `r0_to_dl1_parameters` (`--input` only) | R0 waveforms | calibrate, tailcuts_clean, image_parameters | telescope event | CameraCalibrator + ImageProcessor |
//! | `join_stereo` | DL1 parameters of the whole toy array | stereo | array event | ShowerProcessor |
//!
//! The telescope-event scenarios use the four LST-like toy telescopes (1855 hexagonal
//! pixels) with 30 samples and compare with ctapipe on those very events when the
//! throughput file has its figures for them ([`TOY_EVENTS`], written by
//! `benches/ctapipe_toy_throughput.py` from `pipelines/bench_toy_events.toml`), else with
//! ctapipe on `lst_muons.simtel.zst` (LSTCam, 1855 pixels, 30 samples, whose muon rings
//! cost ctapipe's ImageProcessor twice what the toy gamma rays do). The stereo scenario
//! uses all 18 toy telescopes and compares with ctapipe on `proton_north_alpha_run201`.
//! The events each ctapipe figure was measured on are printed under the table.
//!
//! With `--input FILE` every scenario replays that file's telescope events instead (all
//! telescopes; the stereo scenario needs several per event) and compares with ctapipe's
//! figures for the file of the same name, when the throughput file has them. Real images
//! are the like-for-like comparison for cleaning and parameters (toy gamma-ray images are
//! smaller than, say, lst_muons' rings, whose timing fit costs more). The file's waveforms
//! are R0: the R1 scenarios start from the R1 the `r0_to_r1` stage made of them before the
//! timed runs, like ctapipe's CameraCalibrator, whose figures start from the R1 its event
//! source made; the `r0_to_*` scenarios also time gain selection, pedestal subtraction and
//! dc-to-pe (compared with the same ctapipe figures, so their ratios are conservative).
//!
//! Under each scenario whose first stage reads every value of an input column (the R1
//! waveforms, the DL1 image) is the least time per row that any implementation needs
//! here: reading those values once, timed on the very buffers the runs replay
//! ([`InputFloor`]), and the ratio to ctapipe that this alone allows. The toy R1 of the
//! default 400 array events is 186 MB, more than a CPU's caches usually hold, so that
//! floor is the time for the waveforms to arrive from memory, as in a pipeline that
//! streams them from files or the network.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use arrow::array::ArrayData;
use arrow::buffer::Buffer;
use arrow::record_batch::RecordBatch;
use cascade_pipeline::{Edits, LoadedPipeline, load_pipeline};
use cascade_runtime::{MemorySource, MetricsReport, PipelineGraph, RunOptions};
use futures::TryStreamExt;
use serde::Serialize;

use crate::commands::{compile, registry, write_atomically};

/// Options of `cascade bench`.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Rayon worker threads (1: per-core figures).
    pub threads: usize,
    /// Array events the toy source generates for the telescope-event scenarios.
    pub events: u64,
    /// Array events the toy source generates for the stereo scenario.
    pub array_events: u64,
    /// Telescope events per batch.
    pub batch_size: usize,
    /// Minimum duration of one timed run (s).
    pub min_time_s: f64,
    /// Timed runs per scenario.
    pub repeat: usize,
    /// ctapipe's `ctapipe_throughput.json`, to compute ratios.
    pub ctapipe: Option<String>,
    /// Scenarios to run (all when empty).
    pub scenarios: Vec<String>,
    /// Where to write the results as JSON.
    pub json: Option<String>,
    /// A sim_telarray file whose events replace the toy events.
    pub input: Option<String>,
}

/// `cascade bench`.
pub fn bench(options: &BenchOptions) -> anyhow::Result<()> {
    if options.threads == 0 || options.repeat == 0 || options.batch_size == 0 {
        bail!("--threads, --repeat and --batch-size must be at least 1");
    }
    if !(0.0..=86_400.0).contains(&options.min_time_s) {
        bail!("--min-time must be between 0 and 86400 s");
    }
    if let Some(unknown) = options
        .scenarios
        .iter()
        .find(|name| !SCENARIOS.iter().any(|s| s.name == name.as_str()))
    {
        bail!(
            "unknown scenario `{unknown}`; scenarios: {}",
            SCENARIOS
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let ctapipe = options
        .ctapipe
        .as_deref()
        .map(CtapipeThroughput::read)
        .transpose()?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads)
        .build_global()
        .context("cannot configure the rayon thread pool")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let named = |s: &&Scenario| options.scenarios.iter().any(|n| n == s.name);
    if options.input.is_none()
        && let Some(raw) = SCENARIOS
            .iter()
            .filter(named)
            .find(|s| s.input == Input::R0Waveforms)
    {
        bail!(
            "scenario `{}` replays the R0 waveforms of a sim_telarray file: give --input FILE",
            raw.name
        );
    }
    if options.input.is_some()
        && let Some(toy) = SCENARIOS
            .iter()
            .filter(named)
            .find(|s| s.input == Input::QuantizedR1Waveforms)
    {
        bail!(
            "scenario `{}` replays toy events stored as CTAO's R1 stream stores them: leave out --input",
            toy.name
        );
    }
    // Without --input, every scenario but those of R0 (toy events are R1); with it, every
    // scenario but those of quantized R1 (sim_telarray files have none).
    let selected: Vec<&Scenario> = SCENARIOS
        .iter()
        .filter(|s| {
            if options.scenarios.is_empty() {
                match s.input {
                    Input::R0Waveforms => options.input.is_some(),
                    Input::QuantizedR1Waveforms => options.input.is_none(),
                    _ => true,
                }
            } else {
                named(s)
            }
        })
        .collect();
    eprintln!(
        "cascade bench: {} thread(s), batch size {}, >= {} s per run, {} runs per scenario",
        options.threads, options.batch_size, options.min_time_s, options.repeat
    );
    let file_name = options.input.as_deref().map(|path| {
        Path::new(path)
            .file_name()
            .map_or(path.to_string(), |name| name.to_string_lossy().into_owned())
    });
    // The stages of the timed runs. With a file, its source (whose reading fills the
    // calibration board of `calibrate`) also prepares the inputs.
    let chain = match &options.input {
        Some(file) => load_with(
            &simtel_pipeline(options.batch_size),
            &Edits {
                inputs: vec![file.clone()],
                ..Edits::default()
            },
        )?,
        None => load(&toy_pipeline("[]", 0, 1, "float32", options.batch_size))?,
    };
    let mut inputs = Inputs::default();
    let mut results = Vec::new();
    for scenario in selected {
        let batches = runtime.block_on(inputs.get(scenario.input, &chain, options))?;
        let floor = InputFloor::measure(scenario.reads_in_full, &batches)?;
        let result = runtime
            .block_on(measure(scenario, batches, &chain, options))
            .with_context(|| format!("scenario {} failed", scenario.name))?;
        let ctapipe_figure = ctapipe
            .as_ref()
            .and_then(|c| c.rate(scenario.ctapipe, file_name.as_deref()));
        results.push(BenchResult::new(scenario, result, ctapipe_figure, floor));
    }
    print_results(&results);
    if let Some(file) = &options.json {
        let report = BenchReport {
            threads: options.threads,
            batch_size: options.batch_size,
            results,
        };
        write_atomically(
            Path::new(file),
            serde_json::to_string_pretty(&report)?.as_bytes(),
        )
        .with_context(|| format!("cannot write {file}"))?;
    }
    Ok(())
}

/// One benchmark: which generated input it replays through which stages.
struct Scenario {
    name: &'static str,
    input: Input,
    /// The timed stages of [`CHAIN`], in order; the first reads the replayed input.
    stages: &'static [&'static str],
    /// Counted rows: telescope events, or array events (rows of the stereo output).
    unit: &'static str,
    ctapipe: CtapipeFigure,
    /// The input columns whose every value the first stage reads (see [`InputFloor`]):
    /// every sample of the R1 waveforms for the default extractor's neighbour sums, every
    /// pixel of the image for tail cuts. None for R0 (the gain selector reads the low gain
    /// only where it selects it) and for the stereo join.
    reads_in_full: &'static [&'static str],
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "calibrate",
        input: Input::R1Waveforms,
        stages: &["calibrate"],
        unit: "tel_event",
        ctapipe: CtapipeFigure::Calibrator,
        reads_in_full: &["waveform"],
    },
    Scenario {
        name: "dl1_image_to_parameters",
        input: Input::Images,
        stages: &["clean", "parameters"],
        unit: "tel_event",
        ctapipe: CtapipeFigure::ImageProcessor,
        reads_in_full: &["image"],
    },
    Scenario {
        name: "r1_to_dl1_parameters",
        input: Input::R1Waveforms,
        stages: &["calibrate", "clean", "parameters"],
        unit: "tel_event",
        ctapipe: CtapipeFigure::CalibratorAndImageProcessor,
        reads_in_full: &["waveform"],
    },
    Scenario {
        name: "calibrate_quantized",
        input: Input::QuantizedR1Waveforms,
        stages: &["calibrate"],
        unit: "tel_event",
        ctapipe: CtapipeFigure::Calibrator,
        reads_in_full: &["waveform"],
    },
    Scenario {
        name: "r1_quantized_to_dl1_parameters",
        input: Input::QuantizedR1Waveforms,
        stages: &["calibrate", "clean", "parameters"],
        unit: "tel_event",
        ctapipe: CtapipeFigure::CalibratorAndImageProcessor,
        reads_in_full: &["waveform"],
    },
    Scenario {
        name: "r0_to_dl1_image",
        input: Input::R0Waveforms,
        stages: &["calibrate"],
        unit: "tel_event",
        ctapipe: CtapipeFigure::Calibrator,
        reads_in_full: &[],
    },
    Scenario {
        name: "r0_to_dl1_parameters",
        input: Input::R0Waveforms,
        stages: &["calibrate", "clean", "parameters"],
        unit: "tel_event",
        ctapipe: CtapipeFigure::CalibratorAndImageProcessor,
        reads_in_full: &[],
    },
    Scenario {
        name: "join_stereo",
        input: Input::ArrayParameters,
        stages: &["stereo"],
        unit: "array_event",
        ctapipe: CtapipeFigure::ShowerProcessor,
        reads_in_full: &[],
    },
];

/// The stages every scenario takes its timed stages from, with their default options
/// (ctapipe's defaults). [`R0_TO_R1`] comes first for sources of R0.
const CHAIN: &str = r#"
[stages.calibrate]
kind = "calibrate"
inputs = ["{calibrate_input}"]

[stages.clean]
kind = "tailcuts_clean"
inputs = ["calibrate"]

[stages.parameters]
kind = "image_parameters"
inputs = ["clean"]

[stages.stereo]
kind = "stereo"
inputs = ["parameters"]
"#;

/// The stage that makes R1 of a file's R0 before the timed runs.
const R0_TO_R1: &str = r#"
[stages.r0_to_r1]
kind = "r0_to_r1"
inputs = ["events"]
"#;

/// [`CHAIN`] after a source of R1 (`raw` false) or R0 (then after [`R0_TO_R1`]).
fn chain(raw: bool) -> String {
    let (first, calibrate_input) = if raw {
        (R0_TO_R1, "r0_to_r1")
    } else {
        ("", "events")
    };
    format!(
        "{first}{}",
        CHAIN.replace("{calibrate_input}", calibrate_input)
    )
}

/// The inputs the scenarios replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// R1 waveforms: of the LST-like toy telescopes, or made of the file's R0 by the
    /// `r0_to_r1` stage.
    R1Waveforms,
    /// The file's R0 waveforms (toy events have none).
    R0Waveforms,
    /// R1 of the LST-like toy telescopes as CTAO's camera data stream stores it (`uint16`
    /// with a scale and an offset; files have none).
    QuantizedR1Waveforms,
    /// Calibrated images of the LST-like toy telescopes, or of the file's telescopes.
    Images,
    /// Image parameters of every telescope of the toy array, or of the file.
    ArrayParameters,
}

/// Inputs generated so far (each at most once).
#[derive(Default)]
struct Inputs {
    generated: Vec<(Input, Vec<RecordBatch>)>,
}

impl Inputs {
    /// The batches of `input`: from `chain` (whose source reads the file) with `--input`,
    /// else from the toy source.
    async fn get(
        &mut self,
        input: Input,
        chain: &LoadedPipeline,
        options: &BenchOptions,
    ) -> anyhow::Result<Vec<RecordBatch>> {
        if let Some((_, batches)) = self.generated.iter().find(|(i, _)| *i == input) {
            return Ok(batches.clone());
        }
        let (tel_ids, n_samples, events, output) = match input {
            Input::R1Waveforms if options.input.is_some() => {
                (LST_TEL_IDS, LST_SAMPLES, options.events, "r0_to_r1")
            }
            Input::R1Waveforms | Input::R0Waveforms | Input::QuantizedR1Waveforms => {
                (LST_TEL_IDS, LST_SAMPLES, options.events, "events")
            }
            Input::Images => (LST_TEL_IDS, LST_SAMPLES, options.events, "calibrate"),
            Input::ArrayParameters => ("[]", 0, options.array_events, "parameters"),
        };
        let encoding = match input {
            Input::QuantizedR1Waveforms => "uint16",
            _ => "float32",
        };
        let started = Instant::now();
        let (batches, origin) = match &options.input {
            Some(file) => (collect(chain, output).await?, file.clone()),
            None => {
                let toy = toy_pipeline(tel_ids, n_samples, events, encoding, options.batch_size);
                let batches = collect(&load(&toy)?, output).await?;
                (batches, format!("{events} toy array events"))
            }
        };
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        eprintln!(
            "prepared {input:?}: {rows} telescope events from {origin} in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        self.generated.push((input, batches.clone()));
        Ok(batches)
    }
}

/// Waveform samples of the toy telescopes: 30, as LSTCam in `lst_muons.simtel.zst`, the
/// file of ctapipe's calibration and image figures.
const LST_SAMPLES: usize = 30;

/// Telescope ids of the four LST-like toy telescopes.
const LST_TEL_IDS: &str = "[1, 2, 3, 4]";

/// The toy source `events` (gamma rays, seed 1) for the given telescopes with `n_samples`
/// samples (0: the toy cameras' own) stored as `encoding` (its `r1_encoding`), and
/// [`CHAIN`].
fn toy_pipeline(
    tel_ids: &str,
    n_samples: usize,
    n_events: u64,
    encoding: &str,
    batch_size: usize,
) -> String {
    format!(
        "[pipeline]\nname = \"bench\"\nbatch_size = {batch_size}\n\n\
         [sources.events]\nkind = \"toy\"\nn_events = {n_events}\nseed = 1\ntel_ids = {tel_ids}\n\
         n_samples = {n_samples}\nr1_encoding = \"{encoding}\"\n{}",
        chain(false)
    )
}

/// The simtel source `events` (its files given by [`Edits::inputs`]), [`R0_TO_R1`] and
/// [`CHAIN`].
fn simtel_pipeline(batch_size: usize) -> String {
    format!(
        "[pipeline]\nname = \"bench\"\nbatch_size = {batch_size}\n\n\
         [sources.events]\nkind = \"simtel\"\n{}",
        chain(true)
    )
}

fn load(text: &str) -> anyhow::Result<LoadedPipeline> {
    load_with(text, &Edits::default())
}

fn load_with(text: &str, edits: &Edits) -> anyhow::Result<LoadedPipeline> {
    load_pipeline("<bench>", text, &registry(), edits)
        .map_err(|diagnostics| anyhow::anyhow!("invalid benchmark pipeline:\n{diagnostics}"))
}

/// Runs the stages of `pipeline` up to `output` and returns the batches `output` emits.
async fn collect(pipeline: &LoadedPipeline, output: &str) -> anyhow::Result<Vec<RecordBatch>> {
    let mut graph = PipelineGraph::new();
    let mut input = None;
    for name in ["events", "r0_to_r1", "calibrate", "clean", "parameters"] {
        if name == "r0_to_r1" && pipeline.graph.stage(name).is_none() {
            continue;
        }
        let stage = pipeline
            .graph
            .stage(name)
            .with_context(|| format!("the benchmark pipeline has no stage `{name}`"))?;
        graph.add_stage(name, Arc::clone(stage), input.into_iter().collect());
        if name == output {
            break;
        }
        input = Some(name.to_string());
    }
    let compiled = compile(&graph, pipeline.run_options())?;
    let [root] = compiled.roots() else {
        bail!("a benchmark input pipeline must have exactly one output");
    };
    let context = Arc::new(datafusion_execution::TaskContext::default());
    let stream = root.execute(0, context)?;
    Ok(stream.try_collect().await?)
}

/// What the timed runs of one scenario measured.
struct Measurement {
    rows_per_run: u64,
    passes: usize,
    cpu_s: Vec<f64>,
    wall_s: Vec<f64>,
    /// Busy time per counted row of each stage (s), from the last run.
    stage_busy_s_per_row: Vec<(String, f64)>,
}

/// Times `scenario` on `batches`: two calibration runs, then `repeat` runs of enough passes
/// to last `min_time_s`. The first calibration run is one pass; the second, as many passes
/// as the first says last a tenth of `min_time_s`, sets the time per pass. One pass of a
/// small file takes about as long as a run's fixed cost (starting its tasks, the first
/// allocations of every stage), so that sizing the runs on it alone made them last a
/// tenth of `min_time_s` on `gamma_prod6_lst_nectarcam` (7 telescope events).
async fn measure(
    scenario: &Scenario,
    batches: Vec<RecordBatch>,
    chain: &LoadedPipeline,
    options: &BenchOptions,
) -> anyhow::Result<Measurement> {
    let Some(first) = batches.first() else {
        bail!(
            "no events for this scenario: raise --events, or give an --input with telescope events"
        );
    };
    // Each pass is an observation of its own, so the stereo join never mixes passes.
    let source = MemorySource::new(first.schema(), batches)?.with_pass_key("obs_id")?;
    let run_options = chain.run_options();
    let run = |passes: usize| {
        let graph = scenario_graph(&chain.graph, scenario, source.clone().with_passes(passes));
        async move { run_timed(graph?, run_options).await }
    };
    let passes_for = |seconds: f64, seconds_per_pass: f64| {
        ((seconds / seconds_per_pass.max(1e-6)).ceil() as usize).max(1)
    };
    let (one_pass, _, _) = run(1).await?;
    let probe = passes_for(options.min_time_s / 10.0, one_pass.wall_seconds);
    let (probed, _, _) = run(probe).await?;
    let passes = passes_for(options.min_time_s, probed.wall_seconds / probe as f64);
    let mut measurement = Measurement {
        rows_per_run: 0,
        passes,
        cpu_s: Vec::new(),
        wall_s: Vec::new(),
        stage_busy_s_per_row: Vec::new(),
    };
    for _ in 0..options.repeat {
        let (report, cpu_s, rows) = run(passes).await?;
        measurement.rows_per_run = rows;
        measurement.cpu_s.push(cpu_s);
        measurement.wall_s.push(report.wall_seconds);
        measurement.stage_busy_s_per_row = report
            .stages
            .iter()
            .filter(|stage| stage.name != "events")
            .map(|stage| {
                (
                    stage.name.clone(),
                    stage.metrics.busy_seconds / rows.max(1) as f64,
                )
            })
            .collect();
    }
    Ok(measurement)
}

/// The timed graph of `scenario`: `source` as `events`, then the scenario's stages taken
/// from `chain`.
fn scenario_graph(
    chain: &PipelineGraph,
    scenario: &Scenario,
    source: MemorySource,
) -> anyhow::Result<PipelineGraph> {
    let mut graph = PipelineGraph::new();
    graph.add_stage("events", Arc::new(source), vec![]);
    let mut input = "events";
    for &name in scenario.stages {
        let stage = chain
            .stage(name)
            .with_context(|| format!("the benchmark chain has no stage `{name}`"))?;
        graph.add_stage(name, Arc::clone(stage), vec![input.to_string()]);
        input = name;
    }
    Ok(graph)
}

/// Runs `graph`. Returns the metrics, the process CPU time (s; the wall time for runs of
/// less than 0.1 s of CPU) and the rows of the last stage.
async fn run_timed(
    graph: PipelineGraph,
    options: RunOptions,
) -> anyhow::Result<(MetricsReport, f64, u64)> {
    let compiled = compile(&graph, options)?;
    let cpu_start = process_cpu_seconds();
    let report = compiled.run().await?;
    // Below ten clock ticks the CPU time says little (it counts whole 10 ms ticks), and
    // zero would give an infinite rate: such short runs report wall time instead.
    let cpu_s = match (cpu_start, process_cpu_seconds()) {
        (Some(start), Some(end)) if end - start >= 0.1 => end - start,
        _ => report.wall_seconds,
    };
    let rows = report.stages.last().map_or(0, |stage| stage.metrics.rows);
    Ok((report, cpu_s, rows))
}

/// CPU time (user + system, s) of every thread of this process, from `/proc/self/stat`;
/// `None` where that file does not exist (then wall time stands in for CPU time).
fn process_cpu_seconds() -> Option<f64> {
    cpu_seconds_from_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// User + system CPU time (s) from the text of a Linux `/proc/PID/stat` file (proc(5):
/// fields 14 and 15, in clock ticks of USER_HZ, which the kernel ABI fixes at 100).
fn cpu_seconds_from_stat(stat: &str) -> Option<f64> {
    const TICKS_PER_SECOND: f64 = 100.0;
    // The command name (field 2) is in parentheses and may itself contain spaces and ')'.
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = after_name.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / TICKS_PER_SECOND)
}

/// One scenario's figures.
#[derive(Debug, Serialize)]
struct BenchResult {
    scenario: &'static str,
    unit: &'static str,
    rows_per_run: u64,
    passes: usize,
    rate_cpu_median: f64,
    rate_cpu_best: f64,
    rate_wall_median: f64,
    /// Busy time per counted row of each stage (µs).
    stage_busy_us_per_row: Vec<(String, f64)>,
    ctapipe_rate_cpu_median: Option<f64>,
    /// The events of ctapipe's figure: a file name, or [`TOY_EVENTS`].
    ctapipe_events: Option<String>,
    ratio_cpu_median: Option<f64>,
    /// The least time per row of any implementation that reads this input.
    input_floor: Option<InputFloor>,
    /// The ratio to ctapipe that reading the input alone allows: ctapipe's time per row
    /// over [`InputFloor::read_us_per_row`].
    ratio_allowed_by_input: Option<f64>,
}

impl BenchResult {
    fn new(
        scenario: &Scenario,
        m: Measurement,
        ctapipe: Option<(f64, &str)>,
        input_floor: Option<InputFloor>,
    ) -> Self {
        let ctapipe_rate = ctapipe.map(|(rate, _)| rate);
        let rows = m.rows_per_run as f64;
        let rates = |seconds: &[f64]| {
            let mut rates: Vec<f64> = seconds.iter().map(|s| rows / s.max(1e-9)).collect();
            rates.sort_by(f64::total_cmp);
            rates
        };
        let cpu = rates(&m.cpu_s);
        let wall = rates(&m.wall_s);
        let median = |rates: &[f64]| rates[rates.len() / 2];
        let rate_cpu_median = median(&cpu);
        Self {
            scenario: scenario.name,
            unit: scenario.unit,
            rows_per_run: m.rows_per_run,
            passes: m.passes,
            rate_cpu_median,
            rate_cpu_best: cpu.last().copied().unwrap_or(0.0),
            rate_wall_median: median(&wall),
            stage_busy_us_per_row: m
                .stage_busy_s_per_row
                .into_iter()
                .map(|(name, s)| (name, s * 1e6))
                .collect(),
            ctapipe_rate_cpu_median: ctapipe_rate,
            ctapipe_events: ctapipe.map(|(_, events)| events.to_string()),
            ratio_cpu_median: ctapipe_rate.map(|c| rate_cpu_median / c),
            ratio_allowed_by_input: input_floor
                .as_ref()
                .zip(ctapipe_rate)
                .map(|(floor, c)| 1e6 / (floor.read_us_per_row * c)),
            input_floor,
        }
    }
}

/// Everything `--json` writes.
#[derive(Debug, Serialize)]
struct BenchReport {
    threads: usize,
    batch_size: usize,
    results: Vec<BenchResult>,
}

fn print_results(results: &[BenchResult]) {
    outln!(
        "\n{:<24} {:>11} {:>9} {:>12} {:>12} {:>12} {:>8}",
        "scenario",
        "unit",
        "rows/run",
        "cpu rate",
        "best",
        "ctapipe",
        "ratio"
    );
    for r in results {
        outln!(
            "{:<24} {:>11} {:>9} {:>10.0}/s {:>10.0}/s {:>12} {:>8}",
            r.scenario,
            r.unit,
            r.rows_per_run,
            r.rate_cpu_median,
            r.rate_cpu_best,
            r.ctapipe_rate_cpu_median
                .map_or("-".to_string(), |c| format!("{c:.0}/s")),
            r.ratio_cpu_median
                .map_or("-".to_string(), |ratio| format!("{ratio:.1}x"))
        );
        for (stage, us) in &r.stage_busy_us_per_row {
            outln!("    {stage:<20} {us:>10.1} µs busy per {}", r.unit);
        }
        if let Some(floor) = &r.input_floor {
            let allowed = r.ratio_allowed_by_input.map_or(String::new(), |ratio| {
                format!(": at most {ratio:.0}x ctapipe")
            });
            outln!(
                "    {:<20} {:>10.1} µs per {} to read {:.1} kB of {} at {:.1} GB/s{allowed}",
                "input",
                floor.read_us_per_row,
                r.unit,
                floor.bytes_per_row / 1e3,
                floor.columns.join(", "),
                floor.read_gb_per_s,
            );
        }
    }
    let mut sources: Vec<&str> = results
        .iter()
        .filter_map(|r| r.ctapipe_events.as_deref())
        .collect();
    sources.sort_unstable();
    sources.dedup();
    for events in sources {
        let scenarios: Vec<&str> = results
            .iter()
            .filter(|r| r.ctapipe_events.as_deref() == Some(events))
            .map(|r| r.scenario)
            .collect();
        outln!("ctapipe measured on {events}: {}", scenarios.join(", "));
    }
}

/// The least time per row that any implementation of a scenario needs on this machine:
/// reading, once per pass, the input columns whose every value its first stage reads
/// ([`Scenario::reads_in_full`]), as fast as this thread reads those very buffers, replayed
/// as the timed runs replay them (from memory for inputs larger than the caches, as the
/// toy R1 waveforms of the default 400 array events: 186 MB).
#[derive(Debug, Serialize)]
struct InputFloor {
    /// The columns read in full.
    columns: Vec<&'static str>,
    /// Bytes of their values per row.
    bytes_per_row: f64,
    /// How fast this thread reads them (GB/s): the best of [`READ_PASSES`] passes.
    read_gb_per_s: f64,
    /// Reading them once (µs per row).
    read_us_per_row: f64,
}

/// Passes over the input that [`InputFloor::measure`] times.
const READ_PASSES: usize = 10;

impl InputFloor {
    /// Times reading the values of `columns` of `batches` (their primitive values, not
    /// their validity or offsets); `None` when there are none.
    fn measure(
        columns: &'static [&'static str],
        batches: &[RecordBatch],
    ) -> anyhow::Result<Option<Self>> {
        let mut values = Vec::new();
        let mut rows = 0;
        for batch in batches {
            rows += batch.num_rows();
            for &name in columns {
                let column = batch
                    .column_by_name(name)
                    .with_context(|| format!("the benchmark input has no column `{name}`"))?;
                collect_values(&column.to_data(), &mut values);
            }
        }
        let bytes: usize = values.iter().map(|(_, range)| range.len()).sum();
        if bytes == 0 || rows == 0 {
            return Ok(None);
        }
        let bytes_per_second = bytes as f64 / best_read_seconds(&values);
        let bytes_per_row = bytes as f64 / rows as f64;
        Ok(Some(Self {
            columns: columns.to_vec(),
            bytes_per_row,
            read_gb_per_s: bytes_per_second / 1e9,
            read_us_per_row: bytes_per_row / bytes_per_second * 1e6,
        }))
    }
}

/// The primitive values of `data` and of its children: each buffer with the byte range
/// of its values.
fn collect_values(data: &ArrayData, values: &mut Vec<(Buffer, Range<usize>)>) {
    if let (Some(width), Some(buffer)) =
        (data.data_type().primitive_width(), data.buffers().first())
    {
        let range = data.offset() * width..(data.offset() + data.len()) * width;
        if range.end <= buffer.len() {
            values.push((buffer.clone(), range));
        }
    }
    for child in data.child_data() {
        collect_values(child, values);
    }
}

/// The shortest of [`READ_PASSES`] passes that read every byte of `values` (s).
fn best_read_seconds(values: &[(Buffer, Range<usize>)]) -> f64 {
    (0..READ_PASSES)
        .map(|_| {
            let started = Instant::now();
            let folded = values.iter().fold(0u64, |folded, (buffer, range)| {
                let (words, rest) = buffer.as_slice()[range.clone()].as_chunks::<8>();
                let words = words
                    .iter()
                    .fold(folded, |xor, word| xor ^ u64::from_ne_bytes(*word));
                rest.iter().fold(words, |xor, &byte| xor ^ u64::from(byte))
            });
            std::hint::black_box(folded);
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
        .max(1e-9)
}

/// Which of ctapipe's measured figures a scenario compares with.
#[derive(Debug, Clone, Copy)]
enum CtapipeFigure {
    Calibrator,
    ImageProcessor,
    CalibratorAndImageProcessor,
    ShowerProcessor,
}

/// The CPU-time medians of `ctapipe_throughput.json` the scenarios compare with.
struct CtapipeThroughput {
    json: serde_json::Value,
}

/// The "file" of ctapipe's figures on the toy events of the telescope-event scenarios
/// themselves (`benches/ctapipe_toy_throughput.py`), the like-for-like comparison.
const TOY_EVENTS: &str = "cascade_toy_lst_like";

/// The ctapipe measurements the toy scenarios compare with otherwise: on LSTCam
/// (telescope-event figures) and on a multi-telescope file (array-event figures).
const CTAPIPE_SINGLE_CAMERA_FILE: &str = "lst_muons.simtel.zst";
const CTAPIPE_ARRAY_FILE: &str = "proton_north_alpha_run201.simtel.zst";

impl CtapipeThroughput {
    fn read(path: &str) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read ctapipe throughput file {path}"))?;
        let json = serde_json::from_str(&text)
            .with_context(|| format!("{path} is not a ctapipe throughput JSON file"))?;
        Ok(Self { json })
    }

    /// ctapipe's median CPU rate for the figure (per telescope or array event) and the
    /// events it was measured on: `file` (a file name) when given, else the toy events
    /// ([`TOY_EVENTS`]) or, without figures for them, the files of the toy comparisons.
    fn rate<'a>(&self, figure: CtapipeFigure, file: Option<&'a str>) -> Option<(f64, &'a str)> {
        let measured_on = |events: &'static str| match file {
            Some(file) => file,
            None => events,
        };
        let single = |key| {
            [TOY_EVENTS, CTAPIPE_SINGLE_CAMERA_FILE]
                .into_iter()
                .map(measured_on)
                .find_map(|events| Some((self.measured(events, key)?, events)))
        };
        match figure {
            CtapipeFigure::Calibrator => single("a_CameraCalibrator"),
            CtapipeFigure::ImageProcessor => single("b_ImageProcessor_no_true_image"),
            // Chained components: their times per event add up.
            CtapipeFigure::CalibratorAndImageProcessor => {
                let (a, events) = single("a_CameraCalibrator")?;
                let b = self.measured(events, "b_ImageProcessor_no_true_image")?;
                Some((1.0 / (1.0 / a + 1.0 / b), events))
            }
            CtapipeFigure::ShowerProcessor => {
                let events = measured_on(CTAPIPE_ARRAY_FILE);
                Some((self.measured(events, "c_ShowerProcessor")?, events))
            }
        }
    }

    fn measured(&self, file: &str, component: &str) -> Option<f64> {
        self.json["files"]
            .as_array()?
            .iter()
            .find(|f| f["name"] == file)?["in_memory"][component]["rate_cpu_median"]
            .as_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctapipe_rates_are_read_and_chained_components_add_their_times() {
        let json = serde_json::json!({ "files": [
            { "name": CTAPIPE_SINGLE_CAMERA_FILE, "in_memory": {
                "a_CameraCalibrator": { "rate_cpu_median": 2000.0 },
                "b_ImageProcessor_no_true_image": { "rate_cpu_median": 500.0 } } },
            { "name": CTAPIPE_ARRAY_FILE, "in_memory": {
                "c_ShowerProcessor": { "rate_cpu_median": 100.0 } } },
        ]});
        let ctapipe = CtapipeThroughput { json };
        let single = Some((2000.0, CTAPIPE_SINGLE_CAMERA_FILE));
        assert_eq!(ctapipe.rate(CtapipeFigure::Calibrator, None), single);
        assert_eq!(
            ctapipe.rate(CtapipeFigure::ImageProcessor, None),
            Some((500.0, CTAPIPE_SINGLE_CAMERA_FILE))
        );
        assert_eq!(
            ctapipe.rate(CtapipeFigure::CalibratorAndImageProcessor, None),
            Some((400.0, CTAPIPE_SINGLE_CAMERA_FILE))
        );
        assert_eq!(
            ctapipe.rate(CtapipeFigure::ShowerProcessor, None),
            Some((100.0, CTAPIPE_ARRAY_FILE))
        );
        // With --input, the figures of that file, none when it was not measured.
        let file = Some(CTAPIPE_ARRAY_FILE);
        assert_eq!(ctapipe.rate(CtapipeFigure::Calibrator, file), None);
        assert_eq!(
            ctapipe.rate(CtapipeFigure::ShowerProcessor, file),
            Some((100.0, CTAPIPE_ARRAY_FILE))
        );
        let file = Some(CTAPIPE_SINGLE_CAMERA_FILE);
        assert_eq!(ctapipe.rate(CtapipeFigure::ShowerProcessor, file), None);
    }

    #[test]
    fn toy_scenarios_prefer_ctapipe_on_the_toy_events_themselves() {
        let json = serde_json::json!({ "files": [
            { "name": CTAPIPE_SINGLE_CAMERA_FILE, "in_memory": {
                "a_CameraCalibrator": { "rate_cpu_median": 2000.0 },
                "b_ImageProcessor_no_true_image": { "rate_cpu_median": 500.0 } } },
            { "name": TOY_EVENTS, "in_memory": {
                "a_CameraCalibrator": { "rate_cpu_median": 3000.0 },
                "b_ImageProcessor_no_true_image": { "rate_cpu_median": 1500.0 } } },
        ]});
        let ctapipe = CtapipeThroughput { json };
        assert_eq!(
            ctapipe.rate(CtapipeFigure::CalibratorAndImageProcessor, None),
            Some((1000.0, TOY_EVENTS))
        );
        // A file's own figures still win with --input.
        assert_eq!(
            ctapipe.rate(CtapipeFigure::Calibrator, Some(CTAPIPE_SINGLE_CAMERA_FILE)),
            Some((2000.0, CTAPIPE_SINGLE_CAMERA_FILE))
        );
        // No stereo figure on the toy events: none.
        assert_eq!(ctapipe.rate(CtapipeFigure::ShowerProcessor, None), None);
    }

    #[test]
    fn cpu_time_is_user_plus_system_ticks_even_with_odd_command_names() {
        let stat = "4242 (my (odd) cmd) R 1 4242 4242 0 -1 4194304 1200 0 0 0 250 37 0 0 20 0 3";
        assert_eq!(cpu_seconds_from_stat(stat), Some(2.87));
        assert_eq!(cpu_seconds_from_stat("4242 (truncated) R 1"), None);
    }
}
