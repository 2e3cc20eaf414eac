//! Lowers our expression tree to DataFusion expressions, with Spark's semantics where the
//! two engines differ: `/` always divides as double, casts never fail (invalid values become
//! null, as Spark without ANSI mode), numbers cast to timestamps count seconds, `concat`
//! with a null gives null. Column references are checked here so the error names the
//! column and lists the ones there are.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::execution::session_state::SessionState;
use datafusion::functions::expr_fn as df_fn;
use datafusion::logical_expr::{
    binary_expr, cast, expr::ScalarFunction, lit, try_cast, Expr, ExprSchemable, Operator,
    ScalarUDF,
};
use serde_json::Value;

use super::from_json::FromJson;
use super::time_format::chrono_format;
use super::tree::ExprNode;
use super::types::{arrow_type, timestamp_type};
use super::ExprMetrics;
use crate::error::{Error, Result};
use crate::{analysis, illegal};

/// Everything lowering needs: the input's schema, a SQL parser and the query's counters.
pub struct Lowering<'a> {
    /// The schema the expression reads from.
    pub schema: &'a DFSchema,
    /// Parses `expr("...")` text.
    pub state: &'a SessionState,
    /// Counters that expressions update while they run (malformed JSON rows).
    pub metrics: &'a Arc<ExprMetrics>,
}

impl Lowering<'_> {
    /// Lowers one expression.
    pub fn lower(&self, node: &ExprNode) -> Result<Expr> {
        match node {
            ExprNode::Col { name } => self.column(name),
            ExprNode::Lit { value, data_type } => literal(value, data_type.as_ref()),
            ExprNode::Alias { expr, name } => Ok(self.lower(expr)?.alias(name)),
            ExprNode::Cast { expr, data_type } => {
                let target = arrow_type(data_type)?;
                let value = self.lower(expr)?;
                self.spark_cast(value, &target)
            }
            ExprNode::Binary { op, left, right } => self.binary(op, left, right),
            ExprNode::Unary { op, expr } => {
                let value = self.lower(expr)?;
                Ok(match op.as_str() {
                    "not" => Expr::Not(Box::new(value)),
                    "neg" => Expr::Negative(Box::new(value)),
                    "is_null" => value.is_null(),
                    "is_not_null" => value.is_not_null(),
                    other => return Err(analysis!("unknown unary operator '{other}'")),
                })
            }
            ExprNode::Field { expr, name } => {
                Ok(df_fn::get_field(self.lower(expr)?, name.as_str()))
            }
            ExprNode::In { expr, values } => {
                let values = values
                    .iter()
                    .map(|v| self.lower(v))
                    .collect::<Result<_>>()?;
                Ok(self.lower(expr)?.in_list(values, false))
            }
            ExprNode::Case {
                branches,
                otherwise,
            } => {
                let mut builder: Option<
                    datafusion::logical_expr::conditional_expressions::CaseBuilder,
                > = None;
                for (condition, value) in branches {
                    let (condition, value) = (self.lower(condition)?, self.lower(value)?);
                    builder = Some(match builder {
                        None => datafusion::logical_expr::when(condition, value),
                        Some(mut b) => b.when(condition, value),
                    });
                }
                let mut builder =
                    builder.ok_or_else(|| analysis!("when() needs at least one condition"))?;
                let otherwise = match otherwise {
                    Some(value) => self.lower(value)?,
                    None => lit(ScalarValue::Null),
                };
                Ok(builder.otherwise(otherwise)?)
            }
            ExprNode::Call {
                name,
                args,
                options,
            } => self.call(name, args, options),
            ExprNode::Agg { name, .. } => Err(analysis!(
                "the aggregate function {name}() can only be used in groupBy().agg() or a \
                 select over a whole batch frame"
            )),
            ExprNode::Sql { text } => self
                .state
                .create_logical_expr(text, self.schema)
                .map_err(|e| analysis!("cannot parse the SQL expression '{text}': {e}")),
            ExprNode::Sort { expr, .. } => self.lower(expr),
        }
    }

    /// A column reference, checked against the schema; dotted names reach into structs.
    pub fn column(&self, name: &str) -> Result<Expr> {
        if name == "*" || name.ends_with(".*") {
            return Err(analysis!(
                "'{name}' can only be used directly in select(), not inside an expression"
            ));
        }
        if self.has_column(name) {
            return Ok(Expr::Column(Column::new_unqualified(name)));
        }
        let mut parts = name.split('.');
        let head = parts.next().unwrap_or(name);
        if !self.has_column(head) {
            return Err(self.unknown_column(name));
        }
        let mut expr = Expr::Column(Column::new_unqualified(head));
        for field in parts {
            expr = df_fn::get_field(expr, field);
        }
        Ok(expr)
    }

    fn has_column(&self, name: &str) -> bool {
        self.schema.fields().iter().any(|f| f.name() == name)
    }

    fn unknown_column(&self, name: &str) -> Error {
        let available: Vec<String> = self
            .schema
            .fields()
            .iter()
            .map(|f| format!("`{}`", f.name()))
            .collect();
        analysis!(
            "[UNRESOLVED_COLUMN] A column or function parameter with name `{name}` cannot be \
             resolved. Did you mean one of the following? [{}]",
            available.join(", ")
        )
    }

    fn binary(&self, op: &str, left: &ExprNode, right: &ExprNode) -> Result<Expr> {
        let (left, right) = (self.lower(left)?, self.lower(right)?);
        let operator = match op {
            "+" => Operator::Plus,
            "-" => Operator::Minus,
            "*" => Operator::Multiply,
            "/" => {
                // Spark's `/` is always fractional division.
                return Ok(binary_expr(
                    cast(left, DataType::Float64),
                    Operator::Divide,
                    cast(right, DataType::Float64),
                ));
            }
            "%" => Operator::Modulo,
            "==" => Operator::Eq,
            "!=" => Operator::NotEq,
            "<" => Operator::Lt,
            "<=" => Operator::LtEq,
            ">" => Operator::Gt,
            ">=" => Operator::GtEq,
            "and" => Operator::And,
            "or" => Operator::Or,
            "<=>" => Operator::IsNotDistinctFrom,
            other => return Err(analysis!("unknown binary operator '{other}'")),
        };
        Ok(binary_expr(left, operator, right))
    }

    /// A cast with Spark's non-ANSI rules.
    pub fn spark_cast(&self, value: Expr, target: &DataType) -> Result<Expr> {
        let source = value.get_type(self.schema)?;
        let is_timestamp = |t: &DataType| matches!(t, DataType::Timestamp(_, _));
        if is_timestamp(target) && source.is_numeric() {
            // Spark reads a number cast to timestamp as seconds since the epoch.
            let micros = binary_expr(
                cast(value, DataType::Float64),
                Operator::Multiply,
                lit(1_000_000.0),
            );
            return Ok(cast(try_cast(micros, DataType::Int64), target.clone()));
        }
        if is_timestamp(&source) && target.is_numeric() {
            let micros = cast(cast(value, timestamp_type()), DataType::Int64);
            let seconds = binary_expr(cast(micros, DataType::Float64), Operator::Divide, lit(1e6));
            return Ok(if target.is_floating() {
                cast(seconds, target.clone())
            } else {
                cast(df_fn::floor(seconds), target.clone())
            });
        }
        Ok(try_cast(value, target.clone()))
    }

    /// The argument of `from_json`. Kafka's `value` is binary and is read as
    /// `from_json(col("value").cast("string"), ...)`; the parser takes the bytes as they are
    /// and checks their UTF-8 itself, so the cast, a pass over every message, is left out.
    /// A record that is not UTF-8 is then malformed (counted), where the cast made it null.
    fn json_text(&self, args: &[ExprNode]) -> Result<Expr> {
        match args {
            [ExprNode::Cast { expr, data_type }] if arrow_type(data_type)? == DataType::Utf8 => {
                let value = self.lower(expr)?;
                match value.get_type(self.schema)? {
                    DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Ok(value),
                    _ => self.lower(&args[0]),
                }
            }
            [arg] => self.lower(arg),
            _ => Err(analysis!(
                "from_json() takes one argument, got {}",
                args.len()
            )),
        }
    }

    fn call(
        &self,
        name: &str,
        args: &[ExprNode],
        options: &serde_json::Map<String, Value>,
    ) -> Result<Expr> {
        let lowered = || {
            args.iter()
                .map(|a| self.lower(a))
                .collect::<Result<Vec<_>>>()
        };
        let one = || -> Result<Expr> {
            match args {
                [arg] => self.lower(arg),
                _ => Err(analysis!("{name}() takes one argument, got {}", args.len())),
            }
        };
        let ts = timestamp_type();
        Ok(match name {
            "from_json" => {
                let schema = options
                    .get("schema")
                    .ok_or_else(|| illegal!("from_json() needs a schema"))?;
                let mode = options
                    .get("options")
                    .and_then(|o| o.get("mode"))
                    .and_then(Value::as_str)
                    .unwrap_or("PERMISSIVE");
                let udf = FromJson::new(arrow_type(schema)?, mode, Arc::clone(self.metrics))?;
                Expr::ScalarFunction(ScalarFunction::new_udf(
                    Arc::new(ScalarUDF::new_from_impl(udf)),
                    vec![self.json_text(args)?],
                ))
            }
            "to_json" => Expr::ScalarFunction(ScalarFunction::new_udf(
                Arc::new(ScalarUDF::new_from_impl(super::to_json::ToJson::new())),
                vec![one()?],
            )),
            "timestamp_millis" => self.scaled_timestamp(one()?, 1_000),
            "timestamp_micros" => self.scaled_timestamp(one()?, 1),
            "timestamp_seconds" => self.spark_cast(one()?, &ts)?,
            "to_timestamp" => {
                let value = one()?;
                let parsed = match options.get("format").and_then(Value::as_str) {
                    Some(format) => {
                        df_fn::to_timestamp_micros(vec![value, lit(chrono_format(format))])
                    }
                    None => match value.get_type(self.schema)? {
                        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                            df_fn::to_timestamp_micros(vec![value])
                        }
                        _ => return self.spark_cast(value, &ts),
                    },
                };
                cast(parsed, ts)
            }
            "from_unixtime" => {
                let format = options
                    .get("format")
                    .and_then(Value::as_str)
                    .unwrap_or("yyyy-MM-dd HH:mm:ss");
                let instant = self.spark_cast(one()?, &ts)?;
                df_fn::to_char(instant, lit(chrono_format(format)))
            }
            "date_trunc" => {
                let unit = options
                    .get("unit")
                    .and_then(Value::as_str)
                    .ok_or_else(|| illegal!("date_trunc() needs a unit such as 'hour'"))?
                    .to_ascii_lowercase();
                cast(df_fn::date_trunc(lit(unit), one()?), ts)
            }
            "current_timestamp" => cast(df_fn::now(), ts),
            "round" => {
                let scale = options.get("scale").and_then(Value::as_i64).unwrap_or(0);
                df_fn::round(vec![one()?, lit(scale)])
            }
            "coalesce" => df_fn::coalesce(lowered()?),
            "concat" => {
                let parts = lowered()?;
                let any_null = parts
                    .iter()
                    .cloned()
                    .map(Expr::is_null)
                    .reduce(Expr::or)
                    .ok_or_else(|| analysis!("concat() needs at least one argument"))?;
                datafusion::logical_expr::when(any_null, lit(ScalarValue::Utf8(None)))
                    .otherwise(df_fn::concat(parts))?
            }
            "upper" => df_fn::upper(one()?),
            "lower" => df_fn::lower(one()?),
            "abs" => df_fn::abs(one()?),
            "sqrt" => df_fn::sqrt(one()?),
            "length" => df_fn::character_length(one()?),
            "contains" | "startswith" | "endswith" | "like" => {
                let [value, pattern] = lowered()?
                    .try_into()
                    .map_err(|_| analysis!("{name}() takes two arguments"))?;
                match name {
                    "contains" => df_fn::contains(value, pattern),
                    "startswith" => df_fn::starts_with(value, pattern),
                    "endswith" => df_fn::ends_with(value, pattern),
                    _ => value.like(pattern),
                }
            }
            "struct" => {
                let mut pairs = Vec::new();
                for arg in args {
                    pairs.push(lit(arg.spark_name()));
                    pairs.push(self.lower(arg)?);
                }
                df_fn::named_struct(pairs)
            }
            "window" | "session_window" => {
                return Err(analysis!(
                    "{name}() can only be used as a grouping key in groupBy()"
                ))
            }
            other => return Err(analysis!("the function {other}() is not supported")),
        })
    }

    fn scaled_timestamp(&self, value: Expr, micros_per_unit: i64) -> Expr {
        let micros = binary_expr(
            cast(value, DataType::Int64),
            Operator::Multiply,
            lit(micros_per_unit),
        );
        cast(micros, timestamp_type())
    }
}

/// A literal from JSON, typed when the tree says so.
fn literal(value: &Value, data_type: Option<&Value>) -> Result<Expr> {
    if let Some(spark) = data_type {
        let target = arrow_type(spark)?;
        let text = match value {
            Value::String(text) => ScalarValue::Utf8(Some(text.clone())),
            Value::Null => ScalarValue::Utf8(None),
            other => ScalarValue::Utf8(Some(other.to_string())),
        };
        let typed = text
            .cast_to(&target)
            .map_err(|e| illegal!("cannot make a {spark} literal from {value}: {e}"))?;
        return Ok(lit(typed));
    }
    Ok(match value {
        Value::Null => lit(ScalarValue::Null),
        Value::Bool(b) => lit(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) if i32::try_from(i).is_ok() => lit(i as i32),
            (Some(i), _) => lit(i),
            (None, Some(f)) => lit(f),
            _ => return Err(illegal!("unsupported number literal {n}")),
        },
        Value::String(text) => lit(text.as_str()),
        other => return Err(illegal!("unsupported literal {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};
    use datafusion::prelude::SessionContext;
    use serde_json::json;

    fn lower(node: Value) -> Expr {
        let schema = Schema::new(vec![
            Field::new("value", DataType::Binary, true),
            Field::new("text", DataType::Utf8, true),
        ]);
        let schema = DFSchema::try_from(schema).expect("schema");
        let state = SessionContext::new().state();
        let metrics = Arc::new(ExprMetrics::default());
        let lowering = Lowering {
            schema: &schema,
            state: &state,
            metrics: &metrics,
        };
        let node: ExprNode = serde_json::from_value(node).expect("node");
        lowering.lower(&node).expect("lowers")
    }

    fn from_json_of(arg: Value) -> Expr {
        let schema = json!({"type": "struct", "fields": [{"name": "a", "type": "long"}]});
        let call = lower(json!({"kind": "call", "name": "from_json", "args": [arg],
                                "options": {"schema": schema}}));
        let Expr::ScalarFunction(call) = call else {
            panic!("from_json lowers to a UDF call, got {call}");
        };
        call.args[0].clone()
    }

    #[test]
    fn from_json_reads_binary_without_the_cast_to_string() {
        let value = json!({"kind": "col", "name": "value"});
        let cast_value = json!({"kind": "cast", "type": "string", "expr": value});
        assert_eq!(
            from_json_of(cast_value),
            Expr::Column(Column::from_name("value"))
        );
        let cast_text =
            json!({"kind": "cast", "type": "string", "expr": {"kind": "col", "name": "text"}});
        assert!(matches!(from_json_of(cast_text), Expr::TryCast(_)));
        let to_long = json!({"kind": "cast", "type": "long", "expr": value});
        assert!(matches!(from_json_of(to_long), Expr::TryCast(_)));
    }
}
