//! `cascade`: the command line of the cascade IACT event-processing framework.
//!
//! ```text
//! cascade run PIPELINE [--input PATH...] [--output DIR] [--set key=value]... [--metrics FILE]
//! cascade validate PIPELINE [--set key=value]...
//! cascade graph PIPELINE
//! cascade schema [LEVEL]
//! cascade stages [KIND]
//! cascade info FILE [--json]
//! cascade bench [--threads N] [--ctapipe ctapipe_throughput.json] [--json FILE]
//! ```

/// `println!` to stdout that ends the program quietly when stdout is closed early
/// (`cascade info FILE | head`) instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::write_stdout(format_args!($($arg)*), true) };
}

/// `print!` with the behaviour of [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::write_stdout(format_args!($($arg)*), false) };
}

mod bench;
mod commands;
mod info;
mod interrupt;
mod progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: batches of waveforms are tens of MB, which
/// glibc maps and unmaps batch after batch (a page fault and a zeroed page every 4 kB);
/// mimalloc keeps them. R1 -> DL1 parameters on toy events: +4-10 % events/s per core.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// cascade: streaming event processing for arrays of Cherenkov telescopes.
#[derive(Debug, Parser)]
#[command(name = "cascade", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options that edit a pipeline file from the command line.
#[derive(Debug, clap::Args)]
struct EditArgs {
    /// Set any option: `--set stages.clean.picture_threshold_pe=8` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline file.
    Run {
        /// The pipeline file (TOML).
        pipeline: String,
        /// Input files for the first source (replace its `paths`).
        #[arg(long = "input", num_args = 1.., value_name = "PATH")]
        inputs: Vec<String>,
        /// Output directory for every sink (replaces their `output_dir`).
        #[arg(long, value_name = "DIR")]
        output: Option<String>,
        #[command(flatten)]
        edits: EditArgs,
        /// Write per-stage metrics as JSON to this file.
        #[arg(long, value_name = "FILE")]
        metrics: Option<String>,
        /// No progress bar and no metrics table.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Check a pipeline file and report every problem with its line.
    Validate {
        /// The pipeline file (TOML).
        pipeline: String,
        /// Input files for the first source.
        #[arg(long = "input", num_args = 1.., value_name = "PATH")]
        inputs: Vec<String>,
        #[command(flatten)]
        edits: EditArgs,
    },
    /// Print the stage graph of a pipeline file as Graphviz DOT.
    Graph {
        /// The pipeline file (TOML).
        pipeline: String,
        /// Input files for the first source (the graph is checked against them).
        #[arg(long = "input", num_args = 1.., value_name = "PATH")]
        inputs: Vec<String>,
        #[command(flatten)]
        edits: EditArgs,
    },
    /// Print the Arrow schema of a data level (all levels without an argument).
    Schema {
        /// Level name: subarray, camera_geometry, r0, r1, dl1_images, dl1_parameters,
        /// dl2_shower, simulation_shower.
        level: Option<String>,
        /// Print the reference of every level as Markdown (docs/schemas.md).
        #[arg(long)]
        markdown: bool,
    },
    /// List the stage kinds and their options with defaults.
    Stages {
        /// Show only this kind.
        kind: Option<String>,
        /// Print the reference as Markdown (docs/stages.md is generated this way).
        #[arg(long)]
        markdown: bool,
    },
    /// Measure events/s per core of the main stages on toy events held in memory, compare
    /// with ctapipe's measured throughput, and show how long reading the input alone takes.
    Bench {
        /// Rayon worker threads (1 gives per-core figures).
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Toy array events generated for the telescope-event scenarios (the 4 LST-like
        /// telescopes only; about two of them see each event).
        #[arg(long, default_value_t = 400)]
        events: u64,
        /// Toy array events generated for the stereo scenario (all 18 telescopes).
        #[arg(long, default_value_t = 1000)]
        array_events: u64,
        /// Telescope events per batch.
        #[arg(long, default_value_t = 256)]
        batch_size: usize,
        /// Minimum duration of one timed run (s); inputs are replayed until it is reached.
        #[arg(long, default_value_t = 2.0)]
        min_time: f64,
        /// Timed runs per scenario (the median and best are reported).
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// ctapipe's measured throughput to compute ratios: a ctapipe_throughput.json, or the
        /// figures of benches/ctapipe_toy_throughput.py on the toy events themselves.
        #[arg(long, value_name = "FILE")]
        ctapipe: Option<String>,
        /// Run only these scenarios: calibrate, dl1_image_to_parameters,
        /// r1_to_dl1_parameters, join_stereo; without --input calibrate_quantized and
        /// r1_quantized_to_dl1_parameters (toy R1 stored as CTAO's camera stream stores it),
        /// with --input r0_to_dl1_image and r0_to_dl1_parameters (every scenario of the
        /// input by default).
        #[arg(long = "scenario", value_name = "NAME")]
        scenarios: Vec<String>,
        /// Write the results as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<String>,
        /// Replay the telescope events of this sim_telarray file instead of toy events
        /// (ratios against ctapipe's figures for the file of the same name).
        #[arg(long, value_name = "FILE")]
        input: Option<String>,
    },
    /// Describe what a file holds (sim_telarray file or Parquet dataset).
    Info {
        /// The file or dataset directory.
        file: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

/// Writes to stdout; a closed pipe ends the program with success (the reader has all it wanted).
fn write_stdout(text: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_fmt(text).and_then(|()| {
        if newline {
            stdout.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    if let Err(error) = written {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {error}");
        std::process::exit(1);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            pipeline,
            inputs,
            output,
            edits,
            metrics,
            quiet,
        } => commands::run(
            &pipeline,
            inputs,
            output,
            edits.sets,
            metrics.as_deref(),
            quiet,
        ),
        Command::Validate {
            pipeline,
            inputs,
            edits,
        } => commands::validate(&pipeline, inputs, edits.sets),
        Command::Graph {
            pipeline,
            inputs,
            edits,
        } => commands::graph(&pipeline, inputs, edits.sets),
        Command::Schema { level, markdown } => commands::schema(level.as_deref(), markdown),
        Command::Stages { kind, markdown } => commands::stages(kind.as_deref(), markdown),
        Command::Info { file, json } => commands::info(&file, json),
        Command::Bench {
            threads,
            events,
            array_events,
            batch_size,
            min_time,
            repeat,
            ctapipe,
            scenarios,
            json,
            input,
        } => bench::bench(&bench::BenchOptions {
            threads,
            events,
            array_events,
            batch_size,
            min_time_s: min_time,
            repeat,
            ctapipe,
            scenarios,
            json,
            input,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(exit_status(&error))
        }
    }
}

/// The exit status of a failed command (README, "Exit status"): 2 for a request that
/// cannot be done as given (an invalid pipeline file or option; clap uses 2 for command-line
/// errors too), 3 for a failure to read or write a file, 1 for input data that cannot be
/// processed and anything else, 130 and 143 for SIGINT and SIGTERM.
fn exit_status(error: &anyhow::Error) -> u8 {
    if let Some(signal) = error.downcast_ref::<interrupt::Interrupted>() {
        return signal.exit_code();
    }
    if error.downcast_ref::<commands::InvalidRequest>().is_some() {
        return 2;
    }
    match error
        .downcast_ref::<cascade_runtime::RunError>()
        .map(cascade_runtime::RunError::kind)
    {
        Some(cascade_runtime::FailureKind::Config) => 2,
        Some(cascade_runtime::FailureKind::Io) => 3,
        Some(cascade_runtime::FailureKind::Data) => 1,
        // Outside a run (`info`, the metrics file): an I/O error in the chain, unless it
        // says the data is damaged.
        None if error.chain().any(|cause| {
            cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
                !matches!(
                    io.kind(),
                    std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
                )
            })
        }) =>
        {
            3
        }
        None => 1,
    }
}
