//! `from_json(value, schema)`: JSON text to a struct, with Spark's PERMISSIVE and FAILFAST modes.
//!
//! PERMISSIVE (the default) never fails a query: a malformed, truncated or wrongly typed
//! message becomes a struct whose fields are all null (Spark 3's result for a record it
//! cannot parse) and is counted in the query's progress. A null input stays null.
//! FAILFAST stops the query with an error that quotes the record.
//!
//! Speed: the whole column is decoded at once by arrow-json; only when that fails do we
//! find the bad rows, so a clean stream pays nothing for the tolerance.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, AsArray, StructArray};
use arrow::compute::{cast, concat};
use arrow::datatypes::{DataType, Field, Fields, Schema};
use arrow::json::ReaderBuilder;
use datafusion::common::{exec_err, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::ExprMetrics;
use crate::error::Result;
use crate::illegal;

/// The `from_json` scalar function bound to one schema.
#[derive(Debug)]
pub struct FromJson {
    fields: Fields,
    fail_fast: bool,
    metrics: Arc<ExprMetrics>,
    signature: Signature,
}

impl FromJson {
    /// A `from_json` that parses into `schema` (a struct type) in `mode`.
    pub fn new(schema: DataType, mode: &str, metrics: Arc<ExprMetrics>) -> Result<Self> {
        let DataType::Struct(fields) = schema else {
            return Err(illegal!(
                "from_json() needs a struct schema such as 'symbol STRING, price DOUBLE', got {schema}"
            ));
        };
        let fail_fast = match mode.to_ascii_uppercase().as_str() {
            "PERMISSIVE" => false,
            "FAILFAST" => true,
            other => {
                return Err(illegal!(
                    "from_json() option mode='{other}' is not supported; use PERMISSIVE or FAILFAST"
                ))
            }
        };
        Ok(FromJson {
            fields,
            fail_fast,
            metrics,
            signature: Signature::any(1, Volatility::Immutable),
        })
    }

    fn parse(&self, text: &dyn Array) -> DfResult<ArrayRef> {
        let text = cast(text, &DataType::Utf8)?;
        parse_rows(
            &self.fields,
            text.as_string::<i32>(),
            self.fail_fast,
            &self.metrics,
        )
    }
}

/// Parses JSON text rows into a struct array of `fields`; malformed rows become all-null
/// structs and are counted in `metrics`, or fail the call when `fail_fast`.
pub fn parse_rows(
    fields: &Fields,
    text: &arrow::array::StringArray,
    fail_fast: bool,
    metrics: &ExprMetrics,
) -> DfResult<ArrayRef> {
    if let Ok(parsed) = decode(fields, text.iter()) {
        return Ok(parsed);
    }
    // Slow path: find the rows arrow-json rejects, one at a time.
    let mut pieces: Vec<ArrayRef> = Vec::with_capacity(text.len());
    let mut malformed = 0u64;
    for (index, row) in text.iter().enumerate() {
        match decode(fields, std::iter::once(row)) {
            Ok(parsed) => pieces.push(parsed),
            Err(error) => {
                if fail_fast {
                    let record: String = row.unwrap_or("").chars().take(200).collect();
                    return exec_err!(
                        "from_json(mode=FAILFAST): malformed record at row {index}: '{record}': {error}"
                    );
                }
                malformed += 1;
                pieces.push(all_null_fields(fields));
            }
        }
    }
    metrics.add_malformed(malformed);
    let refs: Vec<&dyn Array> = pieces.iter().map(|a| a.as_ref()).collect();
    Ok(concat(&refs)?)
}

/// Decodes rows into one struct array; a null row stays a null struct.
fn decode<'a>(
    fields: &Fields,
    rows: impl Iterator<Item = Option<&'a str>>,
) -> Result<ArrayRef, arrow::error::ArrowError> {
    let schema = Arc::new(Schema::new(fields.clone()));
    let rows: Vec<Option<&str>> = rows.collect();
    let mut decoder = ReaderBuilder::new(schema)
        .with_batch_size(rows.len().max(1))
        .with_strict_mode(false)
        .with_coerce_primitive(true)
        .build_decoder()?;
    let mut nulls = Vec::with_capacity(rows.len());
    for row in &rows {
        match row {
            Some(text) if !text.trim().is_empty() => {
                validate_object(text)?;
                decoder.decode(text.as_bytes())?;
                nulls.push(true);
            }
            _ => {
                decoder.decode(b"{}")?;
                nulls.push(false);
            }
        }
    }
    let batch = match decoder.flush()? {
        Some(batch) => batch,
        None => return Ok(new_null_array(&DataType::Struct(fields.clone()), 0)),
    };
    if batch.num_rows() != rows.len() {
        return Err(arrow::error::ArrowError::JsonError(format!(
            "expected {} JSON objects, decoded {}",
            rows.len(),
            batch.num_rows()
        )));
    }
    let validity = nulls.iter().any(|v| !v).then(|| nulls.into());
    Ok(Arc::new(StructArray::try_new(
        fields.clone(),
        batch.columns().to_vec(),
        validity,
    )?))
}

/// Arrow-json accepts several concatenated values or a bare scalar per row; Spark wants one
/// object per record, so check that before decoding.
fn validate_object(text: &str) -> Result<(), arrow::error::ArrowError> {
    let trimmed = text.trim();
    if !(trimmed.starts_with('{') && trimmed.ends_with('}')) {
        return Err(arrow::error::ArrowError::JsonError(
            "a record must be one JSON object".into(),
        ));
    }
    serde_json::from_str::<serde::de::IgnoredAny>(trimmed)
        .map(|_| ())
        .map_err(|e| arrow::error::ArrowError::JsonError(e.to_string()))
}

fn all_null_fields(fields: &Fields) -> ArrayRef {
    let columns = fields
        .iter()
        .map(|f| new_null_array(f.data_type(), 1))
        .collect();
    let nullable: Fields = fields
        .iter()
        .map(|f| Arc::new(Field::new(f.name(), f.data_type().clone(), true)))
        .collect();
    Arc::new(StructArray::new(nullable, columns, None))
}

impl PartialEq for FromJson {
    fn eq(&self, other: &Self) -> bool {
        self.fields == other.fields
            && self.fail_fast == other.fail_fast
            && Arc::ptr_eq(&self.metrics, &other.metrics)
    }
}

impl Eq for FromJson {}

impl Hash for FromJson {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.fields.hash(state);
        self.fail_fast.hash(state);
    }
}

impl ScalarUDFImpl for FromJson {
    fn name(&self) -> &str {
        "from_json"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Struct(self.fields.clone()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [value] = args.args.as_slice() else {
            return exec_err!("from_json() takes one column");
        };
        let array = value.clone().into_array(args.number_rows)?;
        Ok(ColumnarValue::Array(self.parse(array.as_ref())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, StringArray};

    fn udf() -> (FromJson, Arc<ExprMetrics>) {
        let metrics = Arc::new(ExprMetrics::default());
        let schema = DataType::Struct(Fields::from(vec![
            Field::new("symbol", DataType::Utf8, true),
            Field::new("price", DataType::Float64, true),
        ]));
        (
            FromJson::new(schema, "PERMISSIVE", Arc::clone(&metrics)).expect("valid"),
            metrics,
        )
    }

    #[test]
    fn malformed_rows_become_null_fields_and_are_counted() {
        let (udf, metrics) = udf();
        let input = StringArray::from(vec![
            Some(r#"{"symbol":"BTCUSDT","price":84569.37}"#),
            Some(r#"{"symbol":"ETHUSDT","pri"#),
            None,
            Some("[1,2]"),
            Some(r#"{"symbol":"ETHUSDT","price":2757.03,"extra":1}"#),
        ]);
        let parsed = udf.parse(&input).expect("permissive never fails");
        let parsed = parsed.as_struct();
        assert_eq!(metrics.malformed_rows(), 2);
        assert!(
            parsed.is_valid(1),
            "a malformed record is a struct of nulls, as in Spark 3"
        );
        assert!(parsed.is_null(2), "a null message stays null");
        let price = parsed
            .column(1)
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("double");
        assert_eq!(price.value(0), 84569.37);
        assert!(price.is_null(1) && price.is_null(3));
        assert_eq!(price.value(4), 2757.03);
    }

    #[test]
    fn failfast_quotes_the_record() {
        let metrics = Arc::new(ExprMetrics::default());
        let schema = DataType::Struct(Fields::from(vec![Field::new("a", DataType::Int64, true)]));
        let udf = FromJson::new(schema, "FAILFAST", metrics).expect("valid");
        let input = StringArray::from(vec![r#"{"a":1}"#, r#"{"a":"#]);
        let error = udf.parse(&input).expect_err("failfast");
        assert!(error.to_string().contains(r#"{"a":"#));
    }
}
