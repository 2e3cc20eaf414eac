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
//! Nothing waits on a chunk that is not being computed: a query claims the chunks it will
//! compute, computes all of them before waiting on anyone, and a claim dropped without a
//! result (an error, a stop) releases its waiters, who then compute the chunk themselves. A
//! published chunk is kept until every other member of its group took it, and the oldest are
//! dropped beyond a memory cap, so a query far behind the others reads for itself instead of
//! pinning memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::scan::Scanned;
use crate::source::{Cancel, ChunkRange};

/// Bytes of published chunks a session keeps at most.
const MEMORY_CAP: usize = 64 << 20;

type SlotKey = (Arc<str>, ChunkRange);

enum Slot {
    /// A member is computing it.
    Pending,
    /// Computed; `remaining` members have not taken it yet.
    Ready {
        scanned: Arc<Scanned>,
        remaining: usize,
    },
}

impl Slot {
    fn bytes(&self) -> usize {
        match self {
            Slot::Ready { scanned, .. } => scanned.memory_size(),
            Slot::Pending => 0,
        }
    }
}

#[derive(Default)]
struct Inner {
    /// Members per group.
    members: HashMap<Arc<str>, usize>,
    slots: HashMap<SlotKey, Slot>,
    /// Published slots, oldest first (may name slots already taken).
    published: VecDeque<SlotKey>,
    bytes: usize,
}

/// A session's shared chunks.
#[derive(Default)]
pub struct ScanCache {
    inner: Mutex<Inner>,
    changed: Condvar,
}

/// What a query does with one chunk of its batch.
pub enum Claim {
    /// Compute it; publish it with `publish` when the group has other members.
    Compute(Option<SlotKey>),
    /// Another member computes or computed it: `take` it after computing one's own.
    Take(SlotKey),
}

/// A query's membership in a group; leaves the group when dropped.
pub struct Member {
    cache: Arc<ScanCache>,
    group: Arc<str>,
}

impl Member {
    /// The group's name.
    pub fn group(&self) -> &Arc<str> {
        &self.group
    }

    /// The cache.
    pub fn cache(&self) -> &ScanCache {
        &self.cache
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let mut inner = self.cache.lock();
        if let Some(count) = inner.members.get_mut(&self.group) {
            *count -= 1;
            if *count == 0 {
                inner.members.remove(&self.group);
                let group = Arc::clone(&self.group);
                inner.slots.retain(|(g, _), _| *g != group);
                let bytes = inner.slots.values().map(Slot::bytes).sum();
                inner.bytes = bytes;
            }
        }
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
        *self.lock().members.entry(Arc::clone(&group)).or_insert(0) += 1;
        Member {
            cache: Arc::clone(self),
            group,
        }
    }

    /// Claims `chunk` for a member of `group`.
    pub fn claim(&self, group: &Arc<str>, chunk: &ChunkRange) -> Claim {
        let mut inner = self.lock();
        let members = inner.members.get(group).copied().unwrap_or(0);
        if members <= 1 {
            return Claim::Compute(None);
        }
        let key = (Arc::clone(group), chunk.clone());
        if inner.slots.contains_key(&key) {
            return Claim::Take(key);
        }
        inner.slots.insert(key.clone(), Slot::Pending);
        Claim::Compute(Some(key))
    }

    /// Publishes a chunk this member claimed with `Claim::Compute(Some(key))`.
    pub fn publish(&self, key: SlotKey, scanned: Arc<Scanned>) {
        let mut inner = self.lock();
        let others = inner.members.get(&key.0).copied().unwrap_or(0);
        if others <= 1 || !inner.slots.contains_key(&key) {
            inner.slots.remove(&key);
        } else {
            inner.bytes += scanned.memory_size();
            inner.slots.insert(
                key.clone(),
                Slot::Ready {
                    scanned,
                    remaining: others - 1,
                },
            );
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
        self.changed.notify_all();
    }

    /// Gives up a claimed chunk without a result; whoever waits for it computes it.
    pub fn abandon(&self, key: &SlotKey) {
        let mut inner = self.lock();
        if matches!(inner.slots.get(key), Some(Slot::Pending)) {
            inner.slots.remove(key);
        }
        drop(inner);
        self.changed.notify_all();
    }

    /// Waits for a chunk another member computes; `None` when it was abandoned or dropped,
    /// so the caller computes it.
    pub fn take(&self, key: &SlotKey, cancel: &Cancel) -> Option<Arc<Scanned>> {
        let mut inner = self.lock();
        loop {
            if cancel.is_cancelled() {
                return None;
            }
            match inner.slots.get_mut(key) {
                None => return None,
                Some(Slot::Pending) => {
                    inner = self
                        .changed
                        .wait_timeout(inner, Duration::from_millis(100))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                Some(Slot::Ready { scanned, remaining }) => {
                    let scanned = Arc::clone(scanned);
                    *remaining = remaining.saturating_sub(1);
                    if *remaining == 0 {
                        inner.slots.remove(key);
                        inner.bytes -= scanned.memory_size();
                    }
                    return Some(scanned);
                }
            }
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
    fn a_lone_query_computes_without_publishing() {
        let cache = Arc::new(ScanCache::default());
        let member = cache.join("g");
        assert!(matches!(
            cache.claim(member.group(), &chunk(0)),
            Claim::Compute(None)
        ));
    }

    #[test]
    fn the_first_claim_computes_and_the_others_take_it_once() {
        let cache = Arc::new(ScanCache::default());
        let (a, b, c) = (cache.join("g"), cache.join("g"), cache.join("g"));
        let Claim::Compute(Some(key)) = cache.claim(a.group(), &chunk(0)) else {
            panic!("the first claim computes");
        };
        let Claim::Take(for_b) = cache.claim(b.group(), &chunk(0)) else {
            panic!("the second takes");
        };
        let Claim::Take(for_c) = cache.claim(c.group(), &chunk(0)) else {
            panic!("the third takes");
        };
        cache.publish(key, scanned(5));
        let cancel = Cancel::default();
        assert_eq!(cache.take(&for_b, &cancel).map(|s| s.rows), Some(5));
        assert_eq!(cache.take(&for_c, &cancel).map(|s| s.rows), Some(5));
        // Both others took it: it is gone, and nothing is held.
        assert!(cache.take(&for_c, &cancel).is_none());
        assert_eq!(cache.lock().bytes, 0);
    }

    #[test]
    fn an_abandoned_claim_releases_a_waiting_query() {
        let cache = Arc::new(ScanCache::default());
        let (a, b) = (cache.join("g"), cache.join("g"));
        let Claim::Compute(Some(key)) = cache.claim(a.group(), &chunk(0)) else {
            panic!("the first claim computes");
        };
        let Claim::Take(wanted) = cache.claim(b.group(), &chunk(0)) else {
            panic!("the second takes");
        };
        let waiter = {
            let cache = Arc::clone(&cache);
            std::thread::spawn(move || cache.take(&wanted, &Cancel::default()).is_none())
        };
        std::thread::sleep(Duration::from_millis(50));
        cache.abandon(&key);
        assert!(
            waiter.join().expect("waiter"),
            "the waiter computes it itself"
        );
    }

    #[test]
    fn groups_are_separate_and_a_left_group_frees_its_chunks() {
        let cache = Arc::new(ScanCache::default());
        let (a, b) = (cache.join("g"), cache.join("g"));
        let other = cache.join("h");
        let Claim::Compute(Some(key)) = cache.claim(a.group(), &chunk(0)) else {
            panic!("the first claim computes");
        };
        assert!(matches!(
            cache.claim(other.group(), &chunk(0)),
            Claim::Compute(None)
        ));
        cache.publish(key, scanned(100));
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
        let cancel = Cancel::default();
        for i in 0..1_000 {
            let Claim::Compute(Some(key)) = cache.claim(a.group(), &chunk(i * 10)) else {
                panic!("computes");
            };
            let Claim::Take(wanted) = cache.claim(b.group(), &chunk(i * 10)) else {
                panic!("takes");
            };
            cache.publish(key, scanned(1));
            assert!(cache.take(&wanted, &cancel).is_some());
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
        let rows = MEMORY_CAP / 8 / 4 + 1;
        let mut keys = Vec::new();
        for i in 0..5 {
            let Claim::Compute(Some(key)) = cache.claim(a.group(), &chunk(i * 10)) else {
                panic!("computes");
            };
            keys.push(key.clone());
            cache.publish(key, scanned(rows));
        }
        assert!(cache.lock().bytes <= MEMORY_CAP);
        let cancel = Cancel::default();
        assert!(
            cache.take(&keys[0], &cancel).is_none(),
            "the oldest was dropped"
        );
        assert!(
            cache.take(&keys[4], &cancel).is_some(),
            "the newest is kept"
        );
        drop(b);
    }
}
