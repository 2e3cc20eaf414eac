//! Progress reports with Spark's field names (`StreamingQueryProgress.json`), so dashboards
//! and notebooks written for PySpark read ours unchanged.

use serde_json::{json, Value};

use super::scan::EventTimeStats;

/// Milliseconds spent in each phase of a batch, under Spark's names.
#[derive(Debug, Default, Clone, Copy)]
pub struct Durations {
    /// Asking the source for its latest offset.
    pub latest_offset: u64,
    /// Reading the batch's rows.
    pub get_batch: u64,
    /// Writing the offset log.
    pub wal_commit: u64,
    /// Running the plan and writing the sink.
    pub add_batch: u64,
    /// Writing the commit log.
    pub commit_offsets: u64,
    /// The whole batch.
    pub trigger_execution: u64,
}

/// Everything one batch reports.
#[derive(Debug, Clone)]
pub struct BatchReport {
    /// The batch id.
    pub batch_id: u64,
    /// Processing time when the batch started, in micros.
    pub started_micros: i64,
    /// Rows read.
    pub num_input_rows: u64,
    /// Rows written to the sink.
    pub num_output_rows: u64,
    /// Seconds since the previous batch started (for inputRowsPerSecond).
    pub seconds_since_previous: f64,
    /// Phase durations.
    pub durations: Durations,
    /// Event-time statistics of the first watermark, and the watermark after the batch.
    pub event_time: Option<(EventTimeStats, Option<i64>)>,
    /// State operator figures: total groups, updated, dropped as late, bytes.
    pub state: Option<(u64, u64, u64, u64)>,
    /// Source description and offsets.
    pub source: (String, Value, Value, Value),
    /// Sink description.
    pub sink: String,
    /// Malformed JSON rows in this batch.
    pub malformed_rows: u64,
    /// Chunks this query scanned itself, and chunks another query of its group scanned.
    pub chunks: (u64, u64),
}

fn iso(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

fn rate(rows: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        rows as f64 / seconds
    } else {
        0.0
    }
}

/// Spark's progress JSON for one batch.
pub fn progress_json(id: &str, run_id: &str, name: Option<&str>, report: &BatchReport) -> Value {
    let processed = rate(
        report.num_input_rows,
        report.durations.trigger_execution as f64 / 1000.0,
    );
    let input_rate = rate(report.num_input_rows, report.seconds_since_previous);
    let mut progress = json!({
        "id": id,
        "runId": run_id,
        "name": name,
        "timestamp": iso(report.started_micros),
        "batchId": report.batch_id,
        "numInputRows": report.num_input_rows,
        "inputRowsPerSecond": input_rate,
        "processedRowsPerSecond": processed,
        "numMalformedRows": report.malformed_rows,
        "durationMs": {
            "latestOffset": report.durations.latest_offset,
            "getBatch": report.durations.get_batch,
            "walCommit": report.durations.wal_commit,
            "addBatch": report.durations.add_batch,
            "commitOffsets": report.durations.commit_offsets,
            "triggerExecution": report.durations.trigger_execution,
        },
        "stateOperators": [],
        "sources": [{
            "description": report.source.0,
            "startOffset": report.source.1,
            "endOffset": report.source.2,
            "latestOffset": report.source.3,
            "numInputRows": report.num_input_rows,
            "inputRowsPerSecond": input_rate,
            "processedRowsPerSecond": processed,
            "metrics": {
                "chunksScanned": report.chunks.0.to_string(),
                "chunksShared": report.chunks.1.to_string(),
            },
        }],
        "sink": {"description": report.sink, "numOutputRows": report.num_output_rows},
    });
    if let Some((stats, watermark)) = &report.event_time {
        let mut event_time = json!({"watermark": iso(watermark.unwrap_or(0))});
        if let (Some(min), Some(max), Some(avg)) = (stats.min, stats.max, stats.avg()) {
            event_time["min"] = json!(iso(min));
            event_time["max"] = json!(iso(max));
            event_time["avg"] = json!(iso(avg));
        }
        progress["eventTime"] = event_time;
    }
    if let Some((total, updated, dropped, bytes)) = report.state {
        progress["stateOperators"] = json!([{
            "operatorName": "stateStoreSave",
            "numRowsTotal": total,
            "numRowsUpdated": updated,
            "numRowsDroppedByWatermark": dropped,
            "memoryUsedBytes": bytes,
        }]);
    }
    progress
}
