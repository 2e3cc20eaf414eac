//! The console sink: Spark's `Batch: N` header and table after every batch, with the
//! `numRows` (default 20) and `truncate` (default true) options.

use std::collections::BTreeMap;
use std::io::Write;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::Sink;
use crate::error::{Error, Result};
use crate::plan::OutputMode;
use crate::show::render_table;
use crate::source::options::Options;

/// Prints each batch to standard output.
pub struct ConsoleSink {
    num_rows: usize,
    truncate: usize,
}

impl ConsoleSink {
    /// Reads `numRows` and `truncate`.
    pub fn new(map: &BTreeMap<String, String>) -> Result<Self> {
        let options = Options::new(map, "console sink");
        Ok(ConsoleSink {
            num_rows: options.positive("numRows")?.unwrap_or(20) as usize,
            truncate: if options.bool("truncate", true)? {
                20
            } else {
                0
            },
        })
    }
}

impl Sink for ConsoleSink {
    fn add_batch(
        &mut self,
        batch_id: u64,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        _mode: OutputMode,
    ) -> Result<()> {
        let mut text = format!(
            "-------------------------------------------\nBatch: {batch_id}\n-------------------------------------------\n"
        );
        let empty;
        let shown = if batches.is_empty() {
            empty = [RecordBatch::new_empty(schema.clone())];
            &empty[..]
        } else {
            batches
        };
        text += &render_table(shown, self.num_rows, self.truncate);
        text.push('\n');
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| Error::Sink(format!("console sink: cannot write to stdout: {e}")))
    }

    fn is_durable(&self) -> bool {
        false
    }

    fn description(&self) -> String {
        "org.apache.spark.sql.execution.streaming.ConsoleTable$".into()
    }
}
