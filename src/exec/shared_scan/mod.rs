//! Sharing scanned chunks between the queries of a session.
//!
//! The seed pipeline starts several queries on one topic (hourly and daily candles, a live
//! table), each parsing the same JSON. When their sources agree on the data (`share_key`)
//! and their plans agree on everything before state (`Pipeline::scan_signature`), they form
//! a group: the first query to reach a chunk reads and scans it and publishes the result, the
//! others take it. Chunks are cut where every reader cuts them (`Source::plan_chunks`), so
//! this needs no coordination of batch boundaries: queries with different triggers share the
//! chunks their batches have in common and read the rest themselves.
//!
//! The partitions of a batch are divided between the members that arrive for it: a query
//! claims the chunks of its share of the partitions nobody claimed yet (preferring those it
//! read last, so its consumer does not seek), and leaves the rest for later. Queries arriving
//! together thus read and parse different partitions side by side; a partition nobody claimed
//! by the time a query reaches it is claimed then, by whoever comes first. A member alone on
//! its first batch claims half the partitions, leaving the rest to queries started after it.
//!
//! Nothing waits on a chunk that is not being computed: a query claims the chunks it will
//! compute, computes all of them before waiting on anyone, and a claim dropped without a
//! result (an error, a stop) releases its waiters, who then compute the chunk themselves.
//!
//! A published chunk is kept for the members that still need it: those that claimed it to
//! take it, and those that will still come to it (a member that has claimed nothing yet, or
//! whose current batch on the chunk's topic starts at or before it). Not those reading other
//! topics (the group is keyed by brokers and parsing, not by topic), and a member that passes
//! it without taking it (it read it alone before the others joined) or leaves is released
//! from it then. The oldest chunks are dropped
//! beyond a memory cap, so a query far behind the others reads for itself instead of pinning
//! memory; a member about to publish into a full cache waits a little first (see
//! `batch_read`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::scan::Scanned;
use crate::source::ChunkRange;

/// Bytes of published chunks a session keeps at most, unless the session sets
/// `ferrostream.sharedScans.maxMemory`.
pub const DEFAULT_MEMORY_CAP: usize = 64 << 20;

type SlotKey = (Arc<str>, ChunkRange);

/// A member of a group, unique in its session.
type MemberId = u64;

enum Slot {
    /// A member is computing it; `takers` claimed it to take it.
    Pending { takers: Vec<MemberId> },
    /// Computed; the members in `waiting` have not taken it yet.
    Ready {
        scanned: Arc<Scanned>,
        waiting: Vec<MemberId>,
    },
}

impl Slot {
    fn bytes(&self) -> usize {
        match self {
            Slot::Ready { scanned, .. } => scanned.memory_size(),
            Slot::Pending { .. } => 0,
        }
    }
}

#[derive(Default)]
struct Inner {
    next_member: MemberId,
    /// Members per group.
    members: HashMap<Arc<str>, Vec<MemberId>>,
    slots: HashMap<SlotKey, Slot>,
    /// Published slots, oldest first (may name slots already taken).
    published: VecDeque<SlotKey>,
    bytes: usize,
    /// Where each member's current batch starts, per partition: it has passed every chunk
    /// before.
    reached: HashMap<MemberId, HashMap<Partition, i64>>,
    /// Members waiting for their next trigger.
    idle: HashSet<MemberId>,
    /// Bytes of published chunks kept at most (`DEFAULT_MEMORY_CAP` when not set).
    cap: Option<usize>,
}

impl Inner {
    fn cap(&self) -> usize {
        self.cap.unwrap_or(DEFAULT_MEMORY_CAP)
    }

    fn group_size(&self, group: &Arc<str>) -> usize {
        self.members.get(group).map_or(0, Vec::len)
    }

    /// `Take` for a chunk with a slot (recording `member` as a taker of one being computed),
    /// `None` for a chunk without.
    fn take_claim(&mut self, key: &SlotKey, member: MemberId) -> Option<Claim> {
        match self.slots.get_mut(key)? {
            Slot::Pending { takers } => takers.push(member),
            Slot::Ready { .. } => {}
        }
        Some(Claim::Take(key.clone()))
    }

    /// Whether `member` will still come to `chunk`: it has claimed nothing yet, or its current
    /// batch on the chunk's topic does not start beyond it. A member reading other topics will
    /// not.
    fn will_reach(&self, member: MemberId, chunk: &ChunkRange) -> bool {
        let Some(reached) = self.reached.get(&member) else {
            return true;
        };
        if reached.is_empty() {
            return true;
        }
        match reached.get(&(chunk.topic.clone(), chunk.partition)) {
            Some(&start) => start <= chunk.from,
            None => reached.keys().any(|(topic, _)| *topic == chunk.topic),
        }
    }

    /// `member` no longer needs the published chunks of `group` that `passed` selects; chunks
    /// nobody needs any more are dropped.
    fn release(
        &mut self,
        group: &Arc<str>,
        member: MemberId,
        passed: impl Fn(&ChunkRange) -> bool,
    ) {
        let mut freed = 0;
        self.slots.retain(|(g, chunk), slot| {
            let Slot::Ready { scanned, waiting } = slot else {
                return true;
            };
            if g != group || !passed(chunk) {
                return true;
            }
            waiting.retain(|&m| m != member);
            if waiting.is_empty() {
                freed += scanned.memory_size();
                return false;
            }
            true
        });
        self.bytes -= freed;
    }
}

/// A session's shared chunks.
#[derive(Default)]
pub struct ScanCache {
    inner: Mutex<Inner>,
    changed: Condvar,
}

/// What a query does with one chunk of its batch.
pub enum Claim {
    /// Compute it; publish it with `publish` (`None`: the query shares with no one).
    Compute(Option<SlotKey>),
    /// Another member computes or computed it: `take` it after computing one's own.
    Take(SlotKey),
    /// Its partition was left to other members: claim it again when it is reached.
    Later,
    /// Computed (or taken) and consumed.
    Done,
}

/// What `try_take` found.
pub enum Ready {
    /// The chunk.
    Taken(Arc<Scanned>),
    /// Still being computed.
    NotYet,
    /// Abandoned, or dropped beyond the cap: the caller computes it.
    Gone,
}

/// A partition of a topic.
type Partition = (String, i32);

/// A query's membership in a group; leaves the group when dropped.
pub struct Member {
    cache: Arc<ScanCache>,
    group: Arc<str>,
    id: MemberId,
    /// The partitions this query computed chunks of in its last batch.
    last_read: Mutex<Vec<Partition>>,
}

impl Member {
    /// Claims the chunks of one batch (see the module's documentation): `Compute` for those
    /// of its share of the partitions no member claimed yet, `Take` for chunks others claimed,
    /// `Later` for the rest.
    pub fn claim_batch(&self, chunks: &[ChunkRange]) -> Vec<Claim> {
        let mut last_read = self.last_read.lock().unwrap_or_else(|e| e.into_inner());
        let claims = self.claim_all(chunks, &last_read);
        let read: Vec<Partition> = chunks
            .iter()
            .zip(&claims)
            .filter(|(_, claim)| matches!(claim, Claim::Compute(_)))
            .map(|(chunk, _)| (chunk.topic.clone(), chunk.partition))
            .collect();
        if !read.is_empty() {
            *last_read = read;
        }
        claims
    }

    fn claim_all(&self, chunks: &[ChunkRange], preferred: &[Partition]) -> Vec<Claim> {
        let group = &self.group;
        let mut inner = self.cache.lock();
        // Where this batch starts on each of its partitions: chunks before are behind.
        let mut starts: HashMap<Partition, i64> = HashMap::new();
        for chunk in chunks {
            let start = starts
                .entry((chunk.topic.clone(), chunk.partition))
                .or_insert(chunk.from);
            *start = (*start).min(chunk.from);
        }
        inner.release(group, self.id, |passed| {
            starts
                .get(&(passed.topic.clone(), passed.partition))
                .is_some_and(|&start| passed.until <= start)
        });
        let first_batch = inner.reached.get(&self.id).is_none_or(HashMap::is_empty);
        inner.reached.entry(self.id).or_default().extend(starts);
        let key = |chunk: &ChunkRange| (Arc::clone(group), chunk.clone());
        // A lone member claims too: a query joining while it computes takes the chunk. On its
        // first batch it counts on one more: queries started one after another (the seed
        // pipeline's three) join while it reads and compute the partitions it left, where
        // they would otherwise wait for it to read the whole batch alone. It reads the rest
        // itself if nobody comes.
        let size = inner.group_size(group);
        let members = size.max(1) + usize::from(size <= 1 && first_batch);
        let mut partitions: Vec<Partition> = Vec::new();
        let mut taken: Vec<Partition> = Vec::new();
        for chunk in chunks {
            let partition = (chunk.topic.clone(), chunk.partition);
            if inner.slots.contains_key(&key(chunk)) {
                taken.push(partition.clone());
            }
            if !partitions.contains(&partition) {
                partitions.push(partition);
            }
        }
        let share = partitions.len().div_ceil(members);
        let mut free: Vec<Partition> = partitions
            .into_iter()
            .filter(|p| !taken.contains(p))
            .collect();
        free.sort_by_key(|p| !preferred.contains(p));
        free.truncate(share);
        chunks
            .iter()
            .map(|chunk| {
                let key = key(chunk);
                if let Some(take) = inner.take_claim(&key, self.id) {
                    take
                } else if free.contains(&(chunk.topic.clone(), chunk.partition)) {
                    inner
                        .slots
                        .insert(key.clone(), Slot::Pending { takers: Vec::new() });
                    Claim::Compute(Some(key))
                } else {
                    Claim::Later
                }
            })
            .collect()
    }

    /// Claims one chunk of the batch this member claimed last, left for `Later` then.
    pub fn claim(&self, chunk: &ChunkRange) -> Claim {
        let mut inner = self.cache.lock();
        let key = (Arc::clone(&self.group), chunk.clone());
        if let Some(take) = inner.take_claim(&key, self.id) {
            return take;
        }
        inner
            .slots
            .insert(key.clone(), Slot::Pending { takers: Vec::new() });
        Claim::Compute(Some(key))
    }

    /// Publishes a chunk this member claimed with `Claim::Compute(Some(key))`, for the
    /// members that claimed it to take it and those that will still come to it.
    pub fn publish(&self, key: SlotKey, scanned: Arc<Scanned>) {
        let mut inner = self.cache.lock();
        let mut waiting = match inner.slots.get(&key) {
            Some(Slot::Pending { takers }) => takers.clone(),
            _ => Vec::new(),
        };
        if let Some(ids) = inner.members.get(&key.0) {
            for &m in ids {
                if m != self.id && !waiting.contains(&m) && inner.will_reach(m, &key.1) {
                    waiting.push(m);
                }
            }
        }
        if waiting.is_empty() || !inner.slots.contains_key(&key) {
            inner.slots.remove(&key);
        } else {
            inner.bytes += scanned.memory_size();
            inner
                .slots
                .insert(key.clone(), Slot::Ready { scanned, waiting });
            inner.published.push_back(key);
            // Taken chunks leave their keys behind here; drop them before they outnumber
            // the chunks held (a long-running session publishes a chunk per batch).
            if inner.published.len() > 2 * inner.slots.len() + 16 {
                let Inner {
                    slots, published, ..
                } = &mut *inner;
                published.retain(|k| matches!(slots.get(k), Some(Slot::Ready { .. })));
            }
            while inner.bytes > inner.cap() {
                let Some(oldest) = inner.published.pop_front() else {
                    break;
                };
                if let Some(Slot::Ready { scanned, .. }) = inner.slots.remove(&oldest) {
                    inner.bytes -= scanned.memory_size();
                }
            }
        }
        drop(inner);
        self.cache.changed.notify_all();
    }

    /// Gives up a claimed chunk without a result; whoever waits for it computes it.
    pub fn abandon(&self, key: &SlotKey) {
        let mut inner = self.cache.lock();
        if matches!(inner.slots.get(key), Some(Slot::Pending { .. })) {
            inner.slots.remove(key);
        }
        drop(inner);
        self.cache.changed.notify_all();
    }

    /// Takes a chunk if it is ready, without waiting. A member that joined after it was
    /// published takes it too, without counting for the others.
    pub fn try_take(&self, key: &SlotKey) -> Ready {
        let mut inner = self.cache.lock();
        let ready = match inner.slots.get_mut(key) {
            None => return Ready::Gone,
            Some(Slot::Pending { .. }) => return Ready::NotYet,
            Some(Slot::Ready { scanned, waiting }) => {
                waiting.retain(|&m| m != self.id);
                (Arc::clone(scanned), waiting.is_empty())
            }
        };
        let (scanned, last) = ready;
        if last {
            inner.slots.remove(key);
            inner.bytes -= scanned.memory_size();
        }
        drop(inner);
        self.cache.changed.notify_all();
        Ready::Taken(scanned)
    }

    /// Turns each `Later` claim whose chunk another member computes or published into a
    /// `Take`, under one lock. A query comes to the partitions it left for later only once
    /// its own are done; the chunks the others publish of them meanwhile wait for it, and
    /// taken as they come they do not fill the cache.
    pub fn claim_published(&self, chunks: &[ChunkRange], claims: &mut [Claim]) {
        let mut inner = self.cache.lock();
        for (chunk, claim) in chunks.iter().zip(claims.iter_mut()) {
            if matches!(claim, Claim::Later) {
                let key = (Arc::clone(&self.group), chunk.clone());
                if let Some(take) = inner.take_claim(&key, self.id) {
                    *claim = take;
                }
            }
        }
    }

    /// Whether a published chunk waits for this member (one look at the cache, where
    /// `try_take` on each of a batch's chunks would lock it once per chunk).
    pub fn has_ready(&self) -> bool {
        let inner = self.cache.lock();
        inner.slots.iter().any(|((g, _), slot)| match slot {
            Slot::Ready { waiting, .. } => *g == self.group && waiting.contains(&self.id),
            Slot::Pending { .. } => false,
        })
    }

    /// Whether publishing `size` more bytes keeps the published chunks within the memory cap,
    /// or none of them waits for a member of this group that is taking chunks now. A member
    /// about to publish into a full cache waits (taking what is ready for it) instead of pushing
    /// out chunks a busy member has yet to take; it does not wait for members idle until their
    /// next trigger, nor on other groups (a lone query holds nothing).
    pub fn has_room_for(&self, size: usize) -> bool {
        let inner = self.cache.lock();
        inner.bytes + size <= inner.cap()
            || !inner.slots.iter().any(|((g, _), slot)| match slot {
                Slot::Ready { waiting, .. } => {
                    *g == self.group && waiting.iter().any(|m| !inner.idle.contains(m))
                }
                Slot::Pending { .. } => false,
            })
    }

    /// Marks this member idle until the guard is dropped (see `has_room_for`).
    pub fn idle(&self) -> Idle<'_> {
        self.cache.lock().idle.insert(self.id);
        self.cache.changed.notify_all();
        Idle(self)
    }

    /// Waits until something is published, taken or given up, or `timeout` passes.
    pub fn wait_for_change(&self, timeout: Duration) {
        let inner = self.cache.lock();
        let _unused = self
            .cache
            .changed
            .wait_timeout(inner, timeout)
            .unwrap_or_else(|e| e.into_inner());
    }
}

/// A member idle until dropped.
pub struct Idle<'a>(&'a Member);

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        self.0.cache.lock().idle.remove(&self.0.id);
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let mut inner = self.cache.lock();
        inner.reached.remove(&self.id);
        inner.idle.remove(&self.id);
        if let Some(ids) = inner.members.get_mut(&self.group) {
            ids.retain(|&m| m != self.id);
            if ids.is_empty() {
                inner.members.remove(&self.group);
                inner.slots.retain(|(g, _), _| *g != self.group);
                let bytes = inner.slots.values().map(Slot::bytes).sum();
                inner.bytes = bytes;
            } else {
                inner.release(&self.group, self.id, |_| true);
            }
        }
        drop(inner);
        self.cache.changed.notify_all();
    }
}

impl ScanCache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the map consistent (every update is one
        // statement), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the bytes of published chunks kept at most; chunks beyond it go at the next
    /// publish.
    pub fn set_memory_cap(&self, bytes: usize) {
        self.lock().cap = Some(bytes);
    }

    /// Joins `group`.
    pub fn join(self: &Arc<Self>, group: &str) -> Member {
        let group: Arc<str> = Arc::from(group);
        let mut inner = self.lock();
        let id = inner.next_member;
        inner.next_member += 1;
        inner
            .members
            .entry(Arc::clone(&group))
            .or_default()
            .push(id);
        Member {
            cache: Arc::clone(self),
            group,
            id,
            last_read: Mutex::new(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests;
