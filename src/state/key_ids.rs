//! Each row's grouping key as a small number, and each number's key in the row format.
//!
//! State is keyed by the key columns in arrow's row format. Converted for every row and then
//! hashed for every row together with its window, the seed's one string key (the symbol) was
//! ~10 % of the pipeline's CPU over its three queries. A single string key is numbered by its
//! bytes, without converting, and only its distinct values are converted; other keys are
//! converted whole and numbered by their row bytes. The aggregation then sorts rows by
//! (number, window), and looks a key's bytes up once per group.

use arrow::array::{Array, ArrayRef, AsArray, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::DataType;
use arrow::row::{RowConverter, Rows};
use rustc_hash::FxHashMap;

use crate::error::Result;

/// The rows of a batch numbered by their grouping key.
pub(super) struct KeyIds {
    /// Per row, its key's number (numbers run from 0 in order of first appearance).
    ids: Vec<u32>,
    /// The keys in the row format.
    keys: Rows,
    /// Per number, its row in `keys`.
    at: Vec<u32>,
}

impl KeyIds {
    /// Numbers the rows of `columns` (the key columns `converter` was made for).
    pub(super) fn of(converter: &RowConverter, columns: &[ArrayRef]) -> Result<KeyIds> {
        if let [column] = columns {
            if column.data_type() == &DataType::Utf8 {
                let strings = column.as_string::<i32>();
                let (ids, firsts) = number(
                    (0..strings.len()).map(|row| strings.is_valid(row).then(|| strings.value(row))),
                );
                let distinct = take(column.as_ref(), &UInt32Array::from(firsts), None)?;
                let keys = converter.convert_columns(&[distinct])?;
                let at = (0..keys.num_rows() as u32).collect();
                return Ok(KeyIds { ids, keys, at });
            }
        }
        let keys = converter.convert_columns(columns)?;
        let (ids, at) = number(keys.iter().map(|row| Some(row.data())));
        Ok(KeyIds { ids, keys, at })
    }

    /// The number of row `row`'s key.
    pub(super) fn id(&self, row: usize) -> u32 {
        self.ids[row]
    }

    /// The key numbered `id`, in the row format.
    pub(super) fn key(&self, id: u32) -> &[u8] {
        self.keys.row(self.at[id as usize] as usize).data()
    }
}

/// Numbers values in order of first appearance (a null is a value of its own): each value's
/// number, and the position where each number first appeared.
fn number<'a, T: AsRef<[u8]> + ?Sized + 'a>(
    values: impl Iterator<Item = Option<&'a T>>,
) -> (Vec<u32>, Vec<u32>) {
    let mut index: FxHashMap<&[u8], u32> = FxHashMap::default();
    let mut null = None;
    let mut ids = Vec::with_capacity(values.size_hint().0);
    let mut firsts = Vec::new();
    for (position, value) in values.enumerate() {
        let next = firsts.len() as u32;
        let id = match value {
            Some(value) => *index.entry(value.as_ref()).or_insert(next),
            None => *null.get_or_insert(next),
        };
        if id == next {
            // Batches are far below u32::MAX rows (a chunk is at most 32,768 messages).
            firsts.push(position as u32);
        }
        ids.push(id);
    }
    (ids, firsts)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::row::SortField;

    use super::*;

    fn converter(columns: &[ArrayRef]) -> RowConverter {
        RowConverter::new(
            columns
                .iter()
                .map(|c| SortField::new(c.data_type().clone()))
                .collect(),
        )
        .expect("converter")
    }

    /// Rows of equal keys share a number, and each number's key is that of its rows, as the
    /// whole conversion gives it.
    fn check(columns: Vec<ArrayRef>, expected_ids: &[u32]) {
        let converter = converter(&columns);
        let numbered = KeyIds::of(&converter, &columns).expect("numbered");
        let whole = converter.convert_columns(&columns).expect("rows");
        let ids: Vec<u32> = (0..whole.num_rows()).map(|row| numbered.id(row)).collect();
        assert_eq!(ids, expected_ids);
        for row in 0..whole.num_rows() {
            assert_eq!(numbered.key(numbered.id(row)), whole.row(row).data());
        }
    }

    #[test]
    fn a_string_key_is_numbered_by_its_values_nulls_apart() {
        let symbols: ArrayRef = Arc::new(StringArray::from(vec![
            Some("BTCUSDT"),
            Some("ETHUSDT"),
            None,
            Some("BTCUSDT"),
            Some(""),
            None,
            Some("ETHUSDT"),
        ]));
        check(vec![symbols], &[0, 1, 2, 0, 3, 2, 1]);
    }

    #[test]
    fn several_keys_are_numbered_by_their_rows() {
        let symbols: ArrayRef = Arc::new(StringArray::from(vec!["a", "a", "b", "a"]));
        let n: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), Some(2), Some(1), Some(1)]));
        check(vec![symbols, n], &[0, 1, 2, 0]);
        let n: ArrayRef = Arc::new(Int64Array::from(vec![None, Some(2), None, Some(2)]));
        check(vec![n], &[0, 1, 0, 1]);
    }
}
