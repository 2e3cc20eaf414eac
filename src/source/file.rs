//! The file source, as Spark's: `readStream.format("json" | "csv" | "parquet").schema(s).load(dir)`.
//!
//! Files that appear in the folder later are picked up, each exactly once, oldest first
//! (by modification time, then name); `maxFilesPerTrigger` bounds a batch. The offset is
//! the number of files taken from the ordered list of files seen. With a checkpoint, that
//! list is kept in `sources/0/files.json` (Spark's `FileStreamSourceLog`), written before
//! the batch that takes them runs, so a restart takes the same files for the same offsets
//! even when a file with an older modification time appeared meanwhile. A malformed JSON line becomes a row of nulls and is
//! counted (PERMISSIVE), or stops the query naming the file and line (FAILFAST).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch, StringArray};
use arrow::csv::ReaderBuilder as CsvReaderBuilder;
use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{json, Value};

use super::options::Options;
use super::{Cancel, ReadLimit, Source, SourceOffset};
use crate::checkpoint::{read_json, write_json};
use crate::error::{Error, Result};
use crate::exec::bad_records::fail_fast_error;
use crate::expr::bad_record::Location;
use crate::expr::from_json::JsonParser;
use crate::expr::types::arrow_schema;
use crate::expr::ExprMetrics;
use crate::illegal;
use crate::sink::file::{
    committed_files, unescape_path_name, DEFAULT_PARTITION_NAME, METADATA_DIR,
};

/// The file formats the source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Newline-delimited JSON.
    Json,
    /// CSV.
    Csv,
    /// Parquet.
    Parquet,
}

/// A file source over one folder.
pub struct FileSource {
    dir: PathBuf,
    format: FileFormat,
    schema: SchemaRef,
    max_files_per_trigger: Option<u64>,
    header: bool,
    delimiter: u8,
    fail_fast: bool,
    metrics: Arc<ExprMetrics>,
    /// Every file seen, in the order they are taken.
    files: Vec<PathBuf>,
    seen: HashSet<PathBuf>,
    /// The checkpoint's file log and how many of `files` it holds.
    log: Option<(PathBuf, usize)>,
}

impl FileSource {
    /// Opens a file source; streaming file sources need a schema, as in Spark.
    pub fn new(
        format: FileFormat,
        path: Option<&str>,
        schema: Option<&Value>,
        map: &BTreeMap<String, String>,
        metrics: Arc<ExprMetrics>,
    ) -> Result<Self> {
        let options = Options::new(map, "file source");
        let dir = PathBuf::from(path.or(options.get("path")).ok_or_else(|| {
            illegal!("file source: give the folder to read, e.g. .load(\"/data/ticks\")")
        })?);
        let schema = match (schema, format) {
            (Some(schema), _) => Arc::new(arrow_schema(schema)?),
            (None, FileFormat::Parquet) => parquet_schema(&dir)?,
            (None, _) => {
                return Err(illegal!(
                    "Schema must be specified when creating a streaming source DataFrame from \
                     {format:?} files: use .schema(\"symbol STRING, price DOUBLE, ...\")"
                ))
            }
        };
        let delimiter = options
            .get("sep")
            .or(options.get("delimiter"))
            .unwrap_or(",");
        let mode = options
            .get("mode")
            .unwrap_or("PERMISSIVE")
            .to_ascii_uppercase();
        if mode != "PERMISSIVE" && mode != "FAILFAST" {
            return Err(illegal!(
                "file source: option 'mode' must be PERMISSIVE or FAILFAST, got '{mode}'"
            ));
        }
        Ok(FileSource {
            dir,
            format,
            schema,
            max_files_per_trigger: options.positive("maxFilesPerTrigger")?,
            header: options.bool("header", false)?,
            delimiter: *delimiter.as_bytes().first().unwrap_or(&b','),
            fail_fast: mode == "FAILFAST",
            metrics,
            files: Vec::new(),
            seen: HashSet::new(),
            log: None,
        })
    }

    /// Lists files not seen before, oldest first, and appends them to the ordered list.
    fn discover(&mut self) -> Result<()> {
        // A folder written by our file sink is read through its manifest: exactly the
        // committed files, in commit order.
        if self.dir.join(METADATA_DIR).is_dir() {
            for relative in committed_files(&self.dir)? {
                let path = self.dir.join(relative);
                if self.seen.insert(path.clone()) {
                    self.files.push(path);
                }
            }
            return Ok(());
        }
        let mut fresh = Vec::new();
        list_files(&self.dir, &mut fresh)?;
        let mut fresh: Vec<(std::time::SystemTime, PathBuf)> = fresh
            .into_iter()
            .filter(|(_, path)| !self.seen.contains(path))
            .collect();
        fresh.sort();
        for (_, path) in fresh {
            self.seen.insert(path.clone());
            self.files.push(path);
        }
        Ok(())
    }

    /// Makes sure the checkpoint's log lists the first `taken` files before a batch that
    /// reads them is planned.
    fn log_taken(&mut self, taken: usize) -> Result<()> {
        let Some((path, logged)) = &mut self.log else {
            return Ok(());
        };
        if taken <= *logged {
            return Ok(());
        }
        let names: Vec<String> = self.files[..taken]
            .iter()
            .map(|p| p.to_string_lossy().to_string())
            .collect();
        write_json(path, &json!({"version": 1, "files": names}))?;
        *logged = taken;
        Ok(())
    }

    fn read_file(&self, path: &Path) -> Result<Vec<RecordBatch>> {
        let open = || File::open(path).map_err(|e| Error::io("cannot open", path, e));
        match self.format {
            FileFormat::Json => {
                let lines: Vec<String> = BufReader::new(open()?)
                    .lines()
                    .collect::<std::io::Result<_>>()
                    .map_err(|e| Error::io("cannot read", path, e))?;
                let numbers: Vec<usize> = (0..lines.len())
                    .filter(|&i| !lines[i].trim().is_empty())
                    .collect();
                let text: StringArray = numbers.iter().map(|&i| Some(&lines[i])).collect();
                let parsed = JsonParser::new(self.schema.fields(), self.fail_fast)?
                    .parse(&text, &self.metrics);
                // The parser knows rows; name the file's lines instead.
                let mut records = self.metrics.bad_records.take();
                for record in &mut records {
                    record.location = Location::File {
                        path: path.display().to_string(),
                        line: numbers.get(record.row).map_or(0, |i| i + 1),
                    };
                }
                let parsed = match parsed {
                    Ok(parsed) => parsed,
                    Err(e) => {
                        return Err(fail_fast_error(&records)
                            .unwrap_or_else(|| Error::Source(format!("{}: {e}", path.display()))))
                    }
                };
                for record in records {
                    self.metrics.bad_records.push(record);
                }
                let parsed = parsed.as_struct();
                Ok(vec![RecordBatch::try_new(
                    self.schema.clone(),
                    parsed.columns().to_vec(),
                )?])
            }
            FileFormat::Csv => {
                let reader = CsvReaderBuilder::new(self.schema.clone())
                    .with_header(self.header)
                    .with_delimiter(self.delimiter)
                    .build(open()?)?;
                reader
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| Error::Source(format!("{}: {e}", path.display())))
            }
            FileFormat::Parquet => {
                let reader = ParquetRecordBatchReaderBuilder::try_new(open()?)?.build()?;
                let batches = reader
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| Error::Source(format!("{}: {e}", path.display())))?;
                let partitions = hive_partitions(&self.dir, path);
                batches
                    .iter()
                    .map(|b| conform(b, &self.schema, &partitions))
                    .collect()
            }
        }
    }
}

/// Casts a batch to the source schema by column name (Parquet files may differ slightly);
/// Hive partition columns come from the file's folders.
fn conform(
    batch: &RecordBatch,
    schema: &SchemaRef,
    partitions: &[(String, Option<String>)],
) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) => Ok(arrow::compute::cast(column, field.data_type())?),
            None => match partitions.iter().find(|(name, _)| name == field.name()) {
                Some((_, value)) => {
                    let text = StringArray::from(vec![value.clone(); batch.num_rows()]);
                    Ok(arrow::compute::cast(&text, field.data_type())?)
                }
                None => Ok(arrow::array::new_null_array(
                    field.data_type(),
                    batch.num_rows(),
                )),
            },
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The `column=value` folders between `dir` and `file`, unescaped as Spark writes them.
fn hive_partitions(dir: &Path, file: &Path) -> Vec<(String, Option<String>)> {
    let relative = file.strip_prefix(dir).unwrap_or(file);
    relative
        .parent()
        .into_iter()
        .flat_map(Path::components)
        .filter_map(|part| {
            let part = part.as_os_str().to_string_lossy();
            let (name, value) = part.split_once('=')?;
            let value = (value != DEFAULT_PARTITION_NAME).then(|| unescape_path_name(value));
            Some((unescape_path_name(name), value))
        })
        .collect()
}

fn parquet_schema(dir: &Path) -> Result<SchemaRef> {
    let mut files = Vec::new();
    if dir.join(METADATA_DIR).is_dir() {
        for relative in committed_files(dir)? {
            files.push((std::time::UNIX_EPOCH, dir.join(relative)));
        }
    } else {
        list_files(dir, &mut files)?;
    }
    let (_, first) = files.into_iter().min().ok_or_else(|| {
        illegal!(
            "Unable to infer the schema of Parquet files in {}: it has none yet; give .schema(...)",
            dir.display()
        )
    })?;
    let file = File::open(&first).map_err(|e| Error::io("cannot open", &first, e))?;
    let schema = ParquetRecordBatchReaderBuilder::try_new(file)?
        .schema()
        .clone();
    let mut fields: Vec<arrow::datatypes::FieldRef> = schema.fields().iter().cloned().collect();
    for (name, _) in hive_partitions(dir, &first) {
        if schema.field_with_name(&name).is_err() {
            fields.push(Arc::new(arrow::datatypes::Field::new(
                name,
                arrow::datatypes::DataType::Utf8,
                true,
            )));
        }
    }
    Ok(Arc::new(arrow::datatypes::Schema::new(fields)))
}

/// Lists data files under `dir`, skipping hidden and temporary files as Spark does.
fn list_files(dir: &Path, out: &mut Vec<(std::time::SystemTime, PathBuf)>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("cannot list", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("cannot list", dir, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || name.starts_with('_') || name.ends_with(".tmp") {
            continue;
        }
        let path = entry.path();
        let meta = entry
            .metadata()
            .map_err(|e| Error::io("cannot stat", &path, e))?;
        if meta.is_dir() {
            list_files(&path, out)?;
        } else {
            let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            out.push((modified, path));
        }
    }
    Ok(())
}

/// `sources/0/files.json`: the files taken so far, in order.
#[derive(serde::Deserialize)]
struct FileLog {
    files: Vec<String>,
}

fn count(offset: &SourceOffset) -> usize {
    offset.get("logOffset").and_then(Value::as_u64).unwrap_or(0) as usize
}

impl Source for FileSource {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn initial_offset(&mut self) -> Result<SourceOffset> {
        Ok(json!({"logOffset": 0}))
    }

    fn use_checkpoint(&mut self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
        let path = dir.join("files.json");
        let logged = if path.exists() {
            let log: FileLog = read_json(&path)?;
            self.files = log.files.into_iter().map(PathBuf::from).collect();
            self.seen = self.files.iter().cloned().collect();
            self.files.len()
        } else {
            0
        };
        self.log = Some((path, logged));
        Ok(())
    }

    fn latest_offset(&mut self, start: &SourceOffset, limit: ReadLimit) -> Result<SourceOffset> {
        self.discover()?;
        let from = count(start);
        let available = self.files.len().saturating_sub(from);
        let take = match (limit, self.max_files_per_trigger) {
            (ReadLimit::Configured, Some(max)) => available.min(max as usize),
            _ => available,
        };
        self.log_taken(from + take)?;
        Ok(json!({"logOffset": from + take}))
    }

    fn get_batch(
        &mut self,
        start: &SourceOffset,
        end: &SourceOffset,
        cancel: &Cancel,
    ) -> Result<Vec<RecordBatch>> {
        if count(end) > self.files.len() {
            self.discover()?;
        }
        let mut batches = Vec::new();
        let end = count(end).min(self.files.len());
        for path in self.files.get(count(start)..end).unwrap_or_default() {
            if cancel.is_cancelled() {
                return Err(Error::Stopped);
            }
            batches.extend(self.read_file(path)?);
        }
        Ok(batches)
    }

    fn description(&self) -> String {
        format!("FileStreamSource[{}]", self.dir.display())
    }
}

/// Parses a format name.
pub fn file_format(name: &str) -> Option<FileFormat> {
    match name {
        "json" => Some(FileFormat::Json),
        "csv" => Some(FileFormat::Csv),
        "parquet" => Some(FileFormat::Parquet),
        _ => None,
    }
}
