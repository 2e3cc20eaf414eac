//! Folding a batch into its groups: rows are first sorted into the groups they update, then
//! each group takes its rows with one loop per aggregate.
//!
//! Row by row, every row paid a state lookup (a hash and a tree) and, for each aggregate, a
//! value read and a match on the accumulator. Sorted, a group is looked up once per batch and
//! the common aggregates (count, sum, avg, min, max, first, last over numbers) run as typed
//! loops. A group still sees its rows in arrival order, so sums add in the same order and the
//! results are the same to the bit; anything else goes through `Acc::update` row by row.

use arrow::array::{Array, Int64Array};
use rustc_hash::FxHashMap;

use super::accumulator::{Acc, AggKind, RowOrder};
use super::aggregate::{AggInputs, AggSlot};
use super::value::{InputColumn, Value};
use crate::error::Result;

/// A window's (start, end), or (0, 0) without a window.
pub(super) type Bounds = (i64, i64);

/// The rows of a batch, sorted into the groups they update: (key number, window).
#[derive(Default)]
pub(super) struct GroupSorter {
    /// Per key number, the window of its last row and that group: a key's rows mostly fall
    /// in the window of the row before them, which then needs no lookup.
    last: Vec<Option<(Bounds, usize)>>,
    index: FxHashMap<(u32, Bounds), usize>,
    /// Each group in order of first appearance, with its rows in row order.
    groups: Vec<(u32, Bounds, Vec<u32>)>,
}

impl GroupSorter {
    /// Row `row` updates the group of key number `key` in `bounds`.
    pub(super) fn add(&mut self, key: u32, bounds: Bounds, row: usize) {
        let slot = key as usize;
        if slot >= self.last.len() {
            self.last.resize(slot + 1, None);
        }
        let group = match self.last[slot] {
            Some((last, group)) if last == bounds => group,
            _ => {
                let groups = &mut self.groups;
                let group = *self.index.entry((key, bounds)).or_insert_with(|| {
                    groups.push((key, bounds, Vec::new()));
                    groups.len() - 1
                });
                self.last[slot] = Some((bounds, group));
                group
            }
        };
        // Batches are far below u32::MAX rows (a chunk is at most 32,768 messages).
        self.groups[group].2.push(row as u32);
    }

    /// Each group with its rows in row order.
    pub(super) fn groups(self) -> impl Iterator<Item = (u32, Bounds, Vec<u32>)> {
        self.groups.into_iter()
    }
}

/// Where a row of the batch sits in event time and arrival order.
pub(super) struct Orders<'a> {
    /// Event times (microseconds); a null or absent one is 0.
    pub event_times: Option<&'a Int64Array>,
    /// The arrival of the batch's first row.
    pub first_arrival: u128,
}

impl Orders<'_> {
    fn of(&self, row: u32) -> RowOrder {
        let row = row as usize;
        RowOrder {
            event_time: self
                .event_times
                .filter(|times| times.is_valid(row))
                .map_or(0, |times| times.value(row)),
            arrival: self.first_arrival + row as u128,
        }
    }
}

/// Adds `rows` (in row order) to a group's accumulators.
pub(super) fn fold_rows(
    accs: &mut [Acc],
    aggs: &[AggSlot],
    inputs: &[AggInputs],
    rows: &[u32],
    orders: &Orders,
) -> Result<()> {
    for ((acc, agg), (arg, second)) in accs.iter_mut().zip(aggs).zip(inputs) {
        if second.is_none() && fold_typed(acc, &agg.kind, arg.as_ref(), rows, orders)? {
            continue;
        }
        for &row in rows {
            let value = read(arg.as_ref(), row)?;
            let second = read(second.as_ref(), row)?;
            acc.update(&agg.kind, value, second, orders.of(row));
        }
    }
    Ok(())
}

fn read(column: Option<&InputColumn>, row: u32) -> Result<Value> {
    column.map_or(Ok(Value::Null), |column| column.value(row as usize))
}

/// Folds the rows with a loop made for the accumulator and input type; false when there is
/// none, and the caller goes row by row.
fn fold_typed(
    acc: &mut Acc,
    kind: &AggKind,
    arg: Option<&InputColumn>,
    rows: &[u32],
    orders: &Orders,
) -> Result<bool> {
    let valid = |column: &InputColumn, row: &u32| !column.is_null(*row as usize);
    match (&mut *acc, kind, arg) {
        (Acc::Count(count), AggKind::CountRows, _) => *count += rows.len() as i64,
        (Acc::Count(count), AggKind::Count, Some(column)) => {
            *count += rows.iter().filter(|row| valid(column, row)).count() as i64
        }
        (Acc::SumInt(sum), _, Some(InputColumn::Int(values))) => {
            for value in present(values, rows) {
                *sum = Some(sum.unwrap_or(0).wrapping_add(value));
            }
        }
        (Acc::SumFloat(sum), _, Some(column)) => {
            return Ok(each_float(column, rows, |value| {
                *sum = Some(sum.unwrap_or(0.0) + value)
            }))
        }
        (Acc::Mean { n, sum }, _, Some(column)) => {
            return Ok(each_float(column, rows, |value| {
                *n += 1;
                *sum += value;
            }))
        }
        (Acc::Extreme(_), AggKind::Min | AggKind::Max, Some(column)) => {
            let min = *kind == AggKind::Min;
            // The extreme of these rows (the first of equals), then one comparison with the
            // one held, as row by row.
            let best = match column {
                InputColumn::Float(values) => present(values, rows)
                    .reduce(|best, v| {
                        let order = v.total_cmp(&best);
                        let better = if min { order.is_lt() } else { order.is_gt() };
                        if better {
                            v
                        } else {
                            best
                        }
                    })
                    .map(Value::Float),
                InputColumn::Int(values) => present(values, rows)
                    .reduce(|best, v| {
                        let better = if min { v < best } else { v > best };
                        if better {
                            v
                        } else {
                            best
                        }
                    })
                    .map(Value::Int),
                _ => return Ok(false),
            };
            if let Some(best) = best {
                acc.update(kind, best, Value::Null, orders.of(0));
            }
        }
        (
            Acc::Pick(_),
            AggKind::First { ignore_nulls } | AggKind::Last { ignore_nulls },
            Some(column),
        ) => {
            let first = matches!(kind, AggKind::First { .. });
            // The row first (last) keeps: the smallest (largest) order among these rows.
            let mut chosen: Option<(RowOrder, u32)> = None;
            for &row in rows {
                if *ignore_nulls && !valid(column, &row) {
                    continue;
                }
                let order = orders.of(row);
                let better =
                    chosen.is_none_or(|(held, _)| if first { order < held } else { order > held });
                if better {
                    chosen = Some((order, row));
                }
            }
            if let Some((order, row)) = chosen {
                acc.update(kind, column.value(row as usize)?, Value::Null, order);
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The non-null values of `rows`, in order.
fn present<'a, T: arrow::datatypes::ArrowPrimitiveType>(
    values: &'a arrow::array::PrimitiveArray<T>,
    rows: &'a [u32],
) -> impl Iterator<Item = T::Native> + 'a {
    rows.iter()
        .map(|&row| row as usize)
        .filter(|&row| values.is_valid(row))
        .map(|row| values.value(row))
}

/// Calls `fold` with the non-null values of `rows` as doubles (as `Value::as_f64` reads
/// them), in order; false for a column that is not numeric.
fn each_float(column: &InputColumn, rows: &[u32], mut fold: impl FnMut(f64)) -> bool {
    match column {
        InputColumn::Float(values) => present(values, rows).for_each(fold),
        InputColumn::Int(values) => present(values, rows).for_each(|v| fold(v as f64)),
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array};
    use arrow::datatypes::DataType;
    use proptest::prelude::*;

    use super::*;

    fn kinds() -> Vec<AggKind> {
        vec![
            AggKind::First {
                ignore_nulls: false,
            },
            AggKind::First { ignore_nulls: true },
            AggKind::Last {
                ignore_nulls: false,
            },
            AggKind::Last { ignore_nulls: true },
            AggKind::Min,
            AggKind::Max,
            AggKind::SumInt,
            AggKind::SumFloat,
            AggKind::Count,
            AggKind::CountRows,
            AggKind::Avg,
            AggKind::Stddev,
        ]
    }

    fn float() -> impl Strategy<Value = Option<f64>> {
        prop_oneof![
            Just(None),
            Just(Some(f64::NAN)),
            Just(Some(-0.0)),
            Just(Some(0.0)),
            Just(Some(f64::INFINITY)),
            (-5i32..5).prop_map(|n| Some(f64::from(n) / 4.0)),
            // Decimals, whose sums depend on the order they are added in.
            (0u32..1_000_000).prop_map(|n| Some(f64::from(n) / 1000.0 + 0.1)),
            (0u32..1_000_000).prop_map(|n| Some(f64::from(n) / 1000.0 + 0.1)),
            any::<f64>().prop_map(Some),
        ]
    }

    proptest! {
        /// Folded by group, every accumulator ends as it does row by row.
        #[test]
        fn a_group_folds_as_its_rows_one_by_one(
            values in prop::collection::vec((float(), prop::option::of(-3i64..3), -2i64..3), 1..40),
            held in 0..4usize,
            take in prop::collection::vec(any::<bool>(), 40),
        ) {
            let floats: ArrayRef = Arc::new(Float64Array::from(values.iter().map(|v| v.0).collect::<Vec<_>>()));
            let ints: ArrayRef = Arc::new(Int64Array::from(values.iter().map(|v| v.1).collect::<Vec<_>>()));
            let times = Int64Array::from(values.iter().map(|v| Some(v.2)).collect::<Vec<_>>());
            let orders = Orders { event_times: Some(&times), first_arrival: 7 << 64 };
            // Some rows of the batch, in row order, after a few rows of an earlier batch.
            let rows: Vec<u32> = (0..values.len() as u32).filter(|&r| take[r as usize]).collect();
            let earlier = Orders { event_times: Some(&times), first_arrival: 3 << 64 };
            for column in [&floats, &ints] {
                for kind in kinds() {
                    if kind == AggKind::SumInt && column.data_type() != &DataType::Int64 {
                        continue;
                    }
                    let agg = AggSlot {
                        kind: kind.clone(),
                        name: "a".into(),
                        data_type: column.data_type().clone(),
                        arg: Some(0),
                        second: None,
                    };
                    let inputs = [(Some(InputColumn::new(column).expect("view")), None)];
                    let start = (0..held.min(values.len()) as u32).collect::<Vec<_>>();
                    let mut folded = vec![kind.new_accumulator()];
                    fold_rows(&mut folded, std::slice::from_ref(&agg), &inputs, &start, &earlier).expect("fold");
                    let mut one_by_one = folded.clone();
                    fold_rows(&mut folded, std::slice::from_ref(&agg), &inputs, &rows, &orders).expect("fold");
                    for &row in &rows {
                        let value = inputs[0].0.as_ref().map_or(Ok(Value::Null), |c| c.value(row as usize)).expect("value");
                        one_by_one[0].update(&kind, value, Value::Null, orders.of(row));
                    }
                    prop_assert_eq!(format!("{folded:?}"), format!("{one_by_one:?}"), "{:?} over {}", kind, column.data_type());
                }
            }
        }
    }
}
