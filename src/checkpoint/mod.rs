//! The checkpoint folder, in the spirit of Spark's: `metadata` (the query id and what the
//! query reads and writes), `offsets/N` (written before batch N runs), `commits/N` (written
//! after its sink committed) and `state/N.json` (the watermark and the aggregation state
//! after batch N).
//!
//! Recovery trusts only what a commit names: the state of the last committed batch, and, if
//! an offsets file is newer than the last commit, that batch is rerun with the same offsets
//! (and the same batch id, so sinks can ignore what they already hold). Every file is
//! written to a temporary name and renamed, in order, on the checkpoint's own thread
//! (`writer`), so a crash never leaves half a file nor a later file without an earlier one;
//! a file that is corrupt anyway stops the query with its path, never a silent fresh start.

mod recovery;
mod writer;

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::exec::Pipeline;
use crate::source::SourceOffset;
use crate::window::{WatermarkState, WatermarkTracker};

pub use recovery::{plan_recovery, Recovery};
use writer::{Job, Writer};

/// Batches kept in the logs (Spark's `spark.sql.streaming.minBatchesToRetain`).
pub const MIN_BATCHES_TO_RETAIN: u64 = 100;

/// The `metadata` file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Metadata {
    /// The query's persistent id.
    pub id: String,
    /// The source's description, to refuse a checkpoint of another source.
    pub source: String,
    /// The output schema, to refuse a checkpoint of another plan.
    pub output_schema: String,
    /// What the aggregation state means (windowing, keys, functions), to refuse a
    /// checkpoint of another aggregation with the same result schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// An `offsets/N` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OffsetEntry {
    /// The batch id.
    #[serde(rename = "batchId")]
    pub batch_id: u64,
    /// Where the batch starts.
    pub start: SourceOffset,
    /// Where it ends.
    pub end: SourceOffset,
}

/// A `state/N.json` snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StateSnapshot {
    watermark: WatermarkState,
    aggregate: Option<Value>,
}

/// Where a restarted query resumes.
#[derive(Debug, Clone)]
pub struct Resume {
    /// The offset the next batch starts at.
    pub start: SourceOffset,
    /// The next batch's id.
    pub batch_id: u64,
    /// When the last batch was not committed: its end, to rerun it exactly.
    pub rerun_end: Option<SourceOffset>,
}

/// A query's checkpoint folder.
pub struct Checkpoint {
    dir: PathBuf,
    metadata: Metadata,
    writer: Writer,
}

impl Checkpoint {
    /// Opens (or creates) the folder. A folder of another query's source or plan is refused.
    pub fn open(dir: &Path, proposed: Metadata) -> Result<Checkpoint> {
        for sub in ["offsets", "commits", "state"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).map_err(|e| Error::io("cannot create", &path, e))?;
            remove_temporaries(&path)?;
        }
        let path = dir.join("metadata");
        let metadata = if path.exists() {
            let existing: Metadata = read_json(&path)?;
            if existing.source != proposed.source {
                return Err(Error::Checkpoint(format!(
                    "the checkpoint at {} belongs to a query reading {}, but this query reads {}; \
                     use another checkpointLocation",
                    dir.display(),
                    existing.source,
                    proposed.source
                )));
            }
            if existing.output_schema != proposed.output_schema {
                return Err(Error::Checkpoint(format!(
                    "the checkpoint at {} belongs to a query with another result schema ({} \
                     instead of {}): the plan changed; use another checkpointLocation",
                    dir.display(),
                    existing.output_schema,
                    proposed.output_schema
                )));
            }
            if let (Some(existing_state), Some(state)) = (&existing.state, &proposed.state) {
                if existing_state != state {
                    return Err(Error::Checkpoint(format!(
                        "the checkpoint at {} holds the state of another aggregation ({} \
                         instead of {}): the plan changed; use another checkpointLocation",
                        dir.display(),
                        existing_state,
                        state
                    )));
                }
            }
            existing
        } else {
            write_json(&path, &proposed)?;
            proposed
        };
        Ok(Checkpoint {
            dir: dir.to_path_buf(),
            metadata,
            writer: Writer::start()?,
        })
    }

    /// The folder a source keeps its own log in (Spark's `sources/0`).
    pub fn source_dir(&self) -> PathBuf {
        self.dir.join("sources").join("0")
    }

    /// The query id kept in `metadata`.
    pub fn query_id(&self) -> &str {
        &self.metadata.id
    }

    /// Restores the watermark and state of the last committed batch and says where to go on.
    pub fn recover(
        &mut self,
        tracker: &mut WatermarkTracker,
        pipeline: &mut Pipeline,
    ) -> Result<Option<Resume>> {
        let offsets = list_ids(&self.dir.join("offsets"))?;
        let commits = list_ids(&self.dir.join("commits"))?;
        let Some(recovery) = plan_recovery(&offsets, &commits) else {
            return Ok(None);
        };
        if let Some(committed) = recovery.restore_state_of {
            let path = self.dir.join("state").join(format!("{committed}.json"));
            let snapshot: StateSnapshot = read_json(&path)?;
            tracker
                .restore(snapshot.watermark)
                .map_err(|e| corrupt(&path, &e.to_string()))?;
            if let Some(aggregate) = snapshot.aggregate {
                pipeline
                    .restore_state(aggregate)
                    .map_err(|e| corrupt(&path, &e.to_string()))?;
            }
        }
        let entry: OffsetEntry = read_json(
            &self
                .dir
                .join("offsets")
                .join(recovery.offsets_of.to_string()),
        )?;
        Ok(Some(if recovery.rerun {
            Resume {
                start: entry.start,
                batch_id: entry.batch_id,
                rerun_end: Some(entry.end),
            }
        } else {
            Resume {
                start: entry.end,
                batch_id: entry.batch_id + 1,
                rerun_end: None,
            }
        }))
    }

    /// Hands the writer `offsets/N` before batch N runs.
    pub fn write_offsets(
        &mut self,
        batch_id: u64,
        start: &SourceOffset,
        end: &SourceOffset,
    ) -> Result<()> {
        let entry = OffsetEntry {
            batch_id,
            start: start.clone(),
            end: end.clone(),
        };
        self.write(self.dir.join("offsets").join(batch_id.to_string()), &entry)
    }

    /// Waits until every file handed to the writer is on disk (see `writer`).
    pub fn flush(&self) -> Result<()> {
        self.writer.flush()
    }

    /// Hands `value`, as JSON, to the writer.
    fn write<T: Serialize>(&self, path: PathBuf, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::Checkpoint(e.to_string()))?;
        self.writer.submit(Job::Write(path, bytes))
    }

    /// Hands the writer the state snapshot, then `commits/N`, after the sink committed batch
    /// N; then forgets batches older than the retention.
    pub fn commit(
        &mut self,
        batch_id: u64,
        tracker: &WatermarkTracker,
        pipeline: &Pipeline,
    ) -> Result<()> {
        let snapshot = StateSnapshot {
            watermark: tracker.snapshot(),
            aggregate: pipeline.snapshot_state()?,
        };
        self.write(
            self.dir.join("state").join(format!("{batch_id}.json")),
            &snapshot,
        )?;
        self.write(
            self.dir.join("commits").join(batch_id.to_string()),
            &serde_json::json!({"batchId": batch_id, "watermark": tracker.current()}),
        )?;
        if batch_id >= MIN_BATCHES_TO_RETAIN {
            self.forget_before(batch_id + 1 - MIN_BATCHES_TO_RETAIN)?;
        }
        Ok(())
    }

    fn forget_before(&self, oldest_kept: u64) -> Result<()> {
        let mut old = Vec::new();
        for (sub, suffix) in [("offsets", ""), ("commits", ""), ("state", ".json")] {
            let folder = self.dir.join(sub);
            for id in list_ids(&folder)? {
                if id < oldest_kept {
                    old.push(folder.join(format!("{id}{suffix}")));
                }
            }
        }
        if old.is_empty() {
            return Ok(());
        }
        self.writer.submit(Job::Remove(old))
    }
}

fn corrupt(path: &Path, detail: &str) -> Error {
    Error::Checkpoint(format!(
        "the checkpoint file {} is corrupt ({detail}); the query will not start from scratch \
         silently: restore the file, or point checkpointLocation at a new folder to reprocess",
        path.display()
    ))
}

/// Reads a checkpoint JSON file; a damaged one is an error that names it.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path)
        .map_err(|e| Error::io("cannot read the checkpoint file", path, e))?;
    serde_json::from_str(&text).map_err(|e| corrupt(path, &e.to_string()))
}

/// Writes JSON atomically: a temporary file, fsync, then rename over the final name.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_vec(value).map_err(|e| Error::Checkpoint(e.to_string()))?;
    write_atomic(path, &text)
}

/// Writes bytes atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::new_v4()));
    let mut file =
        fs::File::create(&temporary).map_err(|e| Error::io("cannot create", &temporary, e))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| Error::io("cannot write", &temporary, e))?;
    fs::rename(&temporary, path).map_err(|e| Error::io("cannot rename into", path, e))?;
    // The rename is durable only once the folder's entry is on disk.
    if let Some(folder) = path.parent() {
        fs::File::open(folder)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io("cannot sync the folder", folder, e))?;
    }
    Ok(())
}

/// Deletes the temporary files of writes a crash cut short (`write_atomic` names them
/// `.<name>.<uuid>.tmp`); only the query owning the checkpoint writes there.
fn remove_temporaries(folder: &Path) -> Result<()> {
    let entries = fs::read_dir(folder).map_err(|e| Error::io("cannot list", folder, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("cannot list", folder, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let path = entry.path();
            fs::remove_file(&path).map_err(|e| Error::io("cannot remove", &path, e))?;
        }
    }
    Ok(())
}

/// Batch ids of the files in a log folder (temporary and foreign files are ignored).
fn list_ids(folder: &Path) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    let entries = fs::read_dir(folder).map_err(|e| Error::io("cannot list", folder, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("cannot list", folder, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if let Ok(id) = name.trim_end_matches(".json").parse::<u64>() {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}
