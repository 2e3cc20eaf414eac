//! `from_json(value, schema)`: JSON text to a struct, with Spark's PERMISSIVE and FAILFAST modes.
//!
//! PERMISSIVE (the default) never fails a query: a malformed, truncated or wrongly typed
//! message becomes a struct whose fields are all null (Spark 3's result for a record it
//! cannot parse) and is counted in the query's progress. A null or blank input stays null.
//! FAILFAST stops the query with an error that quotes the record. As in Spark, the schema's
//! fields are all nullable, so any record can become nulls.
//!
//! A record must be exactly one JSON object. The whole column goes through one arrow-json
//! decoder, a record at a time, and the decoder's state after each record says whether it
//! was one: one more buffered row, nothing left open, every byte consumed. So nothing is
//! parsed twice, and a truncated record never runs on into the next one. The decoder checks
//! UTF-8 too, so binary input (Kafka's `value`) is parsed without a cast. Only when a record
//! fails do we decode again around it; a wrongly typed value, which the decoder reports for
//! the whole column, is found by halving. A clean stream pays nothing for the tolerance.
//!
//! The decoder is lenient in three ways a strict parser is not, and such a record parses
//! rather than counting as malformed: missing or extra commas between members, number
//! tokens such as `01` or `1.2.3` in fields the schema leaves out (in its fields they fail
//! as numbers), and raw control characters inside strings.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{new_empty_array, new_null_array, Array, ArrayRef, AsArray, StructArray};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::compute::{cast, concat};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::json::reader::Decoder;
use arrow::json::ReaderBuilder;
use datafusion::common::{exec_err, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::bad_record::{BadRecord, Location};
use super::flat_json::FlatDecoder;
use super::ExprMetrics;
use crate::error::Result;
use crate::illegal;

/// The `from_json` scalar function bound to one schema.
#[derive(Debug)]
pub struct FromJson {
    parser: JsonParser,
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
            parser: JsonParser::new(&fields, fail_fast)?,
            metrics,
            signature: Signature::any(1, Volatility::Immutable),
        })
    }
}

/// Parses JSON records into structs of one schema (for `from_json` and the JSON file source).
#[derive(Debug, Clone)]
pub struct JsonParser {
    /// The schema with every field nullable.
    schema: SchemaRef,
    fail_fast: bool,
    /// The one-pass reader of flat records, when the schema's types allow it.
    flat: Option<FlatDecoder>,
}

impl JsonParser {
    /// A parser into `fields`; `fail_fast` makes a malformed record an error. Fails for a
    /// type JSON cannot be read into.
    pub fn new(fields: &Fields, fail_fast: bool) -> Result<Self> {
        let nullable: Fields = fields
            .iter()
            .map(|f| Arc::new(Field::clone(f).with_nullable(true)))
            .collect();
        let parser = JsonParser {
            flat: FlatDecoder::new(&nullable),
            schema: Arc::new(Schema::new(nullable)),
            fail_fast,
        };
        // Building a decoder checks every type once here, not per batch as a bad record.
        parser
            .decoder(1)
            .map_err(|e| illegal!("JSON cannot be read into the schema {}: {e}", parser.schema))?;
        Ok(parser)
    }

    fn decoder(&self, rows: usize) -> Result<Decoder, ArrowError> {
        ReaderBuilder::new(Arc::clone(&self.schema))
            .with_batch_size(rows.max(1))
            .with_strict_mode(false)
            .with_coerce_primitive(true)
            .build_decoder()
    }

    /// The same parser with arrow-json doing all the work (to check the fast path against).
    #[cfg(test)]
    pub(super) fn without_fast_path(mut self) -> Self {
        self.flat = None;
        self
    }

    /// The fields of the structs it makes (all nullable).
    pub fn fields(&self) -> &Fields {
        self.schema.fields()
    }

    /// Parses a column of JSON records, string or binary (other types are cast to strings),
    /// into a struct array; malformed records become all-null structs and are counted in
    /// `metrics`, or fail the call in FAILFAST mode.
    pub fn parse(&self, records: &dyn Array, metrics: &ExprMetrics) -> DfResult<ArrayRef> {
        let cast_text;
        let column = match records.data_type() {
            DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView => records,
            _ => {
                cast_text = cast(records, &DataType::Utf8)?;
                cast_text.as_ref()
            }
        };
        let records = byte_records(column)?;
        let mut salvage = Salvage {
            parser: self,
            metrics,
            malformed: 0,
        };
        let mut pieces = Vec::new();
        match &self.flat {
            Some(flat) => flat.decode(&records, &mut pieces, |rest, first, pieces| {
                salvage.decode(rest, first, pieces)
            })?,
            None => salvage.decode(&records, 0, &mut pieces)?,
        }
        metrics.add_malformed(salvage.malformed);
        match pieces.as_slice() {
            [] => Ok(new_empty_array(&DataType::Struct(self.fields().clone()))),
            [whole] => Ok(Arc::clone(whole)),
            pieces => {
                let refs: Vec<&dyn Array> = pieces.iter().map(|a| a.as_ref()).collect();
                Ok(concat(&refs)?)
            }
        }
    }

    /// Decodes a run of records into one struct array, or says why not: which record was
    /// not exactly one JSON object, or (no record) a value the column could not hold.
    fn decode_run(&self, records: &[Option<&[u8]>]) -> Result<ArrayRef, Failure> {
        let whole = |error| Failure { row: None, error };
        let mut decoder = self.decoder(records.len()).map_err(whole)?;
        let mut present = Vec::with_capacity(records.len());
        for (row, record) in records.iter().enumerate() {
            // A null or blank record is a null struct; `{}` holds its place in the decoder.
            let text = record.filter(|r| r.iter().any(|b| !is_json_whitespace(*b)));
            present.push(text.is_some());
            feed(&mut decoder, text.unwrap_or(b"{}"), row).map_err(|error| Failure {
                row: Some(row),
                error,
            })?;
        }
        let Some(batch) = decoder.flush().map_err(whole)? else {
            return Ok(new_empty_array(&DataType::Struct(self.fields().clone())));
        };
        let validity = NullBuffer::new(BooleanBuffer::from(present));
        let validity = (validity.null_count() > 0).then_some(validity);
        let parsed =
            StructArray::try_new(self.fields().clone(), batch.columns().to_vec(), validity)
                .map_err(whole)?;
        Ok(Arc::new(parsed))
    }
}

/// Feeds one record to `decoder`, which holds `row` complete records before it; fails
/// unless the record was exactly one JSON object.
fn feed(decoder: &mut Decoder, record: &[u8], row: usize) -> Result<(), ArrowError> {
    // A bare value or array would be taken as a row and fail only later, for the whole column.
    if record.iter().find(|b| !is_json_whitespace(**b)) != Some(&b'{') {
        return Err(ArrowError::JsonError(
            "a record must be one JSON object".into(),
        ));
    }
    let consumed = decoder.decode(record)?;
    // Bytes left over mean the decoder stopped at its batch size, at a further row.
    if consumed != record.len() || decoder.len() != row + 1 {
        return Err(ArrowError::JsonError(
            "a record must be one JSON object, found more JSON after it".into(),
        ));
    }
    if decoder.has_partial_record() {
        // Left open, the next record would continue this one.
        return Err(ArrowError::JsonError(
            "truncated record: the JSON object is not closed".into(),
        ));
    }
    Ok(())
}

fn is_json_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// The records of a string or binary column as bytes (`None` for a null).
fn byte_records(column: &dyn Array) -> DfResult<Vec<Option<&[u8]>>> {
    Ok(match column.data_type() {
        DataType::Utf8 => column.as_string::<i32>().iter().map(as_bytes).collect(),
        DataType::LargeUtf8 => column.as_string::<i64>().iter().map(as_bytes).collect(),
        DataType::Utf8View => column.as_string_view().iter().map(as_bytes).collect(),
        DataType::Binary => column.as_binary::<i32>().iter().collect(),
        DataType::LargeBinary => column.as_binary::<i64>().iter().collect(),
        DataType::BinaryView => column.as_binary_view().iter().collect(),
        other => return exec_err!("from_json() reads strings or binary, got {other}"),
    })
}

fn as_bytes(text: Option<&str>) -> Option<&[u8]> {
    text.map(str::as_bytes)
}

/// Why a run of records did not decode.
struct Failure {
    /// The record that was not exactly one JSON object; `None` when the run failed as a
    /// whole (a value of the wrong type, invalid UTF-8), with no record named.
    row: Option<usize>,
    error: ArrowError,
}

/// The slow path: decodes runs with arrow-json, around the records that fail.
struct Salvage<'a> {
    parser: &'a JsonParser,
    metrics: &'a ExprMetrics,
    malformed: u64,
}

impl Salvage<'_> {
    /// Decodes `records` (the column's rows from `first`), around the ones that fail, onto
    /// `pieces`: decoded runs and all-null rows, in order.
    fn decode(
        &mut self,
        records: &[Option<&[u8]>],
        first: usize,
        pieces: &mut Vec<ArrayRef>,
    ) -> DfResult<()> {
        let mut start = 0;
        while start < records.len() {
            let rest = &records[start..];
            let failure = match self.parser.decode_run(rest) {
                Ok(parsed) => {
                    pieces.push(parsed);
                    return Ok(());
                }
                Err(failure) => failure,
            };
            match failure.row {
                Some(row) => {
                    // The records before it were whole objects, but a value may still not
                    // fit its column, so they are a run of their own.
                    self.decode(&rest[..row], first + start, pieces)?;
                    self.malformed(first + start + row, rest[row], failure.error, pieces)?;
                    start += row + 1;
                }
                None if rest.len() == 1 => {
                    return self.malformed(first + start, rest[0], failure.error, pieces);
                }
                None => {
                    let half = rest.len() / 2;
                    self.decode(&rest[..half], first + start, pieces)?;
                    return self.decode(&rest[half..], first + start + half, pieces);
                }
            }
        }
        Ok(())
    }

    fn malformed(
        &mut self,
        index: usize,
        record: Option<&[u8]>,
        error: ArrowError,
        pieces: &mut Vec<ArrayRef>,
    ) -> DfResult<()> {
        let bad = BadRecord {
            record: record.unwrap_or_default().to_vec(),
            reason: error.to_string(),
            row: index,
            location: Location::Unknown,
            fatal: self.parser.fail_fast,
        };
        let failure = self.parser.fail_fast.then(|| bad.fail_fast_message());
        self.metrics.bad_records.push(bad);
        if let Some(failure) = failure {
            return exec_err!("{failure}");
        }
        self.malformed += 1;
        let fields = self.parser.fields();
        let columns = fields
            .iter()
            .map(|f| new_null_array(f.data_type(), 1))
            .collect();
        pieces.push(Arc::new(StructArray::try_new(
            fields.clone(),
            columns,
            None,
        )?));
        Ok(())
    }
}

impl PartialEq for FromJson {
    fn eq(&self, other: &Self) -> bool {
        self.parser.schema == other.parser.schema
            && self.parser.fail_fast == other.parser.fail_fast
            && Arc::ptr_eq(&self.metrics, &other.metrics)
    }
}

impl Eq for FromJson {}

impl Hash for FromJson {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parser.fields().hash(state);
        self.parser.fail_fast.hash(state);
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
        Ok(DataType::Struct(self.parser.fields().clone()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [value] = args.args.as_slice() else {
            return exec_err!("from_json() takes one column");
        };
        let array = value.clone().into_array(args.number_rows)?;
        Ok(ColumnarValue::Array(
            self.parser.parse(array.as_ref(), &self.metrics)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BinaryArray, Float64Array, StringArray};
    use proptest::prelude::*;

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

    fn parse(records: &dyn Array) -> (ArrayRef, u64) {
        let (udf, metrics) = udf();
        let parsed = udf
            .parser
            .parse(records, &metrics)
            .expect("permissive never fails");
        (parsed, metrics.malformed_rows())
    }

    /// Each row's price, `Err(())` for a null struct.
    fn prices(parsed: &ArrayRef) -> Vec<Result<Option<f64>, ()>> {
        let parsed = parsed.as_struct();
        let price = parsed
            .column(1)
            .as_primitive::<arrow::datatypes::Float64Type>();
        (0..parsed.len())
            .map(|i| {
                if parsed.is_null(i) {
                    Err(())
                } else {
                    Ok(price.is_valid(i).then(|| price.value(i)))
                }
            })
            .collect()
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
        let parsed = udf
            .parser
            .parse(&input, &metrics)
            .expect("permissive never fails");
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
    fn a_record_that_is_not_one_object_is_malformed_and_spills_into_no_other() {
        let cases = [
            "1",
            "-2.5",
            r#""text""#,
            "null",
            "true",
            "[1,2]",
            r#"[{"price":9}]"#,
            r#"{"price":9}{"price":8}"#,
            r#"{"price":9} {"price":8}"#,
            r#"{"price":9} trailing"#,
            r#"{"price":9} 7"#,
            r#"{"price":9}}"#,
            r#"{"price":9},"#,
            "{",
            "}",
            r#"{"price":"#,
            r#"{"price":9"#,
            r#"{"price":9.5e"#,
            r#"{"symbol":"a"#,
            r#"{"symbol":"a\"#,
            r#"{"symbol":"\u12"#,
            r#"{"symbol":nul"#,
            r#"{"symbol":["#,
            r#"{"price":x}"#,
            r#"{"symbol" "a"}"#,
        ];
        for case in cases {
            for rows in [
                vec![case],
                vec![r#"{"price":1}"#, case, r#"{"price":2}"#],
                vec![r#"{"price":1}"#, case],
                vec![case, "9}", r#"{"price":2}"#],
            ] {
                let (parsed, malformed) = parse(&StringArray::from(rows.clone()));
                let got = prices(&parsed);
                let expected: Vec<Result<Option<f64>, ()>> = rows
                    .iter()
                    .map(|row| match *row {
                        r#"{"price":1}"# => Ok(Some(1.0)),
                        r#"{"price":2}"# => Ok(Some(2.0)),
                        _ => Ok(None),
                    })
                    .collect();
                assert_eq!(got, expected, "{rows:?}");
                let bad = expected.iter().filter(|price| **price == Ok(None)).count();
                assert_eq!(malformed, bad as u64, "{rows:?}");
            }
        }
    }

    #[test]
    fn null_and_blank_records_stay_null_and_whitespace_around_an_object_is_fine() {
        let (parsed, malformed) = parse(&StringArray::from(vec![
            None,
            Some(""),
            Some(" \t\r\n"),
            Some(" \n{\"price\": 3 }\r\n "),
        ]));
        assert_eq!(
            prices(&parsed),
            vec![Err(()), Err(()), Err(()), Ok(Some(3.0))]
        );
        assert_eq!(malformed, 0);
    }

    #[test]
    fn a_wrongly_typed_value_nulls_only_its_record() {
        let mut rows: Vec<String> = (0..1000).map(|i| format!(r#"{{"price":{i}}}"#)).collect();
        let bad = [
            (0, r#"{"price":"abc"}"#),
            (377, r#"{"price":{"x":1}}"#),
            (378, r#"{"price":[1]}"#),
            (500, r#"{"price":"#),
            (999, r#"{"price":true}"#),
        ];
        for (index, record) in bad {
            rows[index] = record.to_string();
        }
        let (parsed, malformed) = parse(&StringArray::from(rows));
        assert_eq!(malformed, bad.len() as u64);
        for (index, price) in prices(&parsed).into_iter().enumerate() {
            let expected = if bad.iter().any(|(b, _)| *b == index) {
                None
            } else {
                Some(index as f64)
            };
            assert_eq!(price, Ok(expected), "row {index}");
        }
    }

    #[test]
    fn binary_records_are_parsed_in_place_and_invalid_utf8_is_malformed() {
        let input = BinaryArray::from(vec![
            Some(&b"{\"symbol\":\"\xe2\x82\xac\",\"price\":1}"[..]),
            Some(&b"{\"symbol\":\"\xff\",\"price\":2}"[..]),
            Some(&b"{\"symbol\":\"a\",\"price\":3}\xff"[..]),
            Some(&b"{\"symbol\":\"\xe2\x82\",\"price\":4}"[..]),
            None,
            Some(&br#"{"symbol":"b","price":5}"#[..]),
        ]);
        let (parsed, malformed) = parse(&input);
        assert_eq!(
            prices(&parsed),
            vec![
                Ok(Some(1.0)),
                Ok(None),
                Ok(None),
                Ok(None),
                Err(()),
                Ok(Some(5.0))
            ]
        );
        assert_eq!(malformed, 3);
        assert_eq!(
            parsed.as_struct().column(0).as_string::<i32>().value(0),
            "€"
        );
    }

    #[test]
    fn failfast_quotes_the_record() {
        let metrics = Arc::new(ExprMetrics::default());
        let schema = DataType::Struct(Fields::from(vec![Field::new("a", DataType::Int64, true)]));
        let udf = FromJson::new(schema, "FAILFAST", metrics).expect("valid");
        let input = StringArray::from(vec![r#"{"a":1}"#, r#"{"a":"#]);
        let error = udf
            .parser
            .parse(&input, &udf.metrics)
            .expect_err("failfast");
        assert!(error.to_string().contains(r#"{"a":"#));
    }

    #[test]
    fn failfast_names_the_first_bad_record_in_order() {
        let parser = JsonParser::new(
            &Fields::from(vec![Field::new("a", DataType::Int64, true)]),
            true,
        )
        .expect("valid");
        let input = StringArray::from(vec![r#"{"a":1}"#, r#"{"a":"x"}"#, r#"{"a":"#]);
        let error = parser
            .parse(&input, &ExprMetrics::default())
            .expect_err("failfast");
        assert!(
            error.to_string().contains(r#"at row 1: '{"a":"x"}'"#),
            "{error}"
        );
    }

    #[test]
    fn not_null_fields_are_read_as_nullable_as_in_spark() {
        let fields = Fields::from(vec![Field::new("a", DataType::Int64, false)]);
        let parser = JsonParser::new(&fields, false).expect("valid");
        let metrics = ExprMetrics::default();
        let parsed = parser
            .parse(
                &StringArray::from(vec![r#"{"a":1}"#, "{}", "oops"]),
                &metrics,
            )
            .expect("permissive");
        assert_eq!(parsed.as_struct().column(0).null_count(), 2);
        assert_eq!(metrics.malformed_rows(), 1);
    }

    const SAMPLES: [&str; 12] = [
        r#"{"symbol":"A","price":1.5}"#,
        r#"{"price":2,"symbol":"B","extra":[1,{"x":null}]}"#,
        r#" {"symbol":"C"} "#,
        "",
        r#"{"price":"#,
        r#"{"price":"3.5"}"#,
        r#"{"price":"abc"}"#,
        r#"{"price":1}{"price":2}"#,
        "[]",
        r#"{"symbol":"D\"}"#,
        "9}",
        r#"{"symbol":"\u00e9"}"#,
    ];

    proptest! {
        /// A record's result never depends on its neighbours.
        #[test]
        fn a_record_parses_the_same_alone_or_in_a_column(
            picks in proptest::collection::vec(0..SAMPLES.len() + 1, 0..40)
        ) {
            let rows: Vec<Option<&str>> = picks.iter().map(|&i| SAMPLES.get(i).copied()).collect();
            let (column, malformed) = parse(&StringArray::from(rows.clone()));
            prop_assert_eq!(column.len(), rows.len());
            let mut alone_malformed = 0;
            for (index, row) in rows.iter().enumerate() {
                let (alone, count) = parse(&StringArray::from(vec![*row]));
                alone_malformed += count;
                prop_assert_eq!(column.slice(index, 1).to_data(), alone.to_data(), "row {}", index);
            }
            prop_assert_eq!(malformed, alone_malformed);
        }
    }
}
