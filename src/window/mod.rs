//! Event-time windows and the watermark: the parts of a streaming aggregation that decide
//! *which* window a row belongs to and *when* a window is complete.
//!
//! This module mirrors Spark 3.5 Structured Streaming: the interval strings that `window()`,
//! `withWatermark()` and `trigger(processingTime=...)` accept ([`duration`]), the tumbling and
//! sliding assignment of `window(col, size, slide, startTime)` ([`assign`]), the gap-based
//! merging of `session_window(col, gap)` ([`session`]), and the "max event time minus delay,
//! minimum over columns, never backwards" watermark with its late-row rule ([`watermark`]).
//! It holds no rows and no I/O: the executor feeds it timestamps, and the state store keeps
//! what it returns. All times are `i64` microseconds since the Unix epoch, the precision of
//! Spark's `TimestampType` and of Arrow's `Timestamp(Microsecond)`.

pub mod assign;
pub mod clock;
pub mod duration;
pub mod session;
pub mod watermark;

pub use assign::WindowSpec;
pub use clock::{Clock, ManualClock, ProcessingTime, SystemClock};
pub use duration::{
    format_interval, parse_interval, parse_non_negative_interval, parse_positive_interval,
};
pub use session::{Mergeable, SessionSet};
pub use watermark::{is_late, ColumnWatermarkState, WatermarkState, WatermarkTracker};

use serde::{Deserialize, Serialize};

/// Microseconds in one millisecond; event times from Kafka and Binance arrive in milliseconds.
const MICROS_PER_MILLI: i64 = 1_000;

/// An event time: microseconds since the Unix epoch, as Spark's `TimestampType` stores it.
///
/// A newtype so that event time cannot be confused with processing time
/// ([`ProcessingTime`]) or with a duration in the same unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventTime(pub i64);

impl EventTime {
    /// The event time of a millisecond timestamp (Kafka's record timestamp, Binance's
    /// `event_time`); `None` when the value is too far from 1970 to be held in microseconds.
    pub const fn from_millis(millis: i64) -> Option<Self> {
        match millis.checked_mul(MICROS_PER_MILLI) {
            Some(micros) => Some(Self(micros)),
            None => None,
        }
    }

    /// Microseconds since the epoch, the unit every function in this module takes.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Whole milliseconds since the epoch, rounded towards minus infinity so that a time
    /// before 1970 lands in the millisecond that contains it (Spark's progress reports the
    /// watermark in milliseconds this way).
    pub const fn as_millis(self) -> i64 {
        self.0.div_euclid(MICROS_PER_MILLI)
    }
}

/// A window `[start, end)` in event-time microseconds: `start` is included and `end` is not,
/// as in Spark's `window` struct column, so a row stamped exactly `end` belongs to the next
/// window. Ordered by `start`, then `end` (the field order), which is the order Spark emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WindowBounds {
    /// First microsecond inside the window.
    pub start: i64,
    /// First microsecond after the window.
    pub end: i64,
}

impl WindowBounds {
    /// Whether `ts` falls inside the half-open window.
    pub const fn contains(&self, ts: i64) -> bool {
        self.start <= ts && ts < self.end
    }
}

/// What can be wrong with a window, interval or watermark a user asked for. Every message
/// names the offending text or parameter and says what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// The text is not a Spark interval string.
    #[error(
        "invalid interval '{text}': {reason}. Expected a Spark interval such as '10 seconds', \
         '1 hour 30 minutes' or 'interval 1 day'; units are week, day, hour, minute, second, \
         millisecond and microsecond, singular or plural"
    )]
    InvalidInterval {
        /// The text as the user wrote it.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The interval uses months or years, whose length varies.
    #[error(
        "interval '{text}' uses months or years, which have no fixed length in microseconds \
         and are not supported for windows, watermarks or triggers; use days or weeks \
         instead, e.g. '30 days'"
    )]
    MonthsNotSupported {
        /// The text as the user wrote it.
        text: String,
    },
    /// A window size, slide or session gap must be longer than zero.
    #[error("interval '{text}' must be greater than zero, e.g. '10 minutes'")]
    NotPositive {
        /// The text as the user wrote it.
        text: String,
    },
    /// A watermark delay or trigger interval must not be negative.
    #[error("interval '{text}' must not be negative; use '0 seconds' for no delay")]
    Negative {
        /// The text as the user wrote it.
        text: String,
    },
    /// A string argument of `window()` could not be parsed.
    #[error("window {parameter}: {source}")]
    WindowArgument {
        /// The PySpark parameter name: `windowDuration`, `slideDuration` or `startTime`.
        parameter: &'static str,
        /// Why its text was rejected.
        source: Box<WindowError>,
    },
    /// The window parameters break one of Spark's rules for `window()`.
    #[error("invalid window {parameter} ({value}): {rule}")]
    InvalidWindow {
        /// The PySpark parameter name: `windowDuration`, `slideDuration` or `startTime`.
        parameter: &'static str,
        /// The value given, as an interval string.
        value: String,
        /// The rule it breaks, with the other values involved.
        rule: String,
    },
    /// `withWatermark` was given a negative delay.
    #[error("watermark delay on column '{column}' ({delay}) must not be negative")]
    NegativeDelay {
        /// The event-time column.
        column: String,
        /// The delay, as an interval string.
        delay: String,
    },
    /// An idle timeout must be longer than zero.
    #[error("watermark idle timeout ({timeout}) must be greater than zero")]
    InvalidIdleTimeout {
        /// The timeout, as an interval string.
        timeout: String,
    },
    /// The executor referred to a watermarked column the tracker does not have.
    #[error("no watermarked column at index {index}: the query watermarks {count} column(s)")]
    UnknownWatermarkColumn {
        /// The index asked for.
        index: usize,
        /// How many watermarked columns the tracker has.
        count: usize,
    },
    /// A checkpointed watermark state does not belong to this query's watermarks.
    #[error(
        "the checkpoint's watermark state is for columns {found:?}, but the query sets \
         watermarks on {expected:?}; restart with the original withWatermark() calls or \
         a new checkpoint location"
    )]
    WatermarkStateMismatch {
        /// The query's watermarked columns, in order.
        expected: Vec<String>,
        /// The columns named in the checkpoint.
        found: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_time_converts_milliseconds_both_ways() {
        assert_eq!(EventTime::from_millis(1_500), Some(EventTime(1_500_000)));
        assert_eq!(EventTime(1_500_999).as_millis(), 1_500);
        // Before 1970 the millisecond containing the instant is the one below it.
        assert_eq!(EventTime(-1).as_millis(), -1);
        assert_eq!(EventTime::from_millis(i64::MAX), None);
        assert_eq!(EventTime(7).as_micros(), 7);
    }

    #[test]
    fn window_bounds_order_by_start_then_end_and_exclude_end() {
        let a = WindowBounds { start: 0, end: 10 };
        let b = WindowBounds { start: 0, end: 20 };
        let c = WindowBounds { start: 5, end: 6 };
        assert!(a < b && b < c);
        assert!(a.contains(0) && a.contains(9) && !a.contains(10));
    }
}
