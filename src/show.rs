//! Spark's text tables (`DataFrame.show()`, the console sink): the same borders, padding,
//! truncation to 20 characters, `NULL`, Java's rendering of doubles and timestamps printed
//! in the session time zone (UTC) without trailing zero fractions.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Float64Type, TimeUnit};
use chrono::DateTime;

/// Renders at most `num_rows` rows; cells longer than `truncate` (when > 0) are cut.
pub fn render_table(batches: &[RecordBatch], num_rows: usize, truncate: usize) -> String {
    let Some(first) = batches.first() else {
        return "++\n||\n++\n".into();
    };
    let schema = first.schema();
    let headers: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut rows: Vec<Vec<String>> = Vec::new();
    'outer: for batch in batches {
        for row in 0..batch.num_rows() {
            if rows.len() >= num_rows {
                break 'outer;
            }
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| cut(cell(c, row), truncate))
                    .collect(),
            );
        }
    }
    let headers: Vec<String> = headers.into_iter().map(|h| cut(h, truncate)).collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].chars().count(), 3])
                .max()
                .unwrap_or(3)
        })
        .collect();
    let border: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(*w)))
        .collect::<String>()
        + "+\n";
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| {
                if truncate > 0 {
                    format!("|{c:>w$}")
                } else {
                    format!("|{c:<w$}")
                }
            })
            .collect::<String>()
            + "|\n"
    };
    let mut out = border.clone();
    out += &line(&headers);
    out += &border;
    for row in &rows {
        out += &line(row);
    }
    out += &border;
    if total > num_rows {
        let noun = if num_rows == 1 { "row" } else { "rows" };
        out += &format!("only showing top {num_rows} {noun}\n");
    }
    out
}

fn cut(text: String, truncate: usize) -> String {
    if truncate > 0 && text.chars().count() > truncate {
        if truncate < 4 {
            text.chars().take(truncate).collect()
        } else {
            text.chars().take(truncate - 3).collect::<String>() + "..."
        }
    } else {
        text
    }
}

/// One cell as Spark prints it.
pub fn cell(array: &ArrayRef, row: usize) -> String {
    if array.is_null(row) {
        return "NULL".into();
    }
    match array.data_type() {
        DataType::Float64 => java_double(array.as_primitive::<Float64Type>().value(row)),
        DataType::Float32 => java_double(f64::from(array.as_primitive::<Float32Type>().value(row))),
        DataType::Timestamp(unit, _) => {
            let raw = arrow::compute::cast(array, &DataType::Int64)
                .ok()
                .map(|a| a.as_primitive::<arrow::datatypes::Int64Type>().value(row))
                .unwrap_or(0);
            let micros = match unit {
                TimeUnit::Second => raw * 1_000_000,
                TimeUnit::Millisecond => raw * 1_000,
                TimeUnit::Microsecond => raw,
                TimeUnit::Nanosecond => raw / 1_000,
            };
            spark_timestamp(micros)
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            let bytes: Vec<u8> = match array.data_type() {
                DataType::Binary => array.as_binary::<i32>().value(row).to_vec(),
                DataType::LargeBinary => array.as_binary::<i64>().value(row).to_vec(),
                _ => array.as_binary_view().value(row).to_vec(),
            };
            let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
            format!("[{}]", hex.join(" "))
        }
        DataType::Struct(_) => {
            let inner = array.as_struct();
            let parts: Vec<String> = inner.columns().iter().map(|c| cell(c, row)).collect();
            format!("{{{}}}", parts.join(", "))
        }
        DataType::List(_) => {
            let values = array.as_list::<i32>().value(row);
            let parts: Vec<String> = (0..values.len()).map(|i| cell(&values, i)).collect();
            format!("[{}]", parts.join(", "))
        }
        _ => arrow::util::display::array_value_to_string(array, row).unwrap_or_default(),
    }
}

/// Java's `Double.toString`: plain between 1e-3 and 1e7, scientific outside, always a digit
/// after the point.
pub fn java_double(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let magnitude = value.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        let text = format!("{value}");
        return if text.contains('.') {
            text
        } else {
            text + ".0"
        };
    }
    let text = format!("{value:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exponent}")
}

/// A timestamp as Spark prints it: `2025-11-22 14:57:12.008`, fraction without trailing zeros.
pub fn spark_timestamp(micros: i64) -> String {
    let Some(instant) = DateTime::from_timestamp_micros(micros) else {
        return micros.to_string();
    };
    let base = instant.format("%Y-%m-%d %H:%M:%S").to_string();
    let fraction = micros.rem_euclid(1_000_000);
    if fraction == 0 {
        base
    } else {
        let digits = format!("{fraction:06}");
        format!("{base}.{}", digits.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    #[test]
    fn doubles_print_as_java_does() {
        assert_eq!(java_double(84569.37), "84569.37");
        assert_eq!(java_double(1.0), "1.0");
        assert_eq!(java_double(1.0e7), "1.0E7");
        assert_eq!(java_double(0.0001), "1.0E-4");
    }

    #[test]
    fn timestamps_drop_trailing_zeros() {
        assert_eq!(
            spark_timestamp(1_763_823_432_008_000),
            "2025-11-22 14:57:12.008"
        );
        assert_eq!(
            spark_timestamp(1_763_823_420_000_000),
            "2025-11-22 14:57:00"
        );
    }

    #[test]
    fn table_matches_spark_layout() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("symbol", DataType::Utf8, true),
            Field::new("price", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("BTCUSDT"), None])),
                Arc::new(Float64Array::from(vec![84569.37, 2.0])),
            ],
        )
        .expect("valid batch");
        let expected = "+-------+--------+\n\
                        | symbol|   price|\n\
                        +-------+--------+\n\
                        |BTCUSDT|84569.37|\n\
                        |   NULL|     2.0|\n\
                        +-------+--------+\n\
                        only showing top 2 rows\n";
        let mut twice = vec![batch.clone()];
        twice.push(batch);
        assert_eq!(render_table(&twice, 2, 20), expected);
    }
}
