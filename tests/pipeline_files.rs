//! Pipeline files end to end.
//!
//! * Every file in `tests/invalid/` starts with `# expect-error: LINE: TEXT` lines; loading it
//!   must report exactly those errors (a diagnostic on LINE whose message contains TEXT).
//! * Every file in `pipelines/` loads without a diagnostic and compiles to a runnable graph
//!   (the sim_telarray ones read their default input from `../shared`).
//! * The quickstart runs end to end on a few events into a temporary directory, producing
//!   Parquet datasets that read back with their schema; the sim_telarray pipelines run end
//!   to end in the conformance tests (`dl1_conformance.rs`, `dl2_conformance.rs`,
//!   `low_gain_conformance.rs`).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use cascade_pipeline::{Edits, Registry, load_pipeline};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn registry() -> Registry {
    Registry::new(cascade_stages::stages())
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no pipeline files in {}", dir.display());
    files
}

#[test]
fn invalid_files_report_every_expected_error_at_its_line() {
    for path in toml_files(&workspace().join("tests/invalid")) {
        let text = std::fs::read_to_string(&path).unwrap();
        // `# expect-error: LINE: message` or `# expect-error: LINE:COLUMN: message`.
        let expected: Vec<(usize, Option<usize>, &str)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect-error: "))
            .map(|l| {
                let (place, message) = l.split_once(": ").unwrap();
                let (line, column) = match place.split_once(':') {
                    Some((line, column)) => (line, Some(column.parse().unwrap())),
                    None => (place, None),
                };
                (line.parse().unwrap(), column, message)
            })
            .collect();
        assert!(
            !expected.is_empty(),
            "{} states no expected error",
            path.display()
        );
        let diagnostics = load_pipeline(
            &path.display().to_string(),
            &text,
            &registry(),
            &Edits::default(),
        )
        .expect_err("an invalid pipeline loaded");
        let found: Vec<((usize, usize), String)> = diagnostics
            .items
            .iter()
            .map(|d| {
                (
                    diagnostics.line_column(&d.location).unwrap_or((0, 0)),
                    d.message.clone(),
                )
            })
            .collect();
        let report = diagnostics.to_string();
        assert_eq!(found.len(), expected.len(), "{}:\n{report}", path.display());
        for (line, column, message) in &expected {
            assert!(
                found.iter().any(|((l, c), m)| l == line
                    && column.is_none_or(|column| column == *c)
                    && m.contains(message)),
                "{}: expected `{message}` at line {line} (column {column:?}), got:\n{report}",
                path.display()
            );
        }
    }
}

#[test]
fn every_pipeline_file_loads_and_compiles() {
    for path in toml_files(&workspace().join("pipelines")) {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.display().to_string();
        // relative paths in the files are relative to the workspace, as `cascade run` from there
        let edits = Edits {
            inputs: default_inputs(&text),
            ..Edits::default()
        };
        let pipeline = load_pipeline(&name, &text, &registry(), &edits)
            .unwrap_or_else(|diagnostics| panic!("{diagnostics}"));
        pipeline
            .graph
            .compile(pipeline.run_options())
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
}

/// The pipelines shown in `docs/pipeline-format.md` (its TOML blocks that name a source)
/// load and compile, with a shared sim_telarray file as the input of the first.
#[test]
fn pipelines_in_the_format_documentation_are_valid() {
    let page = std::fs::read_to_string(workspace().join("docs/pipeline-format.md")).unwrap();
    let input = cascade_testdata::simtel_path("gamma_south_lsts")
        .display()
        .to_string();
    let blocks: Vec<&str> = page
        .split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
        .filter(|block| block.contains("[sources."))
        .collect();
    assert!(!blocks.is_empty(), "no complete pipeline in the page");
    for block in blocks {
        let edits = Edits {
            inputs: vec![input.clone()],
            ..Edits::default()
        };
        let pipeline = load_pipeline("docs/pipeline-format.md", block, &registry(), &edits)
            .unwrap_or_else(|diagnostics| panic!("{diagnostics}"));
        pipeline
            .graph
            .compile(pipeline.run_options())
            .unwrap_or_else(|e| panic!("{e:?}"));
    }
}

/// The `paths` of a sim_telarray source, resolved against the workspace (the files name
/// `../shared/...` as seen from the workspace root).
fn default_inputs(text: &str) -> Vec<String> {
    let table: toml::Table = text.parse().unwrap();
    let Some(sources) = table.get("sources").and_then(|s| s.as_table()) else {
        return Vec::new();
    };
    sources
        .values()
        .filter_map(|source| source.get("paths")?.as_array().cloned())
        .flatten()
        .filter_map(|path| Some(workspace().join(path.as_str()?).display().to_string()))
        .collect()
}

#[test]
fn did_you_mean_and_command_line_errors() {
    let text = "[sources.events]\nkind = \"toy\"\nn_events = 3\n[sinks.out]\nkind = \"parquet\"\ninputs = [\"events\"]\n";
    let edits = Edits {
        sets: vec![
            "sources.events.sed=4".into(),
            "sources.events.n_events=many".into(),
        ],
        ..Edits::default()
    };
    let diagnostics = load_pipeline("inline.toml", text, &registry(), &edits).unwrap_err();
    let report = diagnostics.to_string();
    assert!(
        report.contains("(command line `sources.events.sed=4`): error: unknown option `sed`"),
        "{report}"
    );
    assert!(report.contains("did you mean `seed`?"), "{report}");
    assert!(
        report.contains("(command line `sources.events.n_events=many`): error: option `n_events`"),
        "{report}"
    );
    assert_eq!(diagnostics.len(), 2, "{report}");

    // A typo in an entry's name is not a new entry: one error, with the likely name.
    let typo = Edits {
        sets: vec!["sources.event.seed=4".into()],
        ..Edits::default()
    };
    let diagnostics = load_pipeline("inline.toml", text, &registry(), &typo).unwrap_err();
    assert_eq!(diagnostics.len(), 1, "{diagnostics}");
    assert!(
        diagnostics
            .to_string()
            .contains("the pipeline has no source `event`; did you mean `events`?"),
        "{diagnostics}"
    );

    // A number where the option takes a string: the help says how to quote it.
    let number = Edits {
        sets: vec!["sinks.out.output_dir=2024".into()],
        ..Edits::default()
    };
    let diagnostics = load_pipeline("inline.toml", text, &registry(), &number).unwrap_err();
    assert!(
        diagnostics
            .to_string()
            .contains("quote it to give a string: --set 'sinks.out.output_dir=\"2024\"'"),
        "{diagnostics}"
    );
    let quoted = Edits {
        sets: vec!["sinks.out.output_dir=\"2024\"".into()],
        ..Edits::default()
    };
    assert!(load_pipeline("inline.toml", text, &registry(), &quoted).is_ok());

    let inputs = Edits {
        inputs: vec!["a.simtel.zst".into()],
        ..Edits::default()
    };
    let diagnostics = load_pipeline("inline.toml", text, &registry(), &inputs).unwrap_err();
    assert!(
        diagnostics.to_string().contains("reads no input files"),
        "{diagnostics}"
    );
}

#[test]
fn set_overrides_options_and_output_replaces_every_sink_directory() {
    let text = std::fs::read_to_string(workspace().join("pipelines/quickstart.toml")).unwrap();
    let edits = Edits {
        sets: vec![
            "pipeline.batch_size=7".into(),
            "sources.events.n_events=5".into(),
        ],
        output: Some("/tmp/elsewhere".into()),
        ..Edits::default()
    };
    let pipeline = load_pipeline("quickstart.toml", &text, &registry(), &edits).unwrap();
    assert_eq!(pipeline.settings.batch_size, 7);
}

#[test]
fn quickstart_runs_end_to_end_and_writes_readable_parquet() {
    let output = tempfile::tempdir().unwrap();
    let edits = Edits {
        sets: vec!["sources.events.n_events=8".into()],
        output: Some(output.path().display().to_string()),
        ..Edits::default()
    };
    let report = cascade_tests::run_pipeline("quickstart.toml", &edits);
    let rows = |stage: &str| {
        report
            .stages
            .iter()
            .find(|s| s.name == stage)
            .unwrap()
            .metrics
            .rows
    };
    assert!(
        rows("events") >= 8,
        "8 array events have at least 8 telescope events"
    );
    for sink in ["dl1_parameters", "dl1_images"] {
        assert_eq!(rows(sink), rows("events"));
        let path = output.path().join(sink).join("part-00000.parquet");
        let table = cascade_testdata::Table::read(&path);
        assert_eq!(table.n_rows() as u64, rows("events"));
        // provenance: the pipeline and the sink that wrote the file
        let reader =
            parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&path).unwrap())
                .unwrap();
        let metadata = parquet::file::reader::FileReader::metadata(&reader).file_metadata();
        let value = |key: &str| {
            metadata
                .key_value_metadata()
                .and_then(|kv| kv.iter().find(|entry| entry.key == key))
                .and_then(|entry| entry.value.clone())
        };
        assert_eq!(value("cascade.pipeline").as_deref(), Some("quickstart"));
        assert_eq!(value("cascade.sink").as_deref(), Some(sink));
        assert!(value("ARROW:schema").is_some());
        // ... and in the Arrow schema, where Arrow readers show it
        let arrow = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&path).unwrap(),
        )
        .unwrap();
        let metadata = arrow.schema().metadata();
        assert_eq!(metadata["cascade.pipeline"], "quickstart");
        assert_eq!(metadata["cascade.sink"], sink);
    }
    let parameters =
        cascade_testdata::Table::read(&output.path().join("dl1_parameters/part-00000.parquet"));
    let schema = cascade_schema::Level::Dl1Parameters.schema();
    for name in parameters.column_names() {
        assert!(
            schema.field_with_name(&name).is_ok(),
            "{name} is not in schemas/dl1_parameters.toml"
        );
    }
    let intensity = parameters.f64("hillas_intensity");
    assert!(
        intensity.iter().any(|v| v.is_finite() && *v > 50.0),
        "no bright image: {intensity:?}"
    );
}
