//! The file sink, as Spark's `FileStreamSink`: `writeStream.format("parquet")
//! .partitionBy("symbol").option("path", dir)`, exactly once; `json` and `csv` too
//! (see `format.rs`).
//!
//! Layout of the output folder:
//!
//! ```text
//! <path>/symbol=BTCUSDT/part-00007-<uuid>.snappy.parquet   data files (Hive partitioning)
//! <path>/_ferrostream_metadata/7                           the manifest of batch 7
//! ```
//!
//! A batch is committed when its manifest exists: `{"batchId": 7, "files": [{"path":
//! "symbol=BTCUSDT/part-00007-….snappy.parquet", "rows": 12, "bytes": 3456}]}`, written
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
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow::buffer::NullBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};
use arrow::row::{RowConverter, SortField};
use arrow::util::display::{ArrayFormatter, FormatOptions};

mod compact;
mod format;
mod manifest;
mod part;
mod paths;
mod save;

pub use format::FileFormat;
use format::WriterTemplate;
pub use manifest::{committed_files, METADATA_DIR};
use manifest::{Manifest, ManifestFile};
use part::{Folders, PartFile, Piece};
pub use paths::{escape_path_name, unescape_path_name};
use paths::{is_data_file_of, is_plain_name};
pub use save::{save_files, SaveMode};

use super::Sink;
use crate::analysis;
use crate::checkpoint::write_atomic;
use crate::error::{Error, Result};
use crate::plan::OutputMode;

/// The folder name of a null or empty partition value (Hive's and Spark's).
pub const DEFAULT_PARTITION_NAME: &str = "__HIVE_DEFAULT_PARTITION__";

/// The longest folder or file name most file systems accept, in bytes.
const MAX_NAME_BYTES: usize = 255;

/// Files of a batch open at once. One file at a time would bound memory best, but glibc
/// returns the freed top of the heap to the system after each file and faults it back in for
/// the next (4 `brk` calls per file); a group pays that once. Memory is bounded by this, not
/// by the number of partition folders.
const FILES_AT_ONCE: usize = 16;

/// Timestamps in partition folder names, as Spark casts them to strings.
const TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.f";

/// The file sink (parquet, json or csv).
pub struct FileSink {
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
    format: FileFormat,
    /// What every data file starts with, worked out once.
    template: WriterTemplate,
    /// The committed files still part of the output, by partition folder.
    live: BTreeMap<String, Vec<ManifestFile>>,
    /// Small files in one folder that trigger a compaction (0: never).
    min_files_to_compact: usize,
    /// Whether the next batch must first delete the files of an earlier, uncommitted
    /// attempt at it: true for the first batch of this sink (a restarted query reruns its
    /// uncommitted batch first) and after a failed batch.
    sweep_pending: bool,
}

impl FileSink {
    /// A sink writing `format` files (parquet, json, csv) under `path`, in Hive folders of
    /// the `partition_by` columns, with Spark's writer `options` (keys case-insensitive;
    /// parquet: `compression` or `parquet.compression`: snappy (default, as Spark's), zstd,
    /// none, uncompressed; csv: `header`; other options are ignored, as Spark ignores options
    /// a format does not know).
    pub fn new(
        format: &str,
        path: &Path,
        partition_by: &[String],
        options: &BTreeMap<String, String>,
        schema: SchemaRef,
    ) -> Result<Self> {
        let format = FileFormat::parse(format, options)?;
        let min_files_to_compact = compact::min_files(&format, options)?;

        let partition_indices = resolve_partition_columns(&schema, partition_by)?;
        let data_indices: Vec<usize> = (0..schema.fields().len())
            .filter(|i| !partition_indices.contains(i))
            .collect();
        if data_indices.is_empty() {
            return Err(analysis!(
                "Cannot use all columns for partition columns: the {} sink needs at least one \
                 column that is not in partitionBy({})",
                format.name(),
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
        format.check_schema(&file_schema)?;
        let template = format.template(&file_schema)?;

        let metadata = path.join(METADATA_DIR);
        fs::create_dir_all(&metadata).map_err(|e| Error::io("cannot create", &metadata, e))?;
        let (committed, removed) = manifest::live_files(path)?;
        let mut live: BTreeMap<String, Vec<ManifestFile>> = BTreeMap::new();
        for file in committed {
            live.entry(file.folder().to_string())
                .or_default()
                .push(file);
        }
        let sink = FileSink {
            root: path.to_path_buf(),
            schema,
            partition_indices,
            partition_prefixes,
            data_indices,
            file_schema,
            converter,
            format,
            template,
            live,
            min_files_to_compact,
            sweep_pending: true,
        };
        sink.remove_replaced(&removed);
        Ok(sink)
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
                "the file sink at {} was created for the columns [{}] but got a batch with \
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

    /// Groups the rows of `batches` by partition folder without copying them: the input
    /// batches cast to the file schema, and for each folder the pieces of them bound for it,
    /// in input order.
    fn group_rows(&self, batches: &[RecordBatch]) -> Result<(Vec<RecordBatch>, Folders)> {
        let options = FormatOptions::new()
            .with_display_error(false)
            .with_timestamp_format(Some(TIMESTAMP_FORMAT))
            .with_timestamp_tz_format(Some(TIMESTAMP_FORMAT));
        let mut data = Vec::with_capacity(batches.len());
        let mut folders = Folders::new();
        for batch in batches.iter().filter(|b| b.num_rows() > 0) {
            let batch = self.conform(batch)?;
            let index = data.len();
            data.push(self.data_batch(&batch)?);
            let Some(converter) = &self.converter else {
                folders.entry(String::new()).or_default().push(Piece {
                    batch: index,
                    rows: None,
                });
                continue;
            };
            let keys: Vec<ArrayRef> = self
                .partition_indices
                .iter()
                .map(|&i| Arc::clone(batch.column(i)))
                .collect();
            // Group rows by partition value: sort row indices by the row-format encoding of
            // the partition columns (stable, so each file keeps the input order); each run of
            // equal keys is one piece.
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
            let whole = runs.len() == 1;
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
                let rows = (!whole).then(|| UInt32Array::from(order[start..end].to_vec()));
                folders
                    .entry(dir)
                    .or_default()
                    .push(Piece { batch: index, rows });
            }
        }
        Ok((data, folders))
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

    /// Writes one file per folder of `folders` (rows of `data`), [`FILES_AT_ONCE`] at a time
    /// from creation to their final names, so that many writers (for Parquet: encoders and a
    /// codec per column) are alive at once however many folders a batch touches; then fsyncs
    /// the folders. Returns the manifest entries; `done` collects the final paths, for
    /// cleanup if a later file fails.
    fn write_files(
        &self,
        batch_id: u64,
        data: &[RecordBatch],
        folders: Folders,
        done: &mut Vec<PathBuf>,
    ) -> Result<Vec<ManifestFile>> {
        let mut entries = Vec::with_capacity(folders.len());
        let mut folders = folders.into_iter().peekable();
        while folders.peek().is_some() {
            let mut open = Vec::with_capacity(FILES_AT_ONCE);
            for (dir, pieces) in folders.by_ref().take(FILES_AT_ONCE) {
                let filled = PartFile::filled(self, batch_id, &dir, |file| {
                    pieces
                        .iter()
                        .try_for_each(|piece| file.write(&piece.rows_of(data)?))
                });
                match filled {
                    Ok(file) => open.push(file),
                    Err(e) => {
                        open.into_iter().for_each(PartFile::discard);
                        return Err(e);
                    }
                }
            }
            // Finished side by side: each fsync waits on the disk, and the file system
            // commits concurrent fsyncs together (100 files: ~60 ms here, ~400 ms one by one).
            let root = self.root.clone();
            let finished = on_threads(open, move |file| file.finish_or_remove(&root));
            let mut failure = None;
            for result in finished {
                match result {
                    Ok((entry, path)) => {
                        done.push(path);
                        entries.push(entry);
                    }
                    Err(e) => failure = failure.or(Some(e)),
                }
            }
            if let Some(e) = failure {
                return Err(e);
            }
        }
        let mut dirs = BTreeSet::new();
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
        let dirs: Vec<PathBuf> = dirs.into_iter().collect();
        for group in dirs.chunks(FILES_AT_ONCE) {
            on_threads(group.to_vec(), |dir| sync_dir(&dir))
                .into_iter()
                .collect::<Result<Vec<()>>>()?;
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

impl Sink for FileSink {
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

        // One file per partition folder per batch, however many record batches it came in
        // (an empty batch writes none); small files are compacted (see compact.rs).
        let mut done = Vec::new();
        let written = self
            .group_rows(batches)
            .and_then(|(data, folders)| self.write_files(batch_id, &data, folders, &mut done));
        let entries = match written {
            Ok(entries) => entries,
            Err(e) => {
                for path in &done {
                    remove_quietly(path);
                }
                return Err(e);
            }
        };

        let compacted = self.compact(batch_id, entries, &mut done);

        // The commit: the manifest, once every file it names is in place.
        let rows: u64 = compacted.entries.iter().map(|f| f.rows).sum();
        let manifest = Manifest {
            batch_id,
            files: compacted.entries,
            removed: compacted.removed,
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
        self.remove_replaced(&manifest.removed);
        self.record_commit(&manifest.files, &manifest.removed);
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

/// `work` on each item, side by side on the runtime's blocking threads, results in the items'
/// order. The threads are kept between batches: a batch of the seed pipeline touches 100
/// folders, and a thread spawned per file and per folder was ~700 thread starts per run.
fn on_threads<T, R, F>(items: Vec<T>, work: F) -> Vec<Result<R>>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Result<R> + Send + Sync + 'static,
{
    let runtime = match crate::exec::runtime::runtime() {
        Ok(runtime) => runtime,
        Err(_) => return items.into_iter().map(work).collect(),
    };
    let work = Arc::new(work);
    let count = items.len();
    let (done, results) = std::sync::mpsc::channel();
    for (index, item) in items.into_iter().enumerate() {
        let (work, done) = (Arc::clone(&work), done.clone());
        runtime.spawn_blocking(move || {
            // The receiver waits for every item, so this send fails only if it panicked.
            let _ = done.send((index, work(item)));
        });
    }
    drop(done);
    let mut ordered: Vec<Option<Result<R>>> = (0..count).map(|_| None).collect();
    for (index, result) in results {
        ordered[index] = Some(result);
    }
    ordered
        .into_iter()
        .map(|result| {
            result.unwrap_or_else(|| Err(Error::Sink("a file writer thread panicked".into())))
        })
        .collect()
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

    #[test]
    fn work_side_by_side_keeps_the_items_order_and_reports_a_panic_as_an_error() {
        let results = on_threads((0..40u64).collect(), |n| {
            // Later items finish first.
            std::thread::sleep(std::time::Duration::from_millis(40 - n));
            if n == 7 {
                panic!("item 7");
            }
            Ok(n * 2)
        });
        assert_eq!(results.len(), 40);
        for (n, result) in results.into_iter().enumerate() {
            match result {
                Ok(doubled) => assert_eq!(doubled, 2 * n as u64),
                Err(e) => {
                    assert_eq!(n, 7);
                    assert!(e.to_string().contains("panicked"), "{e}");
                }
            }
        }
    }
}
