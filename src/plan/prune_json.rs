//! `from_json` reads only the fields the query uses, as Spark's `OptimizeJsonExprs` prunes
//! the schema of a `JsonToStructs` whose fields are accessed one by one.
//!
//! The seed pipeline parses 12 fields of a tick and its candles use 4; parsing the other 8
//! was a third of the parse and of the memory the shared scan holds. A field is dropped from
//! the schema only when nothing after the parse can see it: the plan must narrow its columns
//! (an aggregation, or a `select` without `*`) before any sink, and no operation on the way
//! may mention the field, the struct as a whole, or SQL text that could. When unsure, the
//! schema stays whole.
//!
//! As in Spark, a field left out is not type-checked: a record whose unused field has the
//! wrong type is no longer malformed (Spark keeps a record's other fields in that case too).
//! Its JSON syntax is still checked.

use std::collections::HashSet;

use serde_json::Value;

use super::Op;
use crate::expr::ExprNode;

/// `ops` with each `from_json(...).alias(name)` schema cut to the fields the operations
/// after it use.
pub fn prune_json_fields(ops: &[Op]) -> Vec<Op> {
    let mut pruned = ops.to_vec();
    for index in 0..pruned.len() {
        let rest = &ops[index + 1..];
        if let Op::Project(exprs) = &mut pruned[index] {
            for expr in exprs {
                let ExprNode::Alias { expr, name } = expr else {
                    continue;
                };
                let ExprNode::Call {
                    name: call,
                    options,
                    ..
                } = expr.as_mut()
                else {
                    continue;
                };
                if call != "from_json" {
                    continue;
                }
                let Some(used) = used_names(rest, &name.to_lowercase()) else {
                    continue;
                };
                if let Some(Value::Object(schema)) = options.get_mut("schema") {
                    keep_fields(schema, &used);
                }
            }
        }
    }
    pruned
}

/// Drops the fields of a Spark JSON struct schema that `used` does not name, keeping at
/// least one (a struct of no fields would be a different type).
fn keep_fields(schema: &mut serde_json::Map<String, Value>, used: &HashSet<String>) {
    if schema.get("type").and_then(Value::as_str) != Some("struct") {
        return;
    }
    let Some(Value::Array(fields)) = schema.get_mut("fields") else {
        return;
    };
    let is_used = |field: &Value| {
        field
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(|name| used.contains(&name.to_lowercase()))
    };
    if fields.iter().any(is_used) {
        fields.retain(is_used);
    } else {
        fields.truncate(1);
    }
}

/// The (lower-case) names mentioned by `ops`, up to the first that narrows the columns to
/// what it names; `None` when a field of the struct `alias` could reach a sink unseen.
fn used_names(ops: &[Op], alias: &str) -> Option<HashSet<String>> {
    let mut names = HashSet::new();
    for op in ops {
        let mut narrows = false;
        match op {
            Op::Project(exprs) => {
                narrows = true;
                for expr in exprs {
                    match expr {
                        ExprNode::Col { name } if name == "*" => narrows = false,
                        ExprNode::Col { name } if name.to_lowercase() == format!("{alias}.*") => {
                            narrows = false
                        }
                        other => mentions(other, alias, &mut names)?,
                    }
                }
            }
            Op::WithColumn(name, expr) => {
                names.insert(name.to_lowercase());
                mentions(expr, alias, &mut names)?;
            }
            Op::Filter(expr) => mentions(expr, alias, &mut names)?,
            Op::Watermark { column, .. } => {
                names.insert(column.to_lowercase());
            }
            Op::Rename(from, to) => {
                names.insert(from.to_lowercase());
                names.insert(to.to_lowercase());
            }
            Op::Drop(_) | Op::Limit(_) => {}
            Op::Sort(exprs) => {
                for expr in exprs {
                    mentions(expr, alias, &mut names)?;
                }
            }
            Op::Aggregate { keys, aggs } => {
                for expr in keys.iter().chain(aggs) {
                    mentions(expr, alias, &mut names)?;
                }
                narrows = true;
            }
            Op::Dedup(Some(columns)) => names.extend(columns.iter().map(|c| c.to_lowercase())),
            Op::Dedup(None) | Op::Union(_) => return None,
        }
        if names.contains(alias) {
            return None;
        }
        if narrows {
            return Some(names);
        }
    }
    None
}

/// Adds the names `expr` mentions; `None` when it could read any column (`*` outside
/// `count(*)`, SQL text) or reads the struct `alias` whole.
fn mentions(expr: &ExprNode, alias: &str, names: &mut HashSet<String>) -> Option<()> {
    let all = |exprs: &[ExprNode], names: &mut HashSet<String>| {
        exprs.iter().try_for_each(|e| mentions(e, alias, names))
    };
    match expr {
        ExprNode::Col { name } => {
            if name == "*" || name.ends_with(".*") {
                return None;
            }
            let name = name.to_lowercase();
            let mut parts = name.split('.');
            if parts.next() == Some(alias) && name.contains('.') {
                // `alias.field`: only that field of the struct.
                names.extend(parts.take(1).map(str::to_string));
            } else {
                names.extend(name.split('.').map(str::to_string));
            }
        }
        ExprNode::Field { expr, name } => {
            names.insert(name.to_lowercase());
            match expr.as_ref() {
                ExprNode::Col { name: parent } if parent.to_lowercase() == alias => {}
                other => mentions(other, alias, names)?,
            }
        }
        ExprNode::Lit { .. } => {}
        ExprNode::Alias { expr, name } => {
            names.insert(name.to_lowercase());
            mentions(expr, alias, names)?;
        }
        ExprNode::Cast { expr, .. }
        | ExprNode::Unary { expr, .. }
        | ExprNode::Sort { expr, .. } => mentions(expr, alias, names)?,
        ExprNode::Binary { left, right, .. } => {
            mentions(left, alias, names)?;
            mentions(right, alias, names)?;
        }
        ExprNode::In { expr, values } => {
            mentions(expr, alias, names)?;
            all(values, names)?;
        }
        ExprNode::Case {
            branches,
            otherwise,
        } => {
            for (condition, value) in branches {
                mentions(condition, alias, names)?;
                mentions(value, alias, names)?;
            }
            if let Some(otherwise) = otherwise {
                mentions(otherwise, alias, names)?;
            }
        }
        ExprNode::Call { args, .. } => all(args, names)?,
        ExprNode::Agg { name, args, .. } => match args.as_slice() {
            [ExprNode::Col { name: star }] if name == "count" && star == "*" => {}
            args => all(args, names)?,
        },
        ExprNode::Sql { .. } => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Plan;

    const SCHEMA: &str = r#"{"type":"struct","fields":[
        {"name":"symbol","type":"string","nullable":true,"metadata":{}},
        {"name":"price","type":"double","nullable":true,"metadata":{}},
        {"name":"volume","type":"double","nullable":true,"metadata":{}},
        {"name":"event_time","type":"long","nullable":true,"metadata":{}}]}"#;

    /// The seed's parse, `select(from_json(value).alias("t")).select("t.*")`, then `ops`
    /// (innermost last, as the plan JSON nests them).
    fn plan(ops: &[&str]) -> Vec<Op> {
        let mut node = format!(
            r#"{{"node":"project","exprs":[{{"kind":"col","name":"t.*"}}],
                 "input":{{"node":"project","exprs":[{{"kind":"alias","name":"t","expr":
                   {{"kind":"call","name":"from_json","args":[{{"kind":"col","name":"value"}}],
                     "options":{{"schema":{SCHEMA}}}}}}}],
                   "input":{{"node":"source","format":"memory","streaming":true}}}}}}"#
        );
        for op in ops {
            node = op.replace("INPUT", &node);
        }
        Plan::from_json(&node).expect("valid plan").ops
    }

    /// The fields the pruned from_json of `ops` parses.
    fn fields_of(ops: &[Op]) -> Vec<String> {
        let pruned = prune_json_fields(ops);
        let Op::Project(exprs) = &pruned[0] else {
            panic!("the parse comes first");
        };
        let ExprNode::Alias { expr, .. } = &exprs[0] else {
            panic!("aliased");
        };
        let ExprNode::Call { options, .. } = expr.as_ref() else {
            panic!("a call");
        };
        options["schema"]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| f["name"].as_str().expect("named").to_string())
            .collect()
    }

    fn parsed_fields(ops: &[&str]) -> Vec<String> {
        fields_of(&plan(ops))
    }

    const CANDLES: &str = r#"{"node":"aggregate",
        "keys":[{"kind":"call","name":"window","args":[{"kind":"col","name":"ts"}],
                 "options":{"duration":"1 hour"}},{"kind":"col","name":"symbol"}],
        "aggs":[{"kind":"agg","name":"max","args":[{"kind":"col","name":"price"}]},
                {"kind":"agg","name":"count","args":[{"kind":"col","name":"*"}]}],
        "input":INPUT}"#;
    const TIME: &str = r#"{"node":"with_column","name":"ts","expr":{"kind":"call",
        "name":"timestamp_millis","args":[{"kind":"col","name":"event_time"}]},"input":INPUT}"#;

    #[test]
    fn an_aggregation_keeps_only_the_fields_it_reads() {
        assert_eq!(
            parsed_fields(&[TIME, CANDLES]),
            ["symbol", "price", "event_time"]
        );
    }

    #[test]
    fn a_select_keeps_what_it_names_and_a_star_keeps_everything() {
        let select =
            |exprs: &str| format!(r#"{{"node":"project","exprs":[{exprs}],"input":INPUT}}"#);
        assert_eq!(
            parsed_fields(&[&select(r#"{"kind":"col","name":"Price"}"#)]),
            ["price"]
        );
        let all = ["symbol", "price", "volume", "event_time"];
        assert_eq!(
            parsed_fields(&[&select(r#"{"kind":"col","name":"*"}"#)]),
            all
        );
        assert_eq!(parsed_fields(&[]), all, "everything reaches the sink");
        assert_eq!(
            parsed_fields(&[&select(r#"{"kind":"sql","text":"price * 2"}"#)]),
            all,
            "SQL text could name any field"
        );
        assert_eq!(
            parsed_fields(&[
                &select(r#"{"kind":"col","name":"*"}"#),
                &select(r#"{"kind":"col","name":"volume"}"#)
            ]),
            ["volume"]
        );
    }

    #[test]
    fn a_struct_used_whole_or_deduplicated_on_every_column_stays_whole() {
        let all = ["symbol", "price", "volume", "event_time"];
        // select(from_json(..).alias("t")).select(to_json(col("t")))
        let mut whole = plan(&[]);
        whole[1] = Op::Project(vec![ExprNode::Call {
            name: "to_json".into(),
            args: vec![ExprNode::col("t")],
            options: Default::default(),
        }]);
        assert_eq!(fields_of(&whole), all);
        assert_eq!(
            parsed_fields(&[r#"{"node":"dedup","input":INPUT}"#, CANDLES]),
            all
        );
    }
}
