//! A scan's stateless segments planned once, not once per chunk.
//!
//! Each segment of a scan (from_json's select, then the projections and the event-time
//! column) is a DataFrame: run per chunk, DataFusion built, optimised and physically planned
//! every one of them anew. On the seed pipeline that was ~8 % of all CPU, more than the
//! aggregation's group lookups. When every expression of the scan is immutable (no `now()`,
//! no `rand()`, whose values DataFusion fixes while it plans), each segment is planned once
//! and every later chunk runs through the same physical plan, its rows put in place of the
//! leaf's. The plan is DataFusion's own, so what it computes does not change; a scan it cannot
//! plan this way keeps planning per chunk.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::{DataSource, DataSourceExec};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::physical_plan::{collect, ExecutionPlan};
use datafusion::prelude::SessionContext;

use super::pipeline::{arrow_schema, Segment, WatermarkDef};
use super::scan::EventTimeStats;
use super::stateless::{apply_ops, frame};
use crate::error::Result;
use crate::expr::ExprMetrics;

/// A scan's segments, each physically planned once.
pub(super) struct CompiledScan {
    /// The counters its `from_json` calls update (the UDFs were bound to them when planned).
    pub(super) metrics: Arc<ExprMetrics>,
    steps: Vec<Step>,
    /// The rows' schema after the last step.
    schema: SchemaRef,
    task: Arc<TaskContext>,
}

enum Step {
    /// A physical plan over one memory leaf, and the leaf's schema and projection.
    Plan {
        plan: Arc<dyn ExecutionPlan>,
        leaf_schema: SchemaRef,
        projection: Option<Vec<usize>>,
    },
    /// Event-time statistics of the rows so far for a watermark, on the column of that name.
    Observe { watermark: usize, schema: SchemaRef },
}

impl CompiledScan {
    /// Plans `segments` over rows of `input_schema`, with from_json counting into `metrics`.
    /// `None` when the scan cannot run on fixed plans: a non-immutable expression, or a plan
    /// whose rows do not come from one plain memory leaf.
    pub(super) async fn compile(
        ctx: &SessionContext,
        input_schema: &SchemaRef,
        segments: &[Segment],
        metrics: Arc<ExprMetrics>,
    ) -> Result<Option<CompiledScan>> {
        let mut schema = Arc::clone(input_schema);
        let mut steps = Vec::new();
        for segment in segments {
            match segment {
                Segment::Ops(ops) if ops.is_empty() => {}
                Segment::Ops(ops) => {
                    let df = frame(ctx, Arc::clone(&schema), vec![])?;
                    let df = apply_ops(ctx, df, ops, &metrics)?;
                    if !immutable(df.logical_plan()) {
                        return Ok(None);
                    }
                    let output = arrow_schema(&df);
                    let plan = df.create_physical_plan().await?;
                    let Some(projection) = plain_memory_leaf(&plan) else {
                        return Ok(None);
                    };
                    steps.push(Step::Plan {
                        plan,
                        leaf_schema: schema,
                        projection,
                    });
                    schema = output;
                }
                Segment::Materialize => {}
                Segment::Observe(watermark) => steps.push(Step::Observe {
                    watermark: *watermark,
                    schema: Arc::clone(&schema),
                }),
                Segment::Dedup => return Ok(None),
            }
        }
        Ok(Some(CompiledScan {
            metrics,
            steps,
            schema,
            task: ctx.task_ctx(),
        }))
    }

    /// Runs `input` through the plans, adding event-time statistics per watermark.
    pub(super) async fn run(
        &self,
        input: Vec<RecordBatch>,
        watermarks: &[WatermarkDef],
        event_times: &mut [EventTimeStats],
    ) -> Result<(Vec<RecordBatch>, SchemaRef)> {
        let mut batches = input;
        for step in &self.steps {
            match step {
                Step::Plan {
                    plan,
                    leaf_schema,
                    projection,
                } => {
                    let plan = with_rows(plan, batches, leaf_schema, projection)?;
                    batches = collect(plan, Arc::clone(&self.task)).await?;
                }
                Step::Observe { watermark, schema } => {
                    let column = &watermarks[*watermark].column;
                    event_times[*watermark].add(&batches, schema, column)?;
                }
            }
        }
        Ok((batches, Arc::clone(&self.schema)))
    }
}

/// Whether every expression of `plan` gives the same value for the same row whenever it runs.
fn immutable(plan: &LogicalPlan) -> bool {
    let mut fixed = true;
    let walked = plan.apply(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                fixed &= match e {
                    Expr::ScalarFunction(call) => {
                        call.func.signature().volatility == Volatility::Immutable
                    }
                    Expr::AggregateFunction(_)
                    | Expr::WindowFunction(_)
                    | Expr::ScalarSubquery(_)
                    | Expr::Exists(_)
                    | Expr::InSubquery(_)
                    | Expr::Placeholder(_) => false,
                    _ => true,
                };
                Ok(if fixed {
                    TreeNodeRecursion::Continue
                } else {
                    TreeNodeRecursion::Stop
                })
            })
        })
    });
    walked.is_ok() && fixed
}

/// The projection of `plan`'s only leaf when that leaf is a memory source with neither a
/// limit nor an ordering of its own (those would not carry over to other rows).
fn plain_memory_leaf(plan: &Arc<dyn ExecutionPlan>) -> Option<Option<Vec<usize>>> {
    let mut leaves = Vec::new();
    let walked = plan.apply(|node| {
        if node.children().is_empty() {
            leaves.push(Arc::clone(node));
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let [leaf] = leaves.as_slice() else {
        return None;
    };
    let source = leaf.downcast_ref::<DataSourceExec>()?;
    let memory = source.data_source().downcast_ref::<MemorySourceConfig>()?;
    let plain = walked.is_ok()
        && memory.partitions().len() == 1
        && memory.sort_information().is_empty()
        && DataSource::fetch(memory).is_none();
    plain.then(|| memory.projection().clone())
}

/// `plan` with `batches` in its memory leaf.
fn with_rows(
    plan: &Arc<dyn ExecutionPlan>,
    batches: Vec<RecordBatch>,
    leaf_schema: &SchemaRef,
    projection: &Option<Vec<usize>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let mut batches = Some(batches);
    let replaced = Arc::clone(plan).transform_up(|node| {
        if !node.children().is_empty() {
            return Ok(Transformed::no(node));
        }
        let rows = batches.take().unwrap_or_default();
        let leaf: Arc<dyn ExecutionPlan> =
            MemorySourceConfig::try_new_exec(&[rows], Arc::clone(leaf_schema), projection.clone())?;
        Ok(Transformed::yes(leaf))
    })?;
    Ok(replaced.data)
}
