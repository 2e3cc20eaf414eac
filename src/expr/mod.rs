//! The bridge from the expression trees Python sends to DataFusion expressions.
//!
//! We evaluate nothing ourselves: `lower` turns each node into a DataFusion `Expr`, with
//! Spark's semantics where the engines differ, and two UDFs (`from_json`, `to_json`) cover
//! the Spark functions DataFusion lacks.

pub mod bad_record;
mod flat_json;
pub mod from_json;
pub mod lower;
pub mod time_format;
pub mod to_json;
pub mod tree;
pub mod types;

use std::sync::atomic::{AtomicU64, Ordering};

pub use lower::Lowering;
pub use tree::ExprNode;

/// Counters that expressions update while a query runs; progress reports them.
#[derive(Debug, Default)]
pub struct ExprMetrics {
    malformed_rows: AtomicU64,
    /// The malformed records themselves, when a streaming query keeps them.
    pub bad_records: bad_record::BadRecords,
}

impl ExprMetrics {
    /// Records rows that `from_json` could not parse.
    pub fn add_malformed(&self, rows: u64) {
        self.malformed_rows.fetch_add(rows, Ordering::Relaxed);
    }

    /// Malformed rows seen so far.
    pub fn malformed_rows(&self) -> u64 {
        self.malformed_rows.load(Ordering::Relaxed)
    }

    /// Empty counters for one slice of a scan, keeping bad records if these do.
    pub fn for_slice(&self) -> ExprMetrics {
        let slice = ExprMetrics::default();
        if self.bad_records.is_kept() {
            slice.bad_records.keep();
        }
        slice
    }

    /// Moves what a slice's counters saw here (after the slices before it, so records stay in
    /// order), leaving the slice's counters empty for its next use.
    pub fn absorb(&self, slice: &ExprMetrics) {
        self.add_malformed(slice.malformed_rows.swap(0, Ordering::Relaxed));
        for record in slice.bad_records.take() {
            self.bad_records.push(record);
        }
    }
}
