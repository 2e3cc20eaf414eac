//! The data files of a batch as they are written: the rows bound for each partition folder
//! ([`Piece`]s of the input, not copies), and a [`PartFile`] under a hidden temporary name that
//! becomes visible, fsynced, under its final name only when it is complete.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;

use super::format::PartWriter;
use super::{remove_quietly, FileSink, ManifestFile};
use crate::error::{Error, Result};

/// The pieces of the input bound for each partition folder (`""` when unpartitioned).
pub(super) type Folders = BTreeMap<String, Vec<Piece>>;

/// Rows of one input batch bound for one partition folder.
pub(super) struct Piece {
    /// The input batch, as an index into the batches cast to the file schema.
    pub(super) batch: usize,
    /// Its rows in this folder, in input order; `None`: all of them.
    pub(super) rows: Option<UInt32Array>,
}

impl Piece {
    pub(super) fn rows_of(&self, data: &[RecordBatch]) -> Result<RecordBatch> {
        let batch = &data[self.batch];
        Ok(match &self.rows {
            None => batch.clone(),
            Some(rows) => take_record_batch(batch, rows)?,
        })
    }
}

/// A data file being written: a hidden temporary name in its final folder.
pub(super) struct PartFile {
    /// The folder relative to the output folder (`""` or `a=1/b=2`).
    dir: String,
    name: String,
    temporary: PathBuf,
    writer: PartWriter,
    rows: u64,
}

impl PartFile {
    fn create(sink: &FileSink, batch_id: u64, dir: &str) -> Result<PartFile> {
        let folder = sink.root.join(dir);
        fs::create_dir_all(&folder).map_err(|e| Error::io("cannot create", &folder, e))?;
        let name = format!(
            "part-{batch_id:05}-{}{}",
            uuid::Uuid::new_v4(),
            sink.format.suffix()
        );
        // Starts with '.': readers that list folders (Spark, pyarrow, DuckDB) skip it.
        let temporary = folder.join(format!(".{name}.tmp"));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
            .map_err(|e| Error::io("cannot create", &temporary, e))?;
        let writer = match sink.template.writer(file) {
            Ok(writer) => writer,
            Err(e) => {
                remove_quietly(&temporary);
                return Err(e);
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

    /// Creates a file of `batch_id` in `dir` and lets `fill` write its rows; a failure leaves
    /// nothing of it behind.
    pub(super) fn filled(
        sink: &FileSink,
        batch_id: u64,
        dir: &str,
        fill: impl FnOnce(&mut PartFile) -> Result<()>,
    ) -> Result<PartFile> {
        let mut file = PartFile::create(sink, batch_id, dir)?;
        match fill(&mut file) {
            Ok(()) => Ok(file),
            Err(e) => {
                file.discard();
                Err(e)
            }
        }
    }

    /// [`PartFile::finish`], deleting the file if that fails.
    pub(super) fn finish_or_remove(self, root: &Path) -> Result<(ManifestFile, PathBuf)> {
        let temporary = self.temporary.clone();
        self.finish(root)
            .inspect_err(|_| remove_quietly(&temporary))
    }

    pub(super) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch)?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Writes the footer, fsyncs, and renames to the final name.
    fn finish(self, root: &Path) -> Result<(ManifestFile, PathBuf)> {
        let file = self.writer.finish()?;
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
    pub(super) fn discard(self) {
        let temporary = self.temporary;
        drop(self.writer);
        remove_quietly(&temporary);
    }
}
