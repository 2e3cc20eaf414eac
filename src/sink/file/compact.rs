//! Compaction of small Parquet files. A query whose batches each emit a few rows (hourly
//! candles every 10 seconds) would otherwise leave one tiny file per partition per batch
//! that emitted rows. When a batch writes a file into a folder that already holds
//! `minFilesToCompact - 1` small committed files, the batch writes one file with all their
//! rows instead, and its manifest lists the files it replaced under `removed`. The commit is
//! still the manifest: a crash before it leaves the old files live and the new ones orphaned
//! (the rerun sweeps them); a crash after it leaves replaced files on disk, which the next
//! start deletes. Replaced files are deleted once the manifest is written, so readers that
//! list folders instead of reading the manifest do not see rows twice for long.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{remove_quietly, FileFormat, FileSink, ManifestFile, PartFile};
use crate::error::{Error, Result};
use crate::illegal;

/// Files smaller than this count as small.
pub const SMALL_FILE_BYTES: u64 = 32 * 1024 * 1024;
/// The default of `minFilesToCompact`: a day of hourly candles per partition.
pub const DEFAULT_MIN_FILES: usize = 24;

/// When to compact: `minFilesToCompact` small files in one folder (0 turns it off). Only
/// Parquet output is compacted.
pub fn min_files(format: &FileFormat, options: &BTreeMap<String, String>) -> Result<usize> {
    let given = options
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("minFilesToCompact"));
    let min = match given {
        None => DEFAULT_MIN_FILES,
        Some((_, value)) => value.trim().parse::<usize>().map_err(|_| {
            illegal!(
                "file sink: option 'minFilesToCompact' must be a whole number (0 turns \
                 compaction off), got '{value}'"
            )
        })?,
    };
    Ok(match format {
        FileFormat::Parquet { .. } if min >= 2 => min,
        _ => 0,
    })
}

/// What a compaction did: the batch's manifest entries and the committed files it replaced.
pub struct Compacted {
    pub entries: Vec<ManifestFile>,
    pub removed: Vec<String>,
}

impl FileSink {
    /// Merges, per folder this batch wrote to, the batch's new file with the folder's small
    /// committed files when there are enough of them. `done` holds the final paths of the
    /// files written for this batch (for cleanup on failure); merged-away new files leave it.
    pub(super) fn compact(
        &self,
        batch_id: u64,
        entries: Vec<ManifestFile>,
        done: &mut Vec<PathBuf>,
    ) -> Compacted {
        let mut result = Compacted {
            entries: Vec::with_capacity(entries.len()),
            removed: Vec::new(),
        };
        for entry in entries {
            let small: Vec<&ManifestFile> = self
                .live
                .get(entry.folder())
                .map(|files| {
                    files
                        .iter()
                        .filter(|f| f.bytes < SMALL_FILE_BYTES)
                        .collect()
                })
                .unwrap_or_default();
            if self.min_files_to_compact == 0
                || entry.bytes >= SMALL_FILE_BYTES
                || small.len() + 1 < self.min_files_to_compact
            {
                result.entries.push(entry);
                continue;
            }
            let sources: Vec<&ManifestFile> = small.into_iter().chain([&entry]).collect();
            match self.merge(batch_id, entry.folder(), &sources) {
                Ok((merged, path)) => {
                    let fresh = self.root.join(&entry.path);
                    done.retain(|p| p != &fresh);
                    remove_quietly(&fresh);
                    done.push(path);
                    log::info!(
                        "batch {batch_id}: compacted {} files of {}/{} into {}",
                        sources.len(),
                        self.root.display(),
                        entry.folder(),
                        merged.path
                    );
                    result
                        .removed
                        .extend(sources[..sources.len() - 1].iter().map(|f| f.path.clone()));
                    result.entries.push(merged);
                }
                Err(e) => {
                    // Compaction is an optimisation: the batch commits uncompacted.
                    log::warn!(
                        "batch {batch_id}: not compacting {}/{}: {e}",
                        self.root.display(),
                        entry.folder()
                    );
                    result.entries.push(entry);
                }
            }
        }
        result
    }

    /// Writes the rows of `sources` into one new file of `batch_id` in `folder`.
    fn merge(
        &self,
        batch_id: u64,
        folder: &str,
        sources: &[&ManifestFile],
    ) -> Result<(ManifestFile, PathBuf)> {
        PartFile::filled(self, batch_id, folder, |file| {
            sources
                .iter()
                .try_for_each(|source| copy_rows(&self.root.join(&source.path), file, self))
        })?
        .finish_or_remove(&self.root)
    }

    /// Deletes files that committed compactions replaced but a crash left on disk.
    pub(super) fn remove_replaced(&self, removed: &[String]) {
        for path in removed {
            let path = self.root.join(path);
            if path.exists() {
                remove_quietly(&path);
            }
        }
    }

    /// Keeps the live-file index in step with a committed manifest.
    pub(super) fn record_commit(&mut self, entries: &[ManifestFile], removed: &[String]) {
        if !removed.is_empty() {
            // A set: a batch that compacts every folder removes (folders x files) paths.
            let removed: HashSet<&str> = removed.iter().map(String::as_str).collect();
            for files in self.live.values_mut() {
                files.retain(|f| !removed.contains(f.path.as_str()));
            }
        }
        for entry in entries {
            self.live
                .entry(entry.folder().to_string())
                .or_default()
                .push(entry.clone());
        }
    }
}

fn copy_rows(path: &Path, into: &mut PartFile, sink: &FileSink) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
    for batch in reader {
        let batch = batch?;
        let batch =
            arrow::array::RecordBatch::try_new(sink.file_schema.clone(), batch.columns().to_vec())?;
        into.write(&batch)?;
    }
    Ok(())
}
