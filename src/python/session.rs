//! The session for Python: plans in as JSON, Arrow out through the PyCapsule interface.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3_arrow::PyTable;

use super::errors::{to_py, IntoPy};
use super::query::PyStreamingQuery;
use crate::error::Error;
use crate::plan::Plan;
use crate::session::{Session, WriterSpec};
use crate::show::render_table;
use crate::sink::foreach_batch::BatchFn;
use crate::source::memory::MemoryStream;

fn plan(json: &str) -> PyResult<Plan> {
    Plan::from_json(json).py_err()
}

fn writer(json: &str) -> PyResult<WriterSpec> {
    serde_json::from_str(json)
        .map_err(|e| to_py(Error::IllegalArgument(format!("malformed writer: {e}"))))
}

fn spark_json(text: &str) -> PyResult<serde_json::Value> {
    serde_json::from_str(text)
        .map_err(|e| to_py(Error::IllegalArgument(format!("malformed schema: {e}"))))
}

/// A session (one per `SparkSession`).
#[pyclass(name = "Session", module = "ferrostream._core", frozen)]
pub struct PySession {
    inner: Arc<Session>,
}

#[pymethods]
impl PySession {
    #[new]
    fn new() -> Self {
        PySession {
            inner: Arc::new(Session::new()),
        }
    }

    /// Spark's JSON schema of a plan's result.
    fn schema(&self, py: Python<'_>, plan_json: &str) -> PyResult<String> {
        let plan = plan(plan_json)?;
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.schema_json(&plan))
            .py_err()
            .map(|v| v.to_string())
    }

    /// Runs a batch plan; returns an Arrow table.
    fn collect(&self, py: Python<'_>, plan_json: &str) -> PyResult<PyTable> {
        let plan = plan(plan_json)?;
        let inner = Arc::clone(&self.inner);
        let (schema, batches) = py.detach(move || inner.collect(&plan)).py_err()?;
        PyTable::try_new(batches, schema)
    }

    /// The number of rows of a batch plan, counted without handing the rows to Python.
    fn count(&self, py: Python<'_>, plan_json: &str) -> PyResult<u64> {
        let plan = plan(plan_json)?;
        let inner = Arc::clone(&self.inner);
        let (_, batches) = py.detach(move || inner.collect(&plan)).py_err()?;
        Ok(batches.iter().map(|batch| batch.num_rows() as u64).sum())
    }

    /// Spark's `show()` text of a batch plan.
    fn show_string(
        &self,
        py: Python<'_>,
        plan_json: &str,
        num_rows: usize,
        truncate: usize,
    ) -> PyResult<String> {
        let plan = plan(plan_json)?;
        let inner = Arc::clone(&self.inner);
        let (schema, batches) = py.detach(move || inner.collect(&plan)).py_err()?;
        let shown = if batches.is_empty() {
            vec![arrow::array::RecordBatch::new_empty(schema)]
        } else {
            batches
        };
        Ok(render_table(&shown, num_rows, truncate))
    }

    /// Starts a streaming query; `foreach_batch(table, batch_id)` is called for every batch
    /// of a `foreachBatch` writer.
    #[pyo3(signature = (plan_json, writer_json, foreach_batch=None))]
    fn start(
        &self,
        py: Python<'_>,
        plan_json: &str,
        writer_json: &str,
        foreach_batch: Option<Py<PyAny>>,
    ) -> PyResult<PyStreamingQuery> {
        let (plan, writer) = (plan(plan_json)?, writer(writer_json)?);
        let inner = Arc::clone(&self.inner);
        let func = foreach_batch.map(batch_callback);
        let query = py
            .detach(move || inner.start_query(&plan, &writer, func))
            .py_err()?;
        Ok(PyStreamingQuery { inner: query })
    }

    /// Writes a batch plan once; returns the rows written.
    fn write(&self, py: Python<'_>, plan_json: &str, writer_json: &str) -> PyResult<u64> {
        let (plan, writer) = (plan(plan_json)?, writer(writer_json)?);
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.write(&plan, &writer)).py_err()
    }

    /// Runs SQL over memory tables and views; returns the result's data id.
    fn sql(&self, py: Python<'_>, text: String) -> PyResult<u64> {
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.sql(&text)).py_err()
    }

    /// Lets go of data held for a `batch` plan node.
    fn remove_arrow(&self, id: u64) -> PyResult<()> {
        self.inner.remove_batches(id).py_err()
    }

    /// Holds Arrow data; returns its id for a `batch` plan node.
    fn add_arrow(&self, table: PyTable) -> PyResult<u64> {
        let (batches, schema) = table.into_inner();
        self.inner.add_batches(schema, batches).py_err()
    }

    /// A memory stream of the given Spark JSON schema; returns `(id, stream)`.
    fn memory_stream(&self, schema_json: &str) -> PyResult<(u64, PyMemoryStream)> {
        let schema = Session::parse_schema(&spark_json(schema_json)?).py_err()?;
        let (id, stream) = self.inner.memory_stream(schema).py_err()?;
        Ok((id, PyMemoryStream { inner: stream }))
    }

    fn create_view(&self, name: &str, plan_json: &str) -> PyResult<()> {
        self.inner.create_view(name, plan(plan_json)?).py_err()
    }

    fn table_names(&self) -> PyResult<Vec<String>> {
        self.inner.table_names().py_err()
    }

    fn active(&self) -> PyResult<Vec<PyStreamingQuery>> {
        Ok(self
            .inner
            .active()
            .py_err()?
            .into_iter()
            .map(|inner| PyStreamingQuery { inner })
            .collect())
    }

    fn set_config(&self, key: &str, value: &str) -> PyResult<()> {
        self.inner.set_config(key, value).py_err()
    }

    fn get_config(&self, key: &str) -> PyResult<Option<String>> {
        self.inner.config(key).py_err()
    }

    /// Stops every query of the session.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.stop_all()).py_err()
    }
}

/// Wraps a Python function as a `foreachBatch` function: it gets the batch as an Arrow table
/// (PyCapsule stream) and its id; an exception it raises fails the query with its traceback.
fn batch_callback(func: Py<PyAny>) -> BatchFn {
    Box::new(move |batch_id, schema, batches| {
        Python::attach(|py| {
            let table = PyTable::try_new(batches.to_vec(), schema.clone())
                .map_err(|e| Error::Callback(format!("foreachBatch: {e}")))?;
            func.call1(py, (table, batch_id))
                .map(drop)
                .map_err(|e| Error::Callback(describe_exception(py, &e, batch_id)))
        })
    })
}

/// A Python exception as the text Python prints: traceback, type and message.
fn describe_exception(py: Python<'_>, error: &PyErr, batch_id: u64) -> String {
    let traceback = error
        .traceback(py)
        .and_then(|tb| tb.format().ok())
        .unwrap_or_default();
    format!("foreachBatch function failed in batch {batch_id}:\n{traceback}{error}")
}

/// Spark's `MemoryStream`: rows added here become a stream.
#[pyclass(name = "MemoryStream", module = "ferrostream._core", frozen)]
pub struct PyMemoryStream {
    inner: MemoryStream,
}

#[pymethods]
impl PyMemoryStream {
    /// Appends an Arrow table; returns the offset after it.
    fn add(&self, table: PyTable) -> PyResult<u64> {
        let (batches, _) = table.into_inner();
        let mut offset = 0;
        for batch in batches {
            offset = self.inner.add(batch).py_err()?;
        }
        Ok(offset)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySession>()?;
    m.add_class::<PyMemoryStream>()
}
