//! `kind = "select"`: keeps some columns of its input (e.g. the truth columns of a stream,
//! or the parameters without the pixel arrays), in the order given.

use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use cascade_pipeline::{BuildContext, BuildError, BuiltStage, PerTelescope, TypedFactory};
use cascade_runtime::{BatchStage, MapStage, StageError, StageRole};

cascade_pipeline::stage_config! {
    /// Options of the column selection.
    pub struct SelectConfig {
        /// Columns to keep, in output order. Every one must exist in the input, and none
        /// may be listed twice.
        columns: Vec<String> = Vec::new(),
    }
}

/// The select stage's entry in the stage registry.
pub fn factory() -> TypedFactory<SelectConfig> {
    TypedFactory::new(
        "select",
        StageRole::Transform,
        "Keeps the listed columns of its input, in the given order.",
        build,
    )
    .same_for_every_telescope()
}

fn build(config: PerTelescope<SelectConfig>, _: &BuildContext) -> Result<BuiltStage, BuildError> {
    let config = config.default_value().clone();
    if config.columns.is_empty() {
        return Err(BuildError::option("columns", "list at least one column"));
    }
    if let Some((position, name)) = config
        .columns
        .iter()
        .enumerate()
        .find(|(i, name)| config.columns[..*i].contains(name))
    {
        // Parquet readers (pyarrow, polars) refuse a file with two columns of one name.
        return Err(BuildError::option(
            "columns",
            format!(
                "`{name}` is listed twice (again at position {})",
                position + 1
            ),
        ));
    }
    Ok(BuiltStage::new(Arc::new(MapStage::new(Select { config }))))
}

/// The column selection.
#[derive(Debug)]
pub struct Select {
    config: SelectConfig,
}

impl BatchStage for Select {
    fn kind(&self) -> &'static str {
        "select"
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef, StageError> {
        let fields = self
            .config
            .columns
            .iter()
            .map(|name| {
                input
                    .field_with_name(name)
                    .cloned()
                    .map_err(|_| StageError::MissingColumn {
                        column: name.clone(),
                        expected: "any type".to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Arc::new(Schema::new_with_metadata(
            fields,
            input.metadata().clone(),
        )))
    }

    fn process(&self, batch: RecordBatch, output: &SchemaRef) -> Result<RecordBatch, StageError> {
        let indices = output
            .fields()
            .iter()
            .map(|f| batch.schema().index_of(f.name()))
            .collect::<Result<Vec<_>, _>>()?;
        let projected = batch.project(&indices)?;
        Ok(RecordBatch::try_new(
            Arc::clone(output),
            projected.columns().to_vec(),
        )?)
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or_default()
    }
}
