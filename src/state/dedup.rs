//! Streaming deduplication, as Spark's `StreamingDeduplicateExec`: `dropDuplicates(cols)`
//! keeps the first row of each key it ever sees. When the key includes a column with a
//! watermark, a row at or behind the previous batch's watermark is dropped as late (and
//! counted), and keys whose event time the watermark has passed are forgotten, so state
//! stays bounded; without such a column every key is kept for ever, as in Spark.

use std::collections::HashMap;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use arrow::row::{RowConverter, SortField};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::expr::types::timestamp_type;

/// What one batch did to the state.
#[derive(Debug, Default, Clone, Copy)]
pub struct DedupStats {
    /// Keys added.
    pub added: u64,
    /// Rows dropped because they were late.
    pub dropped_by_watermark: u64,
}

/// The operator: the key columns and every key seen (with its event time, when the key has
/// a watermarked column).
pub struct DedupOperator {
    columns: Vec<usize>,
    names: Vec<String>,
    event_time: Option<usize>,
    converter: RowConverter,
    seen: HashMap<Box<[u8]>, Option<i64>>,
}

#[derive(Serialize, Deserialize)]
struct SeenKey {
    key: String,
    time: Option<i64>,
}

impl DedupOperator {
    /// Deduplicates rows of `schema` on the columns `names` (all columns when empty);
    /// `watermarked` names the columns that carry a watermark.
    pub fn new(schema: &SchemaRef, names: &[String], watermarked: &[String]) -> Result<Self> {
        let names: Vec<String> = if names.is_empty() {
            schema.fields().iter().map(|f| f.name().clone()).collect()
        } else {
            names.to_vec()
        };
        let mut columns = Vec::with_capacity(names.len());
        for name in &names {
            let index = schema.index_of(name).map_err(|_| {
                crate::analysis!(
                    "Cannot resolve column name \"{name}\" among ({})",
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            columns.push(index);
        }
        let event_time = columns
            .iter()
            .copied()
            .find(|&i| watermarked.contains(schema.field(i).name()));
        let fields = columns
            .iter()
            .map(|&i| SortField::new(schema.field(i).data_type().clone()))
            .collect();
        Ok(DedupOperator {
            columns,
            names,
            event_time,
            converter: RowConverter::new(fields)?,
            seen: HashMap::new(),
        })
    }

    /// The key columns, for the checkpoint's signature.
    pub fn signature(&self) -> String {
        format!("dropDuplicates({})", self.names.join(", "))
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Rough bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.seen.keys().map(|k| k.len() + 48).sum()
    }

    /// Keeps the rows whose key is new; drops late rows (at or behind `late_watermark`).
    pub fn filter(
        &mut self,
        batch: &RecordBatch,
        late_watermark: Option<i64>,
    ) -> Result<(RecordBatch, DedupStats)> {
        let keys: Vec<_> = self
            .columns
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        let rows = self.converter.convert_columns(&keys)?;
        let times = match self.event_time {
            Some(index) => Some(cast(
                &cast(batch.column(index), &timestamp_type())?,
                &DataType::Int64,
            )?),
            None => None,
        };
        let times = times.as_ref().map(|t| t.as_primitive::<Int64Type>());
        let mut stats = DedupStats::default();
        let mut keep = Vec::with_capacity(batch.num_rows());
        for (row, key) in rows.iter().enumerate() {
            let time = times.and_then(|t| t.is_valid(row).then(|| t.value(row)));
            if let (Some(time), Some(watermark)) = (time, late_watermark) {
                if time <= watermark {
                    stats.dropped_by_watermark += 1;
                    keep.push(false);
                    continue;
                }
            }
            let fresh = !self.seen.contains_key(key.as_ref());
            if fresh {
                self.seen.insert(key.as_ref().into(), time);
                stats.added += 1;
            }
            keep.push(fresh);
        }
        let kept = filter_record_batch(batch, &BooleanArray::from(keep))?;
        Ok((kept, stats))
    }

    /// Forgets keys whose event time is at or behind the watermark.
    pub fn evict(&mut self, watermark: Option<i64>) {
        if let (Some(watermark), Some(_)) = (watermark, self.event_time) {
            self.seen
                .retain(|_, time| time.is_none_or(|time| time > watermark));
        }
    }

    /// The keys as JSON, for the checkpoint.
    pub fn snapshot(&self) -> Result<Json> {
        let mut keys: Vec<SeenKey> = self
            .seen
            .iter()
            .map(|(key, time)| SeenKey {
                key: key.iter().map(|b| format!("{b:02x}")).collect(),
                time: *time,
            })
            .collect();
        keys.sort_by(|a, b| a.key.cmp(&b.key));
        serde_json::to_value(keys).map_err(|e| Error::State(e.to_string()))
    }

    /// Replaces the keys with a snapshot's.
    pub fn restore(&mut self, snapshot: Json) -> Result<()> {
        let keys: Vec<SeenKey> =
            serde_json::from_value(snapshot).map_err(|e| Error::State(e.to_string()))?;
        self.seen.clear();
        for SeenKey { key, time } in keys {
            let bytes = (0..key.len())
                .step_by(2)
                .map(|i| {
                    key.get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| Error::State(format!("bad key '{key}' in a snapshot")))
                })
                .collect::<Result<Box<[u8]>>>()?;
            self.seen.insert(bytes, time);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch(rows: &[(&str, i64, i64)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("symbol", DataType::Utf8, true),
            Field::new("ts", timestamp_type(), true),
            Field::new("n", DataType::Int64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.1))
                        .with_timezone("UTC"),
                ),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
            ],
        )
        .expect("batch")
    }

    fn kept(op: &mut DedupOperator, rows: &[(&str, i64, i64)], late: Option<i64>) -> Vec<i64> {
        let (out, _) = op.filter(&batch(rows), late).expect("filter");
        out.column(2).as_primitive::<Int64Type>().values().to_vec()
    }

    #[test]
    fn first_row_of_each_key_wins_across_batches_and_restores() {
        let b = batch(&[]);
        let keys = ["symbol".to_string(), "ts".to_string()];
        let mut op = DedupOperator::new(&b.schema(), &keys, &["ts".into()]).expect("op");
        assert_eq!(
            kept(&mut op, &[("a", 1, 1), ("a", 1, 2), ("b", 1, 3)], None),
            [1, 3]
        );
        let snapshot = op.snapshot().expect("snapshot");
        let mut again = DedupOperator::new(&b.schema(), &keys, &["ts".into()]).expect("op");
        again.restore(snapshot).expect("restore");
        assert_eq!(kept(&mut again, &[("a", 1, 4), ("a", 2, 5)], None), [5]);
        // Late: at or behind the previous watermark, even when new.
        assert_eq!(kept(&mut again, &[("c", 2, 6), ("c", 3, 7)], Some(2)), [7]);
        again.evict(Some(2));
        assert_eq!(again.len(), 1); // only (c, 3) is still ahead of the watermark
    }

    #[test]
    fn without_a_watermarked_key_nothing_is_late_or_evicted() {
        let b = batch(&[]);
        let mut op =
            DedupOperator::new(&b.schema(), &["symbol".into()], &["ts".into()]).expect("op");
        assert_eq!(kept(&mut op, &[("a", 1, 1), ("a", 9, 2)], Some(5)), [1]);
        op.evict(Some(100));
        assert_eq!(op.len(), 1);
        let error = DedupOperator::new(&b.schema(), &["nope".into()], &[])
            .err()
            .expect("error");
        assert!(error.to_string().contains("nope") && error.to_string().contains("symbol"));
    }
}
