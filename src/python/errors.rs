//! PySpark's exception names, declared once, and the one mapping from the engine's errors.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use crate::error::Error;

create_exception!(
    ferrostream._core,
    PySparkException,
    PyException,
    "Base of ferrostream's errors, as pyspark.errors.PySparkException."
);
create_exception!(
    ferrostream._core,
    AnalysisException,
    PySparkException,
    "The query is wrong: an unknown column, a plan Spark rejects."
);
create_exception!(
    ferrostream._core,
    ParseException,
    AnalysisException,
    "A DDL or SQL string cannot be parsed."
);
create_exception!(
    ferrostream._core,
    IllegalArgumentException,
    PySparkException,
    "An option or argument has a value that is not accepted."
);
create_exception!(
    ferrostream._core,
    StreamingQueryException,
    PySparkException,
    "A streaming query failed."
);

/// Converts an engine error to the Python exception a PySpark user expects.
pub fn to_py(error: Error) -> PyErr {
    let message = error.to_string();
    match error {
        Error::Analysis(_) | Error::DataFusion(_) => AnalysisException::new_err(message),
        Error::IllegalArgument(_) => IllegalArgumentException::new_err(message),
        Error::QueryFailed(_) | Error::Callback(_) => StreamingQueryException::new_err(message),
        Error::Source(_)
        | Error::SourceUnavailable(_)
        | Error::Sink(_)
        | Error::Checkpoint(_)
        | Error::State(_)
        | Error::Io { .. }
        | Error::Arrow(_)
        | Error::Parquet(_)
        | Error::Stopped => PySparkException::new_err(message),
    }
}

/// Shorthand to map a result.
pub trait IntoPy<T> {
    /// Maps the error to Python's.
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for crate::error::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("PySparkException", py.get_type::<PySparkException>())?;
    m.add("AnalysisException", py.get_type::<AnalysisException>())?;
    m.add("ParseException", py.get_type::<ParseException>())?;
    m.add(
        "IllegalArgumentException",
        py.get_type::<IllegalArgumentException>(),
    )?;
    m.add(
        "StreamingQueryException",
        py.get_type::<StreamingQueryException>(),
    )?;
    Ok(())
}
