//! Reading one micro-batch through the plan, chunk by chunk: a source that plans its batches
//! in chunks (Kafka) has each chunk scanned once per session group (`shared_scan`) and
//! consumed by every query of the group; other sources hand their chunks on as they read.
//! Rows keep the order of the batch's chunks as planned, whatever order they were computed
//! in, so ties in event time and a stateless query's output do not depend on which query
//! scanned a chunk first.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;

use super::bad_records::{fail_fast_error, locate_in_kafka};
use super::pipeline::{BatchStats, Pipeline};
use super::runtime::block_on;
use super::scan::Scanned;
use super::shared_scan::{Claim, Member, Ready};
use crate::error::{Error, Result};
use crate::expr::bad_record::BadRecord;
use crate::source::{Cancel, ChunkRange, Source, SourceOffset};
use crate::state::accumulator::arrival;

/// What reading a batch gave.
#[derive(Default)]
pub struct BatchRead {
    /// Rows read from the source.
    pub rows: u64,
    /// A stateless plan's output, in the batch's order.
    pub stateless: Vec<RecordBatch>,
    /// Statistics of every chunk.
    pub stats: BatchStats,
    /// Time spent scanning and consuming (the rest of the call is reading or waiting).
    pub processing: Duration,
    /// The records `from_json` could not parse, located where the source allows.
    pub bad_records: Vec<BadRecord>,
}

/// One batch being read.
struct Reader<'a> {
    pipeline: &'a mut Pipeline,
    batch_id: u64,
    late_watermark: Option<i64>,
    stateless: BTreeMap<usize, Vec<RecordBatch>>,
    bad_records: BTreeMap<usize, Vec<BadRecord>>,
    read: BatchRead,
}

impl Reader<'_> {
    fn scan(&mut self, batch: RecordBatch) -> Result<Arc<Scanned>> {
        let started = Instant::now();
        let mut scanned = match block_on(self.pipeline.scan(vec![batch.clone()]))? {
            Ok(scanned) => scanned,
            Err(error) => {
                let mut records = self.pipeline.metrics().bad_records.take();
                locate_in_kafka(&mut records, &batch);
                return Err(fail_fast_error(&records).unwrap_or(error));
            }
        };
        locate_in_kafka(&mut scanned.bad_records, &batch);
        self.read.processing += started.elapsed();
        self.read.stats.chunks.0 += 1;
        Ok(Arc::new(scanned))
    }

    /// Runs the rest of the plan over the chunk at `index` of the batch.
    fn consume(&mut self, index: usize, scanned: &Scanned) -> Result<()> {
        let started = Instant::now();
        let position = u32::try_from(index)
            .map_err(|_| Error::State(format!("a batch of more than 2^32 chunks ({index})")))?;
        let (out, stats) = block_on(self.pipeline.consume(
            scanned,
            arrival(self.batch_id, position, 0),
            self.late_watermark,
        ))??;
        self.read.rows += scanned.rows;
        if !scanned.bad_records.is_empty() {
            self.bad_records.insert(index, scanned.bad_records.clone());
        }
        if !out.is_empty() {
            self.stateless.entry(index).or_default().extend(out);
        }
        self.read.stats.merge(stats);
        self.read.processing += started.elapsed();
        Ok(())
    }

    fn finish(mut self) -> BatchRead {
        self.read.stateless = self.stateless.into_values().flatten().collect();
        self.read.bad_records = self.bad_records.into_values().flatten().collect();
        self.read
    }
}

/// How long a member waits for room in a full scan cache before it publishes anyway (the
/// oldest chunks are then dropped, and whoever still needed them reads them itself): a member
/// outside a batch (writing its sink, or on a slower trigger) takes nothing meanwhile.
const FULL_WAIT: Duration = Duration::from_secs(1);

/// Chunks claimed for computing and not yet published: abandoned if reading fails, so the
/// group's other queries do not wait for them.
struct Claimed<'a> {
    member: Option<&'a Member>,
    claims: Vec<Claim>,
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        let Some(member) = self.member else { return };
        for claim in &self.claims {
            if let Claim::Compute(Some(key)) = claim {
                member.abandon(key);
            }
        }
    }
}

/// Reads `[start, end)` of `source` through `pipeline`.
#[allow(clippy::too_many_arguments)]
pub fn read_batch(
    source: &mut dyn Source,
    pipeline: &mut Pipeline,
    group: Option<&Member>,
    start: &SourceOffset,
    end: &SourceOffset,
    cancel: &Cancel,
    batch_id: u64,
    late_watermark: Option<i64>,
) -> Result<BatchRead> {
    let mut reader = Reader {
        pipeline,
        batch_id,
        late_watermark,
        stateless: BTreeMap::new(),
        bad_records: BTreeMap::new(),
        read: BatchRead::default(),
    };
    match source.plan_chunks(start, end)? {
        Some(chunks) => read_chunks(source, &mut reader, group, &chunks, cancel)?,
        None => {
            let mut index = 0;
            source.read_batch(start, end, cancel, &mut |batches| {
                for batch in batches {
                    let scanned = reader.scan(batch)?;
                    reader.consume(index, &scanned)?;
                    index += 1;
                }
                Ok(())
            })?;
        }
    }
    Ok(reader.finish())
}

fn read_chunks(
    source: &mut dyn Source,
    reader: &mut Reader<'_>,
    group: Option<&Member>,
    chunks: &[ChunkRange],
    cancel: &Cancel,
) -> Result<()> {
    let mut claimed = Claimed {
        member: group,
        claims: match group {
            Some(member) => member.claim_batch(chunks),
            None => chunks.iter().map(|_| Claim::Compute(None)).collect(),
        },
    };
    compute_claimed(source, reader, &mut claimed, chunks, cancel)?;
    let Some(member) = group else {
        return Ok(());
    };
    // Partitions nobody claimed when the batch began: whoever gets to them first computes them.
    for (index, chunk) in chunks.iter().enumerate() {
        if matches!(claimed.claims[index], Claim::Later) {
            claimed.claims[index] = member.claim(chunk);
        }
    }
    compute_claimed(source, reader, &mut claimed, chunks, cancel)?;
    // The others' chunks, in the order they become ready.
    while claimed.claims.iter().any(|c| !matches!(c, Claim::Done)) {
        if cancel.is_cancelled() {
            return Err(Error::Stopped);
        }
        let gone = take_ready(reader, &mut claimed, chunks)?;
        for index in gone.iter().copied() {
            // Abandoned, or dropped before this query came to it: read it here.
            let chunk = &chunks[index];
            let mut batch = None;
            source.read_chunks(std::slice::from_ref(chunk), cancel, &mut |_, b| {
                batch = Some(b);
                Ok(())
            })?;
            let batch = batch.ok_or_else(|| {
                Error::State(format!("the source did not deliver chunk {chunk:?}"))
            })?;
            let scanned = reader.scan(batch)?;
            claimed.claims[index] = Claim::Done;
            reader.consume(index, &scanned)?;
        }
        if gone.is_empty() && claimed.claims.iter().any(|c| !matches!(c, Claim::Done)) {
            member.wait_for_change(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// Consumes every chunk of the batch that another member published and this one has not
/// taken yet, of the partitions it left for later too (those claims become `Take`); returns
/// the chunks that are gone (to be read here).
fn take_ready(
    reader: &mut Reader<'_>,
    claimed: &mut Claimed<'_>,
    chunks: &[ChunkRange],
) -> Result<Vec<usize>> {
    let Some(member) = claimed.member else {
        return Ok(Vec::new());
    };
    member.claim_published(chunks, &mut claimed.claims);
    let mut gone = Vec::new();
    for index in 0..claimed.claims.len() {
        let Claim::Take(key) = &claimed.claims[index] else {
            continue;
        };
        match member.try_take(key) {
            Ready::Taken(scanned) => {
                claimed.claims[index] = Claim::Done;
                reader.pipeline.metrics().add_malformed(scanned.malformed);
                reader.read.stats.chunks.1 += 1;
                reader.consume(index, &scanned)?;
            }
            Ready::NotYet => {}
            Ready::Gone => gone.push(index),
        }
    }
    Ok(gone)
}

/// Reads, scans, publishes and consumes every chunk claimed `Compute`, each partition's in
/// offset order, and after each takes what others published for it meanwhile, from the
/// partitions it left for later too.
///
/// Taking as it goes keeps a chunk in the cache only until its slowest member comes to it.
/// A member that took others' chunks only once its own were done left the cache full of
/// chunks of the partitions it had left to the others: a batch larger than the cache
/// (availableNow without maxOffsetsPerTrigger) then waited `FULL_WAIT` per chunk, and the
/// seed pipeline took 64 s instead of 3 (benches/RESULTS.md).
///
/// Before publishing into a full cache it still waits (at most `FULL_WAIT`), taking what is
/// ready for it: members that read faster than another consumes slow down to its pace instead
/// of pushing out chunks it has yet to take.
fn compute_claimed(
    source: &mut dyn Source,
    reader: &mut Reader<'_>,
    claimed: &mut Claimed<'_>,
    chunks: &[ChunkRange],
    cancel: &Cancel,
) -> Result<()> {
    let computed: Vec<usize> = (0..chunks.len())
        .filter(|&i| matches!(claimed.claims[i], Claim::Compute(_)))
        .collect();
    if computed.is_empty() {
        return Ok(());
    }
    let ranges: Vec<ChunkRange> = computed.iter().map(|&i| chunks[i].clone()).collect();
    let member = claimed.member;
    source.read_chunks(&ranges, cancel, &mut |k, batch| {
        let index = computed[k];
        let scanned = reader.scan(batch)?;
        if let (Claim::Compute(Some(_)), Some(member)) = (&claimed.claims[index], member) {
            let size = scanned.memory_size();
            let waiting = Instant::now();
            while !member.has_room_for(size)
                && waiting.elapsed() < FULL_WAIT
                && !cancel.is_cancelled()
            {
                take_ready(reader, claimed, chunks)?;
                if !member.has_room_for(size) {
                    member.wait_for_change(Duration::from_millis(20));
                }
            }
        }
        let claim = std::mem::replace(&mut claimed.claims[index], Claim::Done);
        if let (Claim::Compute(Some(key)), Some(member)) = (claim, member) {
            member.publish(key, Arc::clone(&scanned));
        }
        reader.consume(index, &scanned)?;
        if member.is_some_and(Member::has_ready) {
            take_ready(reader, claimed, chunks)?;
        }
        Ok(())
    })
}
