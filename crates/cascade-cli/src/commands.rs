//! The subcommands: each loads what it needs, does one thing, and reports errors with context.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use cascade_pipeline::{Edits, LoadedPipeline, Registry, StageFactory, load_pipeline};
use cascade_runtime::{CompiledPipeline, MetricsReport, PipelineGraph, RunOptions};
use cascade_schema::Level;

use crate::progress::Progress;

/// What the command was asked to do cannot be done as given: an unreadable or invalid
/// pipeline file, or an option that does not fit (the process exits with status 2, like
/// for a command-line error).
#[derive(Debug)]
pub struct InvalidRequest(String);

impl std::fmt::Display for InvalidRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidRequest {}

/// Fails with an [`InvalidRequest`].
macro_rules! invalid {
    ($($message:tt)*) => {
        return Err(anyhow::Error::new(InvalidRequest(format!($($message)*))))
    };
}

/// The registry of every stage kind cascade ships.
pub fn registry() -> Registry {
    Registry::new(cascade_stages::stages())
}

/// Reads and checks a pipeline file; prints every problem and fails if there is one.
fn load(path: &str, edits: &Edits) -> anyhow::Result<LoadedPipeline> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => invalid!("cannot read pipeline file {path}: {error}"),
    };
    match load_pipeline(path, &text, &registry(), edits) {
        Ok(pipeline) => Ok(pipeline),
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            invalid!(
                "{path} cannot run as given ({} error{} above)",
                diagnostics.len(),
                if diagnostics.len() == 1 { "" } else { "s" }
            )
        }
    }
}

/// Fails for a pipeline without a sink: it would run and keep nothing (a library may build
/// such graphs to collect a stage's output; a pipeline file must say where results go).
fn require_a_sink(path: &str, pipeline: &LoadedPipeline) -> anyhow::Result<()> {
    if !pipeline
        .entries
        .iter()
        .any(|e| e.role == cascade_runtime::StageRole::Sink)
    {
        invalid!(
            "{path} has no sink, so a run would keep nothing: add a [sinks.NAME] table (e.g. \
             kind = \"parquet\")"
        );
    }
    Ok(())
}

/// `cascade run`.
pub fn run(
    path: &str,
    inputs: Vec<String>,
    output: Option<String>,
    sets: Vec<String>,
    metrics_file: Option<&str>,
    quiet: bool,
) -> anyhow::Result<()> {
    let pipeline = load(
        path,
        &Edits {
            inputs,
            output,
            sets,
        },
    )?;
    require_a_sink(path, &pipeline)?;
    let datasets = datasets(&pipeline);
    if let Some(file) = metrics_file
        && let Err(error) = check_writable_place(Path::new(file))
    {
        invalid!("cannot write metrics to {file}: {error}");
    }
    let compiled = compile(&pipeline.graph, pipeline.run_options())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        let progress = (!quiet).then(|| Progress::start(compiled.live_metrics()));
        // An interrupted run is cancelled like a failed one: its sinks remove their
        // temporary files and publish nothing (the runtime waits for their threads when it
        // is dropped, before the error is reported).
        let result = tokio::select! {
            result = compiled.run() => result.map_err(anyhow::Error::from),
            signal = crate::interrupt::interruption() => Err(anyhow::Error::new(signal)),
        };
        if let Some(progress) = progress {
            progress.finish().await;
        }
        result
    });
    let report = report.with_context(|| format!("pipeline {path} failed"))?;
    if !quiet {
        print_report(&report, &datasets);
    }
    if let Some(file) = metrics_file {
        let json = serde_json::to_string_pretty(&report)?;
        write_atomically(Path::new(file), json.as_bytes())
            .with_context(|| format!("cannot write metrics to {file}"))?;
    }
    Ok(())
}

/// Fails unless `file` can be created where it is named: its directory exists (checked
/// before a run, so that a long run does not end in an error about its metrics file).
fn check_writable_place(file: &Path) -> anyhow::Result<()> {
    let directory = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !directory.is_dir() {
        bail!("{} is not a directory", directory.display());
    }
    if file.is_dir() {
        bail!("it is a directory");
    }
    Ok(())
}

/// Compiles a checked graph; every graph error becomes one line of the error.
pub(crate) fn compile(
    graph: &PipelineGraph,
    options: RunOptions,
) -> anyhow::Result<CompiledPipeline> {
    graph.compile(options).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::Error::new(InvalidRequest(lines.join("\n")))
    })
}

/// `cascade validate`.
pub fn validate(path: &str, inputs: Vec<String>, sets: Vec<String>) -> anyhow::Result<()> {
    let pipeline = load(
        path,
        &Edits {
            inputs,
            output: None,
            sets,
        },
    )?;
    require_a_sink(path, &pipeline)?;
    outln!(
        "{path}: valid ({} sources, {} stages, {} sinks; {} telescopes)",
        pipeline
            .entries
            .iter()
            .filter(|e| e.role == cascade_runtime::StageRole::Source)
            .count(),
        pipeline
            .entries
            .iter()
            .filter(|e| e.role == cascade_runtime::StageRole::Transform)
            .count(),
        pipeline
            .entries
            .iter()
            .filter(|e| e.role == cascade_runtime::StageRole::Sink)
            .count(),
        pipeline.subarray.telescopes.len()
    );
    Ok(())
}

/// `cascade graph`.
pub fn graph(path: &str, inputs: Vec<String>, sets: Vec<String>) -> anyhow::Result<()> {
    let pipeline = load(
        path,
        &Edits {
            inputs,
            sets,
            ..Edits::default()
        },
    )?;
    out!("{}", pipeline.graph.to_dot());
    Ok(())
}

/// `cascade schema [LEVEL]`.
pub fn schema(level: Option<&str>, markdown: bool) -> anyhow::Result<()> {
    if markdown {
        out!("{}", cascade_schema::markdown_reference());
        return Ok(());
    }
    let levels: Vec<Level> = match level {
        None => Level::ALL.to_vec(),
        Some(name) => match Level::from_name(name) {
            Some(level) => vec![level],
            None => bail!(
                "unknown data level `{name}`; levels: {}",
                Level::ALL
                    .iter()
                    .map(|l| l.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    };
    for level in levels {
        outln!("{} — {}", level.name(), level.description());
        for field in level.declarations() {
            let unit = if field.unit.is_empty() {
                "-"
            } else {
                &field.unit
            };
            outln!(
                "  {:<36} {:<14} {:<8} {}",
                field.name,
                field.type_name,
                unit,
                field.description
            );
        }
        outln!("");
    }
    Ok(())
}

/// `cascade stages [KIND] [--markdown]`.
pub fn stages(kind: Option<&str>, markdown: bool) -> anyhow::Result<()> {
    let registry = registry();
    let factories: Vec<&Arc<dyn StageFactory>> = match kind {
        None => registry.factories().collect(),
        Some(kind) => match registry.get(kind) {
            Some(factory) => vec![factory],
            None => bail!(
                "unknown stage kind `{kind}`; {}",
                cascade_pipeline::did_you_mean(kind, registry.factories().map(|f| f.kind()))
                    .unwrap_or_else(|| format!(
                        "the kinds are {}",
                        registry
                            .factories()
                            .map(|f| format!("`{}`", f.kind()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
            ),
        },
    };
    if markdown {
        out!("{}", stages_markdown(&factories));
        return Ok(());
    }
    for factory in factories {
        outln!(
            "{} ({:?}) — {} {}",
            factory.kind(),
            factory.role(),
            factory.description(),
            telescope_note(factory.as_ref())
        );
        for option in factory.options() {
            outln!(
                "  {:<24} {:<12} = {:<16} {}",
                option.name,
                option.type_name,
                option.default,
                option.doc
            );
        }
        outln!("");
    }
    Ok(())
}

/// The stage reference page (docs/stages.md).
pub fn stages_markdown(factories: &[&Arc<dyn StageFactory>]) -> String {
    let mut page = String::from(
        "# Stage reference\n\nGenerated by `cascade stages --markdown` from the stages' configuration structs; \
         a test fails when this page is stale.\n\nEvery option is optional: the default applies when it is absent.\n",
    );
    for factory in factories {
        let role = format!("{:?}", factory.role()).to_lowercase();
        page.push_str(&format!(
            "\n## `{}` ({role})\n\n{} {}\n\n",
            factory.kind(),
            factory.description(),
            telescope_note(factory.as_ref())
        ));
        page.push_str("| option | type | default | description |\n|---|---|---|---|\n");
        for option in factory.options() {
            page.push_str(&format!(
                "| `{}` | `{}` | `{}` | {} |\n",
                option.name,
                option.type_name.replace(' ', ""),
                option.default.replace('|', "\\|"),
                option.doc.replace('|', "\\|")
            ));
        }
    }
    page
}

/// Whether a kind's options may differ per telescope, for the stage reference.
fn telescope_note(factory: &dyn StageFactory) -> &'static str {
    if factory.per_telescope() {
        "Its options may differ per telescope type or id (`overrides`)."
    } else {
        "Its options apply to every telescope (no `overrides`)."
    }
}

/// `cascade info FILE`.
pub fn info(file: &str, json: bool) -> anyhow::Result<()> {
    let path = Path::new(file);
    if path.is_dir() || file.ends_with(".parquet") {
        return crate::info::parquet_info(path, json);
    }
    crate::info::simtel_info(path, json)
}

/// Where each Parquet sink of `pipeline` writes: (sink name, dataset directory).
fn datasets(pipeline: &LoadedPipeline) -> Vec<(String, String)> {
    pipeline
        .entries
        .iter()
        .filter(|e| e.role == cascade_runtime::StageRole::Sink)
        .filter_map(|e| {
            let config = pipeline.graph.stage(&e.name)?.config();
            let directory = config.get("output_dir")?.as_str()?;
            let dataset = Path::new(directory).join(&e.name);
            Some((e.name.clone(), dataset.display().to_string()))
        })
        .collect()
}

fn print_report(report: &MetricsReport, datasets: &[(String, String)]) {
    eprintln!(
        "\n{:<20} {:<16} {:>12} {:>9} {:>10} {:>8}",
        "stage", "kind", "rows", "batches", "busy [s]", "buffer"
    );
    for stage in &report.stages {
        let m = &stage.metrics;
        eprintln!(
            "{:<20} {:<16} {:>12} {:>9} {:>10.3} {:>8}",
            stage.name, stage.kind, m.rows, m.batches, m.busy_seconds, m.peak_buffered_batches
        );
        if !m.counters.is_empty() {
            let counters: Vec<String> = m
                .counters
                .iter()
                .map(|(name, value)| format!("{name} {value}"))
                .collect();
            eprintln!("    {}", counters.join(", "));
        }
    }
    eprintln!("wall time {:.3} s", report.wall_seconds);
    for (sink, dataset) in datasets {
        let rows = report
            .stages
            .iter()
            .find(|s| &s.name == sink)
            .map_or(0, |s| s.metrics.rows);
        eprintln!("wrote {dataset}/ ({rows} rows)");
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp-cascade");
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}
