//! The aggregation's input columns, read straight from each scanned chunk.
//!
//! Through DataFusion, every chunk of every query built a DataFrame, planned and optimised
//! it and ran it, to pick a few columns for the aggregation. When the plan has nothing
//! between the scan and the aggregation and its inputs are plain column reads (the seed's
//! candles: the event time, the symbol, the price, the volume), the inputs are compiled once
//! into physical expressions for the scanned schema and evaluated on each chunk.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;

use crate::error::Result;
use crate::expr::{ExprMetrics, ExprNode, Lowering};

/// The aggregation's inputs compiled for one scanned schema.
pub(super) struct DirectInputs {
    scanned: SchemaRef,
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
}

impl DirectInputs {
    /// Compiles `projection` over `scanned`, or `None` when an input is more than a column
    /// read (anything else keeps DataFusion's planning, which folds constants such as now()).
    pub(super) fn compile(
        ctx: &SessionContext,
        metrics: &Arc<ExprMetrics>,
        projection: &[ExprNode],
        scanned: &SchemaRef,
    ) -> Result<Option<DirectInputs>> {
        if !projection.iter().all(reads_a_column) {
            return Ok(None);
        }
        let df_schema = DFSchema::try_from(scanned.as_ref().clone())?;
        let state = ctx.state();
        let lowering = Lowering {
            schema: &df_schema,
            state: &state,
            metrics,
        };
        let mut exprs = Vec::with_capacity(projection.len());
        let mut fields = Vec::with_capacity(projection.len());
        for (index, node) in projection.iter().enumerate() {
            let expr = state.create_physical_expr(lowering.lower(node)?, &df_schema)?;
            fields.push(Field::new(
                format!("__agg_input_{index}"),
                expr.data_type(scanned)?,
                expr.nullable(scanned)?,
            ));
            exprs.push(expr);
        }
        Ok(Some(DirectInputs {
            scanned: Arc::clone(scanned),
            exprs,
            schema: Arc::new(Schema::new(fields)),
        }))
    }

    /// Whether these were compiled for chunks of `schema`.
    pub(super) fn fits(&self, schema: &SchemaRef) -> bool {
        Arc::ptr_eq(&self.scanned, schema) || self.scanned == *schema
    }

    /// The inputs of one scanned chunk.
    pub(super) fn evaluate(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let columns = self
            .exprs
            .iter()
            .map(|expr| expr.evaluate(batch)?.into_array(batch.num_rows()))
            .collect::<datafusion::common::Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}

/// A column, a field of one, or a cast or alias of those.
fn reads_a_column(node: &ExprNode) -> bool {
    match node {
        ExprNode::Col { name } => name != "*" && !name.ends_with(".*"),
        ExprNode::Alias { expr, .. }
        | ExprNode::Cast { expr, .. }
        | ExprNode::Field { expr, .. } => reads_a_column(expr),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Float64Type};

    use super::super::runtime::block_on;
    use super::super::Pipeline;
    use crate::plan::{OutputMode, Plan};

    use super::*;

    /// Per-symbol max of `price_expr` over three ticks, and whether the inputs were read
    /// directly.
    fn max_by_symbol(price_expr: &str) -> (Vec<(String, f64)>, bool) {
        let plan = Plan::from_json(&format!(
            r#"{{"node":"aggregate","keys":[{{"kind":"col","name":"symbol"}}],
                 "aggs":[{{"kind":"alias","name":"high","expr":
                   {{"kind":"agg","name":"max","args":[{price_expr}]}}}}],
                 "input":{{"node":"source","format":"memory","streaming":true}}}}"#
        ))
        .expect("valid plan");
        let schema = Arc::new(Schema::new(vec![
            Field::new("symbol", DataType::Utf8, true),
            Field::new("price", DataType::Float64, true),
            Field::new("n", DataType::Int64, true),
        ]));
        let mut pipeline = Pipeline::new(
            &super::super::stateless::context(),
            Arc::clone(&schema),
            &plan.ops,
            OutputMode::Complete,
            Arc::new(ExprMetrics::default()),
        )
        .expect("pipeline");
        let ticks = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "a"])),
                Arc::new(Float64Array::from(vec![Some(1.5), Some(7.0), None])),
                Arc::new(Int64Array::from(vec![4, 2, 9])),
            ],
        )
        .expect("batch");
        block_on(pipeline.process(vec![ticks], 0, None))
            .expect("runtime")
            .expect("process");
        let out = block_on(pipeline.emit(vec![], OutputMode::Complete, None))
            .expect("runtime")
            .expect("emit");
        let mut rows: Vec<(String, f64)> = out
            .iter()
            .flat_map(|b| {
                let symbols = b.column(0).as_string::<i32>().clone();
                let highs = b.column(1).as_primitive::<Float64Type>().clone();
                (0..b.num_rows())
                    .map(move |i| (symbols.value(i).to_string(), highs.value(i)))
                    .collect::<Vec<_>>()
            })
            .collect();
        rows.sort_by(|x, y| x.0.cmp(&y.0));
        (rows, pipeline.reads_inputs_directly())
    }

    #[test]
    fn column_inputs_skip_planning_and_computed_ones_do_not_with_the_same_result() {
        let expected = vec![("a".to_string(), 1.5), ("b".to_string(), 7.0)];
        let column = max_by_symbol(r#"{"kind":"col","name":"price"}"#);
        assert_eq!(column, (expected.clone(), true));
        let cast = max_by_symbol(
            r#"{"kind":"cast","type":"double","expr":{"kind":"col","name":"price"}}"#,
        );
        assert_eq!(cast, (expected.clone(), true));
        let computed = max_by_symbol(
            r#"{"kind":"binary","op":"+","left":{"kind":"col","name":"price"},
                "right":{"kind":"lit","value":0}}"#,
        );
        assert_eq!(computed, (expected, false));
    }
}
