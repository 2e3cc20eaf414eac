//! A Kafka batch in chunks: each partition's offset range cut at fixed offsets
//! (multiples of a width that depends only on how many partitions the batch has), so every
//! query reading the same offsets of the same topic cuts them the same way and a session can
//! share a chunk's reading and parsing between them (`exec::shared_scan`). Reading routes
//! each message to its chunk and hands a chunk on as soon as its last offset is in.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::Offset;

use super::columns::{Columns, MessageView};
use super::{offsets_from_json, KafkaSource, TopicPartition};
use crate::error::{Error, Result};
use crate::source::options::redact;
use crate::source::{Cancel, ChunkRange, SourceOffset};

/// Messages a batch holds in memory at once, over all partitions: a chunk is this divided
/// by the partitions of the batch (at least `MIN_CHUNK`).
const CHUNK_ROWS: i64 = 65_536;
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
struct Reading {
    /// Indexes into the chunk list, in offset order.
    chunks: Vec<usize>,
    /// Position in `chunks` of the chunk being filled.
    current: usize,
    columns: Option<Columns>,
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
    /// transaction markers).
    pub(super) fn read_chunk_list(
        &mut self,
        chunks: &[ChunkRange],
        cancel: &Cancel,
        each: &mut dyn FnMut(usize, RecordBatch) -> Result<()>,
    ) -> Result<()> {
        let include_headers = self.include_headers;
        let mut reading: BTreeMap<TopicPartition, Reading> = BTreeMap::new();
        for (index, chunk) in chunks.iter().enumerate() {
            if chunk.from >= chunk.until {
                each(index, Columns::new(include_headers).finish()?)?;
                continue;
            }
            reading
                .entry((chunk.topic.clone(), chunk.partition))
                .or_insert_with(|| Reading {
                    chunks: Vec::new(),
                    current: 0,
                    columns: None,
                })
                .chunks
                .push(index);
        }
        for partition in reading.values_mut() {
            partition.chunks.sort_by_key(|&i| chunks[i].from);
        }
        let starts: BTreeMap<TopicPartition, i64> = reading
            .iter()
            .map(|(tp, r)| (tp.clone(), chunks[r.chunks[0]].from))
            .collect();
        let ends: HashMap<TopicPartition, i64> = reading
            .iter()
            .map(|(tp, r)| (tp.clone(), chunks[r.chunks[r.chunks.len() - 1]].until))
            .collect();
        if starts.is_empty() {
            return Ok(());
        }
        self.position_at(&starts)?;
        let mut route = |tp: &TopicPartition,
                         reading: &mut BTreeMap<TopicPartition, Reading>,
                         message: Option<&MessageView<'_>>,
                         reached: i64|
         -> Result<bool> {
            // Hands on every chunk that ends at or before `reached`, then adds `message`.
            let Some(state) = reading.get_mut(tp) else {
                return Ok(true);
            };
            while state.current < state.chunks.len() {
                let index = state.chunks[state.current];
                if chunks[index].until > reached {
                    break;
                }
                let columns = state
                    .columns
                    .take()
                    .unwrap_or_else(|| Columns::new(include_headers));
                each(index, columns.finish()?)?;
                state.current += 1;
            }
            if state.current == state.chunks.len() {
                return Ok(true);
            }
            if let Some(message) = message {
                let chunk = &chunks[state.chunks[state.current]];
                if message.offset >= chunk.from {
                    state
                        .columns
                        .get_or_insert_with(|| Columns::new(include_headers))
                        .push(&tp.0, tp.1, message);
                }
            }
            Ok(false)
        };
        let mut pending: HashMap<TopicPartition, i64> = HashMap::new();
        for (tp, until) in &ends {
            let mut done = false;
            if let Some(buffer) = self.buffered.get_mut(tp) {
                while let Some(message) = buffer.front() {
                    if message.offset >= *until {
                        break;
                    }
                    let view = message.view();
                    done = route(tp, &mut reading, Some(&view), view.offset)?;
                    done = done || route(tp, &mut reading, None, view.offset + 1)?;
                    buffer.pop_front();
                }
            }
            if !done {
                pending.insert(tp.clone(), *until);
            }
        }
        let mut last_progress = Instant::now();
        // Per message: no clock read, and no new String for its topic while it is the same
        // partition as the message before (a poll returns runs of one partition).
        let mut progressed = false;
        let mut current: Option<TopicPartition> = None;
        while !pending.is_empty() {
            if cancel.is_cancelled() {
                return Err(Error::Stopped);
            }
            // Without waiting first: a poll with a timeout reads the clock, and there is
            // usually a message ready.
            let polled = match self.consumer.poll(Duration::ZERO) {
                None => self.consumer.poll(Duration::from_millis(100)),
                ready => ready,
            };
            match polled {
                None => {
                    if std::mem::take(&mut progressed) {
                        last_progress = Instant::now();
                    } else if last_progress.elapsed() > self.timeout * 4 {
                        log::warn!(
                            "kafka source: no data from {} for {:?} while {} partition(s) are \
                             behind; still waiting",
                            self.bootstrap,
                            last_progress.elapsed(),
                            pending.len()
                        );
                        last_progress = Instant::now();
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {
                    // Caught up with the log: offsets still missing below a chunk's end were
                    // compacted away or were transaction markers.
                    if let Ok(positions) = self.consumer.position() {
                        let mut finished = Vec::new();
                        for tp in pending.keys() {
                            if let Some(Offset::Offset(at)) =
                                positions.find_partition(&tp.0, tp.1).map(|e| e.offset())
                            {
                                if route(tp, &mut reading, None, at)? {
                                    finished.push(tp.clone());
                                }
                            }
                        }
                        for tp in finished {
                            pending.remove(&tp);
                        }
                    }
                }
                Some(Err(error)) => {
                    log::warn!(
                        "kafka source: {}",
                        redact(&error.to_string(), &self.client_options)
                    );
                }
                Some(Ok(message)) => {
                    progressed = true;
                    let same = current
                        .as_ref()
                        .is_some_and(|(t, p)| *p == message.partition() && t == message.topic());
                    if !same {
                        current = None;
                    }
                    let tp: &TopicPartition = current
                        .get_or_insert_with(|| (message.topic().to_string(), message.partition()));
                    let view = MessageView::of(&message, include_headers);
                    match self.positions.get_mut(tp) {
                        Some(next) => *next = view.offset + 1,
                        None => {
                            self.positions.insert(tp.clone(), view.offset + 1);
                        }
                    }
                    let Some(&until) = pending.get(tp) else {
                        // A partition not in this read: keep it for a later batch instead of
                        // fetching it again.
                        self.buffered
                            .entry(tp.clone())
                            .or_default()
                            .push_back(view.to_owned());
                        continue;
                    };
                    if view.offset >= until {
                        // Past this read's end: kept likewise, and the chunks before it are
                        // complete (the offsets between were compacted away).
                        self.buffered
                            .entry(tp.clone())
                            .or_default()
                            .push_back(view.to_owned());
                        route(tp, &mut reading, None, i64::MAX)?;
                        pending.remove(tp);
                        continue;
                    }
                    let done = route(tp, &mut reading, Some(&view), view.offset)?
                        || route(tp, &mut reading, None, view.offset + 1)?;
                    if done {
                        pending.remove(tp);
                    }
                }
            }
        }
        // Partitions whose chunks ended in offsets the log does not hold.
        for tp in ends.keys() {
            route(tp, &mut reading, None, i64::MAX)?;
        }
        Ok(())
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
