//! `ferrostream._core.produce`: the Binance → Kafka producer for `ferrostream produce` and the
//! demo. Runs on its own thread with the GIL released; Ctrl-C (or SIGTERM, which the CLI turns
//! into KeyboardInterrupt) stops it cleanly, flushing what is in flight, and the summary is
//! still returned.

use std::collections::BTreeMap;
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use pyo3::prelude::*;
use serde::Deserialize;

use super::errors::IntoPy;
use crate::error::Error;
use crate::ingest::{self, ProducerConfig};
use crate::source::binance::feed_config;
use crate::source::Cancel;

const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// The producer's settings, as `ferrostream.cli` sends them (JSON).
#[derive(Debug, Deserialize)]
struct ProduceArgs {
    bootstrap: String,
    topic: String,
    #[serde(default = "default_partitions")]
    partitions: i32,
    /// The `binance` source's options (`symbols`, `stream`, `interval`, `restUrl`, `wsUrl`,
    /// `gapFill`).
    feed: BTreeMap<String, String>,
    #[serde(default)]
    kafka: BTreeMap<String, String>,
    #[serde(default)]
    stats_interval: Option<f64>,
    #[serde(default)]
    max_messages: Option<u64>,
    #[serde(default)]
    duration: Option<f64>,
    #[serde(default)]
    idle_timeout: Option<f64>,
}

fn default_partitions() -> i32 {
    2
}

fn seconds(value: f64, name: &str) -> crate::error::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| crate::illegal!("produce: '{name}' must be a non-negative number of seconds"))
}

/// Runs the producer; returns its summary as JSON.
#[pyfunction]
fn produce(py: Python<'_>, args: &str) -> PyResult<String> {
    let args: ProduceArgs = serde_json::from_str(args)
        .map_err(|e| Error::IllegalArgument(format!("produce: bad arguments: {e}")))
        .py_err()?;
    let mut feed = feed_config(&args.feed).py_err()?;
    if let Some(idle) = args.idle_timeout {
        feed.idle_timeout = seconds(idle, "idle_timeout").py_err()?;
    }
    let config = ProducerConfig {
        feed,
        bootstrap: args.bootstrap,
        topic: args.topic,
        partitions: args.partitions,
        kafka_options: args.kafka.into_iter().collect(),
        stats_interval: args
            .stats_interval
            .filter(|s| *s > 0.0)
            .map(|s| seconds(s, "stats_interval"))
            .transpose()
            .py_err()?,
        max_messages: args.max_messages,
        duration: args
            .duration
            .map(|s| seconds(s, "duration"))
            .transpose()
            .py_err()?,
    };
    let cancel = Cancel::default();
    let (done, finished) = mpsc::channel();
    // Only this thread receives; the mutex makes the receiver shareable with `detach`.
    let finished = Mutex::new(finished);
    let worker_cancel = cancel.clone();
    std::thread::Builder::new()
        .name("ferrostream-producer".into())
        .spawn(move || {
            let _ = done.send(ingest::run(config, &worker_cancel));
        })
        .map_err(|e| Error::State(format!("cannot start the producer thread: {e}")))
        .py_err()?;
    loop {
        let outcome = py.detach(|| match finished.lock() {
            Ok(receiver) => receiver.recv_timeout(SIGNAL_CHECK),
            Err(_) => Err(mpsc::RecvTimeoutError::Disconnected),
        });
        match outcome {
            Ok(result) => {
                let summary = result.py_err()?;
                return serde_json::to_string(&summary)
                    .map_err(|e| Error::State(format!("produce: summary: {e}")))
                    .py_err();
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Error::State("the producer thread died".into())).py_err();
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if py.check_signals().is_err() {
                    // Ctrl-C / SIGTERM: stop, flush, and still report what was done.
                    cancel.cancel();
                }
            }
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(produce, m)?)
}
