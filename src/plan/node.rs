//! The plan tree Python sends (see `docs/plan-format.md`) and its flattening into a leaf
//! plus a chain of operations, the shape the micro-batch loop runs.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::analysis;
use crate::error::Result;
use crate::expr::ExprNode;

/// One node of a DataFrame's plan.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "node", rename_all = "snake_case")]
pub enum PlanNode {
    /// A source: Kafka, files, rate, memory, Binance.
    Source {
        /// `kafka`, `json`, `csv`, `parquet`, `rate`, `memory`, `binance`.
        format: String,
        /// The reader's options, as Spark's string map.
        #[serde(default)]
        options: BTreeMap<String, String>,
        /// A user-given schema in Spark's JSON form.
        #[serde(default)]
        schema: Option<Value>,
        /// The path for file sources.
        #[serde(default)]
        path: Option<String>,
        /// `readStream` (true) or `read` (false).
        #[serde(default)]
        streaming: bool,
    },
    /// A memory table or temporary view by name.
    Table {
        /// Its name.
        name: String,
    },
    /// Arrow data held by the session (`createDataFrame`).
    Batch {
        /// The session's id for it.
        id: u64,
    },
    /// `select(...)`.
    Project {
        /// The input plan.
        input: Box<PlanNode>,
        /// The selected expressions.
        exprs: Vec<ExprNode>,
    },
    /// `withColumn(name, expr)`.
    WithColumn {
        /// The input plan.
        input: Box<PlanNode>,
        /// The column to add or replace.
        name: String,
        /// Its value.
        expr: ExprNode,
    },
    /// `withColumnRenamed(existing, new)`.
    Rename {
        /// The input plan.
        input: Box<PlanNode>,
        /// The current name.
        existing: String,
        /// The new name.
        new: String,
    },
    /// `drop(*columns)`.
    Drop {
        /// The input plan.
        input: Box<PlanNode>,
        /// Names to drop (absent names are ignored, as in Spark).
        columns: Vec<String>,
    },
    /// `filter(condition)` / `where(condition)`.
    Filter {
        /// The input plan.
        input: Box<PlanNode>,
        /// Rows where this is true stay.
        condition: ExprNode,
    },
    /// `withWatermark(column, delay)`.
    Watermark {
        /// The input plan.
        input: Box<PlanNode>,
        /// The event-time column.
        column: String,
        /// How late rows may be, as a Spark interval string.
        delay: String,
    },
    /// `groupBy(*keys).agg(*aggs)`.
    Aggregate {
        /// The input plan.
        input: Box<PlanNode>,
        /// Grouping expressions, `window(...)` and `session_window(...)` among them.
        keys: Vec<ExprNode>,
        /// Aggregate expressions.
        aggs: Vec<ExprNode>,
    },
    /// `dropDuplicates(columns)`.
    Dedup {
        /// The input plan.
        input: Box<PlanNode>,
        /// The columns that make a duplicate (all when absent).
        #[serde(default)]
        columns: Option<Vec<String>>,
    },
    /// `union(other)`.
    Union {
        /// The first input.
        input: Box<PlanNode>,
        /// The second input.
        other: Box<PlanNode>,
    },
    /// `orderBy(...)`.
    Sort {
        /// The input plan.
        input: Box<PlanNode>,
        /// Sort expressions.
        keys: Vec<ExprNode>,
    },
    /// `limit(n)`.
    Limit {
        /// The input plan.
        input: Box<PlanNode>,
        /// The number of rows kept.
        n: usize,
    },
}

/// Where a plan's rows come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Leaf {
    /// A source (streaming or batch).
    Source {
        /// Its format.
        format: String,
        /// Its options.
        options: BTreeMap<String, String>,
        /// Its user-given schema.
        schema: Option<Value>,
        /// Its path.
        path: Option<String>,
        /// Whether it is read as a stream.
        streaming: bool,
    },
    /// A named table or view.
    Table(String),
    /// Session-held Arrow data.
    Batch(u64),
}

/// One step applied to the rows of the step before it.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `select`.
    Project(Vec<ExprNode>),
    /// `withColumn`.
    WithColumn(String, ExprNode),
    /// `withColumnRenamed`.
    Rename(String, String),
    /// `drop`.
    Drop(Vec<String>),
    /// `filter`.
    Filter(ExprNode),
    /// `withWatermark`.
    Watermark {
        /// The event-time column.
        column: String,
        /// The delay string, parsed when the query starts.
        delay: String,
    },
    /// `groupBy().agg()`.
    Aggregate {
        /// Grouping expressions.
        keys: Vec<ExprNode>,
        /// Aggregates.
        aggs: Vec<ExprNode>,
    },
    /// `dropDuplicates`.
    Dedup(Option<Vec<String>>),
    /// `union` with another flattened plan.
    Union(Box<Plan>),
    /// `orderBy`.
    Sort(Vec<ExprNode>),
    /// `limit`.
    Limit(usize),
}

impl Op {
    /// Whether the operation keeps state across micro-batches.
    pub fn is_stateful(&self) -> bool {
        matches!(self, Op::Aggregate { .. } | Op::Dedup(_))
    }
}

/// A plan as a leaf and the operations over it, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Where rows come from.
    pub leaf: Leaf,
    /// What happens to them.
    pub ops: Vec<Op>,
}

impl Plan {
    /// Parses the JSON Python sends.
    pub fn from_json(text: &str) -> Result<Plan> {
        let node: PlanNode =
            serde_json::from_str(text).map_err(|e| analysis!("malformed plan: {e}"))?;
        Ok(Plan::flatten(node))
    }

    /// Flattens a plan tree.
    pub fn flatten(node: PlanNode) -> Plan {
        let mut ops = Vec::new();
        let mut current = node;
        let leaf = loop {
            current = match current {
                PlanNode::Source {
                    format,
                    options,
                    schema,
                    path,
                    streaming,
                } => {
                    break Leaf::Source {
                        format: format.to_ascii_lowercase(),
                        options,
                        schema,
                        path,
                        streaming,
                    }
                }
                PlanNode::Table { name } => break Leaf::Table(name),
                PlanNode::Batch { id } => break Leaf::Batch(id),
                PlanNode::Project { input, exprs } => {
                    ops.push(Op::Project(exprs));
                    *input
                }
                PlanNode::WithColumn { input, name, expr } => {
                    ops.push(Op::WithColumn(name, expr));
                    *input
                }
                PlanNode::Rename {
                    input,
                    existing,
                    new,
                } => {
                    ops.push(Op::Rename(existing, new));
                    *input
                }
                PlanNode::Drop { input, columns } => {
                    ops.push(Op::Drop(columns));
                    *input
                }
                PlanNode::Filter { input, condition } => {
                    ops.push(Op::Filter(condition));
                    *input
                }
                PlanNode::Watermark {
                    input,
                    column,
                    delay,
                } => {
                    ops.push(Op::Watermark { column, delay });
                    *input
                }
                PlanNode::Aggregate { input, keys, aggs } => {
                    ops.push(Op::Aggregate { keys, aggs });
                    *input
                }
                PlanNode::Dedup { input, columns } => {
                    ops.push(Op::Dedup(columns));
                    *input
                }
                PlanNode::Union { input, other } => {
                    ops.push(Op::Union(Box::new(Plan::flatten(*other))));
                    *input
                }
                PlanNode::Sort { input, keys } => {
                    ops.push(Op::Sort(keys));
                    *input
                }
                PlanNode::Limit { input, n } => {
                    ops.push(Op::Limit(n));
                    *input
                }
            };
        };
        ops.reverse();
        Plan { leaf, ops }
    }

    /// Whether the plan reads a stream.
    pub fn is_streaming(&self) -> bool {
        matches!(
            self.leaf,
            Leaf::Source {
                streaming: true,
                ..
            }
        ) || self.ops.iter().any(|op| match op {
            Op::Union(other) => other.is_streaming(),
            _ => false,
        })
    }

    /// Whether the plan has a stateful operation.
    pub fn is_stateful(&self) -> bool {
        self.ops.iter().any(Op::is_stateful)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattening_keeps_the_order_of_operations() {
        let plan = Plan::from_json(
            r#"{"node": "filter", "condition": {"kind": "col", "name": "ok"},
                "input": {"node": "watermark", "column": "ts", "delay": "1 hour",
                  "input": {"node": "source", "format": "Kafka", "streaming": true}}}"#,
        )
        .expect("valid plan");
        assert!(matches!(&plan.leaf, Leaf::Source { format, .. } if format == "kafka"));
        assert!(matches!(plan.ops[0], Op::Watermark { .. }));
        assert!(matches!(plan.ops[1], Op::Filter(_)));
        assert!(plan.is_streaming());
    }

    #[test]
    fn malformed_plan_is_an_analysis_error() {
        let error = Plan::from_json(r#"{"node": "teleport"}"#).expect_err("unknown node");
        assert!(error.to_string().contains("malformed plan"));
    }
}
