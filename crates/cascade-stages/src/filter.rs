//! `kind = "filter"`: keeps the rows of its input for which a condition holds, e.g. images
//! bright and contained enough for a training sample:
//!
//! ```toml
//! [stages.bright]
//! kind = "filter"
//! inputs = ["parameters"]
//! where = "hillas_intensity > 100 AND leakage_intensity_width_2 < 0.2"
//! ```
//!
//! The condition is a SQL expression over the input columns ([`crate::expr`]): its syntax
//! is checked when the stage is built, its column names and types when the pipeline is
//! checked, so `cascade validate` reports a typo at the option's line with a "did you mean".
//! It is evaluated on whole batches; the output has the input's schema.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use cascade_pipeline::{BuildContext, BuildError, BuiltStage, PerTelescope, TypedFactory};
use cascade_runtime::{BatchStage, MapStage, StageError, StageRole, ValuePosition};

use crate::expr::{ExprError, Expression, Predicate};

cascade_pipeline::stage_config! {
    /// Options of the row filter.
    pub struct FilterConfig {
        /// Rows to keep: a SQL condition over the input columns, e.g.
        /// "hillas_intensity > 100 AND leakage_intensity_width_2 < 0.2" (comparisons,
        /// AND/OR/NOT, IS [NOT] NULL, + - * /, isnan(), isfinite(), abs(); see
        /// docs/pipeline-format.md). Rows where it is false or null are dropped; a
        /// comparison with NaN is false (`!=` true), as in numpy.
        r#where: String = String::new(),
    }
}

/// The filter stage's entry in the stage registry.
pub fn factory() -> TypedFactory<FilterConfig> {
    TypedFactory::new(
        "filter",
        StageRole::Transform,
        "Keeps the rows for which a SQL condition on the input columns holds \
         (`where = \"hillas_intensity > 100 AND leakage_intensity_width_2 < 0.2\"`).",
        build,
    )
    .same_for_every_telescope()
}

fn build(config: PerTelescope<FilterConfig>, _: &BuildContext) -> Result<BuiltStage, BuildError> {
    let config = config.default_value().clone();
    if config.r#where.trim().is_empty() {
        return Err(BuildError::option(
            "where",
            "give the condition rows must meet, e.g. where = \"hillas_intensity > 100\"",
        ));
    }
    let condition = Expression::parse(&config.r#where).map_err(|e| {
        let at = e.character().map(ValuePosition::character);
        BuildError::option("where", format!("`{}`: {e}", config.r#where)).at(at)
    })?;
    Ok(BuiltStage::new(Arc::new(MapStage::new(Filter {
        config,
        condition,
    }))))
}

/// The row filter.
#[derive(Debug)]
pub struct Filter {
    config: FilterConfig,
    condition: Expression,
}

impl Filter {
    /// The condition checked against `schema`, with errors that name the option.
    fn predicate(&self, schema: &SchemaRef) -> Result<Predicate, StageError> {
        self.condition
            .bind(schema)
            .map_err(|e| self.option_error(e))
    }

    fn option_error(&self, error: ExprError) -> StageError {
        StageError::InvalidOption {
            option: "where".to_string(),
            message: format!("`{}`: {error}", self.condition),
            at: error.character().map(ValuePosition::character),
        }
    }
}

impl BatchStage for Filter {
    fn kind(&self) -> &'static str {
        "filter"
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef, StageError> {
        self.predicate(input)?;
        Ok(Arc::clone(input))
    }

    fn process(&self, batch: RecordBatch, _: &SchemaRef) -> Result<RecordBatch, StageError> {
        // Binding walks the few nodes of the expression: nothing next to evaluating it.
        self.predicate(&batch.schema())?
            .filter(&batch)
            .map_err(|e| self.option_error(e))
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;
    use arrow::array::{ArrayRef, AsArray, Float64Array, Int16Array};
    use arrow::datatypes::Int16Type;

    fn filter(condition: &str) -> Filter {
        Filter {
            config: FilterConfig {
                r#where: condition.to_string(),
            },
            condition: Expression::parse(condition).unwrap(),
        }
    }

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "tel_id",
                Arc::new(Int16Array::from(vec![1, 2, 3, 4])) as ArrayRef,
            ),
            (
                "hillas_intensity",
                Arc::new(Float64Array::from(vec![250.0, 80.0, f64::NAN, 101.0])),
            ),
            (
                "leakage_intensity_width_2",
                Arc::new(Float64Array::from(vec![0.1, 0.0, 0.0, 0.3])),
            ),
        ])
        .unwrap()
    }

    #[test]
    fn keeps_the_matching_rows_with_the_input_schema() {
        let stage = filter("hillas_intensity > 100 AND leakage_intensity_width_2 < 0.2");
        let input = batch();
        let schema = stage.output_schema(&input.schema()).unwrap();
        assert_eq!(schema, input.schema());
        let output = stage.process(input, &schema).unwrap();
        let tel_ids = output.column(0).as_primitive::<Int16Type>();
        assert_eq!(tel_ids.values(), &[1]);
        let kept = filter("NOT hillas_intensity > 100")
            .process(batch(), &schema)
            .unwrap();
        // NaN > 100 is false, so NOT keeps the NaN row (numpy's ~(x > 100)).
        assert_eq!(kept.column(0).as_primitive::<Int16Type>().values(), &[2, 3]);
    }

    #[test]
    fn an_unknown_column_is_an_error_about_the_option() {
        let error = filter("hillas_intensty > 100")
            .output_schema(&batch().schema())
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "option `where`: `hillas_intensty > 100`: unknown column `hillas_intensty` at \
             character 1; did you mean `hillas_intensity`?"
        );
    }

    #[test]
    fn build_checks_the_syntax_and_an_empty_condition() {
        let build_with = |condition: &str| {
            let config = PerTelescope::new(
                FilterConfig {
                    r#where: condition.to_string(),
                },
                Default::default(),
            );
            build(config, &BuildContext::default()).map(|_| ())
        };
        let error = build_with("tel_id >").unwrap_err();
        assert_eq!(error.option.as_deref(), Some("where"));
        assert_eq!(
            error.message,
            "`tel_id >`: syntax error at character 9: Expected: an expression, found: the end"
        );
        assert_eq!(
            build_with(" ").unwrap_err().option.as_deref(),
            Some("where")
        );
        assert!(build_with("tel_id > 1").is_ok());
    }
}
