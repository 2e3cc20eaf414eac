//! The file sink's manifest: `_ferrostream_metadata/<batchId>` names the data files a batch
//! committed (and, after a compaction, the files it replaced). Readers that want exactly the
//! committed rows read [`committed_files`].

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::paths::is_plain_name;
use crate::error::{Error, Result};

/// The folder, under the output path, that holds one manifest per committed batch.
/// Its leading `_` makes Spark, pyarrow and DuckDB skip it when they list the folder.
pub const METADATA_DIR: &str = "_ferrostream_metadata";

/// One committed batch: `_ferrostream_metadata/<batchId>`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// The batch.
    #[serde(rename = "batchId")]
    pub batch_id: u64,
    /// The data files it added.
    pub files: Vec<ManifestFile>,
    /// Files of earlier batches a compaction in this batch merged into one of `files`; from
    /// this batch on they are not part of the output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
}

/// One data file of a committed batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Relative to the output folder, `/`-separated.
    pub path: String,
    /// Rows in it.
    pub rows: u64,
    /// Its size.
    pub bytes: u64,
}

impl ManifestFile {
    /// The partition folder it is in (`""` when unpartitioned).
    pub fn folder(&self) -> &str {
        self.path.rsplit_once('/').map_or("", |(dir, _)| dir)
    }
}

/// The data files a reader should see: exactly those named by committed manifest entries and
/// not removed by a later compaction, as paths relative to `path`, in commit (batch id)
/// order. An output folder without a manifest folder has no committed files; a manifest that
/// cannot be read or names a path outside the folder is an error naming the manifest.
pub fn committed_files(path: &Path) -> Result<Vec<PathBuf>> {
    let (live, _) = live_files(path)?;
    Ok(live
        .iter()
        .map(|f| f.path.split('/').collect::<PathBuf>())
        .collect())
}

/// The committed files still part of the output, in commit order, and the files compactions
/// removed.
pub fn live_files(path: &Path) -> Result<(Vec<ManifestFile>, Vec<String>)> {
    let mut live = Vec::new();
    let mut removed = Vec::new();
    for manifest in read_manifests(path)? {
        if !manifest.removed.is_empty() {
            let gone: std::collections::HashSet<&String> = manifest.removed.iter().collect();
            live.retain(|f: &ManifestFile| !gone.contains(&f.path));
        }
        live.extend(manifest.files);
        removed.extend(manifest.removed);
    }
    Ok((live, removed))
}

/// The id of the newest committed batch, if any.
pub fn last_batch_id(path: &Path) -> Result<Option<u64>> {
    Ok(read_manifests(path)?.last().map(|m| m.batch_id))
}

/// Every committed manifest, checked, in batch id order.
fn read_manifests(path: &Path) -> Result<Vec<Manifest>> {
    if !path
        .try_exists()
        .map_err(|e| Error::io("cannot inspect", path, e))?
    {
        return Err(Error::io(
            "cannot read the output folder",
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
    let mut manifests = Vec::with_capacity(ids.len());
    for id in ids {
        let manifest_path = folder.join(id.to_string());
        let corrupt = |detail: String| {
            Error::Sink(format!(
                "the file sink manifest {} is corrupt ({detail}); restore it, or delete it \
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
        let paths = manifest.files.iter().map(|f| &f.path);
        for path in paths.chain(&manifest.removed) {
            if path.is_empty() || !path.split('/').all(is_plain_name) {
                return Err(corrupt(format!(
                    "the path {path:?} is not a relative path inside the output folder"
                )));
            }
        }
        manifests.push(manifest);
    }
    Ok(manifests)
}
