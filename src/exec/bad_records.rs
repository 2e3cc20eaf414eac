//! A streaming query's bad records: located at their source and kept under
//! `badRecordsPath`.
//!
//! `from_json` sees only the text it parses, so a Kafka record is located afterwards: the
//! records it met are matched, in order, against the `value` column of the chunk read, which
//! gives the message's topic, partition, offset and timestamp. A record whose text is not a
//! message's value as read (the plan changed the value before parsing it) stays unlocated
//! and is kept with its text and reason alone.
//!
//! Each batch's records are one JSON-lines file, `<badRecordsPath>/<query id>/<batch id>.json`,
//! written before the batch commits: a batch run again after a crash writes the same file,
//! so a record is kept once.

use std::fs;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType};
use serde_json::{json, Map, Value};

use crate::checkpoint::write_atomic;
use crate::error::{Error, Result};
use crate::expr::bad_record::{BadRecord, Location};

/// Where a query keeps its bad records.
#[derive(Debug, Clone)]
pub struct BadRecordsPath {
    dir: PathBuf,
}

impl BadRecordsPath {
    /// The folder of query `query_id` under the `badRecordsPath` option's `root`.
    pub fn new(root: &str, query_id: &str) -> Result<Self> {
        if root.trim().is_empty() {
            return Err(crate::illegal!("option 'badRecordsPath' is empty"));
        }
        let dir = Path::new(root).join(query_id);
        fs::create_dir_all(&dir)
            .map_err(|e| Error::io("badRecordsPath: cannot create", &dir, e))?;
        Ok(Self { dir })
    }

    /// Writes the bad records of batch `batch_id` (nothing when there are none).
    pub fn write(&self, batch_id: u64, records: &[BadRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut text = Vec::new();
        for record in records {
            serde_json::to_writer(&mut text, &to_json(batch_id, record))
                .map_err(|e| Error::Sink(format!("badRecordsPath: {e}")))?;
            text.push(b'\n');
        }
        write_atomic(&self.dir.join(format!("{batch_id}.json")), &text)
    }
}

fn to_json(batch_id: u64, record: &BadRecord) -> Value {
    let mut out = Map::new();
    out.insert("batchId".into(), json!(batch_id));
    match &record.location {
        Location::Unknown => {}
        Location::Kafka {
            topic,
            partition,
            offset,
            timestamp_micros,
        } => {
            out.insert("topic".into(), json!(topic));
            out.insert("partition".into(), json!(partition));
            out.insert("offset".into(), json!(offset));
            let timestamp = timestamp_micros
                .and_then(chrono::DateTime::from_timestamp_micros)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
            out.insert("timestamp".into(), json!(timestamp));
        }
        Location::File { path, line } => {
            out.insert("path".into(), json!(path));
            out.insert("line".into(), json!(line));
        }
    }
    out.insert(
        "record".into(),
        json!(String::from_utf8_lossy(&record.record)),
    );
    out.insert("reason".into(), json!(record.reason));
    Value::Object(out)
}

/// Locates unlocated `records` (in the order the parser met them) in a Kafka chunk `read`:
/// each is the next message whose value has the same bytes.
pub fn locate_in_kafka(records: &mut [BadRecord], read: &RecordBatch) {
    let column = |name: &str| read.column_by_name(name);
    let (Some(value), Some(topic), Some(partition), Some(offset)) = (
        column("value").and_then(|c| c.as_binary_opt::<i32>()),
        column("topic").and_then(|c| c.as_string_opt::<i32>()),
        column("partition").and_then(|c| c.as_primitive_opt::<Int32Type>()),
        column("offset").and_then(|c| c.as_primitive_opt::<Int64Type>()),
    ) else {
        return;
    };
    let timestamp = column("timestamp").and_then(|c| {
        arrow::compute::cast(
            c,
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        )
        .ok()
    });
    let timestamp = timestamp
        .as_ref()
        .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>());
    let mut next = 0;
    for record in records
        .iter_mut()
        .filter(|r| r.location == Location::Unknown)
    {
        let found = (next..read.num_rows())
            .find(|&row| value.is_valid(row) && value.value(row) == record.record.as_slice());
        // Not a message's value as read: the plan changed it, so the rest will not match.
        let Some(row) = found else { break };
        if topic.is_null(row) || partition.is_null(row) || offset.is_null(row) {
            continue;
        }
        record.location = Location::Kafka {
            topic: topic.value(row).to_string(),
            partition: partition.value(row),
            offset: offset.value(row),
            timestamp_micros: timestamp.filter(|t| t.is_valid(row)).map(|t| t.value(row)),
        };
        next = row + 1;
    }
}

/// The error of a FAILFAST parse: the record that stopped it among `records`, located.
pub fn fail_fast_error(records: &[BadRecord]) -> Option<Error> {
    let record = records.iter().find(|r| r.fatal)?;
    Some(Error::Source(record.fail_fast_message()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{BinaryArray, Int32Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn bad(record: &[u8]) -> BadRecord {
        BadRecord {
            record: record.to_vec(),
            reason: "bad".into(),
            row: 0,
            location: Location::Unknown,
            fatal: false,
        }
    }

    fn offset(record: &BadRecord) -> Option<i64> {
        match record.location {
            Location::Kafka { offset, .. } => Some(offset),
            _ => None,
        }
    }

    #[test]
    fn equal_records_take_successive_messages_and_a_changed_one_stops_locating() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("value", DataType::Binary, true),
            Field::new("topic", DataType::Utf8, true),
            Field::new("partition", DataType::Int32, true),
            Field::new("offset", DataType::Int64, true),
        ]));
        let values: Vec<&[u8]> = vec![b"{", b"{}", b"{", b"[", b"{"];
        let read = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(BinaryArray::from(values)),
                Arc::new(StringArray::from(vec!["t"; 5])),
                Arc::new(Int32Array::from(vec![3; 5])),
                Arc::new(Int64Array::from(vec![10, 11, 12, 13, 14])),
            ],
        )
        .expect("batch");
        let mut records = vec![bad(b"{"), bad(b"{"), bad(b"X"), bad(b"{")];
        locate_in_kafka(&mut records, &read);
        let offsets: Vec<Option<i64>> = records.iter().map(offset).collect();
        assert_eq!(offsets, vec![Some(10), Some(12), None, None]);
    }
}
