//! Session windows, `session_window(col, gapDuration)`: the open sessions of one key and
//! how a new event extends, creates or joins them.
//!
//! An event at `ts` makes the session `[ts, ts + gap)`; a session is `[first event, last
//! event + gap)`. Two sessions merge when they overlap **or touch**: Spark 3.5's
//! `MergingSessionsIterator` (and `UpdatingSessionsIterator`, which streaming uses) walk
//! sessions sorted by start and merge the next one into the current one when
//! `sessionStart <= getSessionEnd(currentSession)`, with `<=`. So an event exactly `gap`
//! after the previous one stays in the same session, and a session only closes after a
//! silence strictly longer than the gap. An event can bridge two sessions, which then merge
//! into one with it.

use super::WindowBounds;

/// An aggregate that can absorb another one of the same kind, as when two sessions merge.
///
/// `SessionSet` merges in start order, but the order in which events arrived decides which
/// sessions exist when, so the result only follows event time if `merge` is associative and
/// commutative (count, sum, min, max, and first/last chosen by event time all are).
pub trait Mergeable {
    /// Folds `other` into `self`.
    fn merge(&mut self, other: Self);
}

/// The open sessions of one key, sorted by start. Sessions never overlap or touch (they
/// would have merged), so their ends are sorted too, which lets lookups and the watermark
/// drain use binary search and prefix removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSet<A: Mergeable> {
    sessions: Vec<(WindowBounds, A)>,
}

impl<A: Mergeable> Default for SessionSet<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Mergeable> SessionSet<A> {
    /// An empty set.
    pub const fn new() -> Self {
        Self {
            sessions: Vec::new(),
        }
    }

    /// Adds an event at `ts` with its aggregate `acc`, merging it with every session its own
    /// `[ts, ts + gap)` overlaps or touches, and returns the session it ends up in.
    ///
    /// `gap` must be positive, as [`parse_positive_interval`](super::parse_positive_interval)
    /// ensures; Spark drops rows whose gap is zero or negative before they reach this point.
    /// A session end past `i64::MAX` is held at `i64::MAX`.
    pub fn insert(&mut self, ts: i64, gap: i64, acc: A) -> WindowBounds {
        debug_assert!(gap > 0, "session gap must be positive, got {gap}");
        let new_session = WindowBounds {
            start: ts,
            end: ts.saturating_add(gap),
        };
        // Sessions ending before the new one starts are untouched, as are sessions starting
        // after it ends; "touch" counts as overlap on both sides.
        let first = self
            .sessions
            .partition_point(|(bounds, _)| bounds.end < new_session.start);
        let past_last = self
            .sessions
            .partition_point(|(bounds, _)| bounds.start <= new_session.end);
        if first >= past_last {
            self.sessions.insert(first, (new_session, acc));
            return new_session;
        }
        let mut absorbed = self.sessions.drain(first..past_last);
        // The range is non-empty, so there is a first element; fall back to the new event's
        // own session rather than panic if that ever stops being true.
        let Some((mut merged, mut merged_acc)) = absorbed.next() else {
            drop(absorbed);
            self.sessions.insert(first, (new_session, acc));
            return new_session;
        };
        for (bounds, other) in absorbed {
            merged.end = merged.end.max(bounds.end);
            merged_acc.merge(other);
        }
        merged.start = merged.start.min(new_session.start);
        merged.end = merged.end.max(new_session.end);
        merged_acc.merge(acc);
        self.sessions.insert(first, (merged, merged_acc));
        merged
    }

    /// Removes and returns, in start order, the sessions that have ended by the watermark
    /// (`end <= watermark`): no later event can reach them, since such an event's own
    /// session would be late by the same rule.
    pub fn drain_closed(&mut self, watermark: i64) -> Vec<(WindowBounds, A)> {
        let closed = self
            .sessions
            .partition_point(|(bounds, _)| bounds.end <= watermark);
        self.sessions.drain(..closed).collect()
    }

    /// The open sessions in start order.
    pub fn iter(&self) -> impl Iterator<Item = (&WindowBounds, &A)> + '_ {
        self.sessions.iter().map(|(bounds, acc)| (bounds, acc))
    }

    /// The open sessions in start order, with their aggregates writable (e.g. to clear a
    /// "changed in this batch" flag after emitting). The bounds stay read-only: changing
    /// them could break the sorted, non-touching order the set relies on.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&WindowBounds, &mut A)> + '_ {
        self.sessions
            .iter_mut()
            .map(|(bounds, acc)| (&*bounds, acc))
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is open, so the key's state can be dropped.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Collects the event times a session holds, sorted, so tests can see exactly which
    /// events ended up together.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Events(Vec<i64>);

    impl Mergeable for Events {
        fn merge(&mut self, other: Self) {
            self.0.extend(other.0);
            self.0.sort_unstable();
        }
    }

    fn insert_all(set: &mut SessionSet<Events>, gap: i64, times: &[i64]) {
        for &ts in times {
            set.insert(ts, gap, Events(vec![ts]));
        }
    }

    fn contents(set: &SessionSet<Events>) -> Vec<(i64, i64, Vec<i64>)> {
        set.iter()
            .map(|(bounds, events)| (bounds.start, bounds.end, events.0.clone()))
            .collect()
    }

    #[test]
    fn events_within_the_gap_extend_one_session() {
        let mut set = SessionSet::new();
        assert!(set.is_empty());
        assert_eq!(
            set.insert(100, 10, Events(vec![100])),
            WindowBounds {
                start: 100,
                end: 110
            }
        );
        assert_eq!(
            set.insert(105, 10, Events(vec![105])),
            WindowBounds {
                start: 100,
                end: 115
            }
        );
        // An event inside the session does not shorten it.
        set.insert(101, 10, Events(vec![101]));
        assert_eq!(contents(&set), vec![(100, 115, vec![100, 101, 105])]);
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn touching_sessions_merge_as_in_spark() {
        let mut set = SessionSet::new();
        insert_all(&mut set, 10, &[100, 110]);
        assert_eq!(contents(&set), vec![(100, 120, vec![100, 110])]);
        // One microsecond more than the gap opens a new session.
        insert_all(&mut set, 10, &[131]);
        assert_eq!(set.len(), 2);
        // Touching from the left: [90, 100) touches [100, 120).
        insert_all(&mut set, 10, &[90]);
        assert_eq!(
            contents(&set),
            vec![(90, 120, vec![90, 100, 110]), (131, 141, vec![131])]
        );
    }

    #[test]
    fn one_event_bridges_two_sessions() {
        let mut set = SessionSet::new();
        insert_all(&mut set, 10, &[100, 125, 160]);
        assert_eq!(set.len(), 3);
        // [115, 125) is clear of [100, 110) but touches [125, 135), so it joins that one.
        insert_all(&mut set, 10, &[115]);
        assert_eq!(set.len(), 3);
        // [108, 118) overlaps [100, 110) and [115, 135): all three become one.
        let merged = set.insert(108, 10, Events(vec![108]));
        assert_eq!(
            merged,
            WindowBounds {
                start: 100,
                end: 135
            }
        );
        assert_eq!(
            contents(&set),
            vec![(100, 135, vec![100, 108, 115, 125]), (160, 170, vec![160])]
        );
    }

    #[test]
    fn out_of_order_events_give_the_same_sessions() {
        let mut in_order = SessionSet::new();
        insert_all(&mut in_order, 10, &[1, 5, 14, 30, 38, 60]);
        let mut shuffled = SessionSet::new();
        insert_all(&mut shuffled, 10, &[60, 14, 38, 1, 30, 5]);
        assert_eq!(contents(&in_order), contents(&shuffled));
        assert_eq!(
            contents(&in_order),
            vec![
                (1, 24, vec![1, 5, 14]),
                (30, 48, vec![30, 38]),
                (60, 70, vec![60])
            ]
        );
    }

    #[test]
    fn drain_removes_sessions_ended_by_the_watermark() {
        let mut set = SessionSet::new();
        insert_all(&mut set, 10, &[-50, 0, 40]);
        assert!(set.drain_closed(-41).is_empty());
        // end == watermark counts as closed.
        let closed = set.drain_closed(10);
        let closed: Vec<_> = closed.into_iter().map(|(bounds, _)| bounds).collect();
        assert_eq!(
            closed,
            vec![
                WindowBounds {
                    start: -50,
                    end: -40
                },
                WindowBounds { start: 0, end: 10 }
            ]
        );
        assert_eq!(contents(&set), vec![(40, 50, vec![40])]);
        assert_eq!(set.drain_closed(i64::MAX).len(), 1);
        assert!(set.is_empty());
    }

    #[test]
    fn iter_mut_updates_aggregates_in_start_order() {
        let mut set = SessionSet::new();
        insert_all(&mut set, 10, &[50, 0]);
        for (bounds, events) in set.iter_mut() {
            events.0.push(bounds.start + 1);
        }
        assert_eq!(
            contents(&set),
            vec![(0, 10, vec![0, 1]), (50, 60, vec![50, 51])]
        );
    }

    #[test]
    fn session_end_saturates_instead_of_overflowing() {
        let mut set = SessionSet::new();
        let bounds = set.insert(i64::MAX - 1, 10, Events(vec![i64::MAX - 1]));
        assert_eq!(bounds.end, i64::MAX);
    }

    /// Sessions as a batch job sees them: sort the events and cut wherever the next event
    /// comes more than `gap` after the previous one (exactly `gap` merges, as in Spark).
    fn reference(gap: i64, times: &[i64]) -> Vec<(i64, i64, Vec<i64>)> {
        let mut sorted = times.to_vec();
        sorted.sort_unstable();
        let mut sessions: Vec<Vec<i64>> = Vec::new();
        for ts in sorted {
            match sessions.last_mut() {
                Some(session) if session.last().is_some_and(|&last| ts - last <= gap) => {
                    session.push(ts);
                }
                _ => sessions.push(vec![ts]),
            }
        }
        sessions
            .into_iter()
            .filter_map(|events| {
                let first = *events.first()?;
                let last = *events.last()?;
                Some((first, last + gap, events))
            })
            .collect()
    }

    proptest! {
        #[test]
        fn incremental_sessions_match_the_sorted_reference(
            gap in 1i64..50,
            times in proptest::collection::vec(-500i64..500, 0..60),
        ) {
            let mut set = SessionSet::new();
            insert_all(&mut set, gap, &times);
            prop_assert_eq!(contents(&set), reference(gap, &times));
        }

        #[test]
        fn insertion_order_does_not_matter(
            gap in 1i64..50,
            times in proptest::collection::vec(-500i64..500, 0..60),
        ) {
            let mut forward = SessionSet::new();
            insert_all(&mut forward, gap, &times);
            let mut backward = SessionSet::new();
            let reversed: Vec<i64> = times.iter().rev().copied().collect();
            insert_all(&mut backward, gap, &reversed);
            prop_assert_eq!(contents(&forward), contents(&backward));
        }
    }
}
