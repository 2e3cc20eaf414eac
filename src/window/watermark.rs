//! The event-time watermark of one query, and the rule that makes a row late.
//!
//! As in Spark 3.5 (`WatermarkTracker` with the default `min` policy): each
//! `withWatermark(column, delay)` tracks the largest event time seen on its column; at the
//! end of each micro-batch the watermark becomes `min over columns (max event time - delay)`
//! and never moves backwards. Spark starts the watermark at 0 and lets a column without data
//! hold it there; we report "no watermark" (`None`) until every column has seen data, which
//! also keeps times before 1970 meaningful instead of clamping them at the epoch.
//!
//! Beyond Spark, an opt-in idle timeout (like Flink's `withIdleness`) lets the windows of a
//! quiet feed close: once a column has had no input for `idle_timeout` of processing time,
//! its event time is taken to advance with processing time since its last input, i.e. its
//! max event time counts as `max event time + (now - last input)`. The watermark then jumps by
//! the timeout at once and moves at wall-clock pace after that; when input resumes, the real
//! max event time is used again and the watermark holds until it catches up (never
//! backwards). The tracker sees processing time only at batch ends, so "last input" is the
//! end of the last batch in which the column had rows.

use serde::{Deserialize, Serialize};

use super::clock::ProcessingTime;
use super::duration::format_interval;
use super::WindowError;

/// Whether a row is dropped from the stateful operator (and counted in
/// `numRowsDroppedByWatermark`): its window ended at or before the watermark computed at the
/// end of the previous batch. With no watermark yet, nothing is late.
pub fn is_late(window_end: i64, watermark: Option<i64>) -> bool {
    watermark.is_some_and(|watermark| window_end <= watermark)
}

/// One `withWatermark(column, delay)` and what has been seen on it.
#[derive(Debug, Clone)]
struct WatermarkedColumn {
    name: String,
    delay: i64,
    max_event_time: Option<i64>,
    /// Processing time at the end of the last batch with input on this column; `None` until
    /// the first batch end after start or restore.
    last_input_at: Option<i64>,
    input_in_batch: bool,
}

/// The watermark of one query, advanced at the end of each micro-batch.
#[derive(Debug, Clone)]
pub struct WatermarkTracker {
    columns: Vec<WatermarkedColumn>,
    idle_timeout: Option<i64>,
    watermark: Option<i64>,
    /// The latest batch end seen, so that a clock stepping back cannot shrink idle time.
    latest_batch_end: Option<i64>,
}

/// The part of the watermark a checkpoint keeps, so a restarted query neither re-emits
/// windows nor accepts rows the previous run had already judged late.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatermarkState {
    /// Per watermarked column, in the order the query declares them.
    pub columns: Vec<ColumnWatermarkState>,
    /// The watermark in event-time microseconds, if one has been computed.
    pub watermark: Option<i64>,
}

/// The checkpointed state of one watermarked column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnWatermarkState {
    /// The event-time column's name, checked against the query on restore.
    pub column: String,
    /// The largest event time seen on it, in microseconds.
    pub max_event_time: Option<i64>,
}

impl WatermarkTracker {
    /// A tracker for the query's `withWatermark(column, delay)` calls, delays in
    /// microseconds. With no columns the query has no watermark and `current()` stays `None`.
    pub fn new<S: Into<String>>(
        columns: impl IntoIterator<Item = (S, i64)>,
    ) -> Result<Self, WindowError> {
        let columns = columns
            .into_iter()
            .map(|(name, delay)| {
                let name = name.into();
                if delay < 0 {
                    return Err(WindowError::NegativeDelay {
                        column: name,
                        delay: format_interval(delay),
                    });
                }
                Ok(WatermarkedColumn {
                    name,
                    delay,
                    max_event_time: None,
                    last_input_at: None,
                    input_in_batch: false,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            columns,
            idle_timeout: None,
            watermark: None,
            latest_batch_end: None,
        })
    }

    /// Lets the watermark advance with processing time after `idle_timeout` microseconds
    /// without input on a column (see the module documentation).
    pub fn with_idle_timeout(mut self, idle_timeout: i64) -> Result<Self, WindowError> {
        if idle_timeout <= 0 {
            return Err(WindowError::InvalidIdleTimeout {
                timeout: format_interval(idle_timeout),
            });
        }
        self.idle_timeout = Some(idle_timeout);
        Ok(self)
    }

    /// The position of a watermarked column, as `observe` takes it.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|column| column.name == name)
    }

    /// The watermarked columns and their delays, in declaration order.
    pub fn columns(&self) -> impl Iterator<Item = (&str, i64)> + '_ {
        self.columns
            .iter()
            .map(|column| (column.name.as_str(), column.delay))
    }

    /// Records the largest event time of the current batch on one column. The watermark
    /// does not move until [`advance_at_batch_end`](Self::advance_at_batch_end), so every
    /// row of a batch is judged against the same watermark.
    pub fn observe(
        &mut self,
        column_index: usize,
        max_event_time_in_batch: i64,
    ) -> Result<(), WindowError> {
        let count = self.columns.len();
        let column =
            self.columns
                .get_mut(column_index)
                .ok_or(WindowError::UnknownWatermarkColumn {
                    index: column_index,
                    count,
                })?;
        column.max_event_time = Some(
            column
                .max_event_time
                .map_or(max_event_time_in_batch, |seen| {
                    seen.max(max_event_time_in_batch)
                }),
        );
        column.input_in_batch = true;
        Ok(())
    }

    /// Computes the watermark at the end of a batch and returns it (the same value as
    /// [`current`](Self::current) afterwards): `None` while some column has not seen data.
    pub fn advance_at_batch_end(&mut self, now: ProcessingTime) -> Option<i64> {
        let now = self
            .latest_batch_end
            .map_or(now.as_micros(), |latest| latest.max(now.as_micros()));
        self.latest_batch_end = Some(now);
        for column in &mut self.columns {
            if column.input_in_batch || column.last_input_at.is_none() {
                column.last_input_at = Some(now);
                column.input_in_batch = false;
            }
        }
        let idle_timeout = self.idle_timeout;
        // `None` (no candidate) while any column has not seen data.
        let candidate = self
            .columns
            .iter()
            .map(|column| {
                let max_event_time = column.max_event_time?;
                let idle_for = column
                    .last_input_at
                    .map_or(0, |last| now.saturating_sub(last));
                let effective_max = match idle_timeout {
                    Some(timeout) if idle_for >= timeout => max_event_time.saturating_add(idle_for),
                    _ => max_event_time,
                };
                Some(effective_max.saturating_sub(column.delay))
            })
            .collect::<Option<Vec<i64>>>()
            .and_then(|per_column| per_column.into_iter().min());
        if let Some(candidate) = candidate {
            self.watermark = Some(self.watermark.map_or(candidate, |old| old.max(candidate)));
        }
        self.watermark
    }

    /// The watermark computed at the end of the last batch, if any.
    pub fn current(&self) -> Option<i64> {
        self.watermark
    }

    /// The state to store in the checkpoint with the batch's commit.
    pub fn snapshot(&self) -> WatermarkState {
        WatermarkState {
            columns: self
                .columns
                .iter()
                .map(|column| ColumnWatermarkState {
                    column: column.name.clone(),
                    max_event_time: column.max_event_time,
                })
                .collect(),
            watermark: self.watermark,
        }
    }

    /// Resumes from a checkpointed state. The columns must be the query's watermarked
    /// columns in the same order (delays may change between runs, as in Spark). Idle time
    /// counts again from the first batch end after the restore.
    pub fn restore(&mut self, state: WatermarkState) -> Result<(), WindowError> {
        let expected: Vec<&str> = self
            .columns
            .iter()
            .map(|column| column.name.as_str())
            .collect();
        let found: Vec<&str> = state
            .columns
            .iter()
            .map(|saved| saved.column.as_str())
            .collect();
        if expected != found {
            return Err(WindowError::WatermarkStateMismatch {
                expected: expected.into_iter().map(String::from).collect(),
                found: found.into_iter().map(String::from).collect(),
            });
        }
        for (column, saved) in self.columns.iter_mut().zip(state.columns) {
            column.max_event_time = saved.max_event_time;
            column.last_input_at = None;
            column.input_in_batch = false;
        }
        self.watermark = state.watermark;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::clock::{Clock, ManualClock};
    use proptest::prelude::*;

    const SECOND: i64 = 1_000_000;

    fn tracker(columns: &[(&str, i64)]) -> WatermarkTracker {
        WatermarkTracker::new(columns.iter().copied()).expect("valid columns")
    }

    fn observe(tracker: &mut WatermarkTracker, column: usize, max_event_time: i64) {
        tracker
            .observe(column, max_event_time)
            .expect("known column");
    }

    #[test]
    fn late_means_window_ended_at_or_before_the_watermark() {
        assert!(!is_late(100, None));
        assert!(is_late(99, Some(100)));
        assert!(is_late(100, Some(100)));
        assert!(!is_late(101, Some(100)));
    }

    #[test]
    fn unset_until_every_column_has_data_then_the_minimum_wins() {
        let mut tracker = tracker(&[("bid_time", 10), ("ask_time", 0)]);
        assert_eq!(tracker.column_index("ask_time"), Some(1));
        assert_eq!(tracker.advance_at_batch_end(ProcessingTime(0)), None);
        observe(&mut tracker, 0, 100);
        // Observing alone does not move the watermark before the batch ends.
        assert_eq!(tracker.current(), None);
        assert_eq!(tracker.advance_at_batch_end(ProcessingTime(1)), None);
        observe(&mut tracker, 1, 50);
        assert_eq!(tracker.advance_at_batch_end(ProcessingTime(2)), Some(50));
        observe(&mut tracker, 1, 200);
        assert_eq!(tracker.advance_at_batch_end(ProcessingTime(3)), Some(90));
        assert_eq!(tracker.current(), Some(90));
    }

    #[test]
    fn never_moves_backwards() {
        let mut tracker = tracker(&[("event_time", 10 * SECOND)]);
        observe(&mut tracker, 0, 100 * SECOND);
        assert_eq!(
            tracker.advance_at_batch_end(ProcessingTime(0)),
            Some(90 * SECOND)
        );
        // A batch of older rows does not lower the max event time or the watermark.
        observe(&mut tracker, 0, 20 * SECOND);
        assert_eq!(
            tracker.advance_at_batch_end(ProcessingTime(1)),
            Some(90 * SECOND)
        );
        // Nor does a checkpoint restored with a lower max, once the watermark is restored.
        let mut state = tracker.snapshot();
        state.columns[0].max_event_time = Some(0);
        assert_eq!(tracker.restore(state), Ok(()));
        assert_eq!(
            tracker.advance_at_batch_end(ProcessingTime(2)),
            Some(90 * SECOND)
        );
    }

    #[test]
    fn without_idle_timeout_a_quiet_feed_holds_the_watermark() {
        let clock = ManualClock::new(0);
        let mut tracker = tracker(&[("event_time", 10 * SECOND)]);
        observe(&mut tracker, 0, 1_000 * SECOND);
        tracker.advance_at_batch_end(clock.now());
        clock.advance(3_600 * SECOND);
        assert_eq!(
            tracker.advance_at_batch_end(clock.now()),
            Some(990 * SECOND)
        );
    }

    #[test]
    fn idle_timeout_advances_with_processing_time() {
        let clock = ManualClock::new(5_000 * SECOND);
        let mut tracker = tracker(&[("event_time", 10 * SECOND)])
            .with_idle_timeout(60 * SECOND)
            .expect("valid timeout");
        observe(&mut tracker, 0, 1_000 * SECOND);
        assert_eq!(
            tracker.advance_at_batch_end(clock.now()),
            Some(990 * SECOND)
        );
        clock.advance(59 * SECOND);
        assert_eq!(
            tracker.advance_at_batch_end(clock.now()),
            Some(990 * SECOND)
        );
        // 60 s without input: event time is assumed to have moved 60 s.
        clock.advance(SECOND);
        assert_eq!(
            tracker.advance_at_batch_end(clock.now()),
            Some(1_050 * SECOND)
        );
        clock.advance(10 * SECOND);
        assert_eq!(
            tracker.advance_at_batch_end(clock.now()),
            Some(1_060 * SECOND)
        );
        // Input resumes behind the extrapolation: the watermark holds, the idle clock resets.
        observe(&mut tracker, 0, 1_005 * SECOND);
        assert_eq!(
            tracker.advance_at_batch_end(clock.now()),
            Some(1_060 * SECOND)
        );
        clock.advance(30 * SECOND);
        assert_eq!(
            tracker.advance_at_batch_end(clock.now()),
            Some(1_060 * SECOND)
        );
        // A processing time earlier than the last batch end is treated as that batch end.
        assert_eq!(
            tracker.advance_at_batch_end(ProcessingTime(0)),
            Some(1_060 * SECOND)
        );
    }

    #[test]
    fn idle_timeout_never_invents_a_watermark_for_a_column_without_data() {
        let clock = ManualClock::new(0);
        let mut tracker = tracker(&[("a", 0), ("b", 0)])
            .with_idle_timeout(SECOND)
            .expect("valid timeout");
        observe(&mut tracker, 0, 100);
        tracker.advance_at_batch_end(clock.now());
        clock.advance(10 * SECOND);
        assert_eq!(tracker.advance_at_batch_end(clock.now()), None);
    }

    #[test]
    fn snapshot_survives_serialization_and_restore() {
        let mut tracker = tracker(&[("event_time", 5)]);
        observe(&mut tracker, 0, 105);
        tracker.advance_at_batch_end(ProcessingTime(0));
        let json = serde_json::to_string(&tracker.snapshot()).expect("serializable");
        let state: WatermarkState = serde_json::from_str(&json).expect("deserializable");
        let mut restarted = self::tracker(&[("event_time", 5)]);
        assert_eq!(restarted.restore(state), Ok(()));
        assert_eq!(restarted.current(), Some(100));
        assert_eq!(restarted.snapshot(), tracker.snapshot());
        observe(&mut restarted, 0, 110);
        assert_eq!(restarted.advance_at_batch_end(ProcessingTime(1)), Some(105));
    }

    #[test]
    fn rejects_bad_configuration_and_foreign_state() {
        assert!(matches!(
            WatermarkTracker::new([("event_time", -1)]),
            Err(WindowError::NegativeDelay { column, .. }) if column == "event_time"
        ));
        assert!(matches!(
            tracker(&[("event_time", 0)]).with_idle_timeout(0),
            Err(WindowError::InvalidIdleTimeout { .. })
        ));
        let mut one = tracker(&[("event_time", 0)]);
        assert_eq!(
            one.observe(1, 0),
            Err(WindowError::UnknownWatermarkColumn { index: 1, count: 1 })
        );
        let foreign = self::tracker(&[("other_time", 0)]).snapshot();
        let message = one.restore(foreign).unwrap_err().to_string();
        assert!(message.contains("other_time") && message.contains("event_time"));
        let mut none = tracker(&[]);
        assert_eq!(none.advance_at_batch_end(ProcessingTime(0)), None);
    }

    proptest! {
        #[test]
        fn equals_min_of_max_minus_delay_and_never_decreases(
            delays in proptest::collection::vec(0i64..1_000, 1..4),
            batches in proptest::collection::vec(
                proptest::collection::vec((0usize..4, -10_000i64..10_000), 0..5),
                1..12,
            ),
        ) {
            let columns: Vec<(String, i64)> = delays
                .iter()
                .enumerate()
                .map(|(index, &delay)| (format!("c{index}"), delay))
                .collect();
            let mut tracker = WatermarkTracker::new(columns).expect("valid columns");
            let mut seen: Vec<Option<i64>> = vec![None; delays.len()];
            let mut previous: Option<i64> = None;
            for (batch_index, batch) in batches.iter().enumerate() {
                for &(column, ts) in batch {
                    let column = column % delays.len();
                    observe(&mut tracker, column, ts);
                    seen[column] = Some(seen[column].map_or(ts, |max| max.max(ts)));
                }
                let watermark = tracker.advance_at_batch_end(ProcessingTime(batch_index as i64));
                let expected = seen
                    .iter()
                    .zip(&delays)
                    .map(|(max, delay)| max.map(|max| max - delay))
                    .collect::<Option<Vec<i64>>>()
                    .and_then(|per_column| per_column.into_iter().min());
                prop_assert_eq!(watermark, expected);
                prop_assert!(previous <= watermark);
                previous = watermark;
            }
        }
    }
}
