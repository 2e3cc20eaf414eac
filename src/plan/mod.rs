//! The logical plan of a query and its validation before the query starts.
//!
//! Spark rejects some plans outright (append output on an aggregation without a watermark,
//! complete output without an aggregation); we reject the same plans, at `start()`, with a
//! message that says what to change.

mod node;
mod prune_json;

pub use node::{Leaf, Op, Plan, PlanNode};
pub use prune_json::prune_json_fields;

use crate::error::Result;
use crate::{analysis, illegal};

/// Spark's output modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputMode {
    /// Each result row once, when it can no longer change.
    Append,
    /// The rows a batch changed.
    Update,
    /// The whole result table after every batch.
    Complete,
}

impl OutputMode {
    /// Parses Spark's names, case-insensitively.
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "append" => Ok(OutputMode::Append),
            "update" => Ok(OutputMode::Update),
            "complete" => Ok(OutputMode::Complete),
            _ => Err(illegal!(
                "Unknown output mode '{text}'. Accepted output modes are 'append', 'complete', 'update'"
            )),
        }
    }
}

/// Checks a streaming plan against an output mode, as Spark's UnsupportedOperationChecker.
/// `windowed_on_watermark` says whether the aggregation groups by a window (or session)
/// over a column that has a watermark.
pub fn validate_streaming(
    plan: &Plan,
    mode: OutputMode,
    windowed_on_watermark: bool,
) -> Result<()> {
    let stateful: Vec<&Op> = plan.ops.iter().filter(|op| op.is_stateful()).collect();
    if stateful.len() > 1 {
        return Err(analysis!(
            "Multiple streaming aggregations or deduplications are not supported on one streaming \
             DataFrame; write the first result to a sink and read it back, or combine them in one \
             groupBy().agg()"
        ));
    }
    let aggregates = matches!(stateful.first(), Some(Op::Aggregate { .. }));
    match mode {
        OutputMode::Complete if !aggregates => {
            return Err(analysis!(
                "Complete output mode not supported when there are no streaming aggregations on \
                 streaming DataFrames; use outputMode(\"append\")"
            ))
        }
        OutputMode::Append if aggregates && !windowed_on_watermark => {
            return Err(analysis!(
                "Append output mode not supported when there are streaming aggregations on \
                 streaming DataFrames without watermark: group by window() or session_window() \
                 over a column with withWatermark(column, delay), or use outputMode(\"update\") \
                 or outputMode(\"complete\")"
            ))
        }
        _ => {}
    }
    let stateful_at = plan.ops.iter().position(Op::is_stateful);
    for (index, op) in plan.ops.iter().enumerate() {
        let after_aggregate = stateful_at.is_some_and(|at| index > at) && aggregates;
        match op {
            Op::Sort(_) if !(after_aggregate && mode == OutputMode::Complete) => {
                return Err(analysis!(
                    "Sorting is not supported on streaming DataFrames unless it is on an \
                     aggregated DataFrame in Complete output mode"
                ))
            }
            Op::Limit(_) if mode != OutputMode::Complete => {
                return Err(analysis!(
                    "limit() on a streaming DataFrame is only supported in Complete output mode"
                ))
            }
            Op::Union(_) => {
                return Err(analysis!(
                    "union() of streaming DataFrames is not supported yet; run two queries into \
                     the same sink instead"
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aggregation_plan() -> Plan {
        Plan::from_json(
            r#"{"node": "aggregate", "keys": [{"kind": "col", "name": "symbol"}],
                "aggs": [{"kind": "agg", "name": "count", "args": [{"kind": "col", "name": "*"}]}],
                "input": {"node": "source", "format": "rate", "streaming": true}}"#,
        )
        .expect("valid plan")
    }

    #[test]
    fn append_aggregation_without_watermark_is_rejected_with_advice() {
        let error = validate_streaming(&aggregation_plan(), OutputMode::Append, false)
            .expect_err("spark rejects it");
        assert!(error.to_string().contains("withWatermark"));
        assert!(validate_streaming(&aggregation_plan(), OutputMode::Update, false).is_ok());
        assert!(validate_streaming(&aggregation_plan(), OutputMode::Append, true).is_ok());
    }

    #[test]
    fn complete_needs_an_aggregation() {
        let plan = Plan::from_json(r#"{"node": "source", "format": "rate", "streaming": true}"#)
            .expect("valid plan");
        assert!(validate_streaming(&plan, OutputMode::Complete, false).is_err());
        assert!(validate_streaming(&plan, OutputMode::Append, false).is_ok());
    }

    #[test]
    fn output_mode_names_the_accepted_values() {
        let error = OutputMode::parse("upsert").expect_err("unknown");
        assert!(error.to_string().contains("'append', 'complete', 'update'"));
        assert_eq!(
            OutputMode::parse("Update").expect("known"),
            OutputMode::Update
        );
    }
}
