//! The one error type of the engine, grouped by what the user can do about it.
//!
//! The Python bindings map each variant to PySpark's exception names
//! (`AnalysisException`, `IllegalArgumentException`, `StreamingQueryException`) in
//! `src/python/errors.rs`; the core never knows about Python.

use std::path::PathBuf;

/// Every failure the engine reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The query is wrong: an unknown column, a plan Spark would reject, a bad expression.
    #[error("{0}")]
    Analysis(String),
    /// An option or argument has a value we cannot accept.
    #[error("{0}")]
    IllegalArgument(String),
    /// A source failed to read (broker unreachable, file unreadable, data lost).
    #[error("{0}")]
    Source(String),
    /// A source cannot be reached for now (the broker is down or restarting); a running
    /// query waits and retries, it does not fail.
    #[error("{0}")]
    SourceUnavailable(String),
    /// A sink failed to write.
    #[error("{0}")]
    Sink(String),
    /// The checkpoint folder is corrupt or belongs to another query.
    #[error("{0}")]
    Checkpoint(String),
    /// The state store failed.
    #[error("{0}")]
    State(String),
    /// A streaming query ended with this failure.
    #[error("{0}")]
    QueryFailed(String),
    /// A user's callback raised; the message carries its traceback.
    #[error("{0}")]
    Callback(String),
    /// A file system operation failed on `path`.
    #[error("{action} {path}: {source}")]
    Io {
        /// What we were doing.
        action: &'static str,
        /// The file or folder at fault.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Arrow failed (a cast, a malformed batch).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// DataFusion failed while planning or evaluating an expression.
    #[error("{0}")]
    DataFusion(Box<datafusion::error::DataFusionError>),
    /// Parquet encoding or decoding failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// The query was stopped while an operation waited on it.
    #[error("the query was stopped")]
    Stopped,
}

impl From<datafusion::error::DataFusionError> for Error {
    fn from(error: datafusion::error::DataFusionError) -> Self {
        Error::DataFusion(Box::new(error))
    }
}

impl Error {
    /// An I/O error that names the path it happened on.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for an analysis error with a formatted message.
#[macro_export]
macro_rules! analysis {
    ($($arg:tt)*) => { $crate::error::Error::Analysis(format!($($arg)*)) };
}

/// Shorthand for an illegal-argument error with a formatted message.
#[macro_export]
macro_rules! illegal {
    ($($arg:tt)*) => { $crate::error::Error::IllegalArgument(format!($($arg)*)) };
}
