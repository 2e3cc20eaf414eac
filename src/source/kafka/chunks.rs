//! A Kafka batch in chunks: each partition's offset range cut at fixed offsets
//! (multiples of a width that depends only on how many partitions the batch has), so every
//! query reading the same offsets of the same topic cuts them the same way and a session can
//! share a chunk's reading and parsing between them (`exec::shared_scan`). Reading routes
//! each message to its chunk and hands a chunk on as soon as its last offset is in.
//!
//! The consumer is polled on a thread of its own, which hands each finished chunk to the
//! query's thread (as Flink's Kafka fetcher thread hands records to its task): the next
//! chunk is read while the query parses and aggregates the last one. Polled on the query's
//! thread, reading stopped while a chunk was processed, librdkafka's shallow prefetch queue
//! filled, and the next poll waited for a fetch round trip; a third of both cores was idle in
//! the seed pipeline. The handover holds one finished chunk: a reader at most one chunk ahead.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;

use super::batch_poll::{ConsumerQueue, Fetched, TopicHandle};
use super::columns::{Buffered, Columns, MessageView, SizeHint};
use super::{offsets_from_json, KafkaSource, TopicPartition};
use crate::error::{Error, Result};
use crate::source::options::redact;
use crate::source::{Cancel, ChunkRange, SourceOffset};

/// Messages a batch holds in memory at once, over all partitions: a chunk is this divided
/// by the partitions of the batch (at least `MIN_CHUNK`). With the reader thread a query
/// holds the chunk it processes and the one handed over next. The seed pipeline peaked ~25 MB
/// higher at 65,536 than at 32,768, and ~12 MB higher at 32,768 than here, no faster either
/// time (benches/RESULTS.md): since the scan is planned once, a chunk costs little but its
/// rows.
const CHUNK_ROWS: i64 = 16_384;
const MIN_CHUNK: i64 = 1_024;

/// Cuts `[from, until)` at multiples of `width`.
fn cut(topic: &str, partition: i32, from: i64, until: i64, width: i64) -> Vec<ChunkRange> {
    let mut chunks = Vec::new();
    let mut at = from;
    while at < until {
        let next = ((at / width) + 1) * width;
        let end = next.min(until);
        chunks.push(ChunkRange {
            topic: topic.to_string(),
            partition,
            from: at,
            until: end,
        });
        at = end;
    }
    chunks
}

/// A partition's chunks being read: the chunk the next offset falls in and its builders.
pub(super) struct Reading {
    pub(super) tp: TopicPartition,
    /// Indexes into the chunk list, in offset order.
    chunks: Vec<usize>,
    /// Position in `chunks` of the chunk being filled.
    current: usize,
    columns: Option<Columns>,
    /// Where the partition's read ends: its last chunk's end.
    pub(super) until: i64,
    /// The next offset to read: where librdkafka starts (after a direct read, where that
    /// stopped).
    pub(super) resume: i64,
}

impl Reading {
    /// Not every chunk handed on yet.
    pub(super) fn pending(&self) -> bool {
        self.current < self.chunks.len()
    }
}

/// Hands chunks on as the partitions' reading reaches their ends.
pub(super) struct Router<'a> {
    chunks: &'a [ChunkRange],
    each: &'a mut dyn FnMut(usize, RecordBatch) -> Result<()>,
    pub(super) include_headers: bool,
    hint: SizeHint,
}

impl Router<'_> {
    /// Hands on every chunk of `state` that ends at or before `reached`, then adds `message`
    /// to the chunk it falls in. True once every chunk of the partition is handed on.
    pub(super) fn route(
        &mut self,
        state: &mut Reading,
        message: Option<&MessageView<'_>>,
        reached: i64,
    ) -> Result<bool> {
        while state.current < state.chunks.len() {
            let index = state.chunks[state.current];
            if self.chunks[index].until > reached {
                break;
            }
            let columns = state
                .columns
                .take()
                .unwrap_or_else(|| Columns::empty(self.include_headers));
            (self.each)(index, columns.finish(&mut self.hint)?)?;
            state.current += 1;
        }
        if state.current == state.chunks.len() {
            return Ok(true);
        }
        if let Some(message) = message {
            let chunk = &self.chunks[state.chunks[state.current]];
            if message.offset >= chunk.from {
                let (include_headers, hint) = (self.include_headers, self.hint);
                state
                    .columns
                    .get_or_insert_with(|| {
                        let rows = usize::try_from(chunk.until - message.offset).unwrap_or(0);
                        Columns::with_capacity(
                            include_headers,
                            (&state.tp.0, state.tp.1),
                            rows,
                            hint,
                        )
                    })
                    .push(message);
            }
        }
        Ok(false)
    }

    /// Routes `message` and hands on the chunk it completes.
    pub(super) fn deliver(&mut self, state: &mut Reading, message: &MessageView<'_>) -> Result<()> {
        // Most messages fall inside the chunk being filled and do not end it: no chunk ends
        // at or before them, and none is completed by them.
        if let (Some(columns), Some(&index)) = (&mut state.columns, state.chunks.get(state.current))
        {
            let chunk = &self.chunks[index];
            if message.offset >= chunk.from && message.offset + 1 < chunk.until {
                columns.push(message);
                return Ok(());
            }
        }
        if !self.route(state, Some(message), message.offset)? {
            self.route(state, None, message.offset + 1)?;
        }
        Ok(())
    }
}

/// The partition the last messages came from (a poll returns runs of one partition), so a
/// message costs no lookup by name: its reading (when this read wants it) and the offset
/// after it, written to `KafkaSource::positions` when the run ends.
struct Run {
    /// The topic's `TopicHandle::id` and the partition.
    id: (usize, i32),
    tp: TopicPartition,
    reading: Option<usize>,
    next: i64,
}

impl KafkaSource {
    /// The chunks of the batch `[start, end)`, after skipping offsets retention removed.
    pub(super) fn chunks_of(
        &mut self,
        start: &SourceOffset,
        end: &SourceOffset,
    ) -> Result<Vec<ChunkRange>> {
        let start = offsets_from_json(start)?;
        let end = offsets_from_json(end)?;
        let width = (CHUNK_ROWS / end.len().max(1) as i64).max(MIN_CHUNK);
        let mut chunks = Vec::new();
        for (partition, &until) in &end {
            let low = match self.low_marks.get(partition) {
                Some(low) => *low,
                None => self.watermarks(partition)?.0,
            };
            let mut from = start.get(partition).copied().unwrap_or(low);
            if from < low {
                // Removed by retention after the batch was planned (or before a rerun).
                self.check_data_loss(partition, from, low)?;
                from = low;
            }
            chunks.extend(cut(&partition.0, partition.1, from, until, width));
        }
        Ok(chunks)
    }

    /// Reads `chunks` (each partition's in offset order, possibly with gaps between them) and
    /// hands each one to `each` with its index once its last offset is in. Every chunk is
    /// handed on exactly once, empty if the log holds nothing there (compacted away, or
    /// transaction markers). `each` runs on the calling thread, the reading on a thread of
    /// its own; an error of either stops both and is returned (the caller's first).
    pub(super) fn read_chunk_list(
        &mut self,
        chunks: &[ChunkRange],
        cancel: &Cancel,
        each: &mut dyn FnMut(usize, RecordBatch) -> Result<()>,
    ) -> Result<()> {
        let (handover, finished) = mpsc::sync_channel::<(usize, RecordBatch)>(0);
        std::thread::scope(|scope| {
            let reader = std::thread::Builder::new()
                .name("ferrostream-kafka".into())
                .spawn_scoped(scope, move || {
                    self.read_chunks_on(chunks, cancel, &mut |index, batch| {
                        // The receiver is gone only when the caller failed or stopped.
                        handover.send((index, batch)).map_err(|_| Error::Stopped)
                    })
                })
                .map_err(|e| Error::Source(format!("kafka source: starting a reader: {e}")))?;
            let mut handed = Ok(());
            for (index, batch) in finished.iter() {
                handed = each(index, batch);
                if handed.is_err() {
                    break;
                }
            }
            // Unblocks a reader waiting to hand over a chunk: its send fails and it returns.
            drop(finished);
            let read = reader.join().unwrap_or_else(|_| {
                Err(Error::Source(
                    "kafka source: the reader thread panicked".into(),
                ))
            });
            handed.and(read)
        })
    }

    /// `read_chunk_list`'s reading, on the reader thread.
    fn read_chunks_on(
        &mut self,
        chunks: &[ChunkRange],
        cancel: &Cancel,
        each: &mut dyn FnMut(usize, RecordBatch) -> Result<()>,
    ) -> Result<()> {
        let include_headers = self.include_headers;
        let mut by_partition: BTreeMap<TopicPartition, Vec<usize>> = BTreeMap::new();
        let mut router = Router {
            chunks,
            each,
            include_headers,
            hint: self.size_hint,
        };
        for (index, chunk) in chunks.iter().enumerate() {
            if chunk.from >= chunk.until {
                (router.each)(
                    index,
                    Columns::empty(include_headers).finish(&mut router.hint)?,
                )?;
                continue;
            }
            by_partition
                .entry((chunk.topic.clone(), chunk.partition))
                .or_default()
                .push(index);
        }
        let mut reading: Vec<Reading> = by_partition
            .into_iter()
            .map(|(tp, mut indexes)| {
                indexes.sort_by_key(|&i| chunks[i].from);
                let until = indexes.last().map_or(0, |&i| chunks[i].until);
                let resume = indexes.first().map_or(0, |&i| chunks[i].from);
                Reading {
                    tp,
                    chunks: indexes,
                    current: 0,
                    columns: None,
                    until,
                    resume,
                }
            })
            .collect();
        if reading.is_empty() {
            return Ok(());
        }
        if self.direct.is_some() && self.read_direct(&mut reading, &mut router, cancel)? {
            for state in &mut reading {
                router.route(state, None, i64::MAX)?;
            }
            self.size_hint = router.hint;
            return Ok(());
        }
        let starts: BTreeMap<TopicPartition, i64> = reading
            .iter()
            .filter(|r| r.pending())
            .map(|r| (r.tp.clone(), r.resume))
            .collect();
        self.position_at(&starts)?;
        for state in &mut reading {
            if let Some(buffer) = self.buffered.get_mut(&state.tp) {
                while let Some(message) = buffer.front() {
                    if message.offset >= state.until || !state.pending() {
                        break;
                    }
                    router.deliver(state, &message.view())?;
                    buffer.pop_front();
                }
            }
        }
        let mut run = None;
        let polled = self.poll_into(&mut reading, &mut router, &mut run, cancel);
        if let Some(run) = run {
            self.positions.insert(run.tp, run.next);
        }
        if polled.is_err() {
            // The rest of the last poll's messages were dropped unread: the consumer is
            // past them, so the next read must assign it again.
            self.positions.clear();
            self.buffered.clear();
        }
        polled?;
        // Partitions whose chunks ended in offsets the log does not hold.
        for state in &mut reading {
            router.route(state, None, i64::MAX)?;
        }
        self.size_hint = router.hint;
        Ok(())
    }

    /// Polls until every partition of `reading` is read to its end. `run` is the partition
    /// of the last message polled; the caller records its position.
    fn poll_into(
        &mut self,
        reading: &mut [Reading],
        router: &mut Router<'_>,
        run: &mut Option<Run>,
        cancel: &Cancel,
    ) -> Result<()> {
        let mut queue = ConsumerQueue::of(&self.consumer).ok_or_else(|| {
            Error::Source("kafka source: the consumer has no message queue".into())
        })?;
        let mut last_progress = Instant::now();
        // Per message: no clock read, and no lookup by topic name while it is the same
        // partition as the message before.
        let mut progressed = false;
        while reading.iter().any(Reading::pending) {
            if cancel.is_cancelled() {
                return Err(Error::Stopped);
            }
            let polled = queue.poll(Duration::from_millis(100));
            if polled == 0 {
                if std::mem::take(&mut progressed) {
                    last_progress = Instant::now();
                } else if last_progress.elapsed() > self.timeout * 4 {
                    log::warn!(
                        "kafka source: no data from {} for {:?} while {} partition(s) are \
                         behind; still waiting",
                        self.bootstrap,
                        last_progress.elapsed(),
                        reading.iter().filter(|r| r.pending()).count()
                    );
                    last_progress = Instant::now();
                }
                continue;
            }
            for index in 0..polled {
                let Some(fetched) = queue.get(index, router.include_headers) else {
                    break;
                };
                match fetched {
                    Fetched::PartitionEof {
                        topic,
                        partition,
                        offset,
                    } => {
                        // Caught up with the partition's log: offsets still missing below a
                        // chunk's end were compacted away or were transaction markers.
                        let state = reading
                            .iter_mut()
                            .find(|r| r.tp.1 == partition && r.tp.0.as_bytes() == topic);
                        if let Some(state) = state.filter(|r| r.pending()) {
                            router.route(state, None, offset)?;
                        }
                    }
                    Fetched::Error(error) => log::warn!(
                        "kafka source: {}",
                        redact(&error.to_string(), &self.client_options)
                    ),
                    Fetched::Message {
                        topic,
                        partition,
                        view,
                    } => {
                        progressed = true;
                        self.take_message(reading, router, run, (topic, partition), &view)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Routes one polled message to the chunk it falls in, or keeps it for a later batch.
    fn take_message(
        &mut self,
        reading: &mut [Reading],
        router: &mut Router<'_>,
        run: &mut Option<Run>,
        (topic, partition): (TopicHandle<'_>, i32),
        view: &MessageView<'_>,
    ) -> Result<()> {
        let id = (topic.id(), partition);
        if run.as_ref().is_none_or(|r| r.id != id) {
            let tp = (
                String::from_utf8_lossy(topic.name()).into_owned(),
                partition,
            );
            let index = reading.iter().position(|r| r.tp == tp);
            if let Some(old) = run.replace(Run {
                id,
                tp,
                reading: index,
                next: view.offset,
            }) {
                self.positions.insert(old.tp, old.next);
            }
        }
        let Some(current) = run.as_mut() else {
            return Ok(());
        };
        current.next = view.offset + 1;
        let state = match current.reading {
            Some(index) if reading[index].pending() => &mut reading[index],
            // A partition not in this read, or one read to its end: keep the message for a
            // later batch instead of fetching it again.
            _ => {
                buffer(&mut self.buffered, &current.tp, view);
                return Ok(());
            }
        };
        if view.offset >= state.until {
            // Past this read's end: kept likewise, and the chunks before it are complete
            // (the offsets between were compacted away).
            buffer(&mut self.buffered, &current.tp, view);
            router.route(state, None, i64::MAX)?;
            return Ok(());
        }
        router.deliver(state, view)
    }
}

/// Keeps a message polled ahead of the batch that wants it.
fn buffer(
    buffered: &mut HashMap<TopicPartition, VecDeque<Buffered>>,
    tp: &TopicPartition,
    message: &MessageView<'_>,
) {
    match buffered.get_mut(tp) {
        Some(queue) => queue.push_back(message.to_owned()),
        None => {
            buffered.insert(tp.clone(), VecDeque::from([message.to_owned()]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_cut_at_multiples_of_the_width() {
        let chunks = cut("t", 0, 5, 25, 10);
        let bounds: Vec<(i64, i64)> = chunks.iter().map(|c| (c.from, c.until)).collect();
        assert_eq!(bounds, vec![(5, 10), (10, 20), (20, 25)]);
        assert!(cut("t", 0, 7, 7, 10).is_empty());
        let aligned: Vec<(i64, i64)> = cut("t", 1, 10, 30, 10)
            .iter()
            .map(|c| (c.from, c.until))
            .collect();
        assert_eq!(aligned, vec![(10, 20), (20, 30)]);
    }
}
