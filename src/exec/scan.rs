//! The stateless part of a plan before any state (`Pipeline::scan`): parsing, projections,
//! filters and event-time statistics.
//!
//! A large chunk is cut into slices that are scanned side by side: the first on the calling
//! thread, the others on the runtime's workers. `from_json` is most of a pipeline's CPU, and
//! the query thread that read a chunk would otherwise parse it alone while the other cores
//! idle (the seed pipeline's reading query was half of all CPU time, its two sharing queries
//! waiting on it). The slices' rows are put back in their order and their statistics merged,
//! so the result is that of one pass.

use std::sync::{Arc, Mutex, MutexGuard};

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use datafusion::prelude::SessionContext;

use super::compiled_scan::CompiledScan;
use super::pipeline::{arrow_schema, run_segments, Segment, WatermarkDef};
use super::stateless::frame;
use crate::analysis;
use crate::error::{Error, Result};
use crate::expr::bad_record::BadRecord;
use crate::expr::ExprMetrics;
use crate::state::aggregate::UpdateStats;

/// Rows below which a slice is not worth a task of its own (a task costs a worker's wake-up).
/// Kafka chunks of a topic with two or more partitions (8,192 rows or fewer) stay whole:
/// their reading already runs beside the scan on the source's reader thread. A chunk of a
/// one-partition topic (16,384 rows) is cut in two.
const MIN_SLICE_ROWS: usize = 8_192;

/// The scanned part of a compiled plan.
pub struct ScanPlan {
    pub(super) ctx: SessionContext,
    pub(super) input_schema: SchemaRef,
    pub(super) segments: Vec<Segment>,
    pub(super) watermarks: Vec<WatermarkDef>,
    /// The segments planned once (see `compiled_scan`), one copy per slice running at once.
    pub(super) compiled: Mutex<Compiled>,
}

/// The copies of a compiled scan not in use, or why there are none.
#[derive(Default)]
pub(super) struct Compiled {
    idle: Vec<CompiledScan>,
    /// The scan cannot run on fixed plans: it plans per chunk.
    per_chunk: bool,
}

/// What scanning one slice gave.
type SliceOutput = (Vec<RecordBatch>, SchemaRef, Vec<EventTimeStats>);

/// One slice's scan: its output, the counters its from_json calls updated, and the compiled
/// copy it ran on (idle again once its counters are absorbed).
struct SliceRun {
    output: Result<SliceOutput>,
    metrics: Arc<ExprMetrics>,
    compiled: Option<CompiledScan>,
}

impl ScanPlan {
    /// Scans `input`, counting malformed records (and keeping them, when `metrics` keeps
    /// them) in `metrics` in the order of the rows.
    pub async fn scan(
        self: &Arc<Self>,
        input: Vec<RecordBatch>,
        metrics: &ExprMetrics,
    ) -> Result<Scanned> {
        let rows: u64 = input.iter().map(|b| b.num_rows() as u64).sum();
        // The runtime's worker count: a field read, where `available_parallelism` reads the
        // cgroup's files on every call (this runs per chunk).
        let handle = tokio::runtime::Handle::current();
        let workers = handle.metrics().num_workers().max(1);
        let parts = (rows as usize / MIN_SLICE_ROWS).clamp(1, workers);
        let malformed_before = metrics.malformed_rows();
        // The first slice runs on the calling thread (which would otherwise only wait), the
        // others on the runtime's workers.
        let mut parts = slices(input, parts).into_iter();
        let first = parts.next().unwrap_or_default();
        let others: Vec<_> = parts
            .map(|slice| handle.spawn(Arc::clone(self).run(slice, metrics.for_slice())))
            .collect();
        let mut runs = vec![Arc::clone(self).run(first, metrics.for_slice()).await];
        for task in others {
            runs.push(task.await.unwrap_or_else(|e| SliceRun {
                output: Err(Error::State(format!("a scan task failed: {e}"))),
                metrics: Arc::new(metrics.for_slice()),
                compiled: None,
            }));
        }
        let mut scanned = Scanned {
            batches: Vec::new(),
            schema: Arc::clone(&self.input_schema),
            event_times: vec![EventTimeStats::default(); self.watermarks.len()],
            rows,
            malformed: 0,
            bad_records: Vec::new(),
        };
        let mut failure = None;
        for run in runs {
            // Records of the slices before a failed one, and its own, stay in `metrics`
            // for the caller's FAILFAST message.
            if failure.is_none() {
                metrics.absorb(&run.metrics);
            }
            if let Some(compiled) = run.compiled {
                // Idle copies keep empty counters (a slice's after a failure are dropped).
                ExprMetrics::default().absorb(&compiled.metrics);
                self.compiled_pool().idle.push(compiled);
            }
            match run.output {
                Ok((batches, schema, event_times)) if failure.is_none() => {
                    scanned.batches.extend(batches);
                    scanned.schema = schema;
                    for (mine, theirs) in scanned.event_times.iter_mut().zip(&event_times) {
                        mine.merge(theirs);
                    }
                }
                Ok(_) => {}
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        scanned.malformed = metrics.malformed_rows() - malformed_before;
        scanned.bad_records = metrics.bad_records.take();
        Ok(scanned)
    }

    /// Scans one slice, on the compiled plans when the scan has them; `fresh` counts its
    /// from_json calls when it does not.
    async fn run(self: Arc<Self>, input: Vec<RecordBatch>, fresh: ExprMetrics) -> SliceRun {
        let mut event_times = vec![EventTimeStats::default(); self.watermarks.len()];
        if self.fits(&input) {
            if let Some(compiled) = self.compiled_copy(&fresh).await {
                let output = compiled
                    .run(input, &self.watermarks, &mut event_times)
                    .await
                    .map(|(batches, schema)| (batches, schema, event_times));
                return SliceRun {
                    output,
                    metrics: Arc::clone(&compiled.metrics),
                    compiled: Some(compiled),
                };
            }
        }
        let metrics = Arc::new(fresh);
        let output = self.plan_per_chunk(input, &metrics, event_times).await;
        SliceRun {
            output,
            metrics,
            compiled: None,
        }
    }

    async fn plan_per_chunk(
        &self,
        input: Vec<RecordBatch>,
        metrics: &Arc<ExprMetrics>,
        mut event_times: Vec<EventTimeStats>,
    ) -> Result<SliceOutput> {
        let df = frame(&self.ctx, Arc::clone(&self.input_schema), input)?;
        let df = run_segments(
            &self.ctx,
            metrics,
            df,
            &self.segments,
            &mut event_times,
            &mut None,
            None,
            &mut UpdateStats::default(),
            &self.watermarks,
        )
        .await?;
        let schema = arrow_schema(&df);
        Ok((df.collect().await?, schema, event_times))
    }

    /// Whether `input` has the rows the compiled plans were made for.
    fn fits(&self, input: &[RecordBatch]) -> bool {
        input.iter().all(|batch| {
            let schema = batch.schema_ref();
            Arc::ptr_eq(schema, &self.input_schema) || **schema == *self.input_schema
        })
    }

    /// An idle copy of the compiled scan, or a new one; `None` when the scan plans per chunk.
    async fn compiled_copy(&self, fresh: &ExprMetrics) -> Option<CompiledScan> {
        {
            let mut pool = self.compiled_pool();
            if pool.per_chunk {
                return None;
            }
            if let Some(copy) = pool.idle.pop() {
                return Some(copy);
            }
        }
        let metrics = Arc::new(fresh.for_slice());
        let compiled =
            CompiledScan::compile(&self.ctx, &self.input_schema, &self.segments, metrics).await;
        match compiled {
            Ok(Some(copy)) => Some(copy),
            Ok(None) | Err(_) => {
                // Planning per chunk reports whatever error planning gives, chunk by chunk.
                self.compiled_pool().per_chunk = true;
                None
            }
        }
    }

    /// Whether chunks run on compiled plans (for tests).
    #[cfg(test)]
    pub(super) fn on_fixed_plans(&self) -> bool {
        let pool = self.compiled_pool();
        !pool.per_chunk && !pool.idle.is_empty()
    }

    fn compiled_pool(&self) -> MutexGuard<'_, Compiled> {
        self.compiled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Cuts `input` into `parts` runs of consecutive rows of about equal size (zero-copy).
fn slices(input: Vec<RecordBatch>, parts: usize) -> Vec<Vec<RecordBatch>> {
    let rows: usize = input.iter().map(RecordBatch::num_rows).sum();
    let per_part = rows.div_ceil(parts.max(1)).max(1);
    let mut out: Vec<Vec<RecordBatch>> = vec![Vec::new()];
    let mut filled = 0;
    for batch in input {
        let mut offset = 0;
        while offset < batch.num_rows() {
            if filled == per_part {
                out.push(Vec::new());
                filled = 0;
            }
            let take = (per_part - filled).min(batch.num_rows() - offset);
            if let Some(last) = out.last_mut() {
                last.push(batch.slice(offset, take));
            }
            offset += take;
            filled += take;
        }
    }
    out
}

/// A chunk after `scan`: the rows, their schema, and what scanning them observed.
#[derive(Debug, Clone)]
pub struct Scanned {
    /// The rows after the plan's stateless prefix.
    pub batches: Vec<RecordBatch>,
    /// Their schema.
    pub schema: SchemaRef,
    /// Event-time statistics per watermark.
    pub event_times: Vec<EventTimeStats>,
    /// Rows read from the source.
    pub rows: u64,
    /// Malformed records `from_json` met while scanning.
    pub malformed: u64,
    /// The malformed records themselves, when the query keeps them (located by the reader).
    pub bad_records: Vec<BadRecord>,
}

impl Scanned {
    /// Bytes of Arrow data held.
    pub fn memory_size(&self) -> usize {
        self.batches
            .iter()
            .map(RecordBatch::get_array_memory_size)
            .sum()
    }
}

/// Minimum, maximum and mean event time of a batch on one watermarked column.
#[derive(Debug, Default, Clone, Copy)]
pub struct EventTimeStats {
    /// The earliest event time.
    pub min: Option<i64>,
    /// The latest event time.
    pub max: Option<i64>,
    /// The sum, for the mean.
    pub sum: i128,
    /// Non-null values.
    pub count: u64,
}

impl EventTimeStats {
    pub(super) fn add(
        &mut self,
        batches: &[RecordBatch],
        schema: &SchemaRef,
        column: &str,
    ) -> Result<()> {
        let index = schema
            .index_of(column)
            .map_err(|_| analysis!("the watermark column `{column}` is missing"))?;
        for batch in batches {
            let micros = cast(
                &cast(batch.column(index), &crate::expr::types::timestamp_type())?,
                &DataType::Int64,
            )?;
            let micros = micros.as_primitive::<Int64Type>();
            for value in micros.iter().flatten() {
                self.min = Some(self.min.map_or(value, |m| m.min(value)));
                self.max = Some(self.max.map_or(value, |m| m.max(value)));
                self.sum += i128::from(value);
                self.count += 1;
            }
        }
        Ok(())
    }

    /// Adds another chunk's statistics.
    pub fn merge(&mut self, other: &EventTimeStats) {
        self.min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, other.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.sum += other.sum;
        self.count += other.count;
    }

    /// The mean event time.
    pub fn avg(&self) -> Option<i64> {
        (self.count > 0).then(|| (self.sum / i128::from(self.count)) as i64)
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::Int64Array;
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch(from: i64, rows: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let values: Vec<i64> = (from..from + rows).collect();
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values))]).expect("batch")
    }

    fn values(slice: &[RecordBatch]) -> Vec<i64> {
        slice
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect()
    }

    #[test]
    fn slices_keep_every_row_in_order_and_are_about_equal() {
        let input = vec![batch(0, 7), batch(7, 1), batch(8, 12)];
        let parts = slices(input, 3);
        assert_eq!(parts.len(), 3);
        let sizes: Vec<usize> = parts.iter().map(|p| values(p).len()).collect();
        assert_eq!(sizes, vec![7, 7, 6]);
        let all: Vec<i64> = parts.iter().flat_map(|p| values(p)).collect();
        assert_eq!(all, (0..20).collect::<Vec<_>>());
    }

    /// `select(from_json(cast(value as string), "n long", mode))`.
    fn parsing(mode: &str) -> (super::super::Pipeline, Arc<ExprMetrics>) {
        parsing_with(mode, "")
    }

    /// `select(<also>from_json(cast(value as string), "n long", mode))`, where `also` is
    /// more select items, each followed by a comma.
    fn parsing_with(mode: &str, also: &str) -> (super::super::Pipeline, Arc<ExprMetrics>) {
        let plan = crate::plan::Plan::from_json(&format!(
            r#"{{"node":"project","exprs":[{also}{{"kind":"alias","name":"t","expr":
                   {{"kind":"call","name":"from_json",
                     "args":[{{"kind":"cast","type":"string","expr":{{"kind":"col","name":"value"}}}}],
                     "options":{{"options":{{"mode":"{mode}"}},"schema":{{"type":"struct","fields":[
                       {{"name":"n","type":"long","nullable":true,"metadata":{{}}}}]}}}}}}}}],
                 "input":{{"node":"source","format":"memory","streaming":true}}}}"#
        ))
        .expect("valid plan");
        let metrics = Arc::new(ExprMetrics::default());
        metrics.bad_records.keep();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "value",
            DataType::Binary,
            true,
        )]));
        let pipeline = super::super::Pipeline::new(
            &crate::exec::stateless::context(),
            schema,
            &plan.ops,
            crate::plan::OutputMode::Append,
            Arc::clone(&metrics),
        )
        .expect("pipeline");
        (pipeline, metrics)
    }

    /// Rows 0..rows as `{"n":i}`, with `bad` rows replaced by text that is not JSON.
    fn messages(rows: usize, bad: &[usize]) -> Vec<RecordBatch> {
        let text: Vec<String> = (0..rows)
            .map(|i| {
                if bad.contains(&i) {
                    format!("not json {i}")
                } else {
                    format!(r#"{{"n":{i}}}"#)
                }
            })
            .collect();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "value",
            DataType::Binary,
            true,
        )]));
        let values = arrow::array::BinaryArray::from_iter_values(text.iter().map(String::as_bytes));
        vec![RecordBatch::try_new(schema, vec![Arc::new(values)]).expect("batch")]
    }

    #[test]
    fn a_chunk_scanned_in_slices_keeps_its_rows_and_bad_records_in_order() {
        // Large enough for every core to get a slice; the bad rows fall in different slices.
        let rows = MIN_SLICE_ROWS * 8 + 5;
        let bad = [3, MIN_SLICE_ROWS * 4 + 1, rows - 1];
        let (pipeline, metrics) = parsing("PERMISSIVE");
        // The first chunk plans the scan, the second runs on those plans: both alike.
        for chunk in 1..=2 {
            let scanned = crate::exec::runtime::block_on(pipeline.scan(messages(rows, &bad)))
                .expect("runtime")
                .expect("scan");
            assert!(pipeline.scans_on_fixed_plans());
            assert_scanned(&scanned, rows, &bad);
            assert_eq!(metrics.malformed_rows(), (chunk * bad.len()) as u64);
        }
    }

    #[test]
    fn a_scan_reading_the_clock_plans_every_chunk() {
        let now = r#"{"kind":"alias","name":"at","expr":{"kind":"call","name":"current_timestamp","args":[]}},"#;
        let (pipeline, _) = parsing_with("PERMISSIVE", now);
        let bad = [1];
        for _ in 1..=2 {
            let scanned = crate::exec::runtime::block_on(pipeline.scan(messages(3, &bad)))
                .expect("runtime")
                .expect("scan");
            assert!(!pipeline.scans_on_fixed_plans());
            assert_eq!(scanned.malformed, 1);
            assert_eq!(scanned.schema.field(0).name(), "at");
        }
    }

    /// `scanned` holds rows `0..rows` parsed, but for the `bad` ones, which are counted and
    /// kept in order.
    fn assert_scanned(scanned: &Scanned, rows: usize, bad: &[usize]) {
        assert_eq!(scanned.rows, rows as u64);
        assert_eq!(scanned.malformed, bad.len() as u64);
        let records: Vec<String> = scanned
            .bad_records
            .iter()
            .map(|r| String::from_utf8_lossy(&r.record).into_owned())
            .collect();
        let expected: Vec<String> = bad.iter().map(|i| format!("not json {i}")).collect();
        assert_eq!(records, expected);
        let parsed: Vec<Option<i64>> = scanned
            .batches
            .iter()
            .flat_map(|b| {
                let parsed = b
                    .column(b.num_columns() - 1)
                    .as_struct()
                    .column(0)
                    .as_primitive::<Int64Type>();
                parsed.iter().collect::<Vec<_>>()
            })
            .collect();
        let wanted: Vec<Option<i64>> = (0..rows)
            .map(|i| (!bad.contains(&i)).then_some(i as i64))
            .collect();
        assert_eq!(parsed, wanted);
    }

    #[test]
    fn a_failfast_error_leaves_the_first_bad_record_for_the_message() {
        let rows = MIN_SLICE_ROWS * 8;
        let bad = [MIN_SLICE_ROWS * 6, MIN_SLICE_ROWS * 7];
        let (pipeline, metrics) = parsing("FAILFAST");
        let result =
            crate::exec::runtime::block_on(pipeline.scan(messages(rows, &bad))).expect("runtime");
        assert!(result.is_err(), "FAILFAST fails the scan");
        let kept = metrics.bad_records.take();
        assert_eq!(
            kept.first()
                .map(|r| String::from_utf8_lossy(&r.record).into_owned()),
            Some(format!("not json {}", bad[0]))
        );
    }

    #[test]
    fn fewer_rows_than_parts_give_one_row_each() {
        let parts = slices(vec![batch(0, 2)], 4);
        assert_eq!(
            parts.iter().map(|p| values(p)).collect::<Vec<_>>(),
            vec![vec![0], vec![1]]
        );
    }
}
