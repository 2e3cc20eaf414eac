//! A running streaming query: the micro-batch loop on its own thread, and the handle that
//! Python's `StreamingQuery` wraps (status, progress, stop, awaitTermination,
//! processAllAvailable).
//!
//! One batch: ask the source for its latest offset, read that range, run the plan, advance
//! the watermark from the batch's event times, emit what the output mode asks for (windows
//! are emitted at the end of the batch whose watermark passes their end), write the sink,
//! then report progress.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::bad_records::BadRecordsPath;
use super::batch_read::{read_batch, BatchRead};
use super::pipeline::{BatchStats, Pipeline};
use super::progress::{progress_json, BatchReport, Durations};
use super::runtime::block_on;
use super::shared_scan::Member;
use super::trigger::Trigger;
use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::plan::OutputMode;
use crate::sink::Sink;
use crate::source::{Cancel, ReadLimit, Source, SourceOffset};
use crate::window::{Clock, WatermarkTracker};

/// How long the loop waits before asking an idle source again (Spark's pollingDelay).
const POLLING_DELAY: Duration = Duration::from_millis(10);
/// Rows read, rows written, statistics, and milliseconds reading and processing.
type ProcessedBatch = (u64, u64, BatchStats, u64, u64);

/// Backoff while a source is unreachable: first wait, and the longest.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// Progress reports kept (`recentProgress`).
const PROGRESS_KEPT: usize = 100;

/// What a query's loop shares with its handle.
#[derive(Debug, Default)]
struct State {
    active: bool,
    message: String,
    data_available: bool,
    trigger_active: bool,
    exception: Option<String>,
    progress: VecDeque<Value>,
    /// The last `processAllAvailable` request the loop found nothing new for.
    idle_ack: u64,
    wake: bool,
}

struct Shared {
    id: String,
    run_id: String,
    name: Option<String>,
    cancel: Cancel,
    state: Mutex<State>,
    changed: Condvar,
    requests: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set_status(&self, message: &str, data_available: bool, trigger_active: bool) {
        let mut state = self.lock();
        state.message = message.to_string();
        state.data_available = data_available;
        state.trigger_active = trigger_active;
    }
}

/// Everything a query runs with.
pub struct QuerySpec {
    /// The query's persistent id (kept in the checkpoint).
    pub id: String,
    /// `queryName`.
    pub name: Option<String>,
    /// The source.
    pub source: Box<dyn Source>,
    /// The compiled plan.
    pub pipeline: Pipeline,
    /// The sink.
    pub sink: Box<dyn Sink>,
    /// The output mode.
    pub mode: OutputMode,
    /// The trigger.
    pub trigger: Trigger,
    /// The watermark's idle timeout in micros (opt-in; Flink's withIdleness).
    pub idle_timeout: Option<i64>,
    /// Processing time.
    pub clock: Arc<dyn Clock>,
    /// The checkpoint, when the query has one.
    pub checkpoint: Option<Checkpoint>,
    /// The group of the session's queries this one shares scanned chunks with.
    pub scan_group: Option<Member>,
    /// Where the records `from_json` could not parse are kept (`badRecordsPath`).
    pub bad_records: Option<BadRecordsPath>,
}

/// The handle of a running query.
pub struct StreamingQuery {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl StreamingQuery {
    /// Starts the loop on its own thread. The source's starting offsets are resolved
    /// before this returns, so an unreachable broker fails `start()` itself.
    pub fn start(mut spec: QuerySpec) -> Result<Arc<StreamingQuery>> {
        let mut tracker = WatermarkTracker::new(
            spec.pipeline
                .watermarks()
                .iter()
                .map(|w| (w.column.clone(), w.delay)),
        )
        .map_err(|e| Error::IllegalArgument(e.to_string()))?;
        if let Some(timeout) = spec.idle_timeout {
            tracker = tracker
                .with_idle_timeout(timeout)
                .map_err(|e| Error::IllegalArgument(e.to_string()))?;
        }
        let resume = match &mut spec.checkpoint {
            Some(checkpoint) => checkpoint.recover(&mut tracker, &mut spec.pipeline)?,
            None => None,
        };
        let (start, batch_id, rerun_end) = match resume {
            Some(resume) => (resume.start, resume.batch_id, resume.rerun_end),
            None => (spec.source.initial_offset()?, 0, None),
        };
        let shared = Arc::new(Shared {
            id: spec.id.clone(),
            run_id: uuid::Uuid::new_v4().to_string(),
            name: spec.name.clone(),
            cancel: Cancel::default(),
            state: Mutex::new(State {
                active: true,
                message: "Initializing sources".into(),
                ..State::default()
            }),
            changed: Condvar::new(),
            requests: AtomicU64::new(0),
        });
        let runner = Runner {
            spec,
            tracker,
            shared: Arc::clone(&shared),
            start,
            batch_id,
            rerun_end,
            last_batch_started: None,
        };
        let thread = std::thread::Builder::new()
            .name(format!(
                "ferrostream-query-{}",
                shared.name.as_deref().unwrap_or(&shared.id)
            ))
            .spawn(move || runner.run())
            .map_err(|e| Error::State(format!("cannot start the query thread: {e}")))?;
        Ok(Arc::new(StreamingQuery {
            shared,
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// The persistent id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// This run's id.
    pub fn run_id(&self) -> &str {
        &self.shared.run_id
    }

    /// The query's name.
    pub fn name(&self) -> Option<&str> {
        self.shared.name.as_deref()
    }

    /// Whether the loop still runs.
    pub fn is_active(&self) -> bool {
        self.shared.lock().active
    }

    /// Spark's status: message, isDataAvailable, isTriggerActive.
    pub fn status(&self) -> (String, bool, bool) {
        let state = self.shared.lock();
        (
            state.message.clone(),
            state.data_available,
            state.trigger_active,
        )
    }

    /// The failure that ended the query, if any.
    pub fn exception(&self) -> Option<String> {
        self.shared.lock().exception.clone()
    }

    /// The last `n` progress reports, oldest first.
    pub fn recent_progress(&self) -> Vec<Value> {
        self.shared.lock().progress.iter().cloned().collect()
    }

    /// The latest progress report.
    pub fn last_progress(&self) -> Option<Value> {
        self.shared.lock().progress.back().cloned()
    }

    /// Stops the loop and waits for it.
    pub fn stop(&self) {
        self.shared.cancel.cancel();
        {
            let mut state = self.shared.lock();
            state.wake = true;
        }
        self.shared.changed.notify_all();
        let handle = self
            .thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    /// Waits up to `timeout` (forever when None) for the query to end. Returns whether it
    /// ended; an error if it failed.
    pub fn await_termination(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = self.shared.lock();
        loop {
            if !state.active {
                return match &state.exception {
                    Some(message) => Err(Error::QueryFailed(message.clone())),
                    None => Ok(true),
                };
            }
            let wait = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) => left.min(Duration::from_millis(200)),
                    None => return Ok(false),
                },
                None => Duration::from_millis(200),
            };
            state = self
                .shared
                .changed
                .wait_timeout(state, wait)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Asks the loop to look for data now; returns the request to wait on with
    /// `wait_all_available` (Spark's `processAllAvailable`, split so callers can check for
    /// interrupts between waits).
    pub fn request_all_available(&self) -> u64 {
        let request = self.shared.requests.fetch_add(1, Ordering::SeqCst) + 1;
        self.shared.lock().wake = true;
        self.shared.changed.notify_all();
        request
    }

    /// Waits up to `timeout` until the loop found nothing new after `request`, i.e. every
    /// row available at the request was processed and committed. Fails if the query failed.
    pub fn wait_all_available(&self, request: u64, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if let Some(message) = &state.exception {
                return Err(Error::QueryFailed(message.clone()));
            }
            if state.idle_ack >= request || !state.active {
                return Ok(true);
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Ok(false);
            };
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Blocks until every row available when called has been processed (or `timeout`).
    pub fn process_all_available(&self, timeout: Duration) -> Result<bool> {
        let request = self.request_all_available();
        self.wait_all_available(request, timeout)
    }
}

struct Runner {
    spec: QuerySpec,
    tracker: WatermarkTracker,
    shared: Arc<Shared>,
    start: SourceOffset,
    batch_id: u64,
    /// The end of a batch that was planned but not committed before a crash.
    rerun_end: Option<SourceOffset>,
    last_batch_started: Option<Instant>,
}

impl Runner {
    fn run(mut self) {
        let result = self.run_loop();
        // The checkpoint is on disk before anyone sees the query end.
        let result = match (result, self.flush_checkpoint()) {
            (Ok(()) | Err(Error::Stopped), Err(error)) => Err(error),
            (result, _) => result,
        };
        let _ = self.spec.sink.stop();
        let mut state = self.shared.lock();
        state.active = false;
        state.trigger_active = false;
        match result {
            Ok(()) | Err(Error::Stopped) => state.message = "Stopped".into(),
            Err(error) => {
                state.message = "Terminated with exception".into();
                state.exception = Some(error.to_string());
            }
        }
        drop(state);
        self.shared.changed.notify_all();
    }

    fn run_loop(&mut self) -> Result<()> {
        let available_now_target = match self.spec.trigger {
            Trigger::AvailableNow => Some(self.latest_offset(ReadLimit::All)?),
            _ => None,
        };
        if let Some(end) = self.rerun_end.take() {
            // Rerun the uncommitted batch exactly as it was planned.
            self.run_batch(end, Instant::now(), 0)?;
        }
        let mut next_trigger = Instant::now();
        loop {
            if self.shared.cancel.is_cancelled() {
                return Err(Error::Stopped);
            }
            if let Trigger::ProcessingTime(interval) = self.spec.trigger {
                self.wait_until(next_trigger);
                if self.shared.cancel.is_cancelled() {
                    return Err(Error::Stopped);
                }
                next_trigger = next_aligned(next_trigger, interval);
            }
            let request = self.shared.requests.load(Ordering::SeqCst);
            let started = Instant::now();
            let limit = match self.spec.trigger {
                Trigger::Once => ReadLimit::All,
                _ => ReadLimit::Configured,
            };
            self.shared.set_status(
                &format!("Getting offsets from {}", self.spec.source.description()),
                false,
                true,
            );
            let mut end = self.latest_offset(limit)?;
            if let Some(target) = &available_now_target {
                end = clamp_to_target(&end, target);
            }
            let latest_offset_ms = started.elapsed().as_millis() as u64;
            let has_data = end != self.start;
            if has_data {
                self.run_batch(end, started, latest_offset_ms)?;
            } else if self.spec.idle_timeout.is_some() && self.spec.pipeline.is_stateful() {
                self.run_idle_batch(started)?;
            }
            let finished = match self.spec.trigger {
                Trigger::Once => true,
                Trigger::AvailableNow => !has_data,
                _ => false,
            };
            if !has_data {
                if request > self.shared.lock().idle_ack {
                    // processAllAvailable returns with the checkpoint on disk.
                    self.flush_checkpoint()?;
                }
                let mut state = self.shared.lock();
                state.idle_ack = state.idle_ack.max(request);
                state.message = "Waiting for data to arrive".into();
                state.data_available = false;
                state.trigger_active = false;
                drop(state);
                self.shared.changed.notify_all();
            }
            if finished {
                return Ok(());
            }
            if !has_data && !matches!(self.spec.trigger, Trigger::ProcessingTime(_)) {
                self.wait_until(Instant::now() + POLLING_DELAY);
            }
        }
    }

    /// Waits until the checkpoint files handed to its writer are on disk.
    fn flush_checkpoint(&self) -> Result<()> {
        self.spec
            .checkpoint
            .as_ref()
            .map_or(Ok(()), Checkpoint::flush)
    }

    /// The source's latest offset. While the source is unreachable (a broker restarting) the
    /// query waits with a status that says so and asks again, backing off up to 5 s.
    fn latest_offset(&mut self, limit: ReadLimit) -> Result<SourceOffset> {
        let mut delay = RETRY_FIRST;
        loop {
            match self.spec.source.latest_offset(&self.start, limit) {
                Err(Error::SourceUnavailable(message)) => {
                    log::warn!("{message}; retrying in {delay:?}");
                    self.shared.set_status(
                        &format!("Waiting for the source to come back: {message}"),
                        false,
                        false,
                    );
                    self.wait_until(Instant::now() + delay);
                    if self.shared.cancel.is_cancelled() {
                        return Err(Error::Stopped);
                    }
                    delay = (delay * 2).min(RETRY_MAX);
                }
                other => return other,
            }
        }
    }

    /// Sleeps until `when`, or until stopped or woken by processAllAvailable. Meanwhile the
    /// query takes no shared chunks, so its scan group does not hold back its readers for it.
    fn wait_until(&self, when: Instant) {
        let _idle = self.spec.scan_group.as_ref().map(Member::idle);
        let mut state = self.shared.lock();
        while !state.wake && !self.shared.cancel.is_cancelled() {
            let Some(left) = when.checked_duration_since(Instant::now()) else {
                break;
            };
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        state.wake = false;
    }

    fn run_batch(
        &mut self,
        end: SourceOffset,
        started: Instant,
        latest_offset_ms: u64,
    ) -> Result<()> {
        let mut durations = Durations {
            latest_offset: latest_offset_ms,
            ..Durations::default()
        };
        let started_micros = self.spec.clock.now_micros();
        self.shared.set_status("Processing new data", true, true);
        let wal = Instant::now();
        if let Some(checkpoint) = &mut self.spec.checkpoint {
            checkpoint.write_offsets(self.batch_id, &self.start, &end)?;
        }
        durations.wal_commit = wal.elapsed().as_millis() as u64;
        let (num_input_rows, output, stats, read_ms, add_ms) = self.process(&end)?;
        durations.get_batch = read_ms;
        durations.add_batch = add_ms;
        let commit = Instant::now();
        if let Some(checkpoint) = &mut self.spec.checkpoint {
            checkpoint.commit(self.batch_id, &self.tracker, &self.spec.pipeline)?;
        }
        self.spec.source.commit(&end)?;
        durations.commit_offsets = commit.elapsed().as_millis() as u64;
        durations.trigger_execution = started.elapsed().as_millis() as u64;
        let report = BatchReport {
            batch_id: self.batch_id,
            started_micros,
            num_input_rows,
            num_output_rows: output,
            seconds_since_previous: self.last_batch_started.map_or(0.0, |previous| {
                started.duration_since(previous).as_secs_f64()
            }),
            durations,
            event_time: (!self.spec.pipeline.watermarks().is_empty()).then(|| {
                (
                    stats.event_times.first().copied().unwrap_or_default(),
                    self.tracker.current(),
                )
            }),
            state: self.state_report(stats.state.rows_updated, stats.state.dropped_by_watermark),
            source: (
                self.spec.source.description(),
                self.start.clone(),
                end.clone(),
                end.clone(),
            ),
            sink: self.spec.sink.description(),
            malformed_rows: stats.malformed_rows,
            chunks: stats.chunks,
        };
        self.last_batch_started = Some(started);
        self.start = end;
        self.batch_id += 1;
        self.publish(&report);
        Ok(())
    }

    /// Reads the batch ending at `end` chunk by chunk through the plan, advances the
    /// watermark and writes the sink. Returns the rows read and written, the statistics, and
    /// the milliseconds spent reading and processing.
    fn process(&mut self, end: &SourceOffset) -> Result<ProcessedBatch> {
        let late_watermark = self.tracker.current();
        let batch_id = self.batch_id;
        let malformed_before = self.spec.pipeline.metrics().malformed_rows();
        let read = Instant::now();
        let BatchRead {
            rows,
            stateless,
            mut stats,
            processing,
            mut bad_records,
        } = read_batch(
            self.spec.source.as_mut(),
            &mut self.spec.pipeline,
            self.spec.scan_group.as_ref(),
            &self.start,
            end,
            &self.shared.cancel,
            batch_id,
            late_watermark,
        )?;
        let read_ms = read.elapsed().saturating_sub(processing);
        // Records parsed after the scan (a from_json behind state) are not located.
        bad_records.extend(self.spec.pipeline.metrics().bad_records.take());
        if let Some(path) = &self.spec.bad_records {
            path.write(batch_id, &bad_records)?;
        }
        let add = Instant::now();
        for (index, event_times) in stats.event_times.iter().enumerate() {
            if let Some(max) = event_times.max {
                self.tracker
                    .observe(index, max)
                    .map_err(|e| Error::State(e.to_string()))?;
            }
        }
        let watermark = self.tracker.advance_at_batch_end(self.spec.clock.now());
        let output = block_on(
            self.spec
                .pipeline
                .emit(stateless, self.spec.mode, watermark),
        )??;
        if self.spec.sink.is_durable() {
            self.flush_checkpoint()?;
        }
        let schema = self.spec.pipeline.output_schema();
        self.spec
            .sink
            .add_batch(batch_id, &schema, &output, self.spec.mode)?;
        let written = output.iter().map(|b| b.num_rows() as u64).sum();
        stats.malformed_rows = self.spec.pipeline.metrics().malformed_rows() - malformed_before;
        Ok((
            rows,
            written,
            stats,
            read_ms.as_millis() as u64,
            (processing + add.elapsed()).as_millis() as u64,
        ))
    }

    /// With an idle timeout, a quiet stream still moves the watermark with processing time;
    /// when that closes windows, a batch without data emits them (Spark's no-data batch).
    fn run_idle_batch(&mut self, started: Instant) -> Result<()> {
        let mut probe = self.tracker.clone();
        let after = probe.advance_at_batch_end(self.spec.clock.now());
        if !self.spec.pipeline.would_close(after) {
            return Ok(());
        }
        let end = self.start.clone();
        self.run_batch(end, started, 0)
    }

    fn state_report(&self, updated: u64, dropped: u64) -> Option<(u64, u64, u64, u64)> {
        self.spec.pipeline.is_stateful().then(|| {
            let (groups, bytes) = self.spec.pipeline.state_size();
            (groups as u64, updated, dropped, bytes as u64)
        })
    }

    fn publish(&self, report: &BatchReport) {
        let progress = progress_json(
            &self.shared.id,
            &self.shared.run_id,
            self.shared.name.as_deref(),
            report,
        );
        let mut state = self.shared.lock();
        state.progress.push_back(progress);
        while state.progress.len() > PROGRESS_KEPT {
            state.progress.pop_front();
        }
        drop(state);
        self.shared.changed.notify_all();
    }
}

/// The next trigger time: intervals stay aligned to the first trigger, and a batch that ran
/// past its slot starts the next one at once (Spark's ProcessingTimeExecutor).
fn next_aligned(previous: Instant, interval: Duration) -> Instant {
    let now = Instant::now();
    let mut next = previous + interval;
    while next + interval <= now {
        next += interval;
    }
    next
}

/// For availableNow: never read past the offsets that were there when the query started.
fn clamp_to_target(end: &SourceOffset, target: &SourceOffset) -> SourceOffset {
    match (end, target) {
        (Value::Object(end), Value::Object(target)) => {
            let mut clamped = end.clone();
            for (key, value) in end {
                if let Some(limit) = target.get(key) {
                    clamped.insert(key.clone(), clamp_to_target(value, limit));
                }
            }
            Value::Object(clamped)
        }
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(a), Some(b)) => Value::from(a.min(b)),
            _ => end.clone(),
        },
        _ => end.clone(),
    }
}
