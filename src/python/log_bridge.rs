//! The engine's `log` records, handed to Python's `logging`: a Spark user sees the engine's
//! warnings (a broker that does not answer, skipped offsets, a failed file removal) where
//! Spark prints its WARN lines, and configures them the Python way. A record of module
//! `ferrostream::source::kafka` goes to logger `ferrostream.source.kafka`; a dependency's to
//! `ferrostream.<its target>` (librdkafka's and the rdkafka crate's to `ferrostream.librdkafka`).
//!
//! The engine's threads never wait for the GIL: a Python caller may hold it while it waits on
//! them (a query's `stop()` joining its thread). They queue the record and one thread of ours
//! hands it to Python; a full queue drops records, counted and reported with the next one.
//! At exit (`atexit`, before the interpreter finalizes) that thread is stopped and joined, and
//! later records go to stderr: attaching to a finalizing interpreter ends the thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;

use log::{Level, LevelFilter, Log, Metadata, Record};
use pyo3::prelude::*;

/// Records waiting for Python at most.
const QUEUE: usize = 1024;

/// Python's level numbers.
fn python_level(level: Level) -> u8 {
    match level {
        Level::Error => 40,
        Level::Warn => 30,
        Level::Info => 20,
        Level::Debug => 10,
        Level::Trace => 5,
    }
}

/// The Python logger a record of `target` goes to. librdkafka's own log lines and the
/// errors the rdkafka crate reports for it (target `rdkafka::client`) share one logger.
fn logger_name(target: &str) -> String {
    if target == "librdkafka" || target.starts_with("rdkafka") {
        return "ferrostream.librdkafka".to_string();
    }
    let dotted = target.replace("::", ".");
    if dotted == "ferrostream" || dotted.starts_with("ferrostream.") {
        dotted
    } else {
        format!("ferrostream.{dotted}")
    }
}

struct Entry {
    logger: String,
    level: Level,
    text: String,
}

enum Message {
    Record(Entry),
    Stop,
}

struct Bridge {
    queue: SyncSender<Message>,
    /// Set at exit: records go to stderr.
    stopped: AtomicBool,
    /// Records dropped because the queue was full, not reported yet.
    dropped: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The engine's own records pass from this level; dependencies' only from WARN (their
    /// INFO is internals a user did not ask for).
    own_level: LevelFilter,
}

static BRIDGE: OnceLock<Bridge> = OnceLock::new();

fn to_stderr(entry: &Entry) {
    eprintln!("{} {}: {}", entry.level, entry.logger, entry.text);
}

impl Log for Bridge {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let own = metadata.target().starts_with("ferrostream");
        metadata.level()
            <= if own {
                self.own_level
            } else {
                LevelFilter::Warn
            }
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let entry = Entry {
            logger: logger_name(record.target()),
            level: record.level(),
            text: record.args().to_string(),
        };
        if self.stopped.load(Ordering::Acquire) {
            return to_stderr(&entry);
        }
        match self.queue.try_send(Message::Record(entry)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(Message::Record(entry))) => to_stderr(&entry),
            Err(TrySendError::Disconnected(Message::Stop)) => {}
        }
    }

    fn flush(&self) {}
}

/// Hands queued records to Python until told to stop.
fn forward(queue: Receiver<Message>, dropped: &AtomicU64) {
    while let Ok(Message::Record(entry)) = queue.recv() {
        let lost = dropped.swap(0, Ordering::Relaxed);
        let handed = Python::try_attach(|py| -> PyResult<()> {
            let logging = py.import("logging")?;
            if lost > 0 {
                logging
                    .call_method1("getLogger", ("ferrostream",))?
                    .call_method1(
                        "log",
                        (
                            30,
                            "%s log records were dropped: they came faster than Python took them",
                            lost,
                        ),
                    )?;
            }
            logging
                .call_method1("getLogger", (entry.logger.as_str(),))?
                .call_method1(
                    "log",
                    (python_level(entry.level), "%s", entry.text.as_str()),
                )?;
            Ok(())
        });
        if !matches!(handed, Some(Ok(()))) {
            to_stderr(&entry);
        }
    }
    // Records queued by threads that had not yet seen the stop.
    while let Ok(Message::Record(entry)) = queue.try_recv() {
        to_stderr(&entry);
    }
}

/// Stops the forwarding thread (registered with `atexit`); records after this go to stderr.
#[pyfunction]
fn _stop_logging(py: Python<'_>) {
    let Some(bridge) = BRIDGE.get() else { return };
    bridge.stopped.store(true, Ordering::Release);
    let thread = bridge.thread.lock().map(|mut t| t.take()).unwrap_or(None);
    if let Some(thread) = thread {
        // The thread may be waiting for the GIL this caller holds.
        py.detach(|| {
            let _ = bridge.queue.send(Message::Stop);
            let _ = thread.join();
        });
    }
}

/// Installs the bridge, the engine's own records from the level of Python's `ferrostream`
/// logger when it is INFO or finer, else from INFO (Python drops what its handlers do not
/// want; INFO records are few).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(_stop_logging, m)?)?;
    let effective: u32 = py
        .import("logging")?
        .call_method1("getLogger", ("ferrostream",))?
        .call_method0("getEffectiveLevel")?
        .extract()?;
    let own_level = match effective {
        0..=5 => LevelFilter::Trace,
        6..=10 => LevelFilter::Debug,
        _ => LevelFilter::Info,
    };
    let (queue, receiver) = sync_channel(QUEUE);
    let bridge = BRIDGE.get_or_init(|| Bridge {
        queue,
        stopped: AtomicBool::new(false),
        dropped: AtomicU64::new(0),
        thread: Mutex::new(None),
        own_level,
    });
    if log::set_logger(bridge).is_err() {
        // Another logger was installed first (the module imported twice): keep it.
        return Ok(());
    }
    log::set_max_level(own_level.max(LevelFilter::Warn));
    let thread = std::thread::Builder::new()
        .name("ferrostream-log".into())
        .spawn(move || forward(receiver, &bridge.dropped))
        .map_err(|e| {
            pyo3::exceptions::PyRuntimeError::new_err(format!("cannot start the log thread: {e}"))
        })?;
    if let Ok(mut slot) = bridge.thread.lock() {
        *slot = Some(thread);
    }
    py.import("atexit")?
        .call_method1("register", (m.getattr("_stop_logging")?,))?;
    Ok(())
}
