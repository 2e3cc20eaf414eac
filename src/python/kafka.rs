//! Kafka administration for Python (`ferrostream.kafka.create_topic`).

use std::time::Duration;

use pyo3::prelude::*;

use super::errors::IntoPy;

/// Creates a topic unless it exists; returns whether it was created.
#[pyfunction]
#[pyo3(signature = (bootstrap, topic, partitions=1, timeout=30.0))]
fn create_topic(
    py: Python<'_>,
    bootstrap: String,
    topic: String,
    partitions: i32,
    timeout: f64,
) -> PyResult<bool> {
    py.detach(move || {
        crate::sink::kafka::create_topic(
            &bootstrap,
            &topic,
            partitions,
            Duration::from_secs_f64(timeout),
        )
    })
    .py_err()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(create_topic, m)?)
}
