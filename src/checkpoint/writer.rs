//! The checkpoint's files are written in order on a thread of their own, so a batch does not
//! wait for its fsyncs unless it has to.
//!
//! Every write is atomic (temporary file, fsync, rename, folder fsync) and the writes happen
//! in the order they were handed in, so after a crash (of the process or of the machine) the
//! folder holds a prefix of them: `state/N` before `commits/N` before `offsets/N+1`, which
//! is all recovery needs. Before a sink makes a batch visible outside the process (files,
//! Kafka, a user's function) the query waits for the batch's `offsets/N` with `flush`;
//! output that dies with the process (a memory table, the console) does not wait, which keeps
//! the fsyncs off a live table's latency.

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::write_atomic;
use crate::error::{Error, Result};

/// Writes queued at most; handing in more waits (a disk slower than the batches slows the
/// query instead of holding an ever longer queue).
const QUEUE: usize = 32;

/// A job for the writer thread.
pub enum Job {
    /// Write these bytes to this file atomically.
    Write(PathBuf, Vec<u8>),
    /// Remove these files (batches past the retention).
    Remove(Vec<PathBuf>),
}

#[derive(Default)]
struct Progress {
    queued: u64,
    done: u64,
    failure: Option<String>,
}

#[derive(Default)]
struct Shared {
    progress: Mutex<Progress>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        // Every update is a counter or the first failure: a poisoned lock is still usable.
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The writer of one checkpoint folder.
pub struct Writer {
    jobs: Option<SyncSender<Job>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread.
    pub fn start() -> Result<Writer> {
        let (jobs, queue) = sync_channel(QUEUE);
        let shared = Arc::new(Shared::default());
        let thread = std::thread::Builder::new()
            .name("ferrostream-checkpoint".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || work(&queue, &shared)
            })
            .map_err(|e| Error::State(format!("cannot start the checkpoint writer: {e}")))?;
        Ok(Writer {
            jobs: Some(jobs),
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `job`; fails with the error of an earlier write, if one failed.
    pub fn submit(&self, job: Job) -> Result<()> {
        self.failed()?;
        self.shared.lock().queued += 1;
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job));
        if !matches!(sent, Some(Ok(()))) {
            return Err(Error::Checkpoint(
                "the checkpoint writer stopped; the query cannot commit".into(),
            ));
        }
        Ok(())
    }

    /// Waits until every queued write is on disk.
    pub fn flush(&self) -> Result<()> {
        let mut progress = self.shared.lock();
        while progress.done < progress.queued && progress.failure.is_none() {
            progress = self
                .shared
                .changed
                .wait(progress)
                .unwrap_or_else(|e| e.into_inner());
        }
        drop(progress);
        self.failed()
    }

    fn failed(&self) -> Result<()> {
        match &self.shared.lock().failure {
            Some(failure) => Err(Error::Checkpoint(failure.clone())),
            None => Ok(()),
        }
    }
}

impl Drop for Writer {
    /// Finishes the queued writes.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn work(queue: &Receiver<Job>, shared: &Shared) {
    for job in queue {
        // After a failure nothing more is written: a later file without the earlier one
        // could leave a commit without its state.
        let failed = shared.lock().failure.is_some();
        let result = if failed { Ok(()) } else { run(job) };
        let mut progress = shared.lock();
        if let Err(error) = result {
            progress.failure.get_or_insert(error.to_string());
        }
        progress.done += 1;
        drop(progress);
        shared.changed.notify_all();
    }
}

fn run(job: Job) -> Result<()> {
    match job {
        Job::Write(path, bytes) => write_atomic(&path, &bytes),
        // A file may be named twice when the query lists the folder before an earlier
        // removal ran; gone is what was asked.
        Job::Remove(paths) => paths
            .iter()
            .try_for_each(|path| match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::io("cannot remove", path, e))
                }
                _ => Ok(()),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_land_in_order_by_flush_and_a_failure_stops_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let writer = Writer::start().expect("writer");
        for n in 0..50 {
            let path = dir.path().join(n.to_string());
            writer
                .submit(Job::Write(path, n.to_string().into_bytes()))
                .expect("queued");
        }
        writer.flush().expect("flushed");
        for n in 0..50 {
            let text = std::fs::read_to_string(dir.path().join(n.to_string())).expect("written");
            assert_eq!(text, n.to_string());
        }

        let missing = dir.path().join("no-such-folder").join("x");
        writer
            .submit(Job::Write(missing, b"x".to_vec()))
            .expect("queued");
        // Queued before the failure is known, or refused after it: either way never written.
        let _ = writer.submit(Job::Write(dir.path().join("after"), b"y".to_vec()));
        let failure = writer
            .flush()
            .expect_err("the write into a missing folder fails");
        assert!(failure.to_string().contains("no-such-folder"), "{failure}");
        assert!(
            !dir.path().join("after").exists(),
            "nothing is written after a failed write"
        );
        assert!(writer
            .submit(Job::Write(dir.path().join("later"), b"z".to_vec()))
            .is_err());
    }
}
