//! Spark data types in their JSON form (what PySpark's `jsonValue()` gives) to Arrow and back.
//!
//! Spark's TimestampType is microseconds in the session time zone; we keep
//! `Timestamp(Microsecond, "UTC")` so values are instants and print as UTC.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};
use serde_json::{json, Value};

use crate::error::Result;
use crate::{analysis, illegal};

/// The Arrow type of Spark's TimestampType.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Converts a Spark JSON data type to Arrow.
pub fn arrow_type(spark: &Value) -> Result<DataType> {
    match spark {
        Value::String(name) => simple_type(name),
        Value::Object(map) => match map.get("type").and_then(Value::as_str) {
            Some("struct") => Ok(DataType::Struct(struct_fields(spark)?)),
            Some("array") => {
                let element = map
                    .get("elementType")
                    .ok_or_else(|| illegal!("array type without elementType: {spark}"))?;
                let nullable = map
                    .get("containsNull")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                Ok(DataType::List(Arc::new(Field::new(
                    "element",
                    arrow_type(element)?,
                    nullable,
                ))))
            }
            Some("map") => {
                let key = arrow_type(map.get("keyType").unwrap_or(&Value::Null))?;
                let value = arrow_type(map.get("valueType").unwrap_or(&Value::Null))?;
                let entries = Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", key, false),
                        Field::new("value", value, true),
                    ])),
                    false,
                );
                Ok(DataType::Map(Arc::new(entries), false))
            }
            _ => Err(illegal!("unsupported data type: {spark}")),
        },
        _ => Err(illegal!("unsupported data type: {spark}")),
    }
}

fn simple_type(name: &str) -> Result<DataType> {
    let lower = name.trim().to_ascii_lowercase();
    Ok(match lower.as_str() {
        "string" | "varchar" | "char" => DataType::Utf8,
        "double" => DataType::Float64,
        "float" | "real" => DataType::Float32,
        "long" | "bigint" => DataType::Int64,
        "integer" | "int" => DataType::Int32,
        "short" | "smallint" => DataType::Int16,
        "byte" | "tinyint" => DataType::Int8,
        "boolean" => DataType::Boolean,
        "binary" => DataType::Binary,
        "timestamp" | "timestamp_ltz" => timestamp_type(),
        "timestamp_ntz" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "date" => DataType::Date32,
        "null" | "void" => DataType::Null,
        "decimal" => DataType::Decimal128(10, 0),
        _ if lower.starts_with("decimal(") && lower.ends_with(')') => {
            let inner = &lower["decimal(".len()..lower.len() - 1];
            let mut parts = inner.split(',').map(|p| p.trim().parse::<u8>());
            match (parts.next(), parts.next()) {
                (Some(Ok(p)), Some(Ok(s))) => DataType::Decimal128(p, s as i8),
                (Some(Ok(p)), None) => DataType::Decimal128(p, 0),
                _ => return Err(illegal!("malformed decimal type '{name}'")),
            }
        }
        _ => return Err(illegal!("unsupported data type '{name}'")),
    })
}

/// The fields of a Spark JSON struct type.
pub fn struct_fields(spark: &Value) -> Result<Fields> {
    let fields = spark
        .get("fields")
        .and_then(Value::as_array)
        .ok_or_else(|| illegal!("expected a struct type with fields, got {spark}"))?;
    fields
        .iter()
        .map(|field| {
            let name = field
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| illegal!("struct field without a name: {field}"))?;
            let data_type = arrow_type(field.get("type").unwrap_or(&Value::Null))?;
            let nullable = field
                .get("nullable")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            Ok(Field::new(name, data_type, nullable))
        })
        .collect::<Result<Vec<_>>>()
        .map(Fields::from)
}

/// Converts a Spark JSON struct type to an Arrow schema.
pub fn arrow_schema(spark: &Value) -> Result<Schema> {
    Ok(Schema::new(struct_fields(spark)?))
}

/// Converts an Arrow type to Spark's JSON form.
pub fn spark_type(data_type: &DataType) -> Result<Value> {
    Ok(match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => json!("string"),
        DataType::Float64 => json!("double"),
        DataType::Float32 | DataType::Float16 => json!("float"),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => json!("long"),
        DataType::Int32 | DataType::UInt16 => json!("integer"),
        DataType::Int16 | DataType::UInt8 => json!("short"),
        DataType::Int8 => json!("byte"),
        DataType::Boolean => json!("boolean"),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => json!("binary"),
        DataType::Timestamp(_, Some(_)) => json!("timestamp"),
        DataType::Timestamp(_, None) => json!("timestamp_ntz"),
        DataType::Date32 | DataType::Date64 => json!("date"),
        DataType::Null => json!("void"),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
            json!(format!("decimal({p},{s})"))
        }
        DataType::Dictionary(_, value) => spark_type(value)?,
        DataType::List(field) | DataType::LargeList(field) | DataType::ListView(field) => json!({
            "type": "array",
            "elementType": spark_type(field.data_type())?,
            "containsNull": field.is_nullable(),
        }),
        DataType::Struct(fields) => spark_struct(fields)?,
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => json!({
                "type": "map",
                "keyType": spark_type(kv[0].data_type())?,
                "valueType": spark_type(kv[1].data_type())?,
                "valueContainsNull": kv[1].is_nullable(),
            }),
            other => return Err(analysis!("unsupported map entries type {other}")),
        },
        other => return Err(analysis!("the Arrow type {other} has no Spark equivalent")),
    })
}

/// Converts Arrow fields to a Spark JSON struct type.
pub fn spark_struct(fields: &Fields) -> Result<Value> {
    let fields = fields
        .iter()
        .map(|field| {
            Ok(json!({
                "name": field.name(),
                "type": spark_type(field.data_type())?,
                "nullable": field.is_nullable(),
                "metadata": {},
            }))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(json!({"type": "struct", "fields": fields}))
}

/// Spark's short name of a type, as `printSchema` and `dtypes` show it.
pub fn simple_string(data_type: &DataType) -> String {
    match data_type {
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint".into(),
        DataType::Int32 | DataType::UInt16 => "int".into(),
        DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::List(field) | DataType::LargeList(field) => {
            format!("array<{}>", simple_string(field.data_type()))
        }
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| format!("{}:{}", f.name(), simple_string(f.data_type())))
                .collect();
            format!("struct<{}>", inner.join(","))
        }
        other => match spark_type(other) {
            Ok(Value::String(name)) => name,
            _ => other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_round_trips_through_arrow() {
        let spark = json!({"type": "struct", "fields": [
            {"name": "symbol", "type": "string", "nullable": true, "metadata": {}},
            {"name": "price", "type": "double", "nullable": true, "metadata": {}},
            {"name": "tags", "type": {"type": "array", "elementType": "string", "containsNull": true}, "nullable": true, "metadata": {}},
            {"name": "at", "type": "timestamp", "nullable": false, "metadata": {}},
        ]});
        let schema = arrow_schema(&spark).expect("valid schema");
        assert_eq!(schema.field(1).data_type(), &DataType::Float64);
        assert_eq!(schema.field(3).data_type(), &timestamp_type());
        assert!(!schema.field(3).is_nullable());
        assert_eq!(spark_struct(schema.fields()).expect("convertible"), spark);
    }

    #[test]
    fn unknown_type_names_the_type() {
        let error = arrow_type(&json!("money")).expect_err("not a Spark type");
        assert!(error.to_string().contains("'money'"));
    }

    #[test]
    fn simple_strings_follow_spark() {
        assert_eq!(simple_string(&DataType::Int64), "bigint");
        assert_eq!(simple_string(&timestamp_type()), "timestamp");
        let list = DataType::List(Arc::new(Field::new("element", DataType::Int32, true)));
        assert_eq!(simple_string(&list), "array<int>");
    }
}
