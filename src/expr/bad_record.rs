//! Records `from_json` (or a JSON file source) could not parse, kept for the query's
//! `badRecordsPath` and for naming the offending offset in FAILFAST errors.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Where a bad record came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// Not known: the parsed text is not a source column as read.
    Unknown,
    /// A Kafka message.
    Kafka {
        /// Its topic.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// Its timestamp in microseconds since the epoch.
        timestamp_micros: Option<i64>,
    },
    /// A line of a file.
    File {
        /// The file.
        path: String,
        /// The line, from 1.
        line: usize,
    },
}

/// One record that did not parse.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRecord {
    /// The record as read.
    pub record: Vec<u8>,
    /// Why it did not parse.
    pub reason: String,
    /// Its row in the column the parser was given.
    pub row: usize,
    /// Where it came from, once known.
    pub location: Location,
    /// It stopped the query (FAILFAST).
    pub fatal: bool,
}

impl BadRecord {
    /// The FAILFAST error text: the record (its first 200 characters) and where it is.
    pub fn fail_fast_message(&self) -> String {
        let text = String::from_utf8_lossy(&self.record);
        let text: String = text.chars().take(200).collect();
        let at = match &self.location {
            Location::Kafka {
                topic,
                partition,
                offset,
                ..
            } => format!("offset {offset} of {topic}-{partition}"),
            Location::File { path, line } => format!("line {line} of {path}"),
            Location::Unknown => format!("row {}", self.row),
        };
        format!(
            "from_json(mode=FAILFAST): malformed record at {at}: '{text}': {}",
            self.reason
        )
    }
}

/// Bad records met since the reader last took them; off unless a streaming query turns it
/// on (batch reads keep nothing, and nobody would take them).
#[derive(Debug, Default)]
pub struct BadRecords {
    on: AtomicBool,
    records: Mutex<Vec<BadRecord>>,
}

impl BadRecords {
    /// Starts keeping records.
    pub fn keep(&self) {
        self.on.store(true, Ordering::Relaxed);
    }

    /// Whether records are kept.
    pub fn is_kept(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Keeps `record` when on.
    pub fn push(&self, record: BadRecord) {
        if self.on.load(Ordering::Relaxed) {
            self.lock().push(record);
        }
    }

    /// The records kept so far, in the order they were met; empties the list.
    pub fn take(&self) -> Vec<BadRecord> {
        if !self.on.load(Ordering::Relaxed) {
            return Vec::new();
        }
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<BadRecord>> {
        // Every update is one push or one take, so a poisoned list is still consistent.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}
