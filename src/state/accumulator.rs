//! Aggregate accumulators: Spark's first, last, min, max, sum, count, avg, stddev, max_by,
//! min_by and count(DISTINCT).
//!
//! Unlike Spark, `first` and `last` follow event time: `first` keeps the value of the row with
//! the smallest event time, `last` of the largest, ties broken by arrival order (batch id,
//! then row). So OHLC open and close never depend on how partitions interleave, where batch
//! boundaries fall, or whether the query restarted. Every accumulator can merge with another
//! of its kind, which session windows need when a late event bridges two sessions.

use std::collections::BTreeSet;

use arrow::datatypes::DataType;
use serde::{Deserialize, Serialize};

use super::value::Value;
use crate::analysis;
use crate::error::Result;

/// Which function an accumulator computes, resolved when the query starts.
#[derive(Debug, Clone, PartialEq)]
pub enum AggKind {
    /// `first(col, ignorenulls)`.
    First {
        /// Skip nulls.
        ignore_nulls: bool,
    },
    /// `last(col, ignorenulls)`.
    Last {
        /// Skip nulls.
        ignore_nulls: bool,
    },
    /// `min(col)`.
    Min,
    /// `max(col)`.
    Max,
    /// `sum(col)` over integers (result long).
    SumInt,
    /// `sum(col)` over floats or decimals (result double).
    SumFloat,
    /// `count(col)`: non-null values.
    Count,
    /// `count(*)`: rows.
    CountRows,
    /// `avg(col)` / `mean(col)`.
    Avg,
    /// `stddev(col)`: the sample standard deviation.
    Stddev,
    /// `max_by(value, ordering)`.
    MaxBy,
    /// `min_by(value, ordering)`.
    MinBy,
    /// `count(DISTINCT col)`.
    CountDistinct,
}

impl AggKind {
    /// Resolves a Spark function name against its argument types; returns the kind and the
    /// result type.
    pub fn resolve(
        name: &str,
        arg_types: &[DataType],
        ignore_nulls: bool,
        counts_rows: bool,
    ) -> Result<(AggKind, DataType)> {
        let arity = |n: usize| -> Result<()> {
            if arg_types.len() == n {
                Ok(())
            } else {
                Err(analysis!(
                    "{name}() takes {n} argument(s), got {}",
                    arg_types.len()
                ))
            }
        };
        let numeric = |t: &DataType| -> Result<()> {
            if t.is_numeric() || matches!(t, DataType::Null) {
                Ok(())
            } else {
                Err(analysis!("{name}() needs a numeric column, got {t}"))
            }
        };
        Ok(match name {
            "first" | "first_value" => {
                arity(1)?;
                (AggKind::First { ignore_nulls }, arg_types[0].clone())
            }
            "last" | "last_value" => {
                arity(1)?;
                (AggKind::Last { ignore_nulls }, arg_types[0].clone())
            }
            "min" => {
                arity(1)?;
                (AggKind::Min, arg_types[0].clone())
            }
            "max" => {
                arity(1)?;
                (AggKind::Max, arg_types[0].clone())
            }
            "sum" => {
                arity(1)?;
                numeric(&arg_types[0])?;
                if arg_types[0].is_integer() {
                    (AggKind::SumInt, DataType::Int64)
                } else {
                    (AggKind::SumFloat, DataType::Float64)
                }
            }
            "count" if counts_rows => (AggKind::CountRows, DataType::Int64),
            "count" => {
                if arg_types.is_empty() {
                    return Err(analysis!("count() needs a column or \"*\""));
                }
                (AggKind::Count, DataType::Int64)
            }
            "count_distinct" => {
                arity(1)?;
                (AggKind::CountDistinct, DataType::Int64)
            }
            "avg" | "mean" => {
                arity(1)?;
                numeric(&arg_types[0])?;
                (AggKind::Avg, DataType::Float64)
            }
            "stddev" | "stddev_samp" | "std" => {
                arity(1)?;
                numeric(&arg_types[0])?;
                (AggKind::Stddev, DataType::Float64)
            }
            "max_by" | "min_by" => {
                arity(2)?;
                let kind = if name == "max_by" {
                    AggKind::MaxBy
                } else {
                    AggKind::MinBy
                };
                (kind, arg_types[0].clone())
            }
            other => {
                return Err(analysis!(
                    "the aggregate function {other}() is not supported"
                ))
            }
        })
    }

    /// A fresh accumulator.
    pub fn new_accumulator(&self) -> Acc {
        match self {
            AggKind::First { .. } | AggKind::Last { .. } => Acc::Pick(None),
            AggKind::Min | AggKind::Max => Acc::Extreme(Value::Null),
            AggKind::SumInt => Acc::SumInt(None),
            AggKind::SumFloat => Acc::SumFloat(None),
            AggKind::Count | AggKind::CountRows => Acc::Count(0),
            AggKind::Avg => Acc::Mean { n: 0, sum: 0.0 },
            AggKind::Stddev => Acc::Moments {
                n: 0,
                mean: 0.0,
                m2: 0.0,
            },
            AggKind::MaxBy | AggKind::MinBy => Acc::By(None),
            AggKind::CountDistinct => Acc::Distinct(BTreeSet::new()),
        }
    }
}

/// Where a row sits in event time and arrival order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RowOrder {
    /// Event time in microseconds (0 when the query has no event time).
    pub event_time: i64,
    /// Arrival order: the batch id in the high 64 bits, then the chunk's place in the batch
    /// (32 bits), then the row's place in the chunk (see `arrival`). Snapshots written with
    /// the older 64-bit form (batch id << 32 | row) still order before any later batch.
    #[serde(with = "arrival_json")]
    pub arrival: u128,
}

/// JSON numbers stop at 64 bits: an arrival beyond is written as a decimal string.
mod arrival_json {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        match u64::try_from(*value) {
            Ok(small) => serializer.serialize_u64(small),
            Err(_) => serializer.serialize_str(&value.to_string()),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Number(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u128, D::Error> {
        match Form::deserialize(deserializer)? {
            Form::Number(n) => Ok(u128::from(n)),
            Form::Text(text) => text
                .parse()
                .map_err(|_| serde::de::Error::custom(format!("arrival '{text}' is not a number"))),
        }
    }
}

/// The arrival order of the first row of a chunk: rows of one batch keep the order of its
/// chunks (as the source planned them, not as they were processed) and of rows within one.
pub fn arrival(batch_id: u64, chunk: u32, row: u32) -> u128 {
    (u128::from(batch_id) << 64) | (u128::from(chunk) << 32) | u128::from(row)
}

/// The state of one aggregate for one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Acc {
    /// first / last: the chosen row's order and value.
    Pick(Option<(RowOrder, Value)>),
    /// min / max.
    Extreme(Value),
    /// An integer sum (null until a non-null value arrives).
    SumInt(Option<i64>),
    /// A double sum.
    SumFloat(Option<f64>),
    /// A count.
    Count(i64),
    /// Count and plain sum, for avg: Spark's `Average` divides the double sum by the count, so
    /// a running mean would differ from it in the last bits.
    Mean {
        /// Values seen.
        n: i64,
        /// Their sum.
        sum: f64,
    },
    /// Count, mean and squared deviations, for stddev (and avg in snapshots written before
    /// `Mean` existed), updated with the formulas of Spark's `CentralMomentAgg`, so results
    /// agree with Spark's to the bit.
    Moments {
        /// Values seen.
        n: i64,
        /// Their mean.
        mean: f64,
        /// Sum of squared deviations from the mean.
        m2: f64,
    },
    /// max_by / min_by: the ordering value and the value.
    By(Option<(Value, Value)>),
    /// Distinct values, by their display form.
    Distinct(BTreeSet<String>),
}

impl Acc {
    /// Adds one row: `value` is the first argument, `second` the ordering of max_by/min_by.
    pub fn update(&mut self, kind: &AggKind, value: Value, second: Value, order: RowOrder) {
        match (self, kind) {
            (
                Acc::Pick(current),
                AggKind::First { ignore_nulls } | AggKind::Last { ignore_nulls },
            ) => {
                if *ignore_nulls && value.is_null() {
                    return;
                }
                let replace = match current {
                    None => true,
                    Some((held, _)) => match kind {
                        AggKind::First { .. } => order < *held,
                        _ => order > *held,
                    },
                };
                if replace {
                    *current = Some((order, value));
                }
            }
            (Acc::Extreme(current), AggKind::Min | AggKind::Max) => {
                if value.is_null() {
                    return;
                }
                let better = current.is_null()
                    || match kind {
                        AggKind::Min => value.compare(current).is_lt(),
                        _ => value.compare(current).is_gt(),
                    };
                if better {
                    *current = value;
                }
            }
            (Acc::SumInt(sum), _) => {
                if let Value::Int(v) = value {
                    *sum = Some(sum.unwrap_or(0).wrapping_add(v));
                }
            }
            (Acc::SumFloat(sum), _) => {
                if let Some(v) = value.as_f64() {
                    *sum = Some(sum.unwrap_or(0.0) + v);
                }
            }
            (Acc::Count(count), AggKind::CountRows) => *count += 1,
            (Acc::Count(count), _) if !value.is_null() => *count += 1,
            (Acc::Mean { n, sum }, _) => {
                if let Some(v) = value.as_f64() {
                    *n += 1;
                    *sum += v;
                }
            }
            (Acc::Moments { n, mean, m2 }, _) => {
                if let Some(v) = value.as_f64() {
                    *n += 1;
                    let delta = v - *mean;
                    let delta_n = delta / *n as f64;
                    *mean += delta_n;
                    *m2 += delta * (delta - delta_n);
                }
            }
            (Acc::By(current), _) => {
                if second.is_null() {
                    return;
                }
                let better = match current {
                    None => true,
                    Some((held, _)) => match kind {
                        AggKind::MaxBy => second.compare(held).is_gt(),
                        _ => second.compare(held).is_lt(),
                    },
                };
                if better {
                    *current = Some((second, value));
                }
            }
            (Acc::Distinct(seen), _) if !value.is_null() => {
                seen.insert(format!("{value:?}"));
            }
            _ => {}
        }
    }

    /// Folds another accumulator of the same kind into this one.
    pub fn merge(&mut self, kind: &AggKind, other: Acc) {
        match (self, other) {
            (Acc::Pick(_), Acc::Pick(None)) => {}
            (this @ Acc::Pick(_), Acc::Pick(Some((order, value)))) => {
                this.update(kind, value, Value::Null, order)
            }
            (this @ Acc::Extreme(_), Acc::Extreme(value)) => this.update(
                kind,
                value,
                Value::Null,
                RowOrder {
                    event_time: 0,
                    arrival: 0,
                },
            ),
            (Acc::SumInt(a), Acc::SumInt(b)) => {
                *a = match (*a, b) {
                    (Some(x), Some(y)) => Some(x.wrapping_add(y)),
                    (x, y) => x.or(y),
                }
            }
            (Acc::SumFloat(a), Acc::SumFloat(b)) => {
                *a = match (*a, b) {
                    (Some(x), Some(y)) => Some(x + y),
                    (x, y) => x.or(y),
                }
            }
            (Acc::Count(a), Acc::Count(b)) => *a += b,
            (Acc::Mean { n, sum }, Acc::Mean { n: n2, sum: sum2 }) => {
                *n += n2;
                *sum += sum2;
            }
            (
                Acc::Moments { n, mean, m2 },
                Acc::Moments {
                    n: n2,
                    mean: mean2,
                    m2: m22,
                },
            ) => {
                if n2 == 0 {
                    return;
                }
                let total = *n + n2;
                let delta = mean2 - *mean;
                let delta_n = delta / total as f64;
                *m2 += m22 + delta * delta_n * (*n as f64) * (n2 as f64);
                *mean += delta_n * n2 as f64;
                *n = total;
            }
            (this @ Acc::By(_), Acc::By(Some((second, value)))) => this.update(
                kind,
                value,
                second,
                RowOrder {
                    event_time: 0,
                    arrival: 0,
                },
            ),
            (Acc::Distinct(a), Acc::Distinct(b)) => a.extend(b),
            _ => {}
        }
    }

    /// The aggregate's result.
    pub fn result(&self, kind: &AggKind) -> Value {
        match self {
            Acc::Pick(pick) => pick.as_ref().map_or(Value::Null, |(_, v)| v.clone()),
            Acc::Extreme(value) => value.clone(),
            Acc::SumInt(sum) => sum.map_or(Value::Null, Value::Int),
            Acc::SumFloat(sum) => sum.map_or(Value::Null, Value::Float),
            Acc::Count(count) => Value::Int(*count),
            Acc::Mean { n, sum } if *n > 0 => Value::Float(sum / *n as f64),
            Acc::Mean { .. } => Value::Null,
            Acc::Moments { n, mean, m2 } => match kind {
                AggKind::Avg if *n > 0 => Value::Float(*mean),
                AggKind::Stddev if *n > 1 => Value::Float((m2 / (*n - 1) as f64).sqrt()),
                // Spark 3.5 returns null for the sample stddev of one value.
                _ => Value::Null,
            },
            Acc::By(by) => by.as_ref().map_or(Value::Null, |(_, v)| v.clone()),
            Acc::Distinct(seen) => Value::Int(seen.len() as i64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(event_time: i64, arrival: u128) -> RowOrder {
        RowOrder {
            event_time,
            arrival,
        }
    }

    #[test]
    fn arrivals_round_trip_through_json_beyond_64_bits() {
        for value in [0u128, 7 << 32, arrival(3, 2, 1), u128::MAX] {
            let held = order(5, value);
            let json = serde_json::to_value(held).expect("serialises");
            let back: RowOrder = serde_json::from_value(json).expect("reads back");
            assert_eq!(back, held);
        }
        // The 64-bit form of earlier snapshots still reads, and orders before new batches.
        let old: RowOrder =
            serde_json::from_str(r#"{"event_time": 5, "arrival": 21474836487}"#).expect("old");
        assert!(old < order(5, arrival(1, 0, 0)));
    }

    #[test]
    fn first_and_last_follow_event_time_not_arrival() {
        let first = AggKind::First {
            ignore_nulls: false,
        };
        let last = AggKind::Last {
            ignore_nulls: false,
        };
        let (mut open, mut close) = (first.new_accumulator(), last.new_accumulator());
        for (ts, arrival, price) in [(20, 0, 2.0), (10, 1, 1.0), (30, 2, 3.0), (30, 3, 4.0)] {
            open.update(&first, Value::Float(price), Value::Null, order(ts, arrival));
            close.update(&last, Value::Float(price), Value::Null, order(ts, arrival));
        }
        assert_eq!(open.result(&first), Value::Float(1.0));
        assert_eq!(
            close.result(&last),
            Value::Float(4.0),
            "ties go to the later arrival"
        );
    }

    #[test]
    fn merged_moments_equal_one_pass() {
        let kind = AggKind::Stddev;
        let values = [1.0, 4.0, 9.0, 16.0, 25.0];
        let mut whole = kind.new_accumulator();
        let (mut left, mut right) = (kind.new_accumulator(), kind.new_accumulator());
        for (i, v) in values.iter().enumerate() {
            whole.update(&kind, Value::Float(*v), Value::Null, order(0, i as u128));
            let part = if i < 2 { &mut left } else { &mut right };
            part.update(&kind, Value::Float(*v), Value::Null, order(0, i as u128));
        }
        left.merge(&kind, right);
        let (Value::Float(a), Value::Float(b)) = (whole.result(&kind), left.result(&kind)) else {
            panic!("stddev of five values is a number");
        };
        assert!((a - b).abs() < 1e-9);
        assert!((a - 9.669539802906858).abs() < 1e-9);
    }

    #[test]
    fn sums_of_nothing_are_null_and_counts_zero() {
        let sum = AggKind::SumFloat;
        let mut acc = sum.new_accumulator();
        acc.update(&sum, Value::Null, Value::Null, order(0, 0));
        assert_eq!(acc.result(&sum), Value::Null);
        let count = AggKind::Count;
        let mut acc = count.new_accumulator();
        acc.update(&count, Value::Null, Value::Null, order(0, 0));
        assert_eq!(acc.result(&count), Value::Int(0));
    }

    #[test]
    fn unknown_function_is_named() {
        let error = AggKind::resolve("median", &[DataType::Float64], false, false)
            .expect_err("not supported");
        assert!(error.to_string().contains("median()"));
    }
}
