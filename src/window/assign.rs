//! Tumbling and sliding time windows: which windows `window(col, windowDuration,
//! slideDuration, startTime)` puts a row in.
//!
//! Spark 3.5 (`ResolveTimeWindows`) computes, for a row at `ts`,
//! `lastStart = ts - ((ts - startTime) mod slide)` with the remainder made non-negative, then
//! the `ceil(size / slide)` windows starting at `lastStart - i * slide`, and keeps those with
//! `start <= ts < end`. We produce the same set, in ascending start order, without the
//! candidates that the filter would drop. The arithmetic is done in `i128` so that
//! timestamps near the ends of the `i64` range cannot overflow; a window whose bounds do not
//! fit in `i64` (only possible within one window length of those ends) is skipped, where
//! Spark's `Long` arithmetic would silently wrap.

use super::duration::{format_interval, parse_interval, parse_positive_interval};
use super::{WindowBounds, WindowError};

/// A validated `window()` specification in microseconds: windows `[start, start + size)` for
/// every `start` congruent to `start_offset` modulo `slide`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowSpec {
    size: i64,
    slide: i64,
    start_offset: i64,
}

impl WindowSpec {
    /// Builds a specification, checking Spark's rules for `window()` in the order Spark
    /// checks them: the size and slide are positive, the slide is at most the size, and the
    /// start offset is shorter than the slide in absolute value.
    pub fn new(size: i64, slide: i64, start_offset: i64) -> Result<Self, WindowError> {
        let broken = |parameter, value: i64, rule: String| WindowError::InvalidWindow {
            parameter,
            value: format_interval(value),
            rule,
        };
        if size <= 0 {
            return Err(broken(
                "windowDuration",
                size,
                "the window duration must be greater than 0".to_string(),
            ));
        }
        if slide <= 0 {
            return Err(broken(
                "slideDuration",
                slide,
                "the slide duration must be greater than 0".to_string(),
            ));
        }
        if slide > size {
            return Err(broken(
                "slideDuration",
                slide,
                format!(
                    "the slide duration must be less than or equal to the window duration ({})",
                    format_interval(size)
                ),
            ));
        }
        // `unsigned_abs`: `i64::MIN.abs()` would overflow.
        if start_offset.unsigned_abs() >= slide.unsigned_abs() {
            return Err(broken(
                "startTime",
                start_offset,
                format!(
                    "the absolute value of the start time must be less than the slide \
                     duration ({})",
                    format_interval(slide)
                ),
            ));
        }
        Ok(Self {
            size,
            slide,
            start_offset,
        })
    }

    /// A tumbling window of `size` aligned to the epoch: `window(col, "1 hour")`.
    pub fn tumbling(size: i64) -> Result<Self, WindowError> {
        Self::new(size, size, 0)
    }

    /// Builds a specification from the strings PySpark's `window(timeColumn, windowDuration,
    /// slideDuration=None, startTime=None)` takes: no slide means tumbling, no start time
    /// means aligned to the epoch. Errors name the parameter whose text is wrong.
    pub fn parse(
        window_duration: &str,
        slide_duration: Option<&str>,
        start_time: Option<&str>,
    ) -> Result<Self, WindowError> {
        let argument = |parameter| {
            move |source: WindowError| WindowError::WindowArgument {
                parameter,
                source: Box::new(source),
            }
        };
        let size = parse_positive_interval(window_duration).map_err(argument("windowDuration"))?;
        let slide = match slide_duration {
            Some(text) => parse_positive_interval(text).map_err(argument("slideDuration"))?,
            None => size,
        };
        let start_offset = match start_time {
            Some(text) => parse_interval(text).map_err(argument("startTime"))?,
            None => 0,
        };
        Self::new(size, slide, start_offset)
    }

    /// The window length in microseconds.
    pub const fn size(&self) -> i64 {
        self.size
    }

    /// The distance between consecutive window starts in microseconds.
    pub const fn slide(&self) -> i64 {
        self.slide
    }

    /// The shift of window starts from the epoch in microseconds (`startTime`).
    pub const fn start_offset(&self) -> i64 {
        self.start_offset
    }

    /// Whether windows do not overlap, so each row lands in exactly one.
    pub const fn is_tumbling(&self) -> bool {
        self.size == self.slide
    }

    /// The most windows one row can fall into, `ceil(size / slide)` (Spark's
    /// `overlappingWindowCount`); every row gets exactly this many when the slide divides
    /// the size, and this many or one fewer otherwise. The planner can use it to refuse
    /// specifications that would multiply each row unreasonably.
    pub const fn max_windows_per_row(&self) -> i64 {
        // Both are positive, so this is the ceiling and cannot overflow.
        (self.size - 1) / self.slide + 1
    }

    /// `windows_for`'s first start and window count in i64 arithmetic, `None` on overflow.
    fn first_start_and_count(&self, ts: i64) -> Option<(i64, i64)> {
        let last_start =
            ts.checked_sub(ts.checked_sub(self.start_offset)?.rem_euclid(self.slide))?;
        let count = last_start
            .checked_add(self.size)?
            .checked_sub(ts)?
            .checked_add(self.slide - 1)?
            / self.slide;
        Some((
            last_start.checked_sub((count - 1).checked_mul(self.slide)?)?,
            count,
        ))
    }

    /// The windows that contain `ts`, in ascending start order. Lazy and allocation-free, as
    /// this runs once per input row.
    pub fn windows_for(&self, ts: i64) -> impl Iterator<Item = WindowBounds> {
        let size = i128::from(self.size);
        let slide = i128::from(self.slide);
        // In i64 when nothing overflows (every real time); i128 division is several times
        // slower, and this runs once per row per query.
        let (first_start, count) = match self.first_start_and_count(ts) {
            Some((first, count)) => (i128::from(first), i128::from(count)),
            None => {
                let ts = i128::from(ts);
                // Floor modulo (`rem_euclid`) so that times before 1970 fall in the window below
                // them, as Spark's `CaseWhen(remainder < 0, remainder + slide)` arranges.
                let last_start = ts - (ts - i128::from(self.start_offset)).rem_euclid(slide);
                // Starts run from `last_start` down while `start + size > ts`.
                let count = (last_start + size - ts + slide - 1) / slide;
                (last_start - (count - 1) * slide, count)
            }
        };
        (0..count).filter_map(move |index| {
            let start = first_start + index * slide;
            Some(WindowBounds {
                start: i64::try_from(start).ok()?,
                end: i64::try_from(start + size).ok()?,
            })
        })
    }
}

/// `windows_for` row after row. Consecutive rows mostly fall in the window of the row before
/// them; for tumbling windows (one per row) that window is checked first, which skips the
/// division per row (it was ~3 % of the seed pipeline's CPU over its three queries).
pub struct RowWindows<'a> {
    spec: &'a WindowSpec,
    last: Option<WindowBounds>,
}

impl<'a> RowWindows<'a> {
    pub fn new(spec: &'a WindowSpec) -> Self {
        RowWindows { spec, last: None }
    }

    /// Calls `each` with the windows that contain `ts`, as `windows_for` gives them.
    pub fn each(&mut self, ts: i64, mut each: impl FnMut(WindowBounds)) {
        if !self.spec.is_tumbling() {
            self.spec.windows_for(ts).for_each(each);
            return;
        }
        let window = match self.last {
            Some(last) if last.start <= ts && ts < last.end => Some(last),
            _ => self.spec.windows_for(ts).next(),
        };
        self.last = window;
        if let Some(window) = window {
            each(window);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MINUTE: i64 = 60 * 1_000_000;
    const HOUR: i64 = 60 * MINUTE;

    fn spec(size: i64, slide: i64, start_offset: i64) -> WindowSpec {
        WindowSpec::new(size, slide, start_offset).expect("valid spec")
    }

    fn windows(spec: &WindowSpec, ts: i64) -> Vec<(i64, i64)> {
        spec.windows_for(ts)
            .map(|window| (window.start, window.end))
            .collect()
    }

    #[test]
    fn tumbling_boundaries_are_half_open() {
        let hourly = spec(HOUR, HOUR, 0);
        assert!(hourly.is_tumbling());
        assert_eq!(windows(&hourly, 0), vec![(0, HOUR)]);
        assert_eq!(windows(&hourly, HOUR - 1), vec![(0, HOUR)]);
        // A row stamped exactly at a window's end opens the next window.
        assert_eq!(windows(&hourly, HOUR), vec![(HOUR, 2 * HOUR)]);
        assert_eq!(windows(&hourly, 5 * HOUR + 1), vec![(5 * HOUR, 6 * HOUR)]);
    }

    #[test]
    fn start_time_shifts_every_window() {
        // window(col, "1 hour", "1 hour", "15 minutes"): windows run hh:15 to hh+1:15.
        let shifted = spec(HOUR, HOUR, 15 * MINUTE);
        let ten_fourteen = 10 * HOUR + 14 * MINUTE;
        assert_eq!(
            windows(&shifted, ten_fourteen),
            vec![(9 * HOUR + 15 * MINUTE, 10 * HOUR + 15 * MINUTE)]
        );
        let ten_fifteen = 10 * HOUR + 15 * MINUTE;
        assert_eq!(
            windows(&shifted, ten_fifteen),
            vec![(ten_fifteen, ten_fifteen + HOUR)]
        );
        // A negative start time is the same shift the other way.
        let early = spec(HOUR, HOUR, -15 * MINUTE);
        assert_eq!(
            windows(&early, 10 * HOUR),
            vec![(10 * HOUR - 15 * MINUTE, 11 * HOUR - 15 * MINUTE)]
        );
    }

    #[test]
    fn times_before_1970_use_floor_modulo() {
        let hourly = spec(HOUR, HOUR, 0);
        assert_eq!(windows(&hourly, -1), vec![(-HOUR, 0)]);
        assert_eq!(windows(&hourly, -HOUR), vec![(-HOUR, 0)]);
        assert_eq!(windows(&hourly, -HOUR - 1), vec![(-2 * HOUR, -HOUR)]);
        let sliding = spec(10 * MINUTE, 5 * MINUTE, 0);
        assert_eq!(
            windows(&sliding, -MINUTE),
            vec![(-10 * MINUTE, 0), (-5 * MINUTE, 5 * MINUTE)]
        );
    }

    #[test]
    fn sliding_windows_overlap_size_over_slide_times() {
        // The Spark guide's example: 10-minute windows every 5 minutes; 12:07 is in two.
        let sliding = spec(10 * MINUTE, 5 * MINUTE, 0);
        assert!(!sliding.is_tumbling());
        assert_eq!(
            windows(&sliding, 12 * HOUR + 7 * MINUTE),
            vec![
                (12 * HOUR, 12 * HOUR + 10 * MINUTE),
                (12 * HOUR + 5 * MINUTE, 12 * HOUR + 15 * MINUTE)
            ]
        );
        assert_eq!(windows(&sliding, 5 * MINUTE).len(), 2);
        let hourly_by_quarter = spec(HOUR, 15 * MINUTE, 0);
        for ts in [0, 1, 15 * MINUTE - 1, 15 * MINUTE, 7 * HOUR + 59 * MINUTE] {
            assert_eq!(hourly_by_quarter.windows_for(ts).count(), 4);
        }
        assert_eq!(hourly_by_quarter.max_windows_per_row(), 4);
    }

    #[test]
    fn slide_not_dividing_size_gives_ceil_or_one_fewer() {
        let uneven = spec(10, 3, 0);
        assert_eq!(uneven.max_windows_per_row(), 4);
        // Starts ≡ 0 (mod 3); ts = 9 is in [0,10), [3,13), [6,16), [9,19).
        assert_eq!(
            windows(&uneven, 9),
            vec![(0, 10), (3, 13), (6, 16), (9, 19)]
        );
        // ts = 10 is past [0,10): only three.
        assert_eq!(windows(&uneven, 10), vec![(3, 13), (6, 16), (9, 19)]);
        let counts: Vec<usize> = (0..30).map(|ts| uneven.windows_for(ts).count()).collect();
        assert!(counts.iter().all(|&count| count == 3 || count == 4));
    }

    #[test]
    fn rejects_what_spark_rejects_naming_the_parameter() {
        let parameter_of = |result: Result<WindowSpec, WindowError>| match result {
            Err(WindowError::InvalidWindow { parameter, .. }) => parameter,
            other => panic!("expected InvalidWindow, got {other:?}"),
        };
        assert_eq!(parameter_of(WindowSpec::new(0, 1, 0)), "windowDuration");
        assert_eq!(parameter_of(WindowSpec::new(10, 0, 0)), "slideDuration");
        assert_eq!(parameter_of(WindowSpec::new(10, 11, 0)), "slideDuration");
        assert_eq!(parameter_of(WindowSpec::new(10, 5, 5)), "startTime");
        assert_eq!(parameter_of(WindowSpec::new(10, 5, -5)), "startTime");
        assert_eq!(parameter_of(WindowSpec::new(10, 5, i64::MIN)), "startTime");
        let message = WindowSpec::new(HOUR, 2 * HOUR, 0).unwrap_err().to_string();
        assert!(
            message.contains("2 hours") && message.contains("1 hour"),
            "{message}"
        );
    }

    #[test]
    fn parses_pyspark_arguments() {
        assert_eq!(
            WindowSpec::parse("1 hour", None, None),
            Ok(spec(HOUR, HOUR, 0))
        );
        assert_eq!(
            WindowSpec::parse("1 hour", Some("15 minutes"), Some("5 minutes")),
            Ok(spec(HOUR, 15 * MINUTE, 5 * MINUTE))
        );
        match WindowSpec::parse("1 hour", Some("1 month"), None) {
            Err(WindowError::WindowArgument { parameter, source }) => {
                assert_eq!(parameter, "slideDuration");
                assert!(matches!(*source, WindowError::MonthsNotSupported { .. }));
            }
            other => panic!("expected WindowArgument, got {other:?}"),
        }
        let message = WindowSpec::parse("0 seconds", None, None)
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("window windowDuration:"), "{message}");
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let hourly = spec(HOUR, HOUR, 0);
        // The window holding i64::MAX would end past i64::MAX, so it cannot be represented.
        assert_eq!(hourly.windows_for(i64::MAX).count(), 0);
        assert_eq!(hourly.windows_for(i64::MIN).count(), 0);
        assert_eq!(hourly.windows_for(i64::MAX - 2 * HOUR).count(), 1);
    }

    /// Spark 3.5's plan, step by step: `ceil(size / slide)` candidates counted down from the
    /// last start, filtered by `start <= ts < end`.
    fn spark_reference(spec: &WindowSpec, ts: i64) -> Vec<(i64, i64)> {
        let remainder = (ts - spec.start_offset()) % spec.slide();
        let last_start = ts
            - if remainder < 0 {
                remainder + spec.slide()
            } else {
                remainder
            };
        let overlapping = (spec.size() as f64 / spec.slide() as f64).ceil() as i64;
        let mut found: Vec<(i64, i64)> = (0..overlapping)
            .map(|i| last_start - i * spec.slide())
            .map(|start| (start, start + spec.size()))
            .filter(|&(start, end)| start <= ts && ts < end)
            .collect();
        found.sort_unstable();
        found
    }

    /// Every start congruent to the offset in a range wide enough to hold all candidates.
    fn brute_force(spec: &WindowSpec, ts: i64) -> Vec<(i64, i64)> {
        let lowest = (ts - spec.size() - spec.start_offset()).div_euclid(spec.slide()) - 1;
        let highest = (ts - spec.start_offset()).div_euclid(spec.slide()) + 1;
        (lowest..=highest)
            .map(|k| spec.start_offset() + k * spec.slide())
            .map(|start| (start, start + spec.size()))
            .filter(|&(start, end)| start <= ts && ts < end)
            .collect()
    }

    fn specs() -> impl Strategy<Value = WindowSpec> {
        (1i64..5_000, 1i64..=20, 0i64..5_000, any::<bool>()).prop_map(
            |(slide, multiple, extra, negative_offset)| {
                let size = slide * multiple + extra % slide;
                let offset = extra % slide;
                let offset = if negative_offset { -offset } else { offset };
                spec(size, slide, offset)
            },
        )
    }

    #[test]
    fn rows_in_turn_on_window_edges_get_their_own_windows() {
        let hourly = spec(HOUR, HOUR, 0);
        let mut rows = RowWindows::new(&hourly);
        for ts in [0, HOUR - 1, HOUR, HOUR - 1, -1, 0, 2 * HOUR, 2 * HOUR - 1] {
            let mut got = Vec::new();
            rows.each(ts, |w| got.push((w.start, w.end)));
            assert_eq!(got, windows(&hourly, ts), "at {ts}");
        }
    }

    proptest! {
        #[test]
        fn rows_in_turn_get_the_windows_of_windows_for(
            spec in specs(),
            first in -3 * HOUR..3 * HOUR,
            steps in prop::collection::vec(-2_000i64..6_000, 1..64),
        ) {
            // Rows close in time, as in a batch: many share the window of the row before.
            let mut rows = RowWindows::new(&spec);
            for ts in steps.iter().scan(first, |ts, step| { *ts += step; Some(*ts) }) {
                let mut got = Vec::new();
                rows.each(ts, |w| got.push((w.start, w.end)));
                prop_assert_eq!(got, windows(&spec, ts));
            }
        }

        #[test]
        fn matches_brute_force_and_spark(
            spec in specs(),
            ts in -4_000_000_000_000_000i64..4_000_000_000_000_000,
        ) {
            let ours = windows(&spec, ts);
            prop_assert_eq!(&ours, &brute_force(&spec, ts));
            prop_assert_eq!(&ours, &spark_reference(&spec, ts));
            let count = ours.len() as i64;
            if spec.size() % spec.slide() == 0 {
                prop_assert_eq!(count, spec.size() / spec.slide());
            } else {
                prop_assert!(count == spec.max_windows_per_row() || count == spec.max_windows_per_row() - 1);
            }
        }

        #[test]
        fn windows_near_the_epoch(spec in specs(), ts in -20_000i64..20_000) {
            prop_assert_eq!(windows(&spec, ts), brute_force(&spec, ts));
        }
    }
}
