//! ferrostream: a stream-processing engine in Rust with the PySpark Structured Streaming API.
//!
//! Data flows one way: `source` → `exec` (plans compiled by `plan` and `expr`, run with
//! DataFusion) → `window` / `state` → `sink`, with `checkpoint` beside `exec`. Only this
//! file and `python/` know that Python exists.

pub mod checkpoint;
pub mod error;
pub mod exec;
pub mod expr;
pub mod ingest;
pub mod plan;
pub mod session;
pub mod show;
pub mod sink;
pub mod source;
pub mod state;
pub mod window;

#[cfg(feature = "python")]
mod python;

pub use error::{Error, Result};
pub use session::Session;

/// The engine's version.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[cfg(feature = "python")]
#[pyo3::pymodule]
fn _core(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    python::register(m)
}
