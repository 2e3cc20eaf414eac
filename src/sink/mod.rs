//! Sinks: where a query's results go. Every sink is idempotent by batch id, so a batch
//! rerun after a crash is not written twice (Spark's `Sink.addBatch` contract).

pub mod console;
pub mod file;
pub mod foreach_batch;
pub mod kafka;
pub mod memory;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::plan::OutputMode;

/// A streaming sink.
pub trait Sink: Send {
    /// Writes one micro-batch's output. Called again with the same `batch_id` after a crash;
    /// a sink that already holds that batch must not write it twice.
    fn add_batch(
        &mut self,
        batch_id: u64,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        mode: OutputMode,
    ) -> Result<()>;

    /// A description for progress reports.
    fn description(&self) -> String;

    /// Whether what it writes outlives the process (files, Kafka, a user's function). The
    /// query makes a batch's `offsets/N` durable before such a sink sees the batch; a memory
    /// table or the console does not wait for it.
    fn is_durable(&self) -> bool {
        true
    }

    /// Called when the query stops.
    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}
