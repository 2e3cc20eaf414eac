//! Batch writes to files (`df.write.parquet(path)`, `.json`, `.csv`) with Spark's save
//! modes. A write is one more committed batch in the folder's manifest, so streaming and
//! batch writers, and readers through the manifest, all see whole writes only.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::manifest::last_batch_id;
use super::FileSink;
use crate::error::{Error, Result};
use crate::plan::OutputMode;
use crate::sink::Sink;
use crate::{analysis, illegal};

/// Spark's `SaveMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveMode {
    /// Add to what is there.
    Append,
    /// Replace the folder.
    Overwrite,
    /// Fail if the folder holds anything (Spark's default).
    ErrorIfExists,
    /// Do nothing if the folder holds anything.
    Ignore,
}

impl SaveMode {
    /// Parses `mode(...)` as Spark does (case-insensitive; `error` and `default` are
    /// `errorifexists`).
    pub fn parse(text: &str) -> Result<SaveMode> {
        match text.trim().to_ascii_lowercase().as_str() {
            "append" => Ok(SaveMode::Append),
            "overwrite" => Ok(SaveMode::Overwrite),
            "error" | "errorifexists" | "default" | "" => Ok(SaveMode::ErrorIfExists),
            "ignore" => Ok(SaveMode::Ignore),
            _ => Err(illegal!(
                "Unknown save mode: {text}. Accepted save modes are 'overwrite', 'append', \
                 'ignore', 'error', 'errorifexists', 'default'."
            )),
        }
    }
}

/// Writes `batches` as `format` files under `path`; returns the rows written.
pub fn save_files(
    format: &str,
    path: &Path,
    partition_by: &[String],
    options: &BTreeMap<String, String>,
    mode: SaveMode,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<u64> {
    let occupied = match fs::read_dir(path) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::io("cannot list", path, e)),
    };
    match (mode, occupied) {
        (SaveMode::ErrorIfExists, true) => {
            return Err(analysis!(
                "[PATH_ALREADY_EXISTS] Path {} already exists. Set mode as \"overwrite\" to \
                 overwrite the existing path.",
                path.display()
            ))
        }
        (SaveMode::Ignore, true) => return Ok(0),
        (SaveMode::Overwrite, true) => {
            fs::remove_dir_all(path).map_err(|e| Error::io("cannot overwrite", path, e))?
        }
        _ => {}
    }
    let mut sink = FileSink::new(format, path, partition_by, options, schema.clone())?;
    let batch_id = last_batch_id(path)?.map_or(0, |id| id + 1);
    sink.add_batch(batch_id, &schema, batches, OutputMode::Append)?;
    Ok(batches.iter().map(|b| b.num_rows() as u64).sum())
}
