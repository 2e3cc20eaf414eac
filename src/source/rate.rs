//! Spark's `rate` source: `rowsPerSecond` rows a second with columns `timestamp` and `value`
//! (a counter from 0). Row `n` is stamped `start + n / rowsPerSecond` seconds, so a rerun of
//! a batch gives the same rows.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde_json::json;

use super::options::Options;
use super::{Cancel, ReadLimit, Source, SourceOffset};
use crate::error::Result;
use crate::expr::types::timestamp_type;
use crate::window::Clock;

/// The rate source.
pub struct RateSource {
    rows_per_second: u64,
    clock: Arc<dyn Clock>,
}

impl RateSource {
    /// Reads `rowsPerSecond` (default 1).
    pub fn new(map: &BTreeMap<String, String>, clock: Arc<dyn Clock>) -> Result<Self> {
        let options = Options::new(map, "rate source");
        Ok(RateSource {
            rows_per_second: options.positive("rowsPerSecond")?.unwrap_or(1),
            clock,
        })
    }
}

fn field(offset: &SourceOffset, name: &str) -> i64 {
    offset.get(name).and_then(|v| v.as_i64()).unwrap_or(0)
}

impl Source for RateSource {
    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("timestamp", timestamp_type(), true),
            Field::new("value", DataType::Int64, true),
        ]))
    }

    fn initial_offset(&mut self) -> Result<SourceOffset> {
        Ok(json!({"startMicros": self.clock.now_micros(), "rows": 0}))
    }

    fn latest_offset(&mut self, start: &SourceOffset, _limit: ReadLimit) -> Result<SourceOffset> {
        let start_micros = field(start, "startMicros");
        let elapsed = (self.clock.now_micros() - start_micros).max(0) as i128;
        let rows = (elapsed * self.rows_per_second as i128 / 1_000_000) as i64;
        Ok(json!({"startMicros": start_micros, "rows": rows.max(field(start, "rows"))}))
    }

    fn get_batch(
        &mut self,
        start: &SourceOffset,
        end: &SourceOffset,
        _cancel: &Cancel,
    ) -> Result<Vec<RecordBatch>> {
        let start_micros = field(start, "startMicros");
        let values: Vec<i64> = (field(start, "rows")..field(end, "rows")).collect();
        let micros_per_row = 1_000_000.0 / self.rows_per_second as f64;
        let stamps: TimestampMicrosecondArray = values
            .iter()
            .map(|v| Some(start_micros + (*v as f64 * micros_per_row) as i64))
            .collect::<TimestampMicrosecondArray>()
            .with_timezone("UTC");
        Ok(vec![RecordBatch::try_new(
            self.schema(),
            vec![Arc::new(stamps), Arc::new(Int64Array::from(values))],
        )?])
    }

    fn description(&self) -> String {
        format!("RateStreamV2[rowsPerSecond={}]", self.rows_per_second)
    }

    fn rows_between(&self, start: &SourceOffset, end: &SourceOffset) -> Option<u64> {
        Some((field(end, "rows") - field(start, "rows")).max(0) as u64)
    }
}
