//! A memory source for tests and notebooks (Spark's `MemoryStream`): batches added from
//! Python or Rust become the stream, each added batch one offset.

use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use serde_json::{json, Value};

use super::{Cancel, ReadLimit, Source, SourceOffset};
use crate::error::{Error, Result};
use crate::illegal;

/// The shared buffer a `MemoryStream` appends to.
#[derive(Debug, Clone)]
pub struct MemoryStream {
    schema: SchemaRef,
    batches: Arc<Mutex<Vec<RecordBatch>>>,
}

impl MemoryStream {
    /// An empty stream of `schema`.
    pub fn new(schema: SchemaRef) -> Self {
        MemoryStream {
            schema,
            batches: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Appends rows; returns the offset after them.
    pub fn add(&self, batch: RecordBatch) -> Result<u64> {
        if batch.schema().fields() != self.schema.fields() {
            return Err(illegal!(
                "MemoryStream.addData: rows of schema {:?} do not match the stream's {:?}",
                batch.schema().fields(),
                self.schema.fields()
            ));
        }
        let mut batches = self.lock()?;
        batches.push(batch);
        Ok(batches.len() as u64)
    }

    /// The stream's schema.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Vec<RecordBatch>>> {
        self.batches
            .lock()
            .map_err(|_| Error::Source("memory stream: a writer panicked".into()))
    }

    /// A source reading this stream.
    pub fn source(&self) -> MemorySource {
        MemorySource {
            stream: self.clone(),
        }
    }
}

/// A source over a `MemoryStream`.
pub struct MemorySource {
    stream: MemoryStream,
}

fn position(offset: &Value) -> usize {
    offset.as_u64().unwrap_or(0) as usize
}

impl Source for MemorySource {
    fn schema(&self) -> SchemaRef {
        self.stream.schema()
    }

    fn initial_offset(&mut self) -> Result<SourceOffset> {
        Ok(json!(0))
    }

    fn latest_offset(&mut self, _start: &SourceOffset, _limit: ReadLimit) -> Result<SourceOffset> {
        Ok(json!(self.stream.lock()?.len()))
    }

    fn get_batch(
        &mut self,
        start: &SourceOffset,
        end: &SourceOffset,
        _cancel: &Cancel,
    ) -> Result<Vec<RecordBatch>> {
        let batches = self.stream.lock()?;
        let (start, end) = (position(start), position(end).min(batches.len()));
        Ok(batches
            .get(start..end)
            .map(<[_]>::to_vec)
            .unwrap_or_default())
    }

    fn description(&self) -> String {
        "MemoryStream".into()
    }

    fn rows_between(&self, start: &SourceOffset, end: &SourceOffset) -> Option<u64> {
        let batches = self.stream.lock().ok()?;
        let (start, end) = (position(start), position(end).min(batches.len()));
        Some(
            batches
                .get(start..end)?
                .iter()
                .map(|b| b.num_rows() as u64)
                .sum(),
        )
    }
}
