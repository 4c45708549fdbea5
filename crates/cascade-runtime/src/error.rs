//! Errors of stages and of pipeline runs.

use arrow::error::ArrowError;
use datafusion_common::DataFusionError;

/// An error raised by one stage: while checking schemas, starting, or processing data.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A column the stage needs is missing from its input.
    #[error("input has no column `{column}` (expected {expected})")]
    MissingColumn {
        /// Column name.
        column: String,
        /// Expected Arrow type.
        expected: String,
    },
    /// A column has the wrong type.
    #[error("input column `{column}` has type {found}, expected {expected}")]
    WrongType {
        /// Column name.
        column: String,
        /// Type found.
        found: String,
        /// Type expected.
        expected: String,
    },
    /// The stage was given the wrong number of inputs.
    #[error("takes {expected} input(s), got {found}")]
    Arity {
        /// Expected count, e.g. "1" or "at least 1".
        expected: String,
        /// Inputs given.
        found: usize,
    },
    /// A configuration problem found when building or starting the stage.
    #[error("{0}")]
    Config(String),
    /// An option's value does not fit the input, e.g. an expression naming a column the
    /// input does not have. Pipeline validation points at the option's line.
    #[error("option `{option}`: {message}")]
    InvalidOption {
        /// The option, as named in the pipeline file.
        option: String,
        /// What is wrong with its value.
        message: String,
    },
    /// Bad input data (a corrupt file, an inconsistent batch).
    #[error("{0}")]
    Data(String),
    /// An I/O error on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An Arrow error (building or slicing batches).
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    /// An error from another library.
    #[error(transparent)]
    External(Box<dyn std::error::Error + Send + Sync>),
}

impl From<StageError> for DataFusionError {
    fn from(error: StageError) -> Self {
        DataFusionError::External(Box::new(error))
    }
}

/// An error travelling through the pipeline's streams, tagged with the stage that raised it.
#[derive(Debug, thiserror::Error)]
#[error("stage `{stage}`: {error}")]
pub struct StageFailure {
    /// Name of the stage (as in the pipeline file).
    pub stage: String,
    /// What went wrong.
    pub error: DataFusionError,
}

impl StageFailure {
    /// Tags `error` with `stage`, unless it already carries a stage (it came from upstream).
    pub fn tag(stage: &str, error: DataFusionError) -> DataFusionError {
        if Self::find(&error).is_some() {
            return error;
        }
        DataFusionError::External(Box::new(StageFailure {
            stage: stage.to_string(),
            error,
        }))
    }

    /// The stage failure inside a DataFusion error, if any.
    pub fn find(error: &DataFusionError) -> Option<&StageFailure> {
        match error {
            DataFusionError::External(inner) => inner.downcast_ref::<StageFailure>(),
            DataFusionError::Context(_, inner) => Self::find(inner),
            DataFusionError::Shared(inner) => Self::find(inner),
            _ => None,
        }
    }
}

/// Why a pipeline run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A stage failed; the run was cancelled.
    #[error("stage `{stage}` failed: {message}")]
    Stage {
        /// The failing stage.
        stage: String,
        /// The error message (with its chain of causes).
        message: String,
    },
    /// The pipeline could not be started.
    #[error("{0}")]
    Start(String),
}

impl RunError {
    /// Converts a DataFusion error from a pipeline stream into a run error naming the stage.
    pub fn from_datafusion(error: DataFusionError) -> Self {
        match StageFailure::find(&error) {
            Some(failure) => RunError::Stage {
                stage: failure.stage.clone(),
                message: describe(&failure.error),
            },
            None => RunError::Stage {
                stage: "<runtime>".to_string(),
                message: describe(&error),
            },
        }
    }
}

/// A DataFusion error as a human message, unwrapping the `External` layers.
fn describe(error: &DataFusionError) -> String {
    match error {
        DataFusionError::External(inner) => inner.to_string(),
        DataFusionError::Context(context, inner) => format!("{context}: {}", describe(inner)),
        other => other.to_string(),
    }
}
