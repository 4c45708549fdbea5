//! Quality queries as in ctapipe (`ctapipe.core.QualityQuery`): a list of named criteria,
//! each a condition on a row ([`crate::expr`]); a row passes when it meets every one.
//!
//! In a pipeline file a criterion is a `[name, expression]` pair, like ctapipe's
//! `(name, expression)` tuples, with cascade's flat column names:
//!
//! ```toml
//! quality_criteria = [
//!     ["> 50 phe", "hillas_intensity > 50"],
//!     ["Positive width", "hillas_width > 0"],
//!     ["> 3 pixels", "morphology_n_pixels > 3"],
//! ]
//! ```
//!
//! A comparison with NaN is false, as in ctapipe (numpy), so a row with NaN parameters fails
//! `hillas_intensity > 50`. The criteria are parsed once ([`QualityQuery::parse`]), checked
//! against each input schema ([`QualityQuery::bind`]) and evaluated on whole batches.

use arrow::array::BooleanArray;
use arrow::compute::kernels::boolean;
use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::expr::{ExprError, Expression, Predicate};

/// One named criterion: `[name, expression]` in a pipeline file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(String, String)", into = "(String, String)")]
pub struct QualityCriterion {
    /// A short name for reports (ctapipe's first tuple element, e.g. `"> 50 phe"`).
    pub name: String,
    /// The condition a row must meet, e.g. `"hillas_intensity > 50"`.
    pub expression: String,
}

impl QualityCriterion {
    /// A criterion named `name`.
    pub fn new(name: &str, expression: &str) -> Self {
        Self {
            name: name.to_string(),
            expression: expression.to_string(),
        }
    }
}

impl From<(String, String)> for QualityCriterion {
    fn from((name, expression): (String, String)) -> Self {
        Self { name, expression }
    }
}

impl From<QualityCriterion> for (String, String) {
    fn from(criterion: QualityCriterion) -> Self {
        (criterion.name, criterion.expression)
    }
}

/// ctapipe 0.28's `StereoQualityQuery` default (`ctapipe.reco.reconstructor`):
/// `parameters.hillas.intensity > 50`, `parameters.hillas.width.value > 0`,
/// `parameters.morphology.n_pixels > 3`, with the same names.
pub fn ctapipe_stereo_quality_criteria() -> Vec<QualityCriterion> {
    vec![
        QualityCriterion::new("> 50 phe", "hillas_intensity > 50"),
        QualityCriterion::new("Positive width", "hillas_width > 0"),
        QualityCriterion::new("> 3 pixels", "morphology_n_pixels > 3"),
    ]
}

/// A criterion that cannot be used, with its name and position in the list.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("criterion {} `{name}` (`{expression}`): {source}", .index + 1)]
pub struct QualityError {
    /// Position of the criterion in the list (0-based).
    pub index: usize,
    /// Its name.
    pub name: String,
    /// Its expression.
    pub expression: String,
    /// What is wrong.
    pub source: Box<ExprError>,
}

/// Parsed criteria, not yet checked against a schema.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityQuery {
    criteria: Vec<(QualityCriterion, Expression)>,
}

impl QualityQuery {
    /// Parses every criterion.
    ///
    /// # Errors
    /// The first criterion with a syntax error.
    pub fn parse(criteria: &[QualityCriterion]) -> Result<Self, QualityError> {
        let criteria = criteria
            .iter()
            .enumerate()
            .map(|(index, criterion)| {
                Expression::parse(&criterion.expression)
                    .map(|expression| (criterion.clone(), expression))
                    .map_err(|source| error(index, criterion, source))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { criteria })
    }

    /// Checks every criterion against `schema`.
    ///
    /// # Errors
    /// The first criterion naming an unknown column or mixing types.
    pub fn bind(&self, schema: &Schema) -> Result<BoundQualityQuery, QualityError> {
        let predicates = self
            .criteria
            .iter()
            .enumerate()
            .map(|(index, (criterion, expression))| {
                expression
                    .bind(schema)
                    .map(|predicate| (index, criterion.clone(), predicate))
                    .map_err(|source| error(index, criterion, source))
            })
            .collect::<Result<_, _>>()?;
        Ok(BoundQualityQuery { predicates })
    }
}

fn error(index: usize, criterion: &QualityCriterion, source: ExprError) -> QualityError {
    QualityError {
        index,
        name: criterion.name.clone(),
        expression: criterion.expression.clone(),
        source: Box::new(source),
    }
}

/// Criteria checked against a schema, ready to evaluate on its batches.
#[derive(Debug, Clone)]
pub struct BoundQualityQuery {
    predicates: Vec<(usize, QualityCriterion, Predicate)>,
}

impl BoundQualityQuery {
    /// For every row of `batch`: whether it meets every criterion (all true without
    /// criteria). Like ctapipe's `all(quality_query(...))`.
    ///
    /// # Errors
    /// A criterion that cannot be evaluated on `batch` (a batch of another schema).
    pub fn passes(&self, batch: &RecordBatch) -> Result<BooleanArray, QualityError> {
        let mut all = BooleanArray::from(vec![true; batch.num_rows()]);
        for (index, criterion, predicate) in &self.predicates {
            let mask = predicate
                .evaluate(batch)
                .map_err(|source| error(*index, criterion, source))?;
            all = boolean::and(&all, &mask).map_err(|e| error(*index, criterion, e.into()))?;
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use std::sync::Arc;

    use super::*;
    use arrow::array::{ArrayRef, Float64Array, Int64Array};

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "hillas_intensity",
                Arc::new(Float64Array::from(vec![
                    50.1,
                    50.0,
                    60.0,
                    60.0,
                    f64::NAN,
                    60.0,
                ])) as ArrayRef,
            ),
            (
                "hillas_width",
                Arc::new(Float64Array::from(vec![0.1, 0.1, 0.0, 0.1, 0.1, f64::NAN])),
            ),
            (
                "morphology_n_pixels",
                Arc::new(Int64Array::from(vec![4, 4, 4, 3, 4, 4])),
            ),
        ])
        .unwrap()
    }

    #[test]
    fn ctapipe_defaults_are_strict_inequalities_and_reject_nan() {
        let query = QualityQuery::parse(&ctapipe_stereo_quality_criteria()).unwrap();
        let passes = query
            .bind(&batch().schema())
            .unwrap()
            .passes(&batch())
            .unwrap();
        // The same cases as cascade_reco::StereoQualityQuery's test of ctapipe's defaults.
        assert_eq!(
            passes.iter().map(Option::unwrap).collect::<Vec<_>>(),
            [true, false, false, false, false, false]
        );
    }

    #[test]
    fn defaults_are_the_criteria_of_the_ctapipe_references() {
        // ctapipe's container paths as cascade's flat columns.
        let flat = |e: &str| {
            e.replace("parameters.", "")
                .replace(".value", "")
                .replace('.', "_")
        };
        for stem in cascade_testdata::STEMS {
            let path = cascade_testdata::data_dir()
                .join("reference")
                .join(format!("{stem}.meta.json"));
            let meta: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let config = &meta["config"]["ShowerProcessor"]["ShowerProcessor"];
            let criteria = config["HillasReconstructor"]["StereoQualityQuery"]["quality_criteria"]
                .as_array()
                .unwrap();
            let theirs: Vec<QualityCriterion> = criteria
                .iter()
                .map(|pair| {
                    let text = |i: usize| pair[i].as_str().unwrap();
                    QualityCriterion::new(text(0), &flat(text(1)))
                })
                .collect();
            assert_eq!(ctapipe_stereo_quality_criteria(), theirs, "{stem}");
        }
    }

    #[test]
    fn no_criteria_keep_every_row() {
        let query = QualityQuery::parse(&[]).unwrap();
        let passes = query
            .bind(&batch().schema())
            .unwrap()
            .passes(&batch())
            .unwrap();
        assert_eq!(passes.true_count(), 6);
    }

    #[test]
    fn errors_name_the_criterion() {
        let criteria = [
            QualityCriterion::new("bright", "hillas_intensity > 50"),
            QualityCriterion::new("contained", "leakage_intensity_width_2 < 0.2"),
        ];
        let error = QualityQuery::parse(&criteria)
            .unwrap()
            .bind(&batch().schema())
            .unwrap_err();
        assert_eq!(error.index, 1);
        assert_eq!(
            error.to_string(),
            "criterion 2 `contained` (`leakage_intensity_width_2 < 0.2`): unknown column \
             `leakage_intensity_width_2` at character 1"
        );
        let syntax =
            QualityQuery::parse(&[QualityCriterion::new("x", "hillas_width >")]).unwrap_err();
        assert_eq!(syntax.index, 0);
        assert!(matches!(*syntax.source, ExprError::Syntax { .. }));
    }

    #[test]
    fn criteria_read_as_name_expression_pairs() {
        #[derive(Deserialize)]
        struct Options {
            quality_criteria: Vec<QualityCriterion>,
        }
        // As TOML deserialises `quality_criteria = [["> 50 phe", "..."], ...]`.
        let options: Options = serde_json::from_str(
            r#"{"quality_criteria": [["> 50 phe", "hillas_intensity > 50"], ["w", "hillas_width > 0"]]}"#,
        )
        .unwrap();
        assert_eq!(
            options.quality_criteria,
            [
                QualityCriterion::new("> 50 phe", "hillas_intensity > 50"),
                QualityCriterion::new("w", "hillas_width > 0")
            ]
        );
        assert_eq!(
            cascade_pipeline::config::toml_value_text(&ctapipe_stereo_quality_criteria()),
            r#"[["> 50 phe", "hillas_intensity > 50"], ["Positive width", "hillas_width > 0"], ["> 3 pixels", "morphology_n_pixels > 3"]]"#
        );
    }
}
