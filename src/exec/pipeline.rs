//! A plan compiled for execution: stateless segments run by DataFusion, watermark
//! observation points, and at most one stateful operator, then stateless operations over
//! what it emits. Streaming queries feed it one micro-batch at a time; batch DataFrames feed
//! it everything once and take the complete result.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::logical_expr::ExprSchemable;
use datafusion::prelude::{DataFrame, SessionContext};

use super::agg_input::DirectInputs;
use super::scan::{EventTimeStats, ScanPlan, Scanned};
use super::stateless::{apply_ops, frame};
use crate::error::Result;
use crate::expr::{ExprMetrics, ExprNode, Lowering};
use crate::plan::{prune_json_fields, Op, OutputMode};
use crate::state::accumulator::{arrival, AggKind};
use crate::state::aggregate::{AggSlot, AggregateOperator, Grouping, InputLayout, UpdateStats};
use crate::state::dedup::DedupOperator;
use crate::window::{parse_non_negative_interval, parse_positive_interval, WindowSpec};
use crate::{analysis, illegal};

/// A `withWatermark` in the plan.
#[derive(Debug, Clone)]
pub struct WatermarkDef {
    /// The event-time column.
    pub column: String,
    /// The delay in microseconds.
    pub delay: i64,
}

pub(super) enum Segment {
    Ops(Vec<Op>),
    Observe(usize),
    /// `dropDuplicates` on a stream: the pipeline's `dedup` operator filters here.
    Dedup,
    /// Evaluate what came before once: DataFusion would otherwise inline an expensive
    /// expression (from_json) into every field read from it, parsing each message per field.
    Materialize,
}

struct Stateful {
    projection: Vec<ExprNode>,
    operator: AggregateOperator,
    /// Late rows are kept (complete mode, or no window over a watermarked column).
    keeps_late: bool,
    /// The projection compiled for the scanned schema, when it can skip DataFusion's planning.
    direct: Option<DirectInputs>,
}

/// A compiled plan.
pub struct Pipeline {
    ctx: SessionContext,
    metrics: Arc<ExprMetrics>,
    /// The plan up to the first state (or `dropDuplicates`): what `scan` runs.
    scan: Arc<ScanPlan>,
    /// The segments after `scan`'s.
    segments: Vec<Segment>,
    stateful: Option<Stateful>,
    /// A streaming `dropDuplicates` (a plan has it or an aggregation, never both).
    dedup: Option<DedupOperator>,
    post: Vec<Op>,
    watermarks: Vec<WatermarkDef>,
    windowed_on_watermark: bool,
    output_schema: SchemaRef,
    scan_signature: String,
}

/// What one micro-batch did.
#[derive(Debug, Default, Clone)]
pub struct BatchStats {
    /// Event-time statistics per watermark, in this batch.
    pub event_times: Vec<EventTimeStats>,
    /// State updates and late drops.
    pub state: UpdateStats,
    /// Malformed records `from_json` met (set by the query loop).
    pub malformed_rows: u64,
    /// Chunks scanned by this query and taken from its group (set by `batch_read`).
    pub chunks: (u64, u64),
}

impl BatchStats {
    /// Adds the statistics of another chunk of the same batch.
    pub fn merge(&mut self, other: BatchStats) {
        if self.event_times.is_empty() {
            self.event_times = other.event_times;
        } else {
            for (mine, theirs) in self.event_times.iter_mut().zip(other.event_times) {
                mine.merge(&theirs);
            }
        }
        self.state.rows_updated += other.state.rows_updated;
        self.state.dropped_by_watermark += other.state.dropped_by_watermark;
        self.malformed_rows += other.malformed_rows;
    }
}

impl Pipeline {
    /// Compiles `ops` over rows of `input_schema`.
    pub fn new(
        ctx: &SessionContext,
        input_schema: SchemaRef,
        ops: &[Op],
        mode: OutputMode,
        metrics: Arc<ExprMetrics>,
    ) -> Result<Pipeline> {
        let ops = &prune_json_fields(ops);
        let mut segments = Vec::new();
        let mut current: Vec<Op> = Vec::new();
        let mut watermarks: Vec<WatermarkDef> = Vec::new();
        let mut stateful = None;
        let mut dedup = None;
        let mut post = Vec::new();
        let mut windowed_on_watermark = false;
        let mut schema_df = frame(ctx, Arc::clone(&input_schema), vec![])?;
        // The last point before any state where the rows are materialised (after from_json,
        // or a watermark's observation): what `scan` computes, and the ops that lead there.
        let mut scan_cut = (0, 0);
        for (i, op) in ops.iter().enumerate() {
            if stateful.is_some() {
                post.push(op.clone());
                continue;
            }
            match op {
                Op::Watermark { column, delay } => {
                    current.push(op.clone());
                    schema_df = apply_ops(ctx, schema_df, std::slice::from_ref(op), &metrics)?;
                    let delay = parse_non_negative_interval(delay)
                        .map_err(|e| illegal!("withWatermark(\"{column}\", \"{delay}\"): {e}"))?;
                    segments.push(Segment::Ops(std::mem::take(&mut current)));
                    // A second withWatermark on the same column replaces the first's delay.
                    let index = match watermarks.iter().position(|w| &w.column == column) {
                        Some(index) => {
                            watermarks[index].delay = delay;
                            index
                        }
                        None => {
                            watermarks.push(WatermarkDef {
                                column: column.clone(),
                                delay,
                            });
                            watermarks.len() - 1
                        }
                    };
                    segments.push(Segment::Observe(index));
                    if dedup.is_none() {
                        scan_cut = (segments.len(), i + 1);
                    }
                }
                Op::Aggregate { keys, aggs } => {
                    segments.push(Segment::Ops(std::mem::take(&mut current)));
                    let compiled =
                        compile_aggregate(ctx, &schema_df, keys, aggs, &watermarks, &metrics)?;
                    windowed_on_watermark = compiled.1;
                    stateful = Some(Stateful {
                        projection: compiled.0 .0,
                        operator: compiled.0 .1,
                        keeps_late: !compiled.1 || mode == OutputMode::Complete,
                        direct: None,
                    });
                }
                Op::Dedup(columns) => {
                    segments.push(Segment::Ops(std::mem::take(&mut current)));
                    let watermarked: Vec<String> =
                        watermarks.iter().map(|w| w.column.clone()).collect();
                    dedup = Some(DedupOperator::new(
                        &arrow_schema(&schema_df),
                        columns.as_deref().unwrap_or_default(),
                        &watermarked,
                    )?);
                    segments.push(Segment::Dedup);
                }
                Op::Union(_) => {
                    return Err(analysis!("union() is only supported on batch DataFrames"))
                }
                other => {
                    current.push(other.clone());
                    schema_df = apply_ops(ctx, schema_df, std::slice::from_ref(other), &metrics)?;
                    if parses_json(other) {
                        segments.push(Segment::Ops(std::mem::take(&mut current)));
                        segments.push(Segment::Materialize);
                        if dedup.is_none() {
                            scan_cut = (segments.len(), i + 1);
                        }
                    }
                }
            }
        }
        segments.push(Segment::Ops(current));
        let (scan_len, scanned_ops) = scan_cut;
        let scan_signature = format!("{:?}|{:?}", input_schema.fields(), &ops[..scanned_ops]);
        let output_schema = match &stateful {
            Some(stateful) => {
                let emitted = frame(ctx, stateful.operator.schema(), vec![])?;
                arrow_schema(&apply_ops(ctx, emitted, &post, &metrics)?)
            }
            None => arrow_schema(&schema_df),
        };
        let rest = segments.split_off(scan_len);
        let scan = Arc::new(ScanPlan {
            ctx: ctx.clone(),
            input_schema,
            segments,
            watermarks: watermarks.clone(),
            compiled: Default::default(),
        });
        Ok(Pipeline {
            ctx: ctx.clone(),
            metrics,
            scan,
            segments: rest,
            stateful,
            dedup,
            post,
            watermarks,
            windowed_on_watermark,
            output_schema,
            scan_signature,
        })
    }

    /// The schema of the rows the pipeline emits.
    pub fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.output_schema)
    }

    /// The watermarks the plan defines.
    pub fn watermarks(&self) -> &[WatermarkDef] {
        &self.watermarks
    }

    /// Whether the aggregation groups by a window over a watermarked column.
    pub fn windowed_on_watermark(&self) -> bool {
        self.windowed_on_watermark
    }

    /// Whether the plan keeps state.
    pub fn is_stateful(&self) -> bool {
        self.stateful.is_some() || self.dedup.is_some()
    }

    /// Whether a watermark of `watermark` would close a window the state holds.
    pub fn would_close(&self, watermark: Option<i64>) -> bool {
        match (&self.stateful, watermark) {
            (Some(stateful), Some(watermark)) => {
                !stateful.keeps_late
                    && stateful
                        .operator
                        .earliest_end()
                        .is_some_and(|end| end <= watermark)
            }
            _ => false,
        }
    }

    /// Groups and rough bytes held by the stateful operator.
    pub fn state_size(&self) -> (usize, usize) {
        if let Some(dedup) = &self.dedup {
            return (dedup.len(), dedup.memory_bytes());
        }
        self.stateful.as_ref().map_or((0, 0), |s| {
            (s.operator.num_groups(), s.operator.memory_bytes())
        })
    }

    /// What the stateful operator's state means: its inputs, windowing and functions.
    pub fn state_signature(&self) -> Option<String> {
        if let Some(dedup) = &self.dedup {
            return Some(dedup.signature());
        }
        self.stateful.as_ref().map(|s| {
            let inputs: Vec<String> = s.projection.iter().map(ExprNode::spark_name).collect();
            format!("{} over ({})", s.operator.signature(), inputs.join(", "))
        })
    }

    /// The stateful operator's state for the checkpoint.
    pub fn snapshot_state(&self) -> Result<Option<serde_json::Value>> {
        if let Some(dedup) = &self.dedup {
            return dedup.snapshot().map(Some);
        }
        self.stateful
            .as_ref()
            .map(|s| s.operator.snapshot())
            .transpose()
    }

    /// Restores the stateful operator's state from the checkpoint.
    pub fn restore_state(&mut self, state: serde_json::Value) -> Result<()> {
        if let Some(dedup) = &mut self.dedup {
            return dedup.restore(state);
        }
        match &mut self.stateful {
            Some(stateful) => stateful.operator.restore(state),
            None => Ok(()),
        }
    }

    /// Counters the expressions keep.
    pub fn metrics(&self) -> &Arc<ExprMetrics> {
        &self.metrics
    }

    /// Runs one chunk of a batch through the whole plan: `scan`, then `consume`.
    pub async fn process(
        &mut self,
        input: Vec<RecordBatch>,
        batch_id: u64,
        late_watermark: Option<i64>,
    ) -> Result<(Vec<RecordBatch>, BatchStats)> {
        let scanned = self.scan(input).await?;
        self.consume(&scanned, arrival(batch_id, 0, 0), late_watermark)
            .await
    }

    /// What `scan` computes depends only on the input rows and on this: queries of one
    /// session with the same source and the same signature can share scanned chunks.
    pub fn scan_signature(&self) -> &str {
        &self.scan_signature
    }

    /// The stateless part of the plan before any state (up to `dropDuplicates` or the
    /// aggregation): parsing, projections, filters and event-time statistics.
    pub async fn scan(&self, input: Vec<RecordBatch>) -> Result<Scanned> {
        self.scan.scan(input, &self.metrics).await
    }

    /// The rest of the plan for a scanned chunk whose first row arrived at `first_arrival`
    /// (see `accumulator::arrival`): state, and what a stateless plan outputs.
    pub async fn consume(
        &mut self,
        scanned: &Scanned,
        first_arrival: u128,
        late_watermark: Option<i64>,
    ) -> Result<(Vec<RecordBatch>, BatchStats)> {
        // A query of the group may define more watermarks after the shared part.
        let mut event_times = scanned.event_times.clone();
        event_times.resize(self.watermarks.len(), EventTimeStats::default());
        let mut stats = BatchStats {
            event_times,
            ..BatchStats::default()
        };
        let batches = match self.direct_inputs(scanned)? {
            Some(direct) => scanned
                .batches
                .iter()
                .map(|batch| direct.evaluate(batch))
                .collect::<Result<Vec<_>>>()?,
            None => {
                let df = frame(
                    &self.ctx,
                    Arc::clone(&scanned.schema),
                    scanned.batches.clone(),
                )?;
                let df = run_segments(
                    &self.ctx,
                    &self.metrics,
                    df,
                    &self.segments,
                    &mut stats.event_times,
                    &mut self.dedup,
                    late_watermark,
                    &mut stats.state,
                    &self.watermarks,
                )
                .await?;
                let Some(stateful) = &mut self.stateful else {
                    return Ok((df.collect().await?, stats));
                };
                let schema = df.schema().clone();
                let state = self.ctx.state();
                let lowering = Lowering {
                    schema: &schema,
                    state: &state,
                    metrics: &self.metrics,
                };
                let projection = stateful
                    .projection
                    .iter()
                    .enumerate()
                    .map(|(i, e)| Ok(lowering.lower(e)?.alias(format!("__agg_input_{i}"))))
                    .collect::<Result<Vec<_>>>()?;
                df.select(projection)?.collect().await?
            }
        };
        let Some(stateful) = &mut self.stateful else {
            return Err(crate::error::Error::State(
                "aggregation inputs without an aggregation".into(),
            ));
        };
        let late = if stateful.keeps_late {
            None
        } else {
            late_watermark
        };
        let mut next_arrival = first_arrival;
        for batch in &batches {
            let update =
                stateful
                    .operator
                    .update(batch, next_arrival, late, stateful.keeps_late)?;
            next_arrival += batch.num_rows() as u128;
            stats.state.rows_updated += update.rows_updated;
            stats.state.dropped_by_watermark += update.dropped_by_watermark;
        }
        Ok((vec![], stats))
    }

    /// Whether the scan runs on plans made once (for tests).
    #[cfg(test)]
    pub(super) fn scans_on_fixed_plans(&self) -> bool {
        self.scan.on_fixed_plans()
    }

    /// Whether the aggregation read its inputs without DataFusion's planning (for tests).
    #[cfg(test)]
    pub(super) fn reads_inputs_directly(&self) -> bool {
        self.stateful.as_ref().is_some_and(|s| s.direct.is_some())
    }

    /// The aggregation's inputs compiled for `scanned`'s schema, when nothing stands between
    /// the scan and the aggregation and the inputs are column reads (see `agg_input`).
    fn direct_inputs(&mut self, scanned: &Scanned) -> Result<Option<&DirectInputs>> {
        let passes_through = self
            .segments
            .iter()
            .all(|segment| matches!(segment, Segment::Ops(ops) if ops.is_empty()));
        let Some(stateful) = self.stateful.as_mut().filter(|_| passes_through) else {
            return Ok(None);
        };
        if !stateful
            .direct
            .as_ref()
            .is_some_and(|direct| direct.fits(&scanned.schema))
        {
            stateful.direct = DirectInputs::compile(
                &self.ctx,
                &self.metrics,
                &stateful.projection,
                &scanned.schema,
            )?;
        }
        Ok(stateful.direct.as_ref())
    }

    /// Emits what the stateful operator has for `mode` at `watermark`, through the
    /// operations after it. A stateless pipeline returns `stateless_output` unchanged.
    pub async fn emit(
        &mut self,
        stateless_output: Vec<RecordBatch>,
        mode: OutputMode,
        watermark: Option<i64>,
    ) -> Result<Vec<RecordBatch>> {
        if let Some(dedup) = &mut self.dedup {
            dedup.evict(watermark);
        }
        let Some(stateful) = &mut self.stateful else {
            return Ok(stateless_output);
        };
        let emitted = stateful.operator.emit(mode, watermark)?;
        if self.post.is_empty() {
            return Ok(if emitted.num_rows() == 0 {
                vec![]
            } else {
                vec![emitted]
            });
        }
        let df = frame(&self.ctx, stateful.operator.schema(), vec![emitted])?;
        Ok(apply_ops(&self.ctx, df, &self.post, &self.metrics)?
            .collect()
            .await?)
    }
}

/// Runs `segments` over `df`: stateless operations by DataFusion, event-time observation,
/// and the `dedup` operator.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_segments(
    ctx: &SessionContext,
    metrics: &Arc<ExprMetrics>,
    mut df: DataFrame,
    segments: &[Segment],
    event_times: &mut [EventTimeStats],
    dedup: &mut Option<DedupOperator>,
    late_watermark: Option<i64>,
    state: &mut UpdateStats,
    watermarks: &[WatermarkDef],
) -> Result<DataFrame> {
    for segment in segments {
        match segment {
            Segment::Ops(ops) => df = apply_ops(ctx, df, ops, metrics)?,
            Segment::Materialize => {
                let schema = arrow_schema(&df);
                let batches = df.collect().await?;
                df = frame(ctx, schema, batches)?;
            }
            Segment::Dedup => {
                let schema = arrow_schema(&df);
                let mut kept = Vec::new();
                if let Some(dedup) = dedup {
                    for batch in df.collect().await? {
                        let (batch, update) = dedup.filter(&batch, late_watermark)?;
                        state.rows_updated += update.added;
                        state.dropped_by_watermark += update.dropped_by_watermark;
                        kept.push(batch);
                    }
                }
                df = frame(ctx, schema, kept)?;
            }
            Segment::Observe(index) => {
                let schema = arrow_schema(&df);
                let batches = df.collect().await?;
                let column = &watermarks[*index].column;
                event_times[*index].add(&batches, &schema, column)?;
                df = frame(ctx, schema, batches)?;
            }
        }
    }
    Ok(df)
}

pub(super) fn arrow_schema(df: &DataFrame) -> SchemaRef {
    Arc::new(df.schema().as_arrow().clone())
}

/// Whether an operation calls from_json (see `Segment::Materialize`).
fn parses_json(op: &Op) -> bool {
    fn calls(node: &ExprNode) -> bool {
        match node {
            ExprNode::Call { name, args, .. } => name == "from_json" || args.iter().any(calls),
            ExprNode::Alias { expr, .. }
            | ExprNode::Cast { expr, .. }
            | ExprNode::Unary { expr, .. }
            | ExprNode::Field { expr, .. }
            | ExprNode::Sort { expr, .. } => calls(expr),
            ExprNode::Binary { left, right, .. } => calls(left) || calls(right),
            ExprNode::In { expr, values } => calls(expr) || values.iter().any(calls),
            ExprNode::Case {
                branches,
                otherwise,
            } => {
                branches.iter().any(|(c, v)| calls(c) || calls(v))
                    || otherwise.as_deref().is_some_and(calls)
            }
            ExprNode::Agg { args, .. } => args.iter().any(calls),
            ExprNode::Sql { text } => text.to_ascii_lowercase().contains("from_json"),
            ExprNode::Col { .. } | ExprNode::Lit { .. } => false,
        }
    }
    match op {
        Op::Project(exprs) => exprs.iter().any(calls),
        Op::WithColumn(_, expr) | Op::Filter(expr) => calls(expr),
        _ => false,
    }
}

fn is_star(args: &[ExprNode]) -> bool {
    match args {
        [ExprNode::Col { name }] => name == "*",
        [ExprNode::Lit { .. }] => true,
        _ => false,
    }
}

type CompiledAggregate = ((Vec<ExprNode>, AggregateOperator), bool);

/// Resolves `groupBy(keys).agg(aggs)` against the schema of its input.
fn compile_aggregate(
    ctx: &SessionContext,
    input: &DataFrame,
    keys: &[ExprNode],
    aggs: &[ExprNode],
    watermarks: &[WatermarkDef],
    metrics: &Arc<ExprMetrics>,
) -> Result<CompiledAggregate> {
    let schema: &DFSchema = input.schema();
    let state = ctx.state();
    let lowering = Lowering {
        schema,
        state: &state,
        metrics,
    };
    let type_of =
        |node: &ExprNode| -> Result<DataType> { Ok(lowering.lower(node)?.get_type(schema)?) };
    let mut projection: Vec<ExprNode> = Vec::new();
    let mut grouping = Grouping::Plain;
    let mut window_name = String::from("window");
    let mut window_position = 0;
    let mut time_column: Option<ExprNode> = None;
    let mut key_fields = Vec::new();
    let mut plain_keys = Vec::new();
    for key in keys {
        match key.unaliased() {
            ExprNode::Call { name, args, .. } if name == "window" || name == "session_window" => {
                if time_column.is_some() {
                    return Err(analysis!(
                        "groupBy() takes at most one window() or session_window()"
                    ));
                }
                let [time] = args.as_slice() else {
                    return Err(analysis!("{name}() takes one time column"));
                };
                if !matches!(type_of(time)?, DataType::Timestamp(_, _)) {
                    return Err(analysis!(
                        "{name}(): the time column `{}` must be a timestamp; convert it first, \
                         e.g. with timestamp_millis() or to_timestamp()",
                        time.spark_name()
                    ));
                }
                let option = |k: &str| key.unaliased().option_str(k).map(str::to_string);
                grouping = if name == "window" {
                    let duration = option("duration")
                        .ok_or_else(|| illegal!("window() needs a windowDuration"))?;
                    let spec = WindowSpec::parse(
                        &duration,
                        option("slide").as_deref(),
                        option("start").as_deref(),
                    )
                    .map_err(|e| illegal!("window(): {e}"))?;
                    Grouping::Time(spec)
                } else {
                    let gap = option("gap")
                        .ok_or_else(|| illegal!("session_window() needs a gapDuration"))?;
                    Grouping::Session(
                        parse_positive_interval(&gap)
                            .map_err(|e| illegal!("session_window(): {e}"))?,
                    )
                };
                window_name = match key {
                    ExprNode::Alias { name, .. } => name.clone(),
                    _ => name.clone(),
                };
                window_position = key_fields.len();
                time_column = Some(time.clone());
            }
            _ => {
                key_fields.push(Field::new(key.spark_name(), type_of(key)?, true));
                plain_keys.push(key.clone());
            }
        }
    }
    // The event time orders first/last: the window's column, or else the watermark column.
    let event_time = time_column
        .clone()
        .or_else(|| watermarks.last().map(|w| ExprNode::col(&w.column)));
    let windowed_on_watermark = match &time_column {
        Some(ExprNode::Col { name }) => watermarks.iter().any(|w| &w.column == name),
        _ => false,
    };
    let event_time_index = event_time.map(|e| {
        projection.push(e);
        projection.len() - 1
    });
    let mut layout = InputLayout {
        event_time: event_time_index,
        keys: vec![],
    };
    for key in plain_keys {
        projection.push(key.unaliased().clone());
        layout.keys.push(projection.len() - 1);
    }
    let mut slots = Vec::new();
    for agg in aggs {
        let ExprNode::Agg {
            name,
            args,
            distinct,
            options,
        } = agg.unaliased()
        else {
            return Err(analysis!(
                "agg() takes aggregate functions such as first(), max() or count(); `{}` is not one",
                agg.spark_name()
            ));
        };
        // count(*) and count(1) count rows; count(col) counts non-null values.
        let counts_rows = name == "count" && is_star(args);
        let function = if *distinct && name == "count" {
            "count_distinct"
        } else {
            name.as_str()
        };
        let arg_nodes: Vec<&ExprNode> = if counts_rows {
            vec![]
        } else {
            args.iter().collect()
        };
        let arg_types = arg_nodes
            .iter()
            .map(|a| type_of(a))
            .collect::<Result<Vec<_>>>()?;
        let ignore_nulls = options
            .get("ignorenulls")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let (kind, data_type) = AggKind::resolve(function, &arg_types, ignore_nulls, counts_rows)?;
        let mut indexes = arg_nodes.iter().map(|a| {
            projection.push((*a).clone());
            projection.len() - 1
        });
        let arg = indexes.next();
        let second = indexes.next();
        slots.push(AggSlot {
            kind,
            name: agg.spark_name(),
            data_type,
            arg,
            second,
        });
    }
    let operator = AggregateOperator::new(
        grouping,
        layout,
        key_fields,
        window_position,
        window_name,
        slots,
        windowed_on_watermark,
    )?;
    Ok(((projection, operator), windowed_on_watermark))
}
