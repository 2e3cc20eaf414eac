//! `foreachBatch(fn)`: each micro-batch's output goes to a user's function with its batch id
//! (Spark's `ForeachBatchSink`). The function runs on the query's thread; when it fails, the
//! query fails with its error. A batch rerun after a crash comes with the same id, so a
//! function that writes idempotently by batch id gives exactly-once output.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::Sink;
use crate::error::Result;
use crate::plan::OutputMode;

/// The user's function: batch id, schema and the batch's rows.
pub type BatchFn = Box<dyn FnMut(u64, &SchemaRef, &[RecordBatch]) -> Result<()> + Send>;

/// Hands every micro-batch to a function, empty batches included (as Spark does).
pub struct ForeachBatchSink {
    func: BatchFn,
}

impl ForeachBatchSink {
    /// A sink calling `func` once per micro-batch.
    pub fn new(func: BatchFn) -> Self {
        ForeachBatchSink { func }
    }
}

impl Sink for ForeachBatchSink {
    fn add_batch(
        &mut self,
        batch_id: u64,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        _mode: OutputMode,
    ) -> Result<()> {
        (self.func)(batch_id, schema, batches)
    }

    fn description(&self) -> String {
        "ForeachBatchSink".into()
    }
}
