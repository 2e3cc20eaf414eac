//! Values held in aggregation state, and typed views of input columns that read them
//! without a per-row dynamic cast: integers, timestamps and dates read as `i64`, floats as
//! `f64`, anything else as a DataFusion `ScalarValue`.

use std::cmp::Ordering;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::ScalarValue;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// One value in an accumulator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// SQL null.
    Null,
    /// Any integer, timestamp (micros) or date (days) value.
    Int(i64),
    /// A float or double.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// Anything else (strings, decimals, structs), in its text JSON form for snapshots. Boxed,
    /// so a `Value` is 16 bytes: the numeric ones are moved and compared per input row.
    Other(#[serde(with = "scalar_text")] Box<ScalarValue>),
}

impl Value {
    /// Whether this is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Spark's ordering of non-null values (NaN sorts above every other double).
    pub fn compare(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Float(a), Value::Float(b)) => a.total_cmp(b),
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Other(a), Value::Other(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Null, _) => Ordering::Less,
            (_, Value::Null) => Ordering::Greater,
            _ => Ordering::Equal,
        }
    }

    /// The value as a double, for sums and averages.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Other(s) => match s.cast_to(&DataType::Float64) {
                Ok(ScalarValue::Float64(v)) => v,
                _ => None,
            },
            _ => None,
        }
    }
}

/// How an input column is read.
pub enum InputColumn {
    /// Read as i64.
    Int(arrow::array::PrimitiveArray<Int64Type>),
    /// Read as f64.
    Float(arrow::array::PrimitiveArray<Float64Type>),
    /// Read as bool.
    Bool(arrow::array::BooleanArray),
    /// Read through `ScalarValue`.
    Other(ArrayRef),
}

impl InputColumn {
    /// Views a column; numeric and temporal columns are cast once per batch.
    pub fn new(array: &ArrayRef) -> Result<Self> {
        Ok(match storage_kind(array.data_type()) {
            Storage::Int => InputColumn::Int(cast(array, &DataType::Int64)?.as_primitive().clone()),
            Storage::Float => {
                InputColumn::Float(cast(array, &DataType::Float64)?.as_primitive().clone())
            }
            Storage::Bool => InputColumn::Bool(array.as_boolean().clone()),
            Storage::Other => InputColumn::Other(array.clone()),
        })
    }

    /// The value at `row`.
    pub fn value(&self, row: usize) -> Result<Value> {
        Ok(match self {
            InputColumn::Int(a) if a.is_valid(row) => Value::Int(a.value(row)),
            InputColumn::Float(a) if a.is_valid(row) => Value::Float(a.value(row)),
            InputColumn::Bool(a) if a.is_valid(row) => Value::Bool(a.value(row)),
            InputColumn::Other(a) if a.is_valid(row) => {
                Value::Other(Box::new(ScalarValue::try_from_array(a, row)?))
            }
            _ => Value::Null,
        })
    }

    /// Whether `row` is null.
    pub fn is_null(&self, row: usize) -> bool {
        match self {
            InputColumn::Int(a) => a.is_null(row),
            InputColumn::Float(a) => a.is_null(row),
            InputColumn::Bool(a) => a.is_null(row),
            InputColumn::Other(a) => a.is_null(row),
        }
    }
}

/// How values of a type are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// As i64.
    Int,
    /// As f64.
    Float,
    /// As bool.
    Bool,
    /// As `ScalarValue`.
    Other,
}

/// The storage used for values of `data_type`.
pub fn storage_kind(data_type: &DataType) -> Storage {
    match data_type {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::Timestamp(_, _)
        | DataType::Date32 => Storage::Int,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => Storage::Float,
        DataType::Boolean => Storage::Bool,
        _ => Storage::Other,
    }
}

/// Builds an array of `data_type` from values.
pub fn values_to_array(values: &[Value], data_type: &DataType) -> Result<ArrayRef> {
    let array: ArrayRef = match storage_kind(data_type) {
        Storage::Int => {
            let ints: arrow::array::Int64Array = values
                .iter()
                .map(|v| match v {
                    Value::Int(i) => Some(*i),
                    _ => None,
                })
                .collect();
            cast(&ints, data_type)?
        }
        Storage::Float => {
            let floats: arrow::array::Float64Array = values.iter().map(Value::as_f64).collect();
            cast(&floats, data_type)?
        }
        Storage::Bool => {
            let bools: arrow::array::BooleanArray = values
                .iter()
                .map(|v| match v {
                    Value::Bool(b) => Some(*b),
                    _ => None,
                })
                .collect();
            std::sync::Arc::new(bools)
        }
        Storage::Other => {
            let null = ScalarValue::try_from(data_type)?;
            let scalars = values.iter().map(|v| match v {
                Value::Other(s) => s.as_ref().clone(),
                _ => null.clone(),
            });
            if values.is_empty() {
                arrow::array::new_empty_array(data_type)
            } else {
                ScalarValue::iter_to_array(scalars)?
            }
        }
    };
    Ok(array)
}

/// Snapshots keep `ScalarValue`s as a one-row Arrow IPC-free text: their type and display.
mod scalar_text {
    use datafusion::common::ScalarValue;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Text {
        data_type: String,
        value: Option<String>,
    }

    pub fn serialize<S: Serializer>(value: &ScalarValue, serializer: S) -> Result<S::Ok, S::Error> {
        let text = Text {
            data_type: value.data_type().to_string(),
            value: (!value.is_null()).then(|| value.to_string()),
        };
        text.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Box<ScalarValue>, D::Error> {
        let text = Text::deserialize(deserializer)?;
        let data_type: arrow::datatypes::DataType = text
            .data_type
            .parse()
            .map_err(|e| serde::de::Error::custom(format!("bad type in snapshot: {e}")))?;
        match text.value {
            None => ScalarValue::try_from(&data_type),
            Some(value) => ScalarValue::try_from_string(value, &data_type),
        }
        .map(Box::new)
        .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn integers_read_as_i64_and_round_trip() {
        let array: ArrayRef = Arc::new(Int32Array::from(vec![Some(3), None]));
        let column = InputColumn::new(&array).expect("castable");
        assert_eq!(column.value(0).expect("ok"), Value::Int(3));
        assert_eq!(column.value(1).expect("ok"), Value::Null);
        let back = values_to_array(&[Value::Int(3), Value::Null], &DataType::Int32).expect("ok");
        assert_eq!(back.as_ref(), &array as &dyn Array);
    }

    #[test]
    fn a_value_is_two_words() {
        assert_eq!(std::mem::size_of::<Value>(), 16);
    }

    #[test]
    fn strings_read_as_scalars() {
        let array: ArrayRef = Arc::new(StringArray::from(vec!["b", "a"]));
        let column = InputColumn::new(&array).expect("ok");
        let (b, a) = (column.value(0).expect("ok"), column.value(1).expect("ok"));
        assert_eq!(b.compare(&a), Ordering::Greater);
        let json = serde_json::to_string(&b).expect("serialisable");
        let back: Value = serde_json::from_str(&json).expect("deserialisable");
        assert_eq!(back, b);
    }
}
