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
//! by the time a query reaches it is claimed then, by whoever comes first.
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

/// Bytes of published chunks a session keeps at most.
const MEMORY_CAP: usize = 64 << 20;

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
}

impl Inner {
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
        let mut on_topic = reached.iter().filter(|((t, _), _)| *t == chunk.topic);
        match reached.get(&(chunk.topic.clone(), chunk.partition)) {
            Some(&start) => start <= chunk.from,
            None => on_topic.next().is_some(),
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
        inner.reached.entry(self.id).or_default().extend(starts);
        let key = |chunk: &ChunkRange| (Arc::clone(group), chunk.clone());
        // A lone member claims too: a query joining while it computes takes the chunk.
        let members = inner.group_size(group).max(1);
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
            while inner.bytes > MEMORY_CAP {
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

    /// Whether publishing `size` more bytes keeps the published chunks within the memory cap,
    /// or none of them waits for a member of this group that is taking chunks now. A member
    /// about to publish into a full cache waits (taking what is ready for it) instead of pushing
    /// out chunks a busy member has yet to take; it does not wait for members idle until their
    /// next trigger, nor on other groups (a lone query holds nothing).
    pub fn has_room_for(&self, size: usize) -> bool {
        let inner = self.cache.lock();
        inner.bytes + size <= MEMORY_CAP
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
                let group = Arc::clone(&self.group);
                inner.slots.retain(|(g, _), _| *g != group);
                let bytes = inner.slots.values().map(Slot::bytes).sum();
                inner.bytes = bytes;
            } else {
                let group = Arc::clone(&self.group);
                inner.release(&group, self.id, |_| true);
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
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn chunk(from: i64) -> ChunkRange {
        ChunkRange {
            topic: "t".into(),
            partition: 0,
            from,
            until: from + 10,
        }
    }

    fn scanned(rows: usize) -> Arc<Scanned> {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let values: Vec<i64> = (0..rows as i64).collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from(values))],
        )
        .expect("batch");
        Arc::new(Scanned {
            batches: vec![batch],
            schema,
            event_times: vec![],
            rows: rows as u64,
            malformed: 0,
            bad_records: Vec::new(),
        })
    }

    #[test]
    fn a_lone_query_holds_nothing_and_one_joining_meanwhile_takes_its_chunk() {
        let cache = Arc::new(ScanCache::default());
        let a = cache.join("g");
        let claims = a.claim_batch(&[chunk(0), chunk(10)]);
        assert_eq!(kinds(&claims), "CC");
        let (Claim::Compute(Some(first)), Claim::Compute(Some(second))) = (&claims[0], &claims[1])
        else {
            panic!("computes");
        };
        a.publish(first.clone(), scanned(4));
        assert_eq!(cache.lock().bytes, 0, "nobody else needs it");
        // `b` joins while `a` computes chunk 10: it takes that one, and computes chunk 0 (its
        // partition is being read by `a`, so it comes back to it later).
        let b = cache.join("g");
        assert_eq!(kinds(&b.claim_batch(&[chunk(0), chunk(10)])), "LT");
        a.publish(second.clone(), scanned(5));
        assert_eq!(rows(b.try_take(second)), Some(5));
        assert!(matches!(b.claim(&chunk(0)), Claim::Compute(Some(_))));
    }

    #[test]
    fn the_first_claim_computes_and_the_others_take_it_once() {
        let cache = Arc::new(ScanCache::default());
        let (a, b, c) = (cache.join("g"), cache.join("g"), cache.join("g"));
        let Claim::Compute(Some(key)) = a.claim(&chunk(0)) else {
            panic!("the first claim computes");
        };
        let Claim::Take(for_b) = b.claim(&chunk(0)) else {
            panic!("the second takes");
        };
        let Claim::Take(for_c) = c.claim(&chunk(0)) else {
            panic!("the third takes");
        };
        a.publish(key, scanned(5));
        assert_eq!(rows(b.try_take(&for_b)), Some(5));
        assert_eq!(rows(c.try_take(&for_c)), Some(5));
        // Both others took it: it is gone, and nothing is held.
        assert!(matches!(c.try_take(&for_c), Ready::Gone));
        assert_eq!(cache.lock().bytes, 0);
    }

    fn on(partition: i32, from: i64) -> ChunkRange {
        ChunkRange {
            partition,
            ..chunk(from)
        }
    }

    fn kinds(claims: &[Claim]) -> String {
        claims
            .iter()
            .map(|c| match c {
                Claim::Compute(_) => 'C',
                Claim::Take(_) => 'T',
                Claim::Later => 'L',
                Claim::Done => 'D',
            })
            .collect()
    }

    #[test]
    fn members_arriving_together_split_a_batch_by_partition() {
        let cache = Arc::new(ScanCache::default());
        let (a, b, c) = (cache.join("g"), cache.join("g"), cache.join("g"));
        let batch = [on(0, 0), on(0, 10), on(1, 0), on(1, 10)];
        assert_eq!(kinds(&a.claim_batch(&batch)), "CCLL");
        assert_eq!(kinds(&b.claim_batch(&batch)), "TTCC");
        assert_eq!(kinds(&c.claim_batch(&batch)), "TTTT");
        // Next batch: each prefers the partition it read, whoever arrives first.
        let next = [on(0, 20), on(1, 20)];
        assert_eq!(kinds(&b.claim_batch(&next)), "LC");
        assert_eq!(kinds(&a.claim_batch(&next)), "CT");
    }

    #[test]
    fn a_partition_left_for_later_is_claimed_by_whoever_reaches_it() {
        let cache = Arc::new(ScanCache::default());
        let (a, b) = (cache.join("g"), cache.join("g"));
        let batch = [on(0, 0), on(1, 0)];
        assert_eq!(kinds(&a.claim_batch(&batch)), "CL");
        // `a` reaches partition 1 before `b` arrived: it claims it then, `b` takes it.
        assert!(matches!(a.claim(&batch[1]), Claim::Compute(Some(_))));
        assert_eq!(kinds(&b.claim_batch(&batch)), "TT");
    }

    fn rows(ready: Ready) -> Option<u64> {
        match ready {
            Ready::Taken(scanned) => Some(scanned.rows),
            Ready::NotYet | Ready::Gone => None,
        }
    }

    #[test]
    fn an_abandoned_claim_is_gone_for_its_waiter() {
        let cache = Arc::new(ScanCache::default());
        let (a, b) = (cache.join("g"), cache.join("g"));
        let Claim::Compute(Some(key)) = a.claim(&chunk(0)) else {
            panic!("the first claim computes");
        };
        let Claim::Take(wanted) = b.claim(&chunk(0)) else {
            panic!("the second takes");
        };
        assert!(matches!(b.try_take(&wanted), Ready::NotYet));
        let waiter = std::thread::spawn(move || {
            b.wait_for_change(Duration::from_secs(10));
            matches!(b.try_take(&wanted), Ready::Gone)
        });
        std::thread::sleep(Duration::from_millis(50));
        a.abandon(&key);
        assert!(
            waiter.join().expect("waiter"),
            "woken, the waiter computes it itself"
        );
    }

    #[test]
    fn groups_are_separate_and_a_left_group_frees_its_chunks() {
        let cache = Arc::new(ScanCache::default());
        let (a, b) = (cache.join("g"), cache.join("g"));
        let other = cache.join("h");
        let Claim::Compute(Some(key)) = a.claim(&chunk(0)) else {
            panic!("the first claim computes");
        };
        let Claim::Compute(Some(own)) = other.claim(&chunk(0)) else {
            panic!("another group computes its own");
        };
        other.abandon(&own);
        a.publish(key, scanned(100));
        assert!(cache.lock().bytes > 0);
        drop(a);
        drop(b);
        assert_eq!(cache.lock().bytes, 0);
        assert!(cache.lock().slots.is_empty());
    }

    #[test]
    fn taken_chunks_leave_nothing_behind() {
        let cache = Arc::new(ScanCache::default());
        let (a, b) = (cache.join("g"), cache.join("g"));
        for i in 0..1_000 {
            let Claim::Compute(Some(key)) = a.claim(&chunk(i * 10)) else {
                panic!("computes");
            };
            let Claim::Take(wanted) = b.claim(&chunk(i * 10)) else {
                panic!("takes");
            };
            a.publish(key, scanned(1));
            assert_eq!(rows(b.try_take(&wanted)), Some(1));
        }
        let inner = cache.lock();
        assert!(inner.slots.is_empty());
        assert_eq!(inner.bytes, 0);
        assert!(
            inner.published.len() <= 17,
            "{} keys kept",
            inner.published.len()
        );
    }

    #[test]
    fn the_oldest_chunks_are_dropped_beyond_the_cap() {
        let cache = Arc::new(ScanCache::default());
        let (a, b) = (cache.join("g"), cache.join("g"));
        let size = MEMORY_CAP / 8 / 4 + 1;
        let mut keys = Vec::new();
        for i in 0..5 {
            let Claim::Compute(Some(key)) = a.claim(&chunk(i * 10)) else {
                panic!("computes");
            };
            keys.push(key.clone());
            a.publish(key, scanned(size));
        }
        assert!(cache.lock().bytes <= MEMORY_CAP);
        assert!(
            !a.has_room_for(size * 8),
            "a full cache makes a publisher wait"
        );
        let lone = cache.join("h");
        assert!(
            lone.has_room_for(size * 8),
            "a group holding nothing does not wait"
        );
        let idle = b.idle();
        assert!(
            a.has_room_for(size * 8),
            "nor one whose chunks wait for idle members"
        );
        drop(idle);
        assert!(!a.has_room_for(size * 8));
        assert!(
            matches!(b.try_take(&keys[0]), Ready::Gone),
            "the oldest was dropped"
        );
        assert!(rows(b.try_take(&keys[4])).is_some(), "the newest is kept");
        drop(b);
    }

    #[test]
    fn a_member_left_alone_takes_what_was_published_for_it() {
        // The seed's first query may sit in its sink while the other two read the whole
        // topic and end: it must then take their chunks, not read them again.
        let cache = Arc::new(ScanCache::default());
        let (a, b) = (cache.join("g"), cache.join("g"));
        let Claim::Compute(Some(key)) = a.claim(&chunk(0)) else {
            panic!("computes");
        };
        a.publish(key, scanned(3));
        drop(a);
        let claims = b.claim_batch(&[chunk(0), chunk(10)]);
        assert_eq!(kinds(&claims), "TL");
        let Claim::Take(wanted) = &claims[0] else {
            panic!("takes");
        };
        assert_eq!(rows(b.try_take(wanted)), Some(3));
        assert_eq!(cache.lock().bytes, 0);
    }

    #[test]
    fn a_member_that_passed_a_chunk_no_longer_holds_it() {
        // `c` read chunk 0 alone before the others joined; when it claims its next batch, the
        // chunk the others published for it is released instead of waiting for the cap.
        let cache = Arc::new(ScanCache::default());
        let c = cache.join("g");
        let claims = c.claim_batch(&[on(0, 0)]);
        let [Claim::Compute(Some(alone))] = &claims[..] else {
            panic!("computes");
        };
        c.publish(alone.clone(), scanned(4));
        let (a, b) = (cache.join("g"), cache.join("g"));
        let Claim::Compute(Some(key)) = a.claim(&on(0, 0)) else {
            panic!("computes");
        };
        let Claim::Take(for_b) = b.claim(&on(0, 0)) else {
            panic!("takes");
        };
        a.publish(key, scanned(4));
        assert_eq!(rows(b.try_take(&for_b)), Some(4));
        assert!(cache.lock().bytes > 0, "held for c");
        // A batch on another partition says nothing about partition 0.
        let _ = c.claim_batch(&[on(1, 0)]);
        assert!(cache.lock().bytes > 0, "still held for c");
        let _ = c.claim_batch(&[on(0, 10), on(0, 20)]);
        assert_eq!(cache.lock().bytes, 0);
        assert!(cache
            .lock()
            .slots
            .values()
            .all(|s| matches!(s, Slot::Pending { .. })));
    }

    #[test]
    fn a_batch_does_not_release_its_own_chunks() {
        let cache = Arc::new(ScanCache::default());
        let (a, b) = (cache.join("g"), cache.join("g"));
        let batch = [on(0, 0), on(0, 10)];
        let mut claims = a.claim_batch(&batch);
        assert_eq!(kinds(&claims), "CC");
        let Claim::Compute(Some(first)) = std::mem::replace(&mut claims[0], Claim::Done) else {
            panic!("computes");
        };
        a.publish(first, scanned(6));
        // Chunk 0 ends where chunk 10 starts, but both are b's batch: b still takes chunk 0.
        let claims = b.claim_batch(&batch);
        assert_eq!(kinds(&claims), "TT");
        let Claim::Take(wanted) = &claims[0] else {
            panic!("takes");
        };
        assert_eq!(rows(b.try_take(wanted)), Some(6));
    }

    #[test]
    fn a_leaving_member_releases_its_chunks_and_a_late_one_takes_without_counting() {
        let cache = Arc::new(ScanCache::default());
        let (a, b, c) = (cache.join("g"), cache.join("g"), cache.join("g"));
        let Claim::Compute(Some(key)) = a.claim(&chunk(0)) else {
            panic!("computes");
        };
        a.publish(key.clone(), scanned(2));
        let late = cache.join("g");
        assert_eq!(
            rows(late.try_take(&key)),
            Some(2),
            "a late member takes it too"
        );
        assert!(cache.lock().bytes > 0, "still held for b and c");
        drop(c);
        assert!(cache.lock().bytes > 0, "still held for b");
        assert_eq!(rows(b.try_take(&key)), Some(2));
        assert_eq!(cache.lock().bytes, 0);
    }

    #[test]
    fn a_member_reading_another_topic_is_not_waited_for() {
        // Queries on two topics with the same brokers and parsing form one group; a chunk of
        // one topic must not be held for the queries of the other.
        let cache = Arc::new(ScanCache::default());
        let (a, b, other) = (cache.join("g"), cache.join("g"), cache.join("g"));
        let elsewhere = ChunkRange {
            topic: "u".into(),
            ..chunk(0)
        };
        assert_eq!(kinds(&other.claim_batch(&[elsewhere])), "C");
        let claims = a.claim_batch(&[chunk(0)]);
        let [Claim::Compute(Some(key))] = &claims[..] else {
            panic!("computes");
        };
        a.publish(key.clone(), scanned(8));
        assert_eq!(kinds(&b.claim_batch(&[chunk(0)])), "T");
        assert_eq!(rows(b.try_take(key)), Some(8));
        assert_eq!(cache.lock().bytes, 0, "nobody else will take it");
    }
}
