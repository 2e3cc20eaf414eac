//! Tests of the scan cache's claims, publishing, taking and accounting.
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
fn a_lone_member_leaves_half_its_first_batch_for_queries_starting_after_it() {
    let cache = Arc::new(ScanCache::default());
    let a = cache.join("g");
    let batch = [on(0, 0), on(1, 0)];
    assert_eq!(kinds(&a.claim_batch(&batch)), "CL");
    // `b` starts while `a` reads partition 0: it computes partition 1, which `a` takes.
    let b = cache.join("g");
    assert_eq!(kinds(&b.claim_batch(&batch)), "TC");
    assert!(matches!(a.claim(&batch[1]), Claim::Take(_)));
    // Alone again after its first batch (`b` left), `a` claims the whole batch.
    drop(b);
    let next = [on(0, 10), on(1, 10)];
    assert_eq!(kinds(&a.claim_batch(&next)), "CC");
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
    let size = DEFAULT_MEMORY_CAP / 8 / 4 + 1;
    let mut keys = Vec::new();
    for i in 0..5 {
        let Claim::Compute(Some(key)) = a.claim(&chunk(i * 10)) else {
            panic!("computes");
        };
        keys.push(key.clone());
        a.publish(key, scanned(size));
    }
    assert!(cache.lock().bytes <= DEFAULT_MEMORY_CAP);
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

#[test]
fn chunks_published_of_a_partition_left_for_later_are_taken_as_they_come() {
    let cache = Arc::new(ScanCache::default());
    let (a, b) = (cache.join("g"), cache.join("g"));
    let batch = [on(0, 0), on(0, 10), on(1, 0), on(1, 10)];
    let mut claims = a.claim_batch(&batch);
    assert_eq!(kinds(&claims), "CCLL");
    let b_claims = b.claim_batch(&batch);
    assert_eq!(kinds(&b_claims), "TTCC");
    let Claim::Compute(Some(published)) = &b_claims[2] else {
        panic!("b computes partition 1");
    };
    b.publish(published.clone(), scanned(3));
    assert!(
        a.has_ready(),
        "the chunk waits for `a`, who left its partition for later"
    );
    a.claim_published(&batch, &mut claims);
    // Partition 1's chunk being computed is taken too; nothing is claimed to compute.
    assert_eq!(kinds(&claims), "CCTT");
    let Claim::Take(key) = &claims[2] else {
        panic!("a takes it");
    };
    assert_eq!(rows(a.try_take(key)), Some(3));
    assert!(!a.has_ready());
    assert_eq!(cache.lock().bytes, 0, "taken by everyone it waited for");
}
