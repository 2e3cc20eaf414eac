//! `StreamingQuery` for Python: waits release the GIL and answer Ctrl-C.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use super::errors::IntoPy;
use crate::exec::StreamingQuery;

/// A running query's handle.
#[pyclass(name = "StreamingQuery", module = "ferrostream._core", frozen)]
pub struct PyStreamingQuery {
    pub inner: Arc<StreamingQuery>,
}

/// How often blocking waits come back to check for Ctrl-C.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

#[pymethods]
impl PyStreamingQuery {
    #[getter]
    fn id(&self) -> String {
        self.inner.id().to_string()
    }

    #[getter]
    fn run_id(&self) -> String {
        self.inner.run_id().to_string()
    }

    #[getter]
    fn name(&self) -> Option<String> {
        self.inner.name().map(str::to_string)
    }

    #[getter]
    fn is_active(&self) -> bool {
        self.inner.is_active()
    }

    /// `(message, isDataAvailable, isTriggerActive)`.
    fn status(&self) -> (String, bool, bool) {
        self.inner.status()
    }

    /// The latest progress as JSON text.
    fn last_progress(&self) -> Option<String> {
        self.inner.last_progress().map(|p| p.to_string())
    }

    /// Recent progress reports as JSON texts.
    fn recent_progress(&self) -> Vec<String> {
        self.inner
            .recent_progress()
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    fn exception(&self) -> Option<String> {
        self.inner.exception()
    }

    fn stop(&self, py: Python<'_>) {
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.stop());
    }

    /// Waits for the query to end; `timeout` in seconds. Returns whether it ended.
    #[pyo3(signature = (timeout=None))]
    fn await_termination(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let deadline = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
        loop {
            let wait = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) => left.min(SIGNAL_CHECK),
                    None => return Ok(false),
                },
                None => SIGNAL_CHECK,
            };
            let inner = Arc::clone(&self.inner);
            if py
                .detach(move || inner.await_termination(Some(wait)))
                .py_err()?
            {
                return Ok(true);
            }
            py.check_signals()?;
        }
    }

    /// Blocks until everything available now is processed.
    #[pyo3(signature = (timeout=None))]
    fn process_all_available(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let deadline = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
        let inner = Arc::clone(&self.inner);
        let request = py.detach(move || inner.request_all_available());
        loop {
            let inner = Arc::clone(&self.inner);
            if py
                .detach(move || inner.wait_all_available(request, SIGNAL_CHECK))
                .py_err()?
            {
                return Ok(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            py.check_signals()?;
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStreamingQuery>()
}
