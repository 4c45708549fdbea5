//! `cascade info`: what a file holds.

use std::path::Path;

use anyhow::{Context, bail};
use parquet::file::reader::{FileReader, SerializedFileReader};

/// Describes a Parquet file or dataset directory: schema, rows, files.
pub fn parquet_info(path: &Path, json: bool) -> anyhow::Result<()> {
    let files: Vec<std::path::PathBuf> = if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .with_context(|| format!("cannot list {}", path.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    if files.is_empty() {
        bail!("{} holds no .parquet files", path.display());
    }
    let mut rows = 0i64;
    let mut row_groups = 0usize;
    let mut schema = None;
    for file in &files {
        let reader = SerializedFileReader::new(
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
        )
        .with_context(|| format!("{} is not a Parquet file", file.display()))?;
        let metadata = reader.metadata();
        rows += metadata.file_metadata().num_rows();
        row_groups += metadata.num_row_groups();
        if schema.is_none() {
            let arrow_schema = parquet::arrow::parquet_to_arrow_schema(
                metadata.file_metadata().schema_descr(),
                metadata.file_metadata().key_value_metadata(),
            )?;
            schema = Some(arrow_schema);
        }
    }
    let schema = schema.unwrap_or_else(arrow::datatypes::Schema::empty);
    if json {
        let columns: Vec<serde_json::Value> = schema
            .fields()
            .iter()
            .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string(), "unit": f.metadata().get("unit")}))
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"files": files.len(), "rows": rows, "row_groups": row_groups, "columns": columns})
            )?
        );
    } else {
        outln!(
            "{}: Parquet, {} file(s), {rows} rows, {row_groups} row groups",
            path.display(),
            files.len()
        );
        for field in schema.fields() {
            let unit = field
                .metadata()
                .get("unit")
                .map(String::as_str)
                .unwrap_or("");
            outln!(
                "  {:<36} {:<24} {unit}",
                field.name(),
                field.data_type().to_string()
            );
        }
    }
    Ok(())
}

/// Describes a sim_telarray file: telescopes, cameras, event counts and the histogram of
/// EventIO object types (unknown types are counted, never an error). Reads the whole file.
pub fn simtel_info(path: &Path, json: bool) -> anyhow::Result<()> {
    // The reader's errors name the file and say why (the cause included): not a chain. An
    // input the operating system cannot read stays an I/O error (exit status 3).
    let mut reader = cascade_simtel::SimtelReader::open(path).map_err(|e| {
        let message = format!("not readable as a sim_telarray file: {e}");
        match e {
            cascade_simtel::SimtelError::Io { source, .. } => {
                anyhow::Error::new(std::io::Error::new(source.kind(), message))
            }
            _ => anyhow::anyhow!(message),
        }
    })?;
    let read_error = loop {
        match reader.next_event() {
            Ok(Some(_)) => {}
            Ok(None) => break None,
            Err(error) => break Some(error.to_string()),
        }
    };
    let subarray = reader.subarray();
    let stats = reader.stats();
    if json {
        let telescopes: Vec<serde_json::Value> = subarray
            .telescopes
            .iter()
            .map(|(id, t)| {
                serde_json::json!({
                    "tel_id": id,
                    "type": t.name,
                    "camera_name": t.camera.name,
                    "n_pixels": t.camera.n_pixels(),
                    "position_m": subarray.positions_m.get(id),
                })
            })
            .collect();
        let objects: Vec<serde_json::Value> = stats
            .named_histogram()
            .into_iter()
            .map(|(t, name, n)| serde_json::json!({"type": t, "name": name, "count": n}))
            .collect();
        let value = serde_json::json!({
            "file": path.display().to_string(),
            "n_events": stats.array_events,
            "n_telescope_events": stats.telescope_events,
            "n_showers": stats.mc_showers,
            "telescopes": telescopes,
            "objects": objects,
            "unknown_objects": stats.unknown_objects(),
            "error": read_error,
        });
        outln!("{}", serde_json::to_string_pretty(&value)?);
        return stopped_early(path, read_error);
    }
    outln!(
        "{}: sim_telarray, {} array events with data, {} telescope events, {} simulated showers",
        path.display(),
        stats.array_events,
        stats.telescope_events,
        stats.mc_showers
    );
    let mut cameras: std::collections::BTreeMap<(String, String, usize), Vec<u16>> =
        std::collections::BTreeMap::new();
    for (id, t) in &subarray.telescopes {
        let key = (t.name.clone(), t.camera.name.clone(), t.camera.n_pixels());
        cameras.entry(key).or_default().push(*id);
    }
    outln!("telescopes ({}):", subarray.telescopes.len());
    for ((tel_type, camera, n_pixels), ids) in cameras {
        outln!("  {tel_type:<24} {camera:<12} {n_pixels:>6} pixels  ids {ids:?}");
    }
    outln!("objects:");
    for (t, name, n) in stats.named_histogram() {
        outln!("  {t:>5} {name:<32} {n:>8}");
    }
    if stats.unknown_objects() > 0 {
        outln!(
            "  unknown object types (skipped): {:?}",
            stats.unknown_by_type
        );
    }
    stopped_early(path, read_error)
}

/// A file that could not be read to its end is an error (after its description): a
/// script that checks files with `cascade info` must not pass a truncated one.
fn stopped_early(path: &Path, read_error: Option<String>) -> anyhow::Result<()> {
    match read_error {
        Some(error) => bail!(
            "{}: reading stopped early, the counts above cover what was read before: {error}",
            path.display()
        ),
        None => Ok(()),
    }
}
