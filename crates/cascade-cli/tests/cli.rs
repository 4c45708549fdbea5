//! The `cascade` binary: exit codes and what it prints.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::Command;

use cascade_testdata::{STEMS, Table, simtel_path};

fn cascade(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (
        output.status.success(),
        text(output.stdout),
        text(output.stderr),
    )
}

#[test]
fn info_json_counts_events_and_telescopes_of_every_shared_file() {
    for stem in STEMS {
        let path = simtel_path(stem).display().to_string();
        let (ok, stdout, stderr) = cascade(&["info", &path, "--json"]);
        assert!(ok, "{stem}: {stderr}");
        let info: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let dl1 = Table::reference(stem, "dl1");
        let dl2 = Table::reference(stem, "dl2");
        assert_eq!(info["n_telescope_events"], dl1.n_rows() as u64, "{stem}");
        assert_eq!(info["n_events"], dl2.n_rows() as u64, "{stem}");
        let telescopes = info["telescopes"].as_array().unwrap();
        assert!(!telescopes.is_empty());
        for telescope in telescopes {
            assert!(telescope["n_pixels"].as_u64().unwrap() > 0);
            assert!(
                telescope["camera_name"]
                    .as_str()
                    .is_some_and(|n| !n.is_empty())
            );
        }
    }
}

#[test]
fn validate_reports_every_error_and_fails() {
    let (ok, _, stderr) = cascade(&["validate", "tests/invalid/six_mistakes.toml"]);
    assert!(!ok);
    assert_eq!(stderr.matches(": error: ").count(), 6, "{stderr}");
    let (ok, stdout, stderr) = cascade(&["validate", "pipelines/quickstart.toml"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("valid"));
}

#[test]
fn schema_graph_and_stages_print_what_they_describe() {
    let (ok, stdout, _) = cascade(&["schema", "dl1_parameters"]);
    assert!(ok && stdout.contains("hillas_intensity") && stdout.contains("deg"));
    let (ok, _, stderr) = cascade(&["schema", "dl9"]);
    assert!(!ok && stderr.contains("unknown data level"));
    let (ok, stdout, _) = cascade(&["graph", "pipelines/quickstart.toml"]);
    assert!(
        ok && stdout.contains("\"calibrate\" -> \"clean\";"),
        "{stdout}"
    );
    let (ok, stdout, _) = cascade(&["stages", "tailcuts_clean"]);
    assert!(ok && stdout.contains("picture_threshold_pe"));
}

#[test]
fn run_prints_and_writes_the_stereo_join_counters() {
    let output = tempfile::tempdir().unwrap();
    let metrics = output.path().join("metrics.json");
    let (ok, _, stderr) = cascade(&[
        "run",
        "pipelines/toy_dl2.toml",
        "--set",
        "sources.events.n_events=5",
        "--output",
        &output.path().display().to_string(),
        "--metrics",
        &metrics.display().to_string(),
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("events_complete 5, events_incomplete 0"),
        "{stderr}"
    );
    // where every dataset went, with its rows
    let dl2 = output.path().join("dl2_shower").display().to_string();
    assert!(
        stderr.contains(&format!("wrote {dl2}/ (5 rows)")),
        "{stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metrics).unwrap()).unwrap();
    let stages = report["stages"].as_array().unwrap();
    let stereo = stages.iter().find(|s| s["name"] == "stereo").unwrap();
    assert_eq!(stereo["counters"]["events_complete"], 5);
    assert_eq!(stereo["counters"]["late_rows"], 0);
    let source = stages.iter().find(|s| s["name"] == "events").unwrap();
    assert!(source.get("counters").is_none(), "{source}");
}

#[test]
fn docs_stage_reference_is_up_to_date() {
    let (ok, generated, _) = cascade(&["stages", "--markdown"]);
    assert!(ok);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/stages.md");
    let page = std::fs::read_to_string(path).unwrap_or_default();
    if page != generated {
        if std::env::var_os("CASCADE_BLESS").is_some() {
            std::fs::write(path, generated).unwrap();
        } else {
            panic!("docs/stages.md is stale: run `CASCADE_BLESS=1 cargo test -p cascade-cli`");
        }
    }
}

#[test]
fn bench_measures_every_event_it_replays_and_compares_with_ctapipe() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let ctapipe = cascade_testdata::data_dir().join("reference/ctapipe_throughput.json");
    let (ok, stdout, stderr) = cascade(&[
        "bench",
        "--scenario",
        "dl1_image_to_parameters",
        "--events",
        "6",
        "--min-time",
        "0",
        "--repeat",
        "2",
        "--ctapipe",
        ctapipe.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("dl1_image_to_parameters"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    let result = &results[0];
    // One pass (min-time 0) over the LST-like telescope events of 6 toy array events.
    let generated: u64 = stderr
        .lines()
        .find_map(|line| line.strip_prefix("prepared Images: "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(generated >= 6, "{stderr}");
    assert_eq!(result["passes"], 1);
    assert_eq!(result["rows_per_run"].as_u64(), Some(generated));
    let rate = result["rate_cpu_median"].as_f64().unwrap();
    let ctapipe_rate = result["ctapipe_rate_cpu_median"].as_f64().unwrap();
    // ctapipe's ImageProcessor (no true images) on lst_muons, from the reference file.
    assert!((ctapipe_rate - 620.76).abs() < 0.01, "{ctapipe_rate}");
    let ratio = result["ratio_cpu_median"].as_f64().unwrap();
    assert!((ratio - rate / ctapipe_rate).abs() < 1e-9 * ratio);
    let stages: Vec<&str> = result["stage_busy_us_per_row"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stage| stage[0].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["clean", "parameters"]);
    // Tail cuts read every pixel of the image: 1855 f32 per LST-like telescope event.
    let floor = &result["input_floor"];
    assert_eq!(floor["columns"], serde_json::json!(["image"]));
    assert_eq!(floor["bytes_per_row"].as_f64(), Some(1855.0 * 4.0));
    let read_us = floor["read_us_per_row"].as_f64().unwrap();
    let read_gb_per_s = floor["read_gb_per_s"].as_f64().unwrap();
    assert!(read_us > 0.0 && read_gb_per_s > 0.0, "{floor}");
    assert!((read_us * read_gb_per_s * 1e3 - 1855.0 * 4.0).abs() < 1e-6 * 1855.0 * 4.0);
    let allowed = result["ratio_allowed_by_input"].as_f64().unwrap();
    assert!((allowed - 1e6 / (read_us * ctapipe_rate)).abs() < 1e-9 * allowed);
    assert!(stdout.contains("kB of image at"), "{stdout}");
}

#[test]
fn bench_replays_the_events_of_a_file_and_compares_with_ctapipe_on_that_file() {
    let stem = "gamma_prod6_lst_nectarcam";
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let ctapipe = cascade_testdata::data_dir().join("reference/ctapipe_throughput.json");
    let (ok, _, stderr) = cascade(&[
        "bench",
        "--input",
        simtel_path(stem).to_str().unwrap(),
        "--scenario",
        "r1_to_dl1_parameters",
        "--scenario",
        "r0_to_dl1_parameters",
        "--min-time",
        "0",
        "--repeat",
        "1",
        "--ctapipe",
        ctapipe.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    let scenarios: Vec<&str> = results
        .iter()
        .map(|r| r["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(scenarios, ["r1_to_dl1_parameters", "r0_to_dl1_parameters"]);
    // The floor of reading the input: for the R1 waveforms, none for R0 (the gain
    // selector reads the low gain only where it selects it).
    assert_eq!(
        results[0]["input_floor"]["columns"],
        serde_json::json!(["waveform"])
    );
    assert!(results[1]["input_floor"].is_null());
    // The R1 scenario replays the R1 the r0_to_r1 stage made, the R0 one the file's R0.
    for input in ["R1Waveforms", "R0Waveforms"] {
        assert!(stderr.contains(&format!("prepared {input}: ")), "{stderr}");
    }
    for result in results {
        // Every telescope event of the file (LSTCam and NectarCam), once.
        let n_telescope_events = Table::reference(stem, "dl1").n_rows() as u64;
        assert_eq!(result["rows_per_run"].as_u64(), Some(n_telescope_events));
        assert_eq!(result["passes"], 1);
        // One short pass: timed by the wall clock (CPU ticks are 10 ms), never "infinitely
        // fast".
        let rate = result["rate_cpu_median"].as_f64().unwrap();
        assert!(rate > 0.0 && rate < 1e6, "{rate}");
        // ctapipe's CameraCalibrator and ImageProcessor (no true images) on this very file.
        let chain = 1.0 / (1.0 / 1854.4476 + 1.0 / 1656.1936);
        let ctapipe_rate = result["ctapipe_rate_cpu_median"].as_f64().unwrap();
        assert!((ctapipe_rate - chain).abs() < 0.01, "{ctapipe_rate}");
    }
}

#[test]
fn bench_replays_toy_events_stored_as_ctaos_r1_stream() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let (ok, _, stderr) = cascade(&[
        "bench",
        "--scenario",
        "r1_to_dl1_parameters",
        "--scenario",
        "r1_quantized_to_dl1_parameters",
        "--events",
        "6",
        "--min-time",
        "0",
        "--repeat",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("prepared QuantizedR1Waveforms: "),
        "{stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    let rows: Vec<(&str, u64)> = results
        .iter()
        .map(|r| {
            let scenario = r["scenario"].as_str().unwrap();
            (scenario, r["rows_per_run"].as_u64().unwrap())
        })
        .collect();
    // The same toy events either way: every one is calibrated, cleaned and parametrised.
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, "r1_to_dl1_parameters");
    assert_eq!(rows[1].0, "r1_quantized_to_dl1_parameters");
    assert!(rows[0].1 >= 6 && rows[0].1 == rows[1].1, "{rows:?}");
    // Both read every sample of the waveforms: 1855 pixels x 30 samples, as f32 and as
    // uint16; without ctapipe's figures, no allowed ratio.
    let floor_bytes: Vec<Option<f64>> = results
        .iter()
        .map(|r| r["input_floor"]["bytes_per_row"].as_f64())
        .collect();
    assert_eq!(floor_bytes, [Some(222_600.0), Some(111_300.0)]);
    assert!(
        results
            .iter()
            .all(|r| r["ratio_allowed_by_input"].is_null())
    );

    let file = simtel_path("lst_muons");
    let (ok, _, stderr) = cascade(&[
        "bench",
        "--input",
        file.to_str().unwrap(),
        "--scenario",
        "calibrate_quantized",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("scenario `calibrate_quantized` replays toy events stored as CTAO's R1 stream stores them: leave out --input"),
        "{stderr}"
    );
}

#[test]
fn bench_rejects_unknown_scenarios_and_bad_numbers() {
    let (ok, _, stderr) = cascade(&["bench", "--scenario", "stereo"]);
    assert!(!ok);
    assert!(
        stderr.contains("unknown scenario `stereo`; scenarios: calibrate"),
        "{stderr}"
    );
    let (ok, _, stderr) = cascade(&["bench", "--scenario", "r0_to_dl1_image"]);
    assert!(!ok);
    assert!(
        stderr.contains("scenario `r0_to_dl1_image` replays the R0 waveforms of a sim_telarray file: give --input FILE"),
        "{stderr}"
    );
    let (ok, _, stderr) = cascade(&["bench", "--threads", "0"]);
    assert!(!ok);
    assert!(stderr.contains("must be at least 1"), "{stderr}");
    let (ok, _, stderr) = cascade(&["bench", "--min-time", "NaN"]);
    assert!(!ok);
    assert!(
        stderr.contains("--min-time must be between 0 and 86400 s"),
        "{stderr}"
    );
}

#[test]
fn a_run_of_several_files_needs_one_instrument_and_distinct_runs() {
    let output = tempfile::tempdir().unwrap();
    let out = output.path().display().to_string();
    let lsts = simtel_path("gamma_south_lsts").display().to_string();
    let prod6 = simtel_path("gamma_prod6_lst_nectarcam")
        .display()
        .to_string();
    let run = |inputs: &[&str], extra: &[&str]| {
        let mut args = vec!["run", "pipelines/ctapipe_dl1.toml", "--output", &out];
        args.extend_from_slice(extra);
        args.push("--input");
        args.extend_from_slice(inputs);
        cascade(&args)
    };
    // The same file twice: its events would be indistinguishable, so that is an error too
    // (files of one array and of different runs are read one after the other).
    let (ok, _, stderr) = run(&[&lsts, &lsts], &[]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("`{lsts}` holds run 7, as `{lsts}` does")),
        "{stderr}"
    );
    assert!(!output.path().join("dl1_parameters").exists());
    // Another array: an error naming the file and the difference, in either order.
    for inputs in [[&lsts, &prod6], [&prod6, &lsts]] {
        let (ok, _, stderr) = run(&[inputs[0], inputs[1]], &[]);
        assert!(!ok);
        assert!(
            stderr.contains(&format!("`{}`: its instrument differs", inputs[1]))
                && stderr.contains("telescopes 1-4")
                && stderr.contains("run these files separately"),
            "{stderr}"
        );
    }
    // `validate` finds it too, before anything runs.
    let (ok, _, stderr) = cascade(&[
        "validate",
        "pipelines/ctapipe_dl1.toml",
        "--input",
        &lsts,
        &prod6,
    ]);
    assert!(!ok && stderr.contains("its instrument differs"), "{stderr}");
    // A selection that keeps no telescope of the file is an error, not an empty result.
    for (set, expected) in [
        (
            "sources.events.tel_ids=[999]",
            "has no telescope 999 (its telescopes: 1-4)",
        ),
        (
            "sources.events.tel_types=[\"LTS*\"]",
            "`LTS*` matches no telescope",
        ),
    ] {
        let (ok, _, stderr) = run(&[&lsts], &["--set", set]);
        assert!(!ok && stderr.contains(expected), "{stderr}");
    }
}

/// Ctrl-C (SIGINT) and SIGTERM stop a run without leaving anything behind: no dataset, no
/// temporary part file, no empty dataset directory; the exit status is the shell's.
#[cfg(unix)]
#[test]
fn an_interrupted_run_removes_its_temporary_files() {
    use std::time::{Duration, Instant};

    let parent = tempfile::tempdir().unwrap();
    for (signal, status) in [("-INT", 130), ("-TERM", 143)] {
        let output = parent.path().join(&signal[1..]);
        let child = Command::new(env!("CARGO_BIN_EXE_cascade"))
            .args(["run", "pipelines/quickstart.toml", "--quiet", "--output"])
            .arg(&output)
            .args(["--set", "sources.events.n_events=100000000"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until a sink is writing a part file, so that there is something to remove.
        let writing = |dataset: &str| {
            std::fs::read_dir(output.join(dataset)).is_ok_and(|entries| {
                entries
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(".inprogress"))
            })
        };
        let start = Instant::now();
        while !writing("dl1_images") && start.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(writing("dl1_images"), "no part file after two minutes");
        let killed = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let exit = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&exit.stderr);
        assert_eq!(exit.status.code(), Some(status), "{signal}: {stderr}");
        let name = if signal == "-INT" {
            "SIGINT"
        } else {
            "SIGTERM"
        };
        assert!(
            stderr.contains(&format!("interrupted by {name}: no output was published")),
            "{stderr}"
        );
        let left: Vec<_> = walk(&output);
        assert!(left.is_empty(), "{signal} left {left:?}");
    }
}

/// Every file below `directory` (none when it does not exist).
#[cfg(unix)]
fn walk(directory: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

#[test]
fn info_of_a_truncated_file_describes_what_it_read_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(simtel_path("gamma_prod6_lst_nectarcam")).unwrap();
    let truncated = dir.path().join("truncated.simtel.zst");
    std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    let path = truncated.display().to_string();
    let (ok, stdout, stderr) = cascade(&["info", &path]);
    assert!(!ok);
    assert!(stdout.contains("telescopes (43)"), "{stdout}");
    assert!(
        stderr.contains("reading stopped early")
            && stderr.contains("of the decompressed data")
            && stderr.contains("the file is cut short or damaged"),
        "{stderr}"
    );
    let (ok, stdout, _) = cascade(&["info", &path, "--json"]);
    assert!(!ok);
    let info: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(info["error"].as_str().unwrap().contains("cut short"));

    let empty = dir.path().join("empty.simtel");
    std::fs::write(&empty, b"").unwrap();
    let (ok, _, stderr) = cascade(&["info", &empty.display().to_string()]);
    assert!(!ok && stderr.contains("the file is empty"), "{stderr}");
}

#[test]
fn an_unwritable_metrics_file_fails_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out");
    let metrics = dir.path().join("no_such_directory").join("metrics.json");
    let (ok, _, stderr) = cascade(&[
        "run",
        "pipelines/quickstart.toml",
        "--quiet",
        "--output",
        &output.display().to_string(),
        "--metrics",
        &metrics.display().to_string(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("cannot write metrics to") && stderr.contains("is not a directory"),
        "{stderr}"
    );
    assert!(!output.exists(), "the run went ahead");
}

#[test]
fn a_pipeline_without_a_sink_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("no_sink.toml");
    std::fs::write(
        &pipeline,
        "[sources.events]\nkind = \"toy\"\nn_events = 3\n\n[stages.ids]\nkind = \"select\"\n\
         columns = [\"event_id\"]\ninputs = [\"events\"]\n",
    )
    .unwrap();
    let pipeline = pipeline.display().to_string();
    for command in ["validate", "run"] {
        let (ok, _, stderr) = cascade(&[command, &pipeline]);
        assert!(!ok && stderr.contains("has no sink"), "{command}: {stderr}");
    }
}

/// `cascade` with `args`: its exit status and standard error.
fn cascade_status(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The exit status says what kind of failure it was, so that a campaign manager can tell
/// a job to fix (2: the pipeline or command line; 1: the input data) from one to retry
/// (3: reading or writing a file failed; during a run unit-tested in cascade-runtime).
#[test]
fn the_exit_status_tells_an_invalid_request_from_bad_data() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = "pipelines/ctapipe_dl1.toml";
    let output = dir.path().join("out").display().to_string();

    let (status, stderr) = cascade_status(&["validate", "tests/invalid/six_mistakes.toml"]);
    assert_eq!(status, Some(2), "{stderr}");
    let (status, stderr) = cascade_status(&["run", "no/such/pipeline.toml"]);
    assert_eq!(status, Some(2), "{stderr}");
    let (status, stderr) = cascade_status(&["run", pipeline, "--set", "clean.picture_thresh=-"]);
    assert_eq!(status, Some(2), "{stderr}");
    let (status, stderr) = cascade_status(&["run", "--no-such-flag"]);
    assert_eq!(status, Some(2), "{stderr}");

    // A file cut short in its events: the pipeline builds, the run fails on the data.
    let whole = std::fs::read(simtel_path("gamma_prod6_lst_nectarcam")).unwrap();
    let truncated = dir.path().join("truncated.simtel.zst");
    std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    let truncated = truncated.display().to_string();
    let (status, stderr) = cascade_status(&[
        "run", pipeline, "--input", &truncated, "--output", &output, "--quiet",
    ]);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("cut short or damaged"), "{stderr}");

    // Outside a run: a file the system cannot read is an I/O failure, one that is not
    // sim_telarray is bad data.
    let missing = dir.path().join("missing.simtel.zst").display().to_string();
    let (status, stderr) = cascade_status(&["info", &missing]);
    assert_eq!(status, Some(3), "{stderr}");
    let garbage = dir.path().join("garbage.simtel");
    std::fs::write(&garbage, b"not an EventIO stream").unwrap();
    let (status, stderr) = cascade_status(&["info", &garbage.display().to_string()]);
    assert_eq!(status, Some(1), "{stderr}");
}
