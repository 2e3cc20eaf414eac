//! The Parquet file sink, as Spark's `FileStreamSink`: `writeStream.format("parquet")
//! .partitionBy("symbol").option("path", dir)`, exactly once.
//!
//! Layout of the output folder:
//!
//! ```text
//! <path>/symbol=BTCUSDT/part-00007-<uuid>.zstd.parquet     data files (Hive partitioning)
//! <path>/_ferrostream_metadata/7                           the manifest of batch 7
//! ```
//!
//! A batch is committed when its manifest exists: `{"batchId": 7, "files": [{"path":
//! "symbol=BTCUSDT/part-00007-….zstd.parquet", "rows": 12, "bytes": 3456}]}`, written
//! atomically after every data file it names is durably in place under its final name.
//! Readers that want exactly-once read [`committed_files`]; a batch rerun after a crash finds
//! its manifest and writes nothing, or finds none and deletes the files of the crashed attempt
//! before writing the batch again.
//!
//! Paths built from data never leave the output folder: a partition value becomes one folder
//! name, percent-escaped as Spark's `ExternalCatalogUtils.escapePathName` does (so `/`, `\`,
//! `:`, `%`, control characters and NUL cannot appear raw), `.` and `..` are escaped whole,
//! and null or empty values go to `__HIVE_DEFAULT_PARTITION__`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::parquet::arrow::ArrowWriter;
use ::parquet::basic::{Compression, ZstdLevel};
use ::parquet::file::properties::WriterProperties;
use arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow::buffer::NullBuffer;
use arrow::compute::{cast, take_record_batch};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};
use arrow::row::{RowConverter, SortField};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::{Deserialize, Serialize};

use super::Sink;
use crate::checkpoint::write_atomic;
use crate::error::{Error, Result};
use crate::plan::OutputMode;
use crate::{analysis, illegal};

/// The folder, under the output path, that holds one manifest per committed batch.
/// Its leading `_` makes Spark, pyarrow and DuckDB skip it when they list the folder.
pub const METADATA_DIR: &str = "_ferrostream_metadata";

/// The folder name of a null or empty partition value (Hive's and Spark's).
pub const DEFAULT_PARTITION_NAME: &str = "__HIVE_DEFAULT_PARTITION__";

/// Spark's default zstd level (`parquet.compression.codec.zstd.level`).
const ZSTD_LEVEL: i32 = 3;

/// The longest folder or file name most file systems accept, in bytes.
const MAX_NAME_BYTES: usize = 255;

/// Timestamps in partition folder names, as Spark casts them to strings.
const TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.f";

/// A compression codec of the `compression` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Zstd,
    Snappy,
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

    /// The file name suffix, as Spark names its files (`.zstd.parquet`; `.parquet` when
    /// uncompressed).
    fn suffix(self) -> &'static str {
        match self {
            Codec::Zstd => ".zstd.parquet",
            Codec::Snappy => ".snappy.parquet",
            Codec::Uncompressed => ".parquet",
        }
    }
}

/// Every suffix a data file of ours can carry, for recognising files of a crashed attempt.
const SUFFIXES: [&str; 3] = [".zstd.parquet", ".snappy.parquet", ".parquet"];

/// One committed batch: `_ferrostream_metadata/<batchId>`.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    #[serde(rename = "batchId")]
    batch_id: u64,
    files: Vec<ManifestFile>,
}

/// One data file of a committed batch.
#[derive(Debug, Serialize, Deserialize)]
struct ManifestFile {
    /// Relative to the output folder, `/`-separated.
    path: String,
    rows: u64,
    bytes: u64,
}

/// The Parquet file sink.
pub struct ParquetSink {
    root: PathBuf,
    schema: SchemaRef,
    /// Input column indices of the partition columns, in `partitionBy` order.
    partition_indices: Vec<usize>,
    /// Their folder-name prefixes: the escaped column name followed by `=`.
    partition_prefixes: Vec<String>,
    /// Input column indices of the columns written to the files.
    data_indices: Vec<usize>,
    /// The schema of the files: the data columns, nullable (as Spark writes them),
    /// timestamps in microseconds.
    file_schema: SchemaRef,
    /// Groups rows by partition value (None when not partitioned).
    converter: Option<RowConverter>,
    properties: WriterProperties,
    codec: Codec,
    /// Whether the next batch must first delete the files of an earlier, uncommitted
    /// attempt at it: true for the first batch of this sink (a restarted query reruns its
    /// uncommitted batch first) and after a failed batch.
    sweep_pending: bool,
}

impl ParquetSink {
    /// A sink writing Parquet files under `path`, in Hive folders of the `partition_by`
    /// columns, with Spark's writer `options` (keys case-insensitive; `compression`, or
    /// `parquet.compression`: zstd (default), snappy, none, uncompressed; other options are
    /// ignored, as Spark ignores options a format does not know).
    pub fn new(
        path: &Path,
        partition_by: &[String],
        options: &BTreeMap<String, String>,
        schema: SchemaRef,
    ) -> Result<Self> {
        let mut codec = Codec::Zstd;
        let mut explicit = false;
        for (key, value) in options {
            match key.to_ascii_lowercase().as_str() {
                "compression" => {
                    codec = Codec::parse(key, value)?;
                    explicit = true;
                }
                // Spark: `compression` wins over `parquet.compression`.
                "parquet.compression" if !explicit => codec = Codec::parse(key, value)?,
                _ => {}
            }
        }

        let partition_indices = resolve_partition_columns(&schema, partition_by)?;
        let data_indices: Vec<usize> = (0..schema.fields().len())
            .filter(|i| !partition_indices.contains(i))
            .collect();
        if data_indices.is_empty() {
            return Err(analysis!(
                "Cannot use all columns for partition columns: the parquet sink needs at least \
                 one column that is not in partitionBy({})",
                partition_by.join(", ")
            ));
        }
        let partition_prefixes = partition_indices
            .iter()
            .map(|&i| format!("{}=", escape_path_name(schema.field(i).name())))
            .collect();
        let file_schema = Arc::new(Schema::new(
            data_indices
                .iter()
                .map(|&i| file_field(schema.field(i)))
                .collect::<Vec<_>>(),
        ));
        let converter = if partition_indices.is_empty() {
            None
        } else {
            let fields: Vec<SortField> = partition_indices
                .iter()
                .map(|&i| SortField::new(schema.field(i).data_type().clone()))
                .collect();
            Some(RowConverter::new(fields)?)
        };
        let properties = WriterProperties::builder()
            .set_compression(codec.compression()?)
            // Spec-compliant list/map field names and no Date64: readable by more readers.
            .set_coerce_types(true)
            .build();

        let metadata = path.join(METADATA_DIR);
        fs::create_dir_all(&metadata).map_err(|e| Error::io("cannot create", &metadata, e))?;
        Ok(ParquetSink {
            root: path.to_path_buf(),
            schema,
            partition_indices,
            partition_prefixes,
            data_indices,
            file_schema,
            converter,
            properties,
            codec,
            sweep_pending: true,
        })
    }

    fn manifest_path(&self, batch_id: u64) -> PathBuf {
        self.root.join(METADATA_DIR).join(batch_id.to_string())
    }

    /// Casts a batch to the sink's schema (same column names, in order).
    fn conform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let expected = self.schema.fields();
        let actual = batch.schema();
        let same_names = actual.fields().len() == expected.len()
            && actual
                .fields()
                .iter()
                .zip(expected.iter())
                .all(|(a, e)| a.name() == e.name());
        if !same_names {
            return Err(Error::Sink(format!(
                "the parquet sink at {} was created for the columns [{}] but got a batch with \
                 [{}]",
                self.root.display(),
                column_names(&self.schema),
                column_names(&actual)
            )));
        }
        if actual
            .fields()
            .iter()
            .zip(expected.iter())
            .all(|(a, e)| a.data_type() == e.data_type())
        {
            return Ok(batch.clone());
        }
        let columns = batch
            .columns()
            .iter()
            .zip(expected.iter())
            .map(|(column, field)| cast_to(column, field.data_type()))
            .collect::<Result<Vec<_>>>()?;
        let nullable = Arc::new(Schema::new(
            expected
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        Ok(RecordBatch::try_new(nullable, columns)?)
    }

    /// The columns written to the files, cast to the file schema.
    fn data_batch(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let columns = self
            .data_indices
            .iter()
            .zip(self.file_schema.fields().iter())
            .map(|(&i, field)| cast_to(batch.column(i), field.data_type()))
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.file_schema),
            columns,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )?)
    }

    /// Writes the rows of `batches` into one open file per partition folder.
    fn write_rows(
        &self,
        batch_id: u64,
        batches: &[RecordBatch],
        files: &mut BTreeMap<String, PartFile>,
    ) -> Result<()> {
        let options = FormatOptions::new()
            .with_display_error(false)
            .with_timestamp_format(Some(TIMESTAMP_FORMAT))
            .with_timestamp_tz_format(Some(TIMESTAMP_FORMAT));
        for batch in batches.iter().filter(|b| b.num_rows() > 0) {
            let batch = self.conform(batch)?;
            let data = self.data_batch(&batch)?;
            let Some(converter) = &self.converter else {
                self.file_for(batch_id, String::new(), files)?
                    .write(&data)?;
                continue;
            };
            let keys: Vec<ArrayRef> = self
                .partition_indices
                .iter()
                .map(|&i| Arc::clone(batch.column(i)))
                .collect();
            // Group rows by partition value: sort row indices by the row-format encoding of
            // the partition columns (stable, so each file keeps the input order), then
            // write each run of equal keys as one slice.
            let rows = converter.convert_columns(&keys)?;
            let count = u32::try_from(batch.num_rows())
                .map_err(|_| Error::Sink("a batch has more than 2^32 rows".into()))?;
            let mut order: Vec<u32> = (0..count).collect();
            order.sort_by(|&a, &b| rows.row(a as usize).cmp(&rows.row(b as usize)));
            let mut runs = Vec::new();
            let mut start = 0;
            for end in 1..=order.len() {
                if end == order.len()
                    || rows.row(order[end] as usize) != rows.row(order[start] as usize)
                {
                    runs.push((start, end));
                    start = end;
                }
            }
            let sorted = if runs.len() == 1 {
                data
            } else {
                take_record_batch(&data, &UInt32Array::from(order.clone()))?
            };
            let formatters = keys
                .iter()
                .map(|k| ArrayFormatter::try_new(k.as_ref(), &options))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let nulls: Vec<Option<NullBuffer>> = keys.iter().map(|k| k.logical_nulls()).collect();
            for (start, end) in runs {
                let row = order[start] as usize;
                let mut dir = String::new();
                for (column, (formatter, nulls)) in formatters.iter().zip(&nulls).enumerate() {
                    let value = if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                        None
                    } else {
                        Some(formatter.value(row).try_to_string()?)
                    };
                    if column > 0 {
                        dir.push('/');
                    }
                    dir.push_str(&self.partition_folder(column, value.as_deref())?);
                }
                self.file_for(batch_id, dir, files)?
                    .write(&sorted.slice(start, end - start))?;
            }
        }
        Ok(())
    }

    /// The folder name of one partition column's value: `col=escaped`.
    fn partition_folder(&self, column: usize, value: Option<&str>) -> Result<String> {
        let escaped = match value {
            None | Some("") => DEFAULT_PARTITION_NAME.to_string(),
            Some(value) => escape_path_name(value),
        };
        let folder = format!("{}{escaped}", self.partition_prefixes[column]);
        // Escaping guarantees one plain folder name; check it anyway, since this is what
        // keeps data from writing outside the output folder.
        if !is_plain_name(&folder) {
            return Err(Error::Sink(format!(
                "internal error: the partition folder name {folder:?} is not a plain name"
            )));
        }
        if folder.len() > MAX_NAME_BYTES {
            let name = self.schema.field(self.partition_indices[column]).name();
            return Err(Error::Sink(format!(
                "a value of partition column '{name}' is too long for a folder name ({} bytes \
                 escaped, at most {MAX_NAME_BYTES}): {}…",
                folder.len(),
                folder.chars().take(40).collect::<String>()
            )));
        }
        Ok(folder)
    }

    /// The open file of a partition folder, created on first use.
    fn file_for<'a>(
        &self,
        batch_id: u64,
        dir: String,
        files: &'a mut BTreeMap<String, PartFile>,
    ) -> Result<&'a mut PartFile> {
        if !files.contains_key(&dir) {
            let file = PartFile::create(self, batch_id, &dir)?;
            files.insert(dir.clone(), file);
        }
        Ok(files.get_mut(&dir).expect("inserted above"))
    }

    /// Closes every file and moves it to its final name; returns the manifest entries and
    /// the final paths.
    fn finish_files(
        &self,
        files: BTreeMap<String, PartFile>,
        done: &mut Vec<PathBuf>,
    ) -> Result<Vec<ManifestFile>> {
        let mut entries = Vec::with_capacity(files.len());
        let mut dirs = BTreeSet::new();
        let mut open = files.into_values();
        while let Some(file) = open.next() {
            let temporary = file.temporary.clone();
            match file.finish(&self.root) {
                Ok((entry, path)) => {
                    done.push(path);
                    entries.push(entry);
                }
                Err(e) => {
                    remove_quietly(&temporary);
                    for rest in open {
                        rest.discard();
                    }
                    return Err(e);
                }
            }
        }
        // fsync every folder that gained an entry, up to the output folder, so the renames
        // and new partition folders survive a power loss before the manifest names them.
        for path in done.iter() {
            let mut dir = path.parent();
            while let Some(d) = dir {
                dirs.insert(d.to_path_buf());
                if d == self.root {
                    break;
                }
                dir = d.parent();
            }
        }
        for dir in dirs {
            sync_dir(&dir)?;
        }
        Ok(entries)
    }

    /// Deletes the data files (final or temporary) of an uncommitted attempt at `batch_id`.
    fn remove_orphans(&self, batch_id: u64) -> Result<()> {
        let mut folders = vec![self.root.clone()];
        while let Some(folder) = folders.pop() {
            let entries = match fs::read_dir(&folder) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("cannot list", &folder, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| Error::io("cannot list", &folder, e))?;
                let name = entry.file_name().to_string_lossy().to_string();
                // `file_type` does not follow symbolic links: we never walk out of the folder.
                let kind = entry
                    .file_type()
                    .map_err(|e| Error::io("cannot inspect", entry.path(), e))?;
                if kind.is_dir() && name.contains('=') {
                    folders.push(entry.path());
                } else if kind.is_file() && is_data_file_of(&name, batch_id) {
                    let path = entry.path();
                    log::warn!(
                        "removing {} of an uncommitted attempt at batch {batch_id}",
                        path.display()
                    );
                    fs::remove_file(&path).map_err(|e| Error::io("cannot remove", &path, e))?;
                }
            }
        }
        Ok(())
    }
}

impl Sink for ParquetSink {
    fn add_batch(
        &mut self,
        batch_id: u64,
        _schema: &SchemaRef,
        batches: &[RecordBatch],
        mode: OutputMode,
    ) -> Result<()> {
        if mode != OutputMode::Append {
            return Err(analysis!(
                "Data source parquet does not support {mode:?} output mode: the file sink writes \
                 each row once and never rewrites it; use outputMode(\"append\")"
            ));
        }
        let manifest_path = self.manifest_path(batch_id);
        if manifest_path
            .try_exists()
            .map_err(|e| Error::io("cannot inspect", &manifest_path, e))?
        {
            log::info!(
                "batch {batch_id} is already committed in {}; skipping it",
                self.root.display()
            );
            return Ok(());
        }
        if self.sweep_pending {
            self.remove_orphans(batch_id)?;
        }
        // Until this batch commits, a retry must sweep again.
        self.sweep_pending = true;

        // Why one file per partition value per batch, and no compaction: Spark writes one
        // file per task and partition value, so a streaming query with many tasks and short
        // triggers buries readers in tiny files. We run a batch as one task, so each batch
        // writes at most one file per partition folder, however many record batches it
        // came in, and an empty batch writes none; the number of files grows only with
        // batches that produce rows. Merging old files (compaction) would have to rewrite
        // committed files and the manifests that name them without breaking concurrent
        // readers; it is left out on purpose, and a longer trigger interval is the remedy
        // for a query whose batches each emit a few rows.
        let mut files = BTreeMap::new();
        let mut done = Vec::new();
        let written = self
            .write_rows(batch_id, batches, &mut files)
            .and_then(|()| self.finish_files(std::mem::take(&mut files), &mut done));
        let entries = match written {
            Ok(entries) => entries,
            Err(e) => {
                for file in files.into_values() {
                    file.discard();
                }
                for path in &done {
                    remove_quietly(path);
                }
                return Err(e);
            }
        };

        // The commit: the manifest, once every file it names is in place.
        let rows: u64 = entries.iter().map(|f| f.rows).sum();
        let manifest = Manifest {
            batch_id,
            files: entries,
        };
        let text = serde_json::to_vec(&manifest)
            .map_err(|e| Error::Sink(format!("cannot encode the manifest: {e}")))?;
        if let Err(e) = write_atomic(&manifest_path, &text) {
            // Not committed: leave no data file behind for readers that list folders.
            for path in &done {
                remove_quietly(path);
            }
            return Err(e);
        }
        sync_dir(&self.root.join(METADATA_DIR))?;
        self.sweep_pending = false;
        log::debug!(
            "committed batch {batch_id} to {}: {} files, {rows} rows",
            self.root.display(),
            manifest.files.len()
        );
        Ok(())
    }

    fn description(&self) -> String {
        format!("FileSink[{}]", self.root.display())
    }
}

/// A data file being written: a hidden temporary name in its final folder.
struct PartFile {
    /// The folder relative to the output folder (`""` or `a=1/b=2`).
    dir: String,
    name: String,
    temporary: PathBuf,
    writer: ArrowWriter<fs::File>,
    rows: u64,
}

impl PartFile {
    fn create(sink: &ParquetSink, batch_id: u64, dir: &str) -> Result<PartFile> {
        let folder = sink.root.join(dir);
        fs::create_dir_all(&folder).map_err(|e| Error::io("cannot create", &folder, e))?;
        let name = format!(
            "part-{batch_id:05}-{}{}",
            uuid::Uuid::new_v4(),
            sink.codec.suffix()
        );
        // Starts with '.': readers that list folders (Spark, pyarrow, DuckDB) skip it.
        let temporary = folder.join(format!(".{name}.tmp"));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
            .map_err(|e| Error::io("cannot create", &temporary, e))?;
        let writer = match ArrowWriter::try_new(
            file,
            Arc::clone(&sink.file_schema),
            Some(sink.properties.clone()),
        ) {
            Ok(writer) => writer,
            Err(e) => {
                remove_quietly(&temporary);
                return Err(e.into());
            }
        };
        Ok(PartFile {
            dir: dir.to_string(),
            name,
            temporary,
            writer,
            rows: 0,
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch)?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Writes the footer, fsyncs, and renames to the final name.
    fn finish(self, root: &Path) -> Result<(ManifestFile, PathBuf)> {
        let file = self.writer.into_inner()?;
        file.sync_all()
            .map_err(|e| Error::io("cannot write", &self.temporary, e))?;
        let bytes = file
            .metadata()
            .map_err(|e| Error::io("cannot inspect", &self.temporary, e))?
            .len();
        drop(file);
        let (relative, path) = if self.dir.is_empty() {
            (self.name.clone(), root.join(&self.name))
        } else {
            (
                format!("{}/{}", self.dir, self.name),
                root.join(&self.dir).join(&self.name),
            )
        };
        fs::rename(&self.temporary, &path)
            .map_err(|e| Error::io("cannot rename into", &path, e))?;
        Ok((
            ManifestFile {
                path: relative,
                rows: self.rows,
                bytes,
            },
            path,
        ))
    }

    /// Abandons the file and deletes it.
    fn discard(self) {
        let temporary = self.temporary;
        drop(self.writer);
        remove_quietly(&temporary);
    }
}

/// The data files a reader should see: exactly those named by committed manifest entries,
/// as paths relative to `path`, in commit (batch id) order. An output folder without a
/// manifest folder has no committed files; a manifest that cannot be read or names a path
/// outside the folder is an error naming the manifest.
pub fn committed_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path
        .try_exists()
        .map_err(|e| Error::io("cannot inspect", path, e))?
    {
        return Err(Error::io(
            "cannot read the parquet output folder",
            path,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let folder = path.join(METADATA_DIR);
    let entries = match fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("cannot list", &folder, e)),
    };
    let mut ids = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("cannot list", &folder, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        // Only canonical batch ids: temporary files (`.7.<uuid>.tmp`) and others are not
        // commits.
        if let Ok(id) = name.parse::<u64>() {
            if id.to_string() == name {
                ids.push(id);
            }
        }
    }
    ids.sort_unstable();
    let mut files = Vec::new();
    for id in ids {
        let manifest_path = folder.join(id.to_string());
        let corrupt = |detail: String| {
            Error::Sink(format!(
                "the parquet sink manifest {} is corrupt ({detail}); restore it, or delete it \
                 and its data files to drop that batch",
                manifest_path.display()
            ))
        };
        let text = fs::read(&manifest_path)
            .map_err(|e| Error::io("cannot read the manifest", &manifest_path, e))?;
        let manifest: Manifest =
            serde_json::from_slice(&text).map_err(|e| corrupt(e.to_string()))?;
        if manifest.batch_id != id {
            return Err(corrupt(format!(
                "it says batchId {} but its name is {id}",
                manifest.batch_id
            )));
        }
        for file in manifest.files {
            if file.path.is_empty() || !file.path.split('/').all(is_plain_name) {
                return Err(corrupt(format!(
                    "the path {:?} is not a relative path inside the output folder",
                    file.path
                )));
            }
            files.push(file.path.split('/').collect::<PathBuf>());
        }
    }
    Ok(files)
}

/// Escapes one path name as Spark's `ExternalCatalogUtils.escapePathName`: `%XX` (upper-case
/// hex) for control characters (NUL included), `"`, `#`, `%`, `'`, `*`, `/`, `:`, `=`, `?`,
/// `\`, DEL, `{`, `}`, `[`, `]` and `^` (and, on Windows, space, `<`, `>`, `|`); other
/// characters, non-ASCII included, are kept. A whole value of `.` or `..` becomes `%2E` or
/// `%2E%2E`, so it can never name the current or the parent folder.
pub fn escape_path_name(value: &str) -> String {
    if value == "." || value == ".." {
        return "%2E".repeat(value.len());
    }
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        if needs_escaping(c) {
            let _ = write!(escaped, "%{:02X}", c as u32);
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// Reverses [`escape_path_name`] as Spark's `unescapePathName` does: each `%` followed by two
/// hex digits becomes that character; anything else is kept.
pub fn unescape_path_name(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            // Both are ASCII, so the slice is on char boundaries.
            if let Ok(code) = u8::from_str_radix(&name[i + 1..i + 3], 16) {
                out.push(char::from(code));
                i += 3;
                continue;
            }
        }
        let c = name[i..].chars().next().expect("i is on a char boundary");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

fn needs_escaping(c: char) -> bool {
    matches!(
        c,
        '\u{00}'
            ..='\u{1F}'
                | '"'
                | '#'
                | '%'
                | '\''
                | '*'
                | '/'
                | ':'
                | '='
                | '?'
                | '\\'
                | '\u{7F}'
                | '{'
                | '}'
                | '['
                | ']'
                | '^'
    ) || (cfg!(windows) && matches!(c, ' ' | '<' | '>' | '|'))
}

/// One folder or file name that names neither this folder nor its parent and holds no
/// separator: joining it to a folder stays inside that folder.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && Path::new(name).components().count() == 1
        && matches!(
            Path::new(name).components().next(),
            Some(std::path::Component::Normal(_))
        )
}

/// Whether `name` is a data file (final or temporary) that this sink writes for `batch_id`:
/// `part-<id:05>-<uuid><suffix>`, optionally as `.<that>.tmp`. Spark's own files
/// (`part-00000-<uuid>-c000.snappy.parquet`) do not match.
fn is_data_file_of(name: &str, batch_id: u64) -> bool {
    let name = match name.strip_prefix('.') {
        Some(hidden) => match hidden.strip_suffix(".tmp") {
            Some(name) => name,
            None => return false,
        },
        None => name,
    };
    let Some(rest) = name.strip_prefix(&format!("part-{batch_id:05}-")) else {
        return false;
    };
    let (Some(uuid), Some(suffix)) = (rest.get(..36), rest.get(36..)) else {
        return false;
    };
    uuid::Uuid::try_parse(uuid).is_ok() && SUFFIXES.contains(&suffix)
}

/// Finds the partition columns in the schema (exact name first, else the one
/// case-insensitive match, as Spark resolves names by default) and checks them.
fn resolve_partition_columns(schema: &Schema, partition_by: &[String]) -> Result<Vec<usize>> {
    let mut indices = Vec::with_capacity(partition_by.len());
    for wanted in partition_by {
        let index = match schema.index_of(wanted) {
            Ok(i) => i,
            Err(_) => {
                let matches: Vec<usize> = schema
                    .fields()
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.name().eq_ignore_ascii_case(wanted))
                    .map(|(i, _)| i)
                    .collect();
                match matches.as_slice() {
                    [i] => *i,
                    [] => {
                        return Err(analysis!(
                            "Partition column `{wanted}` not found in the result columns [{}]",
                            column_names(schema)
                        ))
                    }
                    _ => {
                        return Err(analysis!(
                            "Partition column `{wanted}` is ambiguous: it matches several result \
                             columns [{}]",
                            column_names(schema)
                        ))
                    }
                }
            }
        };
        if indices.contains(&index) {
            return Err(analysis!(
                "Found duplicate column(s) in the partition schema: `{}`",
                schema.field(index).name()
            ));
        }
        let field = schema.field(index);
        if !is_partition_type(field.data_type()) {
            return Err(analysis!(
                "Cannot use {} for partition column `{}`: partition columns must be strings, \
                 numbers, booleans, dates or timestamps",
                field.data_type(),
                field.name()
            ));
        }
        indices.push(index);
    }
    Ok(indices)
}

fn is_partition_type(data_type: &DataType) -> bool {
    use DataType::*;
    match data_type {
        Boolean
        | Int8
        | Int16
        | Int32
        | Int64
        | UInt8
        | UInt16
        | UInt32
        | UInt64
        | Float16
        | Float32
        | Float64
        | Decimal32(_, _)
        | Decimal64(_, _)
        | Decimal128(_, _)
        | Decimal256(_, _)
        | Utf8
        | LargeUtf8
        | Utf8View
        | Date32
        | Date64
        | Timestamp(_, _) => true,
        Dictionary(_, values) => is_partition_type(values),
        _ => false,
    }
}

/// A column as it is stored in the files: nullable (Spark writes every column nullable) and
/// with microsecond timestamps (what Spark and most readers expect).
fn file_field(field: &Field) -> Field {
    field
        .clone()
        .with_data_type(file_type(field.data_type()))
        .with_nullable(true)
}

fn file_type(data_type: &DataType) -> DataType {
    let child = |f: &FieldRef| Arc::new(file_field(f));
    match data_type {
        DataType::Timestamp(unit, zone) if *unit != TimeUnit::Microsecond => {
            DataType::Timestamp(TimeUnit::Microsecond, zone.clone())
        }
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(child).collect()),
        DataType::List(f) => DataType::List(child(f)),
        DataType::LargeList(f) => DataType::LargeList(child(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(child(f), *n),
        other => other.clone(),
    }
}

fn cast_to(column: &ArrayRef, data_type: &DataType) -> Result<ArrayRef> {
    if column.data_type() == data_type {
        Ok(Arc::clone(column))
    } else {
        Ok(cast(column, data_type)?)
    }
}

fn column_names(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn sync_dir(dir: &Path) -> Result<()> {
    // Opening a folder to fsync it works on Unix; elsewhere it is best effort.
    match fs::File::open(dir) {
        Ok(handle) => match handle.sync_all() {
            Ok(()) => Ok(()),
            Err(e) if cfg!(unix) => Err(Error::io("cannot sync", dir, e)),
            Err(_) => Ok(()),
        },
        Err(e) if cfg!(unix) => Err(Error::io("cannot open", dir, e)),
        Err(_) => Ok(()),
    }
}

fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            log::warn!("cannot remove {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_like_spark() {
        // Expected values follow from the rule: %XX upper-case hex of the code point.
        assert_eq!(escape_path_name("BTCUSDT"), "BTCUSDT");
        assert_eq!(escape_path_name("a/b"), "a%2Fb");
        assert_eq!(escape_path_name("../../x"), "..%2F..%2Fx");
        assert_eq!(escape_path_name(".."), "%2E%2E");
        assert_eq!(escape_path_name("."), "%2E");
        assert_eq!(escape_path_name("..."), "...");
        assert_eq!(escape_path_name("%2e%2e"), "%252e%252e");
        assert_eq!(escape_path_name("a\0b"), "a%00b");
        assert_eq!(escape_path_name("x=1:2"), "x%3D1%3A2");
        assert_eq!(escape_path_name("C:\\t"), "C%3A%5Ct");
        assert_eq!(escape_path_name("{}[]^"), "%7B%7D%5B%5D%5E");
        assert_eq!(escape_path_name("\"#'*?\u{7f}\n"), "%22%23%27%2A%3F%7F%0A");
        assert_eq!(escape_path_name("é-ü"), "é-ü");
    }

    #[test]
    fn unescapes_like_spark() {
        assert_eq!(unescape_path_name("a%2Fb"), "a/b");
        assert_eq!(unescape_path_name("%2e%2E"), "..");
        assert_eq!(unescape_path_name("100%"), "100%");
        assert_eq!(unescape_path_name("%4"), "%4");
        assert_eq!(unescape_path_name("%zz%41"), "%zzA");
        assert_eq!(unescape_path_name("é%20"), "é ");
    }

    #[test]
    fn recognises_only_its_own_files_of_the_batch() {
        let uuid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
        assert!(is_data_file_of(
            &format!("part-00003-{uuid}.zstd.parquet"),
            3
        ));
        assert!(is_data_file_of(
            &format!(".part-00003-{uuid}.parquet.tmp"),
            3
        ));
        assert!(is_data_file_of(
            &format!("part-123456-{uuid}.snappy.parquet"),
            123456
        ));
        assert!(!is_data_file_of(
            &format!("part-00003-{uuid}.zstd.parquet"),
            4
        ));
        assert!(!is_data_file_of(
            &format!("part-00003-{uuid}-c000.snappy.parquet"),
            3
        ));
        assert!(!is_data_file_of(&format!(".part-00003-{uuid}.parquet"), 3));
        assert!(!is_data_file_of("part-00003-not-a-uuid.zstd.parquet", 3));
    }

    #[test]
    fn codec_option_is_checked() {
        assert_eq!(
            Codec::parse("compression", "ZSTD").expect("ok"),
            Codec::Zstd
        );
        assert_eq!(
            Codec::parse("compression", "none").expect("ok"),
            Codec::Uncompressed
        );
        let error = Codec::parse("compression", "lz77").expect_err("refused");
        let message = error.to_string();
        assert!(message.contains("compression") && message.contains("lz77"));
        assert!(message.contains("zstd") && message.contains("snappy"));
    }

    #[test]
    fn nanosecond_timestamps_are_stored_as_microseconds() {
        let zone: Option<Arc<str>> = Some("UTC".into());
        let field = Field::new(
            "t",
            DataType::Struct(
                vec![Field::new(
                    "start",
                    DataType::Timestamp(TimeUnit::Nanosecond, zone.clone()),
                    false,
                )]
                .into(),
            ),
            false,
        );
        let stored = file_field(&field);
        assert!(stored.is_nullable());
        let DataType::Struct(children) = stored.data_type() else {
            panic!("still a struct");
        };
        assert_eq!(
            children[0].data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, zone)
        );
    }

    proptest! {
        #[test]
        fn escaped_values_are_one_plain_name_and_round_trip(value in "\\PC{0,12}|[./%\\\\\u{0}-\u{1f}]{0,6}") {
            let escaped = escape_path_name(&value);
            prop_assert!(value.is_empty() || is_plain_name(&escaped), "{escaped:?}");
            let folder = format!("col={escaped}");
            prop_assert!(is_plain_name(&folder));
            prop_assert_eq!(unescape_path_name(&escaped), value);
        }
    }
}
