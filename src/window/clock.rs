//! Processing time, injected. The micro-batch loop, triggers and the watermark's idle
//! timeout read the time through [`Clock`] so that tests drive it by hand ([`ManualClock`])
//! instead of sleeping, and every clock here only moves forward: a wall clock stepped back by
//! NTP must not reopen a trigger interval or move an idle watermark backwards.

use std::sync::atomic::{AtomicI64, Ordering};

/// A processing (wall-clock) time in microseconds since the Unix epoch. A newtype so that it
/// cannot be passed where an event time is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcessingTime(pub i64);

impl ProcessingTime {
    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }
}

/// A source of processing time that never goes backwards.
pub trait Clock: Send + Sync {
    /// Microseconds since the Unix epoch, at least the value of any earlier call.
    fn now_micros(&self) -> i64;

    /// The same time as a [`ProcessingTime`].
    fn now(&self) -> ProcessingTime {
        ProcessingTime(self.now_micros())
    }
}

/// The system's wall clock, held monotonic: a reading earlier than the last one returns the
/// last one again.
#[derive(Debug, Default)]
pub struct SystemClock {
    latest: AtomicI64,
}

impl SystemClock {
    /// A clock reading the system time.
    pub const fn new() -> Self {
        Self {
            latest: AtomicI64::new(i64::MIN),
        }
    }
}

impl Clock for SystemClock {
    fn now_micros(&self) -> i64 {
        let reading = chrono::Utc::now().timestamp_micros();
        // fetch_max returns the previous value; the larger of the two is what we report.
        let previous = self.latest.fetch_max(reading, Ordering::AcqRel);
        previous.max(reading)
    }
}

/// A clock that only moves when told to, for tests; shareable between threads.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    /// A clock showing `start_micros`.
    pub const fn new(start_micros: i64) -> Self {
        Self {
            now: AtomicI64::new(start_micros),
        }
    }

    /// Moves the clock forward by `micros`; a negative step is ignored, since processing
    /// time never goes backwards. Saturates at `i64::MAX`.
    pub fn advance(&self, micros: i64) {
        let step = micros.max(0);
        // fetch_update retries if another thread moved the clock meanwhile; the closure
        // always returns Some, so the result carries nothing to handle.
        let _ = self
            .now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                Some(now.saturating_add(step))
            });
    }

    /// Sets the clock to `micros` if that is later than what it shows; an earlier time is
    /// ignored.
    pub fn set(&self, micros: i64) {
        self.now.fetch_max(micros, Ordering::AcqRel);
    }
}

impl Clock for ManualClock {
    fn now_micros(&self) -> i64 {
        self.now.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn manual_clock_moves_only_forward() {
        let clock = ManualClock::new(1_000);
        assert_eq!(clock.now(), ProcessingTime(1_000));
        clock.advance(500);
        assert_eq!(clock.now_micros(), 1_500);
        clock.advance(-10_000);
        assert_eq!(clock.now_micros(), 1_500);
        clock.set(1_000);
        assert_eq!(clock.now_micros(), 1_500);
        clock.set(2_000);
        assert_eq!(clock.now_micros(), 2_000);
        clock.advance(i64::MAX);
        assert_eq!(clock.now_micros(), i64::MAX);
    }

    #[test]
    fn manual_clock_is_shared_between_threads() {
        let clock = Arc::new(ManualClock::new(0));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let clock = Arc::clone(&clock);
                std::thread::spawn(move || (0..1_000).for_each(|_| clock.advance(1)))
            })
            .collect();
        for handle in handles {
            assert!(handle.join().is_ok());
        }
        assert_eq!(clock.now_micros(), 4_000);
    }

    #[test]
    fn system_clock_is_recent_and_monotonic() {
        let clock: Box<dyn Clock> = Box::new(SystemClock::new());
        let first = clock.now_micros();
        // 2020-01-01 in microseconds: any real clock is past it.
        assert!(first > 1_577_836_800_000_000);
        let second = clock.now();
        assert!(second.as_micros() >= first);
    }
}
