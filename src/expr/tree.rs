//! The expression tree Python sends (see `docs/plan-format.md`) and Spark's column names.
//!
//! Spark names an unaliased column after the expression that made it (`first(price)`,
//! `(price * 2)`, `CAST(value AS STRING)`, `count(1)`); `spark_name` reproduces that so
//! tables and Parquet files carry the names PySpark users see.

use serde::Deserialize;
use serde_json::{Map, Value};

/// One node of a column expression.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExprNode {
    /// A column by name: `price`, `d.price`, `*`, `d.*`.
    Col {
        /// The column's name, possibly dotted into a struct.
        name: String,
    },
    /// A literal value, optionally typed (`timestamp` literals are ISO strings).
    Lit {
        /// The JSON value.
        value: Value,
        /// Its Spark type, when the JSON alone does not say it.
        #[serde(default, rename = "type")]
        data_type: Option<Value>,
    },
    /// `expr AS name`.
    Alias {
        /// The aliased expression.
        expr: Box<ExprNode>,
        /// The new name.
        name: String,
    },
    /// `CAST(expr AS type)`.
    Cast {
        /// The value to cast.
        expr: Box<ExprNode>,
        /// The Spark data type to cast to.
        #[serde(rename = "type")]
        data_type: Value,
    },
    /// A binary operator.
    Binary {
        /// One of `+ - * / % == != < <= > >= and or <=>`.
        op: String,
        /// Left operand.
        left: Box<ExprNode>,
        /// Right operand.
        right: Box<ExprNode>,
    },
    /// A unary operator: `not`, `neg`, `is_null`, `is_not_null`.
    Unary {
        /// The operator.
        op: String,
        /// The operand.
        expr: Box<ExprNode>,
    },
    /// A struct field: `expr.name`.
    Field {
        /// The struct.
        expr: Box<ExprNode>,
        /// The field's name.
        name: String,
    },
    /// `expr IN (values)`.
    In {
        /// The tested value.
        expr: Box<ExprNode>,
        /// The candidates.
        values: Vec<ExprNode>,
    },
    /// `CASE WHEN ... THEN ... ELSE ... END`.
    Case {
        /// `[condition, value]` pairs in order.
        branches: Vec<(ExprNode, ExprNode)>,
        /// The value when no branch matches (null when absent).
        #[serde(default)]
        otherwise: Option<Box<ExprNode>>,
    },
    /// A scalar function by Spark's name.
    Call {
        /// Spark's function name, lower case.
        name: String,
        /// Its arguments.
        #[serde(default)]
        args: Vec<ExprNode>,
        /// Non-column parameters (a schema, a format, a window duration).
        #[serde(default)]
        options: Map<String, Value>,
    },
    /// An aggregate function.
    Agg {
        /// Spark's function name: first, last, min, max, sum, count, avg, ...
        name: String,
        /// Its arguments.
        #[serde(default)]
        args: Vec<ExprNode>,
        /// `count(DISTINCT ...)`.
        #[serde(default)]
        distinct: bool,
        /// Parameters such as `ignorenulls`.
        #[serde(default)]
        options: Map<String, Value>,
    },
    /// A SQL expression string (`expr()`, `selectExpr()`).
    Sql {
        /// The SQL text.
        text: String,
    },
    /// A sort key.
    Sort {
        /// The sorted expression.
        expr: Box<ExprNode>,
        /// Ascending order.
        ascending: bool,
        /// Nulls before values.
        nulls_first: bool,
    },
}

impl ExprNode {
    /// A column reference.
    pub fn col(name: &str) -> Self {
        ExprNode::Col { name: name.into() }
    }

    /// The expression under any aliases.
    pub fn unaliased(&self) -> &ExprNode {
        match self {
            ExprNode::Alias { expr, .. } => expr.unaliased(),
            other => other,
        }
    }

    /// A string option of a `call` or `agg` node.
    pub fn option_str(&self, key: &str) -> Option<&str> {
        match self {
            ExprNode::Call { options, .. } | ExprNode::Agg { options, .. } => {
                options.get(key).and_then(Value::as_str)
            }
            _ => None,
        }
    }

    /// The name Spark gives the column this expression makes.
    pub fn spark_name(&self) -> String {
        match self {
            ExprNode::Col { name } => match name.rsplit_once('.') {
                Some((_, field)) => field.to_string(),
                None => name.clone(),
            },
            ExprNode::Lit { value, .. } => match value {
                Value::Null => "NULL".into(),
                Value::String(text) => text.clone(),
                other => other.to_string(),
            },
            ExprNode::Alias { name, .. } => name.clone(),
            ExprNode::Cast { expr, data_type } => format!(
                "CAST({} AS {})",
                expr.spark_name(),
                spark_type_keyword(data_type)
            ),
            ExprNode::Binary { op, left, right } => {
                let op = match op.as_str() {
                    "==" => "=",
                    "and" => "AND",
                    "or" => "OR",
                    other => other,
                };
                format!("({} {} {})", left.spark_name(), op, right.spark_name())
            }
            ExprNode::Unary { op, expr } => match op.as_str() {
                "not" => format!("(NOT {})", expr.spark_name()),
                "neg" => format!("(- {})", expr.spark_name()),
                "is_null" => format!("({} IS NULL)", expr.spark_name()),
                _ => format!("({} IS NOT NULL)", expr.spark_name()),
            },
            ExprNode::Field { name, .. } => name.clone(),
            ExprNode::In { expr, values } => {
                format!("({} IN ({}))", expr.spark_name(), join_names(values))
            }
            ExprNode::Case {
                branches,
                otherwise,
            } => {
                let mut text = String::from("CASE");
                for (condition, value) in branches {
                    text.push_str(&format!(
                        " WHEN {} THEN {}",
                        condition.spark_name(),
                        value.spark_name()
                    ));
                }
                if let Some(otherwise) = otherwise {
                    text.push_str(&format!(" ELSE {}", otherwise.spark_name()));
                }
                text + " END"
            }
            ExprNode::Call { name, args, .. } => match name.as_str() {
                "window" => "window".into(),
                "session_window" => "session_window".into(),
                "current_timestamp" => "current_timestamp()".into(),
                _ => format!("{}({})", name, join_names(args)),
            },
            ExprNode::Agg {
                name,
                args,
                distinct,
                ..
            } => {
                let args = if matches!(args.as_slice(), [ExprNode::Col { name }] if name == "*") {
                    "1".to_string()
                } else {
                    join_names(args)
                };
                let name = if name == "count_distinct" {
                    "count"
                } else {
                    name
                };
                if *distinct || name == "count" && args.starts_with("DISTINCT") {
                    format!("{name}(DISTINCT {args})")
                } else {
                    format!("{name}({args})")
                }
            }
            ExprNode::Sql { text } => text.clone(),
            ExprNode::Sort { expr, .. } => expr.spark_name(),
        }
    }
}

fn join_names(args: &[ExprNode]) -> String {
    args.iter()
        .map(ExprNode::spark_name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The SQL keyword Spark prints for a type in a cast's column name.
fn spark_type_keyword(data_type: &Value) -> String {
    match data_type {
        Value::String(name) => match name.as_str() {
            "long" => "BIGINT".into(),
            "integer" => "INT".into(),
            "short" => "SMALLINT".into(),
            "byte" => "TINYINT".into(),
            other => other.to_ascii_uppercase(),
        },
        Value::Object(map) => map
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("STRUCT")
            .to_ascii_uppercase(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> ExprNode {
        serde_json::from_value(value).expect("valid expression")
    }

    #[test]
    fn names_follow_spark() {
        let first = parse(
            json!({"kind": "agg", "name": "first", "args": [{"kind": "col", "name": "price"}]}),
        );
        assert_eq!(first.spark_name(), "first(price)");
        let count =
            parse(json!({"kind": "agg", "name": "count", "args": [{"kind": "col", "name": "*"}]}));
        assert_eq!(count.spark_name(), "count(1)");
        let cast = parse(
            json!({"kind": "cast", "expr": {"kind": "col", "name": "value"}, "type": "string"}),
        );
        assert_eq!(cast.spark_name(), "CAST(value AS STRING)");
        let times = parse(
            json!({"kind": "binary", "op": "*", "left": {"kind": "col", "name": "price"}, "right": {"kind": "lit", "value": 2}}),
        );
        assert_eq!(times.spark_name(), "(price * 2)");
        assert_eq!(ExprNode::col("d.price").spark_name(), "price");
    }

    #[test]
    fn unknown_kind_is_rejected() {
        let result: Result<ExprNode, _> = serde_json::from_value(json!({"kind": "magic"}));
        assert!(result.is_err());
    }
}
