//! The Python bindings: the only Rust code that knows Python exists. Each file exports
//! `register`; plans arrive as JSON (see `docs/plan-format.md`), Arrow crosses the boundary
//! through the PyCapsule interface (pyo3-arrow), and blocking calls release the GIL.

mod errors;
mod ingest;
mod kafka;
mod log_bridge;
mod query;
mod session;

use pyo3::prelude::*;

/// Registers every class and function of `ferrostream._core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", crate::version())?;
    errors::register(m)?;
    session::register(m)?;
    query::register(m)?;
    kafka::register(m)?;
    ingest::register(m)?;
    log_bridge::register(m)?;
    Ok(())
}
