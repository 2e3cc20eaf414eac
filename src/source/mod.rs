//! Sources: where a query's rows come from, and the offsets that say how far it has read.
//!
//! As in Spark's `Source` API, a micro-batch is an offset range: the loop asks a source for
//! its latest offset (bounded by `maxOffsetsPerTrigger`-style limits), writes the range to
//! the checkpoint, then asks for exactly that range. Reading the same range again gives the
//! same rows, which is what makes a rerun after a crash produce the same result. Offsets are
//! JSON, as in Spark's offset log.

pub mod binance;
pub mod file;
pub mod kafka;
pub mod memory;
pub mod options;
pub mod rate;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use serde_json::Value;

use crate::error::Result;

/// A source's position, as JSON (Spark's offset log keeps the same form).
pub type SourceOffset = Value;

/// How much a batch may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadLimit {
    /// Everything available (`Trigger.Once`, or no limit option).
    All,
    /// The source's own per-trigger limit (maxOffsetsPerTrigger, maxFilesPerTrigger).
    Configured,
}

/// One piece of a batch: a partition's offsets `[from, until)`. Sources that can cut a batch
/// where every reader of the same data cuts it (Kafka offsets) plan batches in chunks, which
/// lets the queries of a session that read the same data share a chunk's reading and parsing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkRange {
    /// The topic (or stream) name.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The first offset.
    pub from: i64,
    /// One past the last offset.
    pub until: i64,
}

/// Lets a blocking read give up when the query stops.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Asks every holder to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A streaming or batch source.
pub trait Source: Send {
    /// The schema of the rows it produces.
    fn schema(&self) -> SchemaRef;

    /// Where a new query starts (before any data: Spark's `startingOffsets`).
    fn initial_offset(&mut self) -> Result<SourceOffset>;

    /// The end of the next batch that starts at `start`; equal to `start` when nothing new
    /// is there.
    fn latest_offset(&mut self, start: &SourceOffset, limit: ReadLimit) -> Result<SourceOffset>;

    /// The rows in `[start, end)`.
    fn get_batch(
        &mut self,
        start: &SourceOffset,
        end: &SourceOffset,
        cancel: &Cancel,
    ) -> Result<Vec<RecordBatch>>;

    /// Gives the source a folder of the query's checkpoint for what its offsets alone cannot
    /// hold (the file source's list of files taken), before the first offset is asked for.
    fn use_checkpoint(&mut self, _dir: &std::path::Path) -> Result<()> {
        Ok(())
    }

    /// The rows in `[start, end)` in chunks, each handed to `each` as it is read, so a large
    /// batch never sits in memory whole. The default reads the whole range at once.
    fn read_batch(
        &mut self,
        start: &SourceOffset,
        end: &SourceOffset,
        cancel: &Cancel,
        each: &mut dyn FnMut(Vec<RecordBatch>) -> Result<()>,
    ) -> Result<()> {
        let batches = self.get_batch(start, end, cancel)?;
        each(batches)
    }

    /// What identifies the data this source reads, for sharing chunks between queries (see
    /// `plan_chunks`); `None` when it cannot be shared.
    fn share_key(&self) -> Option<String> {
        None
    }

    /// The batch `[start, end)` as chunks every reader of the same data cuts alike, or `None`
    /// when the source reads whole batches only (`read_batch`).
    fn plan_chunks(
        &mut self,
        _start: &SourceOffset,
        _end: &SourceOffset,
    ) -> Result<Option<Vec<ChunkRange>>> {
        Ok(None)
    }

    /// Reads `chunks` of a batch `plan_chunks` gave, in any order; hands each to `each` with
    /// its index in `chunks`, exactly once.
    fn read_chunks(
        &mut self,
        _chunks: &[ChunkRange],
        _cancel: &Cancel,
        _each: &mut dyn FnMut(usize, RecordBatch) -> Result<()>,
    ) -> Result<()> {
        Err(crate::illegal!(
            "internal: {} does not read in chunks",
            self.description()
        ))
    }

    /// Called once the batch ending at `end` is committed; sources may free what precedes it.
    fn commit(&mut self, _end: &SourceOffset) -> Result<()> {
        Ok(())
    }

    /// A description for progress reports (`KafkaV2[Subscribe[topic]]` in Spark).
    fn description(&self) -> String;

    /// How many rows the range holds, when the source can tell without reading.
    fn rows_between(&self, _start: &SourceOffset, _end: &SourceOffset) -> Option<u64> {
        None
    }
}
