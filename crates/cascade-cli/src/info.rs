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
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"files": files.len(), "rows": rows, "row_groups": row_groups, "columns": columns})
            )?
        );
    } else {
        println!(
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
            println!(
                "  {:<36} {:<24} {unit}",
                field.name(),
                field.data_type().to_string()
            );
        }
    }
    Ok(())
}

/// Describes a sim_telarray file.
pub fn simtel_info(path: &Path, _json: bool) -> anyhow::Result<()> {
    bail!(
        "{}: reading sim_telarray files is not available yet",
        path.display()
    )
}
