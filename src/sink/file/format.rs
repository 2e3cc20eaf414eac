//! The formats the file sink writes: Parquet (snappy by default, as Spark 3.5's
//! `spark.sql.parquet.compression.codec`), JSON lines and CSV, each file named as Spark names
//! its own (`part-00007-<uuid>.snappy.parquet`, `.json`, `.csv`).
//!
//! A sink writes many small files (one per partition folder per batch), so what every file
//! shares is worked out once per sink in a [`WriterTemplate`]: the Parquet schema, and the
//! writer properties with the encoded Arrow schema already in their metadata.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::sync::Arc;

use ::parquet::arrow::arrow_writer::ArrowWriterOptions;
use ::parquet::arrow::{add_encoded_arrow_schema_to_metadata, ArrowSchemaConverter, ArrowWriter};
use ::parquet::basic::{Compression, ZstdLevel};
use ::parquet::file::properties::WriterProperties;
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};

use crate::error::Result;
use crate::{analysis, illegal};

/// Spark's default zstd level (`parquet.compression.codec.zstd.level`).
const ZSTD_LEVEL: i32 = 3;

/// Every suffix a data file of ours can carry, for recognising files of a crashed attempt.
pub const SUFFIXES: [&str; 5] = [
    ".zstd.parquet",
    ".snappy.parquet",
    ".parquet",
    ".json",
    ".csv",
];

/// A Parquet compression codec (the `compression` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// zstd, level 3: smaller files, but the parquet crate builds a zstd compressor and a
    /// decompressor for every column of every file (4 % of the OHLC pipeline's CPU when it was
    /// the default, and twice the sink's peak memory).
    Zstd,
    /// Snappy, the default (Spark's).
    Snappy,
    /// None.
    Uncompressed,
}

impl Codec {
    const ACCEPTED: &'static str = "zstd, snappy, none, uncompressed";

    fn parse(option: &str, value: &str) -> Result<Codec> {
        match value.trim().to_ascii_lowercase().as_str() {
            "zstd" => Ok(Codec::Zstd),
            "snappy" => Ok(Codec::Snappy),
            "none" | "uncompressed" => Ok(Codec::Uncompressed),
            _ => Err(illegal!(
                "Codec [{value}] of option '{option}' is not available for the parquet sink. \
                 Available codecs are {}.",
                Self::ACCEPTED
            )),
        }
    }

    fn compression(self) -> Result<Compression> {
        Ok(match self {
            Codec::Zstd => Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?),
            Codec::Snappy => Compression::SNAPPY,
            Codec::Uncompressed => Compression::UNCOMPRESSED,
        })
    }
}

/// What the sink writes, with the format's options resolved.
#[derive(Debug, Clone)]
pub enum FileFormat {
    /// Parquet with its writer properties.
    Parquet {
        /// The codec, which also names the file.
        codec: Codec,
        /// The writer's settings.
        properties: Box<WriterProperties>,
    },
    /// Newline-delimited JSON, one object per row (Spark's `format("json")`).
    Json,
    /// CSV, with a header line when `header` is true (Spark's default: no header).
    Csv {
        /// Whether each file starts with the column names.
        header: bool,
    },
}

impl FileFormat {
    /// Resolves `format` and its options (keys case-insensitive; unknown options are ignored,
    /// as Spark ignores options a format does not know).
    pub fn parse(format: &str, options: &BTreeMap<String, String>) -> Result<FileFormat> {
        let lowered: BTreeMap<String, (&str, &str)> = options
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), (k.as_str(), v.as_str())))
            .collect();
        match format.to_ascii_lowercase().as_str() {
            "parquet" => {
                // Spark: `compression` wins over `parquet.compression`.
                let codec = match lowered
                    .get("compression")
                    .or(lowered.get("parquet.compression"))
                {
                    Some((key, value)) => Codec::parse(key, value)?,
                    None => Codec::Snappy,
                };
                let properties = Box::new(
                    WriterProperties::builder()
                        .set_compression(codec.compression()?)
                        // Spec-compliant list/map field names and no Date64: more readers read it.
                        .set_coerce_types(true)
                        .build(),
                );
                Ok(FileFormat::Parquet { codec, properties })
            }
            "json" => Ok(FileFormat::Json),
            "csv" => {
                let header = match lowered.get("header") {
                    None => false,
                    Some((_, value)) => match value.trim().to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(illegal!(
                                "csv sink: option 'header' must be true or false, got '{value}'"
                            ))
                        }
                    },
                };
                Ok(FileFormat::Csv { header })
            }
            other => Err(illegal!(
                "file sink: unknown format '{other}'; supported: parquet, json, csv"
            )),
        }
    }

    /// The format's name, as in `format(...)`.
    pub fn name(&self) -> &'static str {
        match self {
            FileFormat::Parquet { .. } => "parquet",
            FileFormat::Json => "json",
            FileFormat::Csv { .. } => "csv",
        }
    }

    /// The file name suffix, as Spark names its files.
    pub fn suffix(&self) -> &'static str {
        match self {
            FileFormat::Parquet { codec, .. } => match codec {
                Codec::Zstd => ".zstd.parquet",
                Codec::Snappy => ".snappy.parquet",
                Codec::Uncompressed => ".parquet",
            },
            FileFormat::Json => ".json",
            FileFormat::Csv { .. } => ".csv",
        }
    }

    /// Refuses columns the format cannot hold, naming them (Spark's CSV source refuses
    /// structs, arrays and maps the same way).
    pub fn check_schema(&self, schema: &Schema) -> Result<()> {
        if let FileFormat::Csv { .. } = self {
            for field in schema.fields() {
                if matches!(
                    field.data_type(),
                    DataType::Struct(_)
                        | DataType::List(_)
                        | DataType::LargeList(_)
                        | DataType::Map(_, _)
                        | DataType::Binary
                        | DataType::LargeBinary
                ) {
                    return Err(analysis!(
                        "CSV data source does not support {} data type of column '{}'; select \
                         its fields (e.g. col(\"{}.start\")) or write parquet or json",
                        field.data_type(),
                        field.name(),
                        field.name()
                    ));
                }
            }
        }
        Ok(())
    }

    /// What every data file of rows of `schema` is started with, worked out once.
    pub fn template(&self, schema: &SchemaRef) -> Result<WriterTemplate> {
        Ok(match self {
            FileFormat::Parquet { properties, .. } => {
                let parquet_schema = ArrowSchemaConverter::new()
                    .with_coerce_types(properties.coerce_types())
                    .convert(schema)?;
                // pyarrow, DataFusion and Polars read the Arrow schema from the footer (time
                // zones, for instance); encoding it here spares the writer doing it per file.
                let mut properties = properties.as_ref().clone();
                add_encoded_arrow_schema_to_metadata(schema, &mut properties);
                WriterTemplate::Parquet {
                    schema: Arc::clone(schema),
                    options: Box::new(
                        ArrowWriterOptions::new()
                            .with_properties(properties)
                            .with_parquet_schema(parquet_schema)
                            .with_skip_arrow_metadata(true),
                    ),
                }
            }
            FileFormat::Json => WriterTemplate::Json,
            FileFormat::Csv { header } => WriterTemplate::Csv { header: *header },
        })
    }
}

/// What every data file of one sink is started with (see [`FileFormat::template`]).
#[derive(Debug)]
pub enum WriterTemplate {
    /// Parquet: the Arrow schema and the writer's options with the Parquet schema and the
    /// footer's metadata ready.
    Parquet {
        /// The rows' schema.
        schema: SchemaRef,
        /// Cloned for each file (the writer takes them by value).
        options: Box<ArrowWriterOptions>,
    },
    /// JSON lines.
    Json,
    /// CSV.
    Csv {
        /// Whether each file starts with the column names.
        header: bool,
    },
}

impl WriterTemplate {
    /// Starts a writer on `file`.
    pub fn writer(&self, file: File) -> Result<PartWriter> {
        Ok(match self {
            WriterTemplate::Parquet { schema, options } => {
                PartWriter::Parquet(ArrowWriter::try_new_with_options(
                    file,
                    Arc::clone(schema),
                    options.as_ref().clone(),
                )?)
            }
            WriterTemplate::Json => {
                PartWriter::Json(arrow::json::LineDelimitedWriter::new(BufWriter::new(file)))
            }
            WriterTemplate::Csv { header } => PartWriter::Csv(
                arrow::csv::WriterBuilder::new()
                    .with_header(*header)
                    .with_timestamp_format("%Y-%m-%dT%H:%M:%S%.3f".into())
                    .with_timestamp_tz_format("%Y-%m-%dT%H:%M:%S%.3f%:z".into())
                    .build(BufWriter::new(file)),
            ),
        })
    }
}

/// An open data file of one of the formats.
pub enum PartWriter {
    /// Parquet.
    Parquet(ArrowWriter<File>),
    /// JSON lines.
    Json(arrow::json::LineDelimitedWriter<BufWriter<File>>),
    /// CSV.
    Csv(arrow::csv::Writer<BufWriter<File>>),
}

impl PartWriter {
    /// Appends rows.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            PartWriter::Parquet(writer) => writer.write(batch)?,
            PartWriter::Json(writer) => writer.write(batch)?,
            PartWriter::Csv(writer) => writer.write(batch)?,
        }
        Ok(())
    }

    /// Finishes the file (Parquet's footer, flushed buffers) and hands the file back.
    pub fn finish(self) -> Result<File> {
        let buffered = match self {
            PartWriter::Parquet(writer) => return Ok(writer.into_inner()?),
            PartWriter::Json(mut writer) => {
                writer.finish()?;
                writer.into_inner()
            }
            PartWriter::Csv(writer) => writer.into_inner(),
        };
        buffered.into_inner().map_err(|e| {
            crate::error::Error::Sink(format!("cannot flush a data file: {}", e.error()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(format: &str, options: &[(&str, &str)]) -> Result<FileFormat> {
        let options = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        FileFormat::parse(format, &options)
    }

    #[test]
    fn parquet_codec_option_is_checked() {
        let suffix = |options: &[(&str, &str)]| parse("parquet", options).map(|f| f.suffix());
        assert_eq!(suffix(&[]).expect("ok"), ".snappy.parquet");
        assert_eq!(
            suffix(&[("Compression", "ZSTD")]).expect("ok"),
            ".zstd.parquet"
        );
        assert_eq!(
            suffix(&[("parquet.compression", "snappy"), ("compression", "none")]).expect("ok"),
            ".parquet"
        );
        let message = suffix(&[("compression", "lz77")])
            .expect_err("refused")
            .to_string();
        assert!(message.contains("compression") && message.contains("lz77"));
        assert!(message.contains("zstd") && message.contains("snappy"));
    }

    #[test]
    fn csv_header_and_unknown_formats() {
        assert!(matches!(
            parse("CSV", &[("header", "true")]).expect("ok"),
            FileFormat::Csv { header: true }
        ));
        let message = parse("csv", &[("header", "yes")])
            .expect_err("refused")
            .to_string();
        assert!(message.contains("header") && message.contains("yes"));
        let message = parse("orc", &[]).expect_err("refused").to_string();
        assert!(message.contains("orc") && message.contains("parquet, json, csv"));
    }

    #[test]
    fn csv_refuses_nested_columns_by_name() {
        let schema = Schema::new(vec![arrow::datatypes::Field::new(
            "window",
            DataType::Struct(arrow::datatypes::Fields::empty()),
            true,
        )]);
        let csv = parse("csv", &[]).expect("ok");
        let message = csv.check_schema(&schema).expect_err("refused").to_string();
        assert!(message.contains("'window'"));
        assert!(parse("json", &[])
            .expect("ok")
            .check_schema(&schema)
            .is_ok());
    }
}
