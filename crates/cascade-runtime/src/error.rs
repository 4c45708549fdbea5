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
        /// Where in the option's value the problem is, when known: validation then points
        /// at that character.
        at: Option<ValuePosition>,
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

/// A character of an option's value: the string reached by `path` (indices into nested
/// arrays, e.g. `[2, 1]` for the expression of the third `[name, expression]` pair; empty
/// for the value itself) and its character `character` (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuePosition {
    /// Indices into nested arrays, outermost first.
    pub path: Vec<usize>,
    /// The character of the string, 1-based.
    pub character: usize,
}

impl ValuePosition {
    /// Character `character` of the value itself (a string option).
    pub fn character(character: usize) -> Self {
        Self {
            path: Vec::new(),
            character,
        }
    }
}

/// What kind of failure an error is, for whoever decides what to do next (a campaign
/// manager retrying a job, the command line's exit status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// The pipeline or a stage's options do not fit (fix the configuration; retrying the
    /// same job fails the same way).
    Config,
    /// The input data cannot be processed: a corrupt or truncated file, data a stage
    /// rejects (retrying the same input fails the same way).
    Data,
    /// Reading or writing a file failed (a missing or unreadable file, a full disk, a
    /// network file system): the job may succeed once the environment is fixed.
    Io,
}

impl StageError {
    /// The kind of this failure.
    pub fn kind(&self) -> FailureKind {
        match self {
            StageError::MissingColumn { .. }
            | StageError::WrongType { .. }
            | StageError::Arity { .. }
            | StageError::Config(_)
            | StageError::InvalidOption { .. } => FailureKind::Config,
            StageError::Io { .. } => FailureKind::Io,
            StageError::Data(_) | StageError::Arrow(_) => FailureKind::Data,
            StageError::External(error) => io_or_data(error.as_ref()),
        }
    }
}

/// `Io` when an I/O error is in the chain of `error`, else `Data`.
fn io_or_data(error: &(dyn std::error::Error + 'static)) -> FailureKind {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<std::io::Error>() {
            return FailureKind::Io;
        }
        next = error.source();
    }
    FailureKind::Data
}

/// The kind of a failure travelling through the pipeline's streams.
fn kind_of(error: &DataFusionError) -> FailureKind {
    match error {
        DataFusionError::External(inner) => {
            if let Some(stage_error) = inner.downcast_ref::<StageError>() {
                stage_error.kind()
            } else if let Some(failure) = inner.downcast_ref::<StageFailure>() {
                kind_of(&failure.error)
            } else {
                io_or_data(inner.as_ref())
            }
        }
        DataFusionError::Context(_, inner) => kind_of(inner),
        DataFusionError::Shared(inner) => kind_of(inner),
        DataFusionError::IoError(_) => FailureKind::Io,
        DataFusionError::Configuration(_) | DataFusionError::Plan(_) => FailureKind::Config,
        _ => FailureKind::Data,
    }
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
        /// What kind of failure it is.
        kind: FailureKind,
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
                kind: kind_of(&failure.error),
            },
            None => RunError::Stage {
                stage: "<runtime>".to_string(),
                message: describe(&error),
                kind: kind_of(&error),
            },
        }
    }

    /// The kind of this failure (a pipeline that cannot start is a configuration error).
    pub fn kind(&self) -> FailureKind {
        match self {
            RunError::Stage { kind, .. } => *kind,
            RunError::Start(_) => FailureKind::Config,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified_by_what_a_retry_could_change() {
        let io = || std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full");
        let stage_error = |error: StageError| {
            let tagged = StageFailure::tag("sink", DataFusionError::from(error));
            RunError::from_datafusion(tagged).kind()
        };
        assert_eq!(
            stage_error(StageError::Config("x".into())),
            FailureKind::Config
        );
        assert_eq!(
            stage_error(StageError::InvalidOption {
                option: "x".into(),
                message: "y".into(),
                at: None,
            }),
            FailureKind::Config
        );
        assert_eq!(stage_error(StageError::Data("x".into())), FailureKind::Data);
        let file = StageError::Io {
            path: "f".into(),
            source: io(),
        };
        assert_eq!(stage_error(file), FailureKind::Io);
        // An I/O error inside another library's error is still one.
        let wrapped: Box<dyn std::error::Error + Send + Sync> = Box::new(io());
        assert_eq!(stage_error(StageError::External(wrapped)), FailureKind::Io);
        let other: Box<dyn std::error::Error + Send + Sync> = "bad value".into();
        assert_eq!(stage_error(StageError::External(other)), FailureKind::Data);
        assert_eq!(
            RunError::from_datafusion(DataFusionError::IoError(io())).kind(),
            FailureKind::Io
        );
        assert_eq!(RunError::Start("x".into()).kind(), FailureKind::Config);
    }
}
