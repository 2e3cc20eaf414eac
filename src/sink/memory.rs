//! The memory sink: a named table the session can query while the stream runs
//! (`spark.table("name")`, `spark.sql(...)`). As Spark's MemorySink, append and update add
//! rows and complete replaces them; a batch id already added is ignored. Readers take an
//! immutable snapshot, so each query sees one consistent table.

use std::sync::{Arc, RwLock};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::Sink;
use crate::error::{Error, Result};
use crate::plan::OutputMode;

#[derive(Debug, Default)]
struct Contents {
    batches: Arc<Vec<RecordBatch>>,
    last_batch_id: Option<u64>,
}

/// A table held in memory.
#[derive(Debug)]
pub struct MemoryTable {
    schema: SchemaRef,
    contents: RwLock<Contents>,
}

impl MemoryTable {
    /// An empty table.
    pub fn new(schema: SchemaRef) -> Arc<Self> {
        Arc::new(MemoryTable {
            schema,
            contents: RwLock::new(Contents::default()),
        })
    }

    /// Its schema.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The rows as they are now; later writes do not change the returned snapshot.
    pub fn snapshot(&self) -> Arc<Vec<RecordBatch>> {
        match self.contents.read() {
            Ok(contents) => Arc::clone(&contents.batches),
            Err(poisoned) => Arc::clone(&poisoned.into_inner().batches),
        }
    }

    fn write(&self, batch_id: u64, batches: &[RecordBatch], mode: OutputMode) -> Result<()> {
        let mut contents = self
            .contents
            .write()
            .map_err(|_| Error::Sink("memory sink: a writer panicked".into()))?;
        if contents.last_batch_id.is_some_and(|last| batch_id <= last) {
            return Ok(());
        }
        let mut rows: Vec<RecordBatch> = match mode {
            OutputMode::Complete => Vec::new(),
            OutputMode::Append | OutputMode::Update => contents.batches.as_ref().clone(),
        };
        rows.extend(batches.iter().filter(|b| b.num_rows() > 0).cloned());
        contents.batches = Arc::new(rows);
        contents.last_batch_id = Some(batch_id);
        Ok(())
    }
}

/// The sink that writes a `MemoryTable`.
pub struct MemorySink {
    table: Arc<MemoryTable>,
    name: String,
}

impl MemorySink {
    /// A sink writing `table`, registered as `name`.
    pub fn new(name: &str, table: Arc<MemoryTable>) -> Self {
        MemorySink {
            table,
            name: name.to_string(),
        }
    }
}

impl Sink for MemorySink {
    fn add_batch(
        &mut self,
        batch_id: u64,
        _schema: &SchemaRef,
        batches: &[RecordBatch],
        mode: OutputMode,
    ) -> Result<()> {
        self.table.write(batch_id, batches, mode)
    }

    fn is_durable(&self) -> bool {
        false
    }

    fn description(&self) -> String {
        format!("MemorySink[{}]", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(values: Vec<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values))]).expect("valid")
    }

    #[test]
    fn replayed_batch_is_not_added_twice_and_snapshots_are_stable() {
        let table = MemoryTable::new(batch(vec![]).schema());
        let mut sink = MemorySink::new("t", Arc::clone(&table));
        let schema = table.schema();
        sink.add_batch(0, &schema, &[batch(vec![1, 2])], OutputMode::Append)
            .expect("ok");
        let before = table.snapshot();
        sink.add_batch(0, &schema, &[batch(vec![1, 2])], OutputMode::Append)
            .expect("ok");
        sink.add_batch(1, &schema, &[batch(vec![3])], OutputMode::Append)
            .expect("ok");
        assert_eq!(before.len(), 1, "a snapshot does not see later writes");
        assert_eq!(
            table.snapshot().iter().map(|b| b.num_rows()).sum::<usize>(),
            3
        );
        sink.add_batch(2, &schema, &[batch(vec![9])], OutputMode::Complete)
            .expect("ok");
        assert_eq!(
            table.snapshot().iter().map(|b| b.num_rows()).sum::<usize>(),
            1
        );
    }
}
