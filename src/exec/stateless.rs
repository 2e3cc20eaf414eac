//! Runs the stateless operations of a plan (select, withColumn, filter, drop, rename, sort,
//! limit) over Arrow batches with DataFusion. The same code gives a plan's schema: it runs the
//! operations over no rows, so a wrong column fails at the call that names it.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::Column;
use datafusion::datasource::MemTable;
use datafusion::functions::expr_fn::get_field;
use datafusion::logical_expr::{Expr, SortExpr};
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};

use crate::error::Result;
use crate::expr::{ExprMetrics, ExprNode, Lowering};
use crate::plan::Op;
use crate::{analysis, illegal};

/// The DataFusion context plans run in. One partition: with more, DataFusion splits a frame's
/// batches between partitions and interleaves them again, so rows would leave a stateless step
/// in another order than they came in. Row order is arrival order (it breaks event-time ties
/// of `first`/`last`, and a batch write keeps its rows' order), and each query already runs
/// on a thread of its own.
pub fn context() -> SessionContext {
    SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1))
}

/// Wraps batches of one schema as a DataFusion frame.
pub fn frame(
    ctx: &SessionContext,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<DataFrame> {
    let table = MemTable::try_new(schema, vec![batches])?;
    Ok(ctx.read_table(Arc::new(table))?)
}

/// Applies stateless operations to a frame.
pub fn apply_ops(
    ctx: &SessionContext,
    mut df: DataFrame,
    ops: &[Op],
    metrics: &Arc<ExprMetrics>,
) -> Result<DataFrame> {
    for op in ops {
        df = apply_op(ctx, df, op, metrics)?;
    }
    Ok(df)
}

fn apply_op(
    ctx: &SessionContext,
    df: DataFrame,
    op: &Op,
    metrics: &Arc<ExprMetrics>,
) -> Result<DataFrame> {
    let state = ctx.state();
    let schema = df.schema().clone();
    let lowering = Lowering {
        schema: &schema,
        state: &state,
        metrics,
    };
    Ok(match op {
        Op::Project(exprs) => {
            let mut lowered = Vec::new();
            for expr in exprs {
                lowered.extend(select_item(&lowering, expr)?);
            }
            df.select(lowered)?
        }
        Op::WithColumn(name, expr) => {
            let value = lowering.lower(expr)?;
            df.with_column(name, value)?
        }
        Op::Rename(existing, new) => {
            if schema.fields().iter().any(|f| f.name() == existing) {
                let exprs: Vec<Expr> = schema
                    .fields()
                    .iter()
                    .map(|f| {
                        let column = Expr::Column(Column::new_unqualified(f.name()));
                        if f.name() == existing {
                            column.alias(new)
                        } else {
                            column
                        }
                    })
                    .collect();
                df.select(exprs)?
            } else {
                df
            }
        }
        Op::Drop(columns) => {
            let kept: Vec<Expr> = schema
                .fields()
                .iter()
                .filter(|f| !columns.contains(f.name()))
                .map(|f| Expr::Column(Column::new_unqualified(f.name())))
                .collect();
            df.select(kept)?
        }
        Op::Filter(condition) => {
            let condition = lowering.lower(condition)?;
            df.filter(condition)?
        }
        Op::Sort(keys) => {
            let sorts = keys
                .iter()
                .map(|key| sort_expr(&lowering, key))
                .collect::<Result<Vec<_>>>()?;
            df.sort(sorts)?
        }
        Op::Limit(n) => df.limit(0, Some(*n))?,
        Op::Watermark { column, .. } => {
            let field = schema
                .fields()
                .iter()
                .find(|f| f.name() == column)
                .ok_or_else(|| {
                    analysis!(
                        "withWatermark: the event-time column `{column}` does not exist; the \
                         columns are [{}]",
                        column_list(&schema)
                    )
                })?;
            if !matches!(field.data_type(), DataType::Timestamp(_, _)) {
                return Err(analysis!(
                    "withWatermark: the event-time column `{column}` must be a timestamp, but it \
                     is {}; convert it first, e.g. with timestamp_millis() or to_timestamp()",
                    crate::expr::types::simple_string(field.data_type())
                ));
            }
            df
        }
        Op::Aggregate { .. } | Op::Dedup(_) | Op::Union(_) => {
            return Err(illegal!(
                "internal: a stateful or union operation reached the stateless evaluator"
            ))
        }
    })
}

/// The column names of a schema, for error messages.
pub fn column_list(schema: &datafusion::common::DFSchema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("`{}`", f.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One `select` argument, expanding `*` and `struct.*` and naming columns as Spark does.
pub fn select_item(lowering: &Lowering<'_>, expr: &ExprNode) -> Result<Vec<Expr>> {
    if let ExprNode::Col { name } = expr {
        if name == "*" {
            return Ok(lowering
                .schema
                .fields()
                .iter()
                .map(|f| Expr::Column(Column::new_unqualified(f.name())))
                .collect());
        }
        if let Some(parent) = name.strip_suffix(".*") {
            let base = lowering.column(parent)?;
            let data_type =
                datafusion::logical_expr::ExprSchemable::get_type(&base, lowering.schema)?;
            let DataType::Struct(fields) = data_type else {
                return Err(analysis!(
                    "cannot expand `{name}`: `{parent}` is not a struct column"
                ));
            };
            return Ok(fields
                .iter()
                .map(|f| get_field(base.clone(), f.name().as_str()).alias(f.name()))
                .collect());
        }
    }
    let lowered = lowering.lower(expr)?;
    Ok(vec![match (expr, &lowered) {
        (ExprNode::Alias { .. }, _) | (_, Expr::Column(_)) => lowered,
        _ => lowered.alias(expr.spark_name()),
    }])
}

fn sort_expr(lowering: &Lowering<'_>, key: &ExprNode) -> Result<SortExpr> {
    Ok(match key {
        ExprNode::Sort {
            expr,
            ascending,
            nulls_first,
        } => lowering.lower(expr)?.sort(*ascending, *nulls_first),
        other => lowering.lower(other)?.sort(true, true),
    })
}
