//! The stateful aggregation operator: `groupBy(window(...) | session_window(...), *keys).agg(...)`.
//!
//! State is keyed by the grouping keys (encoded with Arrow's row format) and, inside a key,
//! by window. Rows whose window ended at or before the previous batch's watermark are
//! dropped and counted (`numRowsDroppedByWatermark`); once the watermark passes a window's
//! end the window is emitted (append) or forgotten (update), so state is bounded by the
//! open windows, never by the stream's length. Complete mode keeps everything, as Spark.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StructArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::row::{RowConverter, SortField};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::accumulator::{Acc, AggKind};
use super::fold::{fold_rows, GroupSorter, Orders};
use super::key_ids::KeyIds;
use super::value::{values_to_array, InputColumn, Value};
use crate::error::Result;
use crate::expr::types::timestamp_type;
use crate::plan::OutputMode;
use crate::window::assign::RowWindows;
use crate::window::{is_late, Mergeable, SessionSet, WindowBounds, WindowSpec};

/// How rows are put into windows.
#[derive(Debug, Clone)]
pub enum Grouping {
    /// No window: one group per key.
    Plain,
    /// Tumbling or sliding time windows.
    Time(WindowSpec),
    /// Session windows with a gap in microseconds.
    Session(i64),
}

/// One aggregate column of the output.
#[derive(Debug, Clone)]
pub struct AggSlot {
    /// The function.
    pub kind: AggKind,
    /// The output column's name.
    pub name: String,
    /// The output column's type.
    pub data_type: DataType,
    /// Input column of the first argument (None for count(*)).
    pub arg: Option<usize>,
    /// Input column of max_by / min_by's ordering.
    pub second: Option<usize>,
}

/// The layout of the operator's input batch, made by the pre-projection.
#[derive(Debug, Clone)]
pub struct InputLayout {
    /// Column of the event time (the window's time column), if any.
    pub event_time: Option<usize>,
    /// Columns of the plain grouping keys.
    pub keys: Vec<usize>,
}

/// One group's accumulators.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Group {
    accs: Vec<Acc>,
    dirty: bool,
}

/// Time-window groups: encoded key → (window start, end) → accumulators.
type WindowState = FxHashMap<Box<[u8]>, BTreeMap<(i64, i64), Group>>;

/// A group on its way out: encoded key, window, accumulators.
type EmittedGroup = (Box<[u8]>, WindowBounds, Vec<Acc>);

/// The aggregation operator of one query.
pub struct AggregateOperator {
    grouping: Grouping,
    layout: InputLayout,
    aggs: Vec<AggSlot>,
    /// Position of the window column among the output keys.
    window_position: usize,
    converter: Option<RowConverter>,
    /// Whether windows close by the watermark (the window's column carries one).
    evicts: bool,
    windows: WindowState,
    sessions: FxHashMap<Box<[u8]>, SessionSet<SessionGroup>>,
    schema: SchemaRef,
}

/// A session's group with the kinds needed to merge first/last and min/max correctly.
#[derive(Debug, Clone)]
pub struct SessionGroup {
    kinds: Arc<Vec<AggKind>>,
    group: Group,
}

impl Mergeable for SessionGroup {
    fn merge(&mut self, other: Self) {
        self.group.dirty |= other.group.dirty;
        for ((mine, theirs), kind) in self
            .group
            .accs
            .iter_mut()
            .zip(other.group.accs)
            .zip(self.kinds.iter())
        {
            mine.merge(kind, theirs);
        }
    }
}

/// What one batch did to the state.
#[derive(Debug, Default, Clone, Copy)]
pub struct UpdateStats {
    /// Row-window pairs aggregated.
    pub rows_updated: u64,
    /// Row-window pairs dropped as late.
    pub dropped_by_watermark: u64,
}

impl AggregateOperator {
    /// Builds the operator. `key_fields` are the output fields of the plain keys, in order;
    /// the window column goes at `window_position` among them.
    pub fn new(
        grouping: Grouping,
        layout: InputLayout,
        key_fields: Vec<Field>,
        window_position: usize,
        window_name: String,
        aggs: Vec<AggSlot>,
        evicts: bool,
    ) -> Result<Self> {
        let converter = if key_fields.is_empty() {
            None
        } else {
            Some(RowConverter::new(
                key_fields
                    .iter()
                    .map(|f| SortField::new(f.data_type().clone()))
                    .collect(),
            )?)
        };
        let mut fields: Vec<Field> = key_fields.clone();
        if !matches!(grouping, Grouping::Plain) {
            fields.insert(window_position, window_field(&window_name));
        }
        for agg in &aggs {
            let nullable = !matches!(
                agg.kind,
                AggKind::Count | AggKind::CountRows | AggKind::CountDistinct
            );
            fields.push(Field::new(&agg.name, agg.data_type.clone(), nullable));
        }
        Ok(AggregateOperator {
            grouping,
            layout,
            aggs,
            window_position,
            converter,
            evicts,
            windows: FxHashMap::default(),
            sessions: FxHashMap::default(),
            schema: Arc::new(Schema::new(fields)),
        })
    }

    /// The output schema.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The number of groups held.
    pub fn num_groups(&self) -> usize {
        self.windows.values().map(BTreeMap::len).sum::<usize>()
            + self.sessions.values().map(SessionSet::len).sum::<usize>()
    }

    /// The earliest end of any open window or session: the watermark that would close one.
    pub fn earliest_end(&self) -> Option<i64> {
        let windows = self
            .windows
            .values()
            .flat_map(|w| w.keys().map(|&(_, end)| end));
        let sessions = self
            .sessions
            .values()
            .flat_map(|s| s.iter().map(|(bounds, _)| bounds.end));
        windows.chain(sessions).min()
    }

    /// A rough size of the state in bytes.
    pub fn memory_bytes(&self) -> usize {
        let per_group = 64 + self.aggs.len() * std::mem::size_of::<Acc>();
        let keys: usize = self
            .windows
            .keys()
            .chain(self.sessions.keys())
            .map(|k| k.len() + 48)
            .sum();
        keys + self.num_groups() * per_group
    }

    /// What the state means (windowing and aggregate functions), kept in the checkpoint so a
    /// restart with another aggregation is refused instead of misreading the state.
    pub fn signature(&self) -> String {
        let aggs: Vec<String> = self.aggs.iter().map(|a| format!("{:?}", a.kind)).collect();
        format!("{:?} [{}]", self.grouping, aggs.join(", "))
    }

    /// The state as JSON, for the checkpoint: every open group with its accumulators.
    pub fn snapshot(&self) -> Result<Json> {
        let mut groups: Vec<GroupSnapshot> = Vec::new();
        for (key, windows) in &self.windows {
            for (&(start, end), group) in windows {
                groups.push(GroupSnapshot {
                    key: hex(key),
                    start,
                    end,
                    session: false,
                    group: group.clone(),
                });
            }
        }
        for (key, sessions) in &self.sessions {
            for (bounds, session) in sessions.iter() {
                groups.push(GroupSnapshot {
                    key: hex(key),
                    start: bounds.start,
                    end: bounds.end,
                    session: true,
                    group: session.group.clone(),
                });
            }
        }
        groups.sort_by(|a, b| (a.start, &a.key).cmp(&(b.start, &b.key)));
        serde_json::to_value(groups).map_err(|e| crate::error::Error::State(e.to_string()))
    }

    /// Replaces the state with a snapshot.
    pub fn restore(&mut self, snapshot: Json) -> Result<()> {
        let groups: Vec<GroupSnapshot> = serde_json::from_value(snapshot)
            .map_err(|e| crate::error::Error::State(e.to_string()))?;
        self.windows.clear();
        self.sessions.clear();
        let kinds = Arc::new(self.kinds());
        for snapshot in groups {
            if snapshot.group.accs.len() != self.aggs.len() {
                return Err(crate::error::Error::State(format!(
                    "the snapshot holds {} aggregates per group, the query computes {}",
                    snapshot.group.accs.len(),
                    self.aggs.len()
                )));
            }
            let key = unhex(&snapshot.key)?;
            if snapshot.session {
                self.sessions.entry(key).or_default().insert(
                    snapshot.start,
                    snapshot.end - snapshot.start,
                    SessionGroup {
                        kinds: Arc::clone(&kinds),
                        group: snapshot.group,
                    },
                );
            } else {
                self.windows
                    .entry(key)
                    .or_default()
                    .insert((snapshot.start, snapshot.end), snapshot.group);
            }
        }
        Ok(())
    }

    fn kinds(&self) -> Vec<AggKind> {
        self.aggs.iter().map(|a| a.kind.clone()).collect()
    }

    /// Aggregates one batch; its first row arrived at `first_arrival` (see
    /// `accumulator::arrival`). Rows whose window ended at or before `late_watermark` (the
    /// watermark at the end of the previous batch) are dropped, unless `keep_late`.
    pub fn update(
        &mut self,
        batch: &RecordBatch,
        first_arrival: u128,
        late_watermark: Option<i64>,
        keep_late: bool,
    ) -> Result<UpdateStats> {
        let mut stats = UpdateStats::default();
        if batch.num_rows() == 0 {
            return Ok(stats);
        }
        let event_times: Option<Int64Array> = match self.layout.event_time {
            Some(index) => Some(
                cast(batch.column(index), &DataType::Int64)?
                    .as_primitive()
                    .clone(),
            ),
            None => None,
        };
        let key_ids = match &self.converter {
            Some(converter) => {
                let columns: Vec<ArrayRef> = self
                    .layout
                    .keys
                    .iter()
                    .map(|&i| Arc::clone(batch.column(i)))
                    .collect();
                Some(KeyIds::of(converter, &columns)?)
            }
            None => None,
        };
        let inputs: Vec<AggInputs> = self
            .aggs
            .iter()
            .map(|agg| -> Result<_> {
                Ok((
                    agg.arg
                        .map(|i| InputColumn::new(batch.column(i)))
                        .transpose()?,
                    agg.second
                        .map(|i| InputColumn::new(batch.column(i)))
                        .transpose()?,
                ))
            })
            .collect::<Result<_>>()?;
        let watermark = if keep_late { None } else { late_watermark };
        let id_of = |row: usize| key_ids.as_ref().map_or(0, |ids| ids.id(row));
        let key_of = |id: u32| -> &[u8] {
            match &key_ids {
                Some(ids) => ids.key(id),
                None => &[],
            }
        };
        let orders = Orders {
            event_times: event_times.as_ref(),
            first_arrival,
        };
        let spec = match &self.grouping {
            Grouping::Session(gap) => {
                let gap = *gap;
                self.update_sessions(
                    batch.num_rows(),
                    |row| key_of(id_of(row)),
                    &orders,
                    &inputs,
                    gap,
                    watermark,
                    &mut stats,
                )?;
                return Ok(stats);
            }
            Grouping::Time(spec) => Some(spec),
            Grouping::Plain => None,
        };
        let mut sorter = GroupSorter::default();
        let mut windows = spec.map(RowWindows::new);
        for row in 0..batch.num_rows() {
            let key = id_of(row);
            let Some(windows) = windows.as_mut() else {
                sorter.add(key, (0, 0), row);
                stats.rows_updated += 1;
                continue;
            };
            let Some(times) = &event_times else {
                // No event time: every row is at 0.
                add_windows(&mut sorter, windows, key, 0, row, watermark, &mut stats);
                continue;
            };
            // Spark's window() yields null for a null time and the row joins no window.
            if times.is_valid(row) {
                add_windows(
                    &mut sorter,
                    windows,
                    key,
                    times.value(row),
                    row,
                    watermark,
                    &mut stats,
                );
            }
        }
        for (key, bounds, rows) in sorter.groups() {
            let group = group_in(&mut self.windows, key_of(key), bounds, &self.aggs);
            group.dirty = true;
            fold_rows(&mut group.accs, &self.aggs, &inputs, &rows, &orders)?;
        }
        Ok(stats)
    }

    /// Session windows, row by row: each row is a session of its own, merged into the key's
    /// sessions it overlaps.
    #[allow(clippy::too_many_arguments)]
    fn update_sessions<'k>(
        &mut self,
        rows: usize,
        key_of: impl Fn(usize) -> &'k [u8],
        orders: &Orders,
        inputs: &[AggInputs],
        gap: i64,
        watermark: Option<i64>,
        stats: &mut UpdateStats,
    ) -> Result<()> {
        let kinds = Arc::new(self.kinds());
        for row in 0..rows {
            let event_time = match orders.event_times {
                // Spark's session_window() yields null for a null time: the row joins none.
                Some(times) if times.is_null(row) => continue,
                Some(times) => times.value(row),
                None => 0,
            };
            if is_late(event_time.saturating_add(gap), watermark) {
                stats.dropped_by_watermark += 1;
                continue;
            }
            let mut group = new_group(&self.aggs);
            fold_rows(&mut group.accs, &self.aggs, inputs, &[row as u32], orders)?;
            let key = key_of(row);
            let sessions = match self.sessions.get_mut(key) {
                Some(sessions) => sessions,
                None => self.sessions.entry(key.into()).or_default(),
            };
            sessions.insert(
                event_time,
                gap,
                SessionGroup {
                    kinds: Arc::clone(&kinds),
                    group,
                },
            );
            stats.rows_updated += 1;
        }
        Ok(())
    }

    /// Emits the result rows `mode` asks for after a batch, then evicts the windows the
    /// watermark has closed.
    pub fn emit(&mut self, mode: OutputMode, watermark: Option<i64>) -> Result<RecordBatch> {
        let mut out: Vec<EmittedGroup> = Vec::new();
        match mode {
            OutputMode::Complete => {
                for (key, windows) in &mut self.windows {
                    for (&(start, end), group) in windows.iter_mut() {
                        group.dirty = false;
                        out.push((key.clone(), WindowBounds { start, end }, group.accs.clone()));
                    }
                }
                for (key, sessions) in &mut self.sessions {
                    for (bounds, session) in sessions.iter_mut() {
                        session.group.dirty = false;
                        out.push((key.clone(), *bounds, session.group.accs.clone()));
                    }
                }
            }
            OutputMode::Update => {
                let evicts = self.evicts;
                for (key, windows) in &mut self.windows {
                    for (&(start, end), group) in windows.iter_mut() {
                        if group.dirty {
                            group.dirty = false;
                            out.push((
                                key.clone(),
                                WindowBounds { start, end },
                                group.accs.clone(),
                            ));
                        }
                    }
                    if evicts {
                        windows.retain(|&(_, end), _| !is_late(end, watermark));
                    }
                }
                for (key, sessions) in &mut self.sessions {
                    for (bounds, session) in sessions.iter_mut() {
                        if session.group.dirty {
                            session.group.dirty = false;
                            out.push((key.clone(), *bounds, session.group.accs.clone()));
                        }
                    }
                    if let (true, Some(watermark)) = (evicts, watermark) {
                        sessions.drain_closed(watermark);
                    }
                }
            }
            OutputMode::Append => {
                for (key, windows) in &mut self.windows {
                    let closed: Vec<(i64, i64)> = windows
                        .keys()
                        .filter(|&&(_, end)| self.evicts && is_late(end, watermark))
                        .copied()
                        .collect();
                    for bounds in closed {
                        if let Some(group) = windows.remove(&bounds) {
                            out.push((
                                key.clone(),
                                WindowBounds {
                                    start: bounds.0,
                                    end: bounds.1,
                                },
                                group.accs,
                            ));
                        }
                    }
                }
                if let (true, Some(watermark)) = (self.evicts, watermark) {
                    for (key, sessions) in &mut self.sessions {
                        for (bounds, session) in sessions.drain_closed(watermark) {
                            out.push((key.clone(), bounds, session.group.accs));
                        }
                    }
                }
            }
        }
        self.windows.retain(|_, w| !w.is_empty());
        self.sessions.retain(|_, s| !s.is_empty());
        out.sort_by(|a, b| (a.1.start, &a.0, a.1.end).cmp(&(b.1.start, &b.0, b.1.end)));
        self.to_batch(&out)
    }

    fn to_batch(&self, rows: &[EmittedGroup]) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = Vec::new();
        if let Some(converter) = &self.converter {
            let parser = converter.parser();
            let parsed: Vec<_> = rows.iter().map(|(key, _, _)| parser.parse(key)).collect();
            columns.extend(converter.convert_rows(parsed)?);
        }
        if !matches!(self.grouping, Grouping::Plain) {
            let starts: Int64Array = rows.iter().map(|r| Some(r.1.start)).collect();
            let ends: Int64Array = rows.iter().map(|r| Some(r.1.end)).collect();
            let window = StructArray::try_new(
                window_fields(),
                vec![
                    cast(&starts, &timestamp_type())?,
                    cast(&ends, &timestamp_type())?,
                ],
                None,
            )?;
            columns.insert(self.window_position, Arc::new(window));
        }
        for (index, agg) in self.aggs.iter().enumerate() {
            let values: Vec<Value> = rows.iter().map(|r| r.2[index].result(&agg.kind)).collect();
            columns.push(values_to_array(&values, &agg.data_type)?);
        }
        Ok(RecordBatch::try_new_with_options(
            self.schema(),
            columns,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.len())),
        )?)
    }
}

/// One group in a snapshot.
#[derive(Serialize, Deserialize)]
struct GroupSnapshot {
    key: String,
    start: i64,
    end: i64,
    session: bool,
    group: Group,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Result<Box<[u8]>> {
    if !text.len().is_multiple_of(2) {
        return Err(crate::error::Error::State(format!(
            "odd-length key '{text}' in a snapshot"
        )));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&text[i..i + 2], 16)
                .map_err(|_| crate::error::Error::State(format!("bad key '{text}' in a snapshot")))
        })
        .collect()
}

/// The group of `key` and `bounds`, created when new.
fn group_in<'a>(
    windows: &'a mut WindowState,
    key: &[u8],
    bounds: (i64, i64),
    aggs: &[AggSlot],
) -> &'a mut Group {
    // Looked up by slice: `entry` would copy the key for every row.
    if !windows.contains_key(key) {
        windows.insert(key.into(), BTreeMap::new());
    }
    windows
        .get_mut(key)
        .expect("the key was inserted above")
        .entry(bounds)
        .or_insert_with(|| new_group(aggs))
}

fn new_group(aggs: &[AggSlot]) -> Group {
    Group {
        accs: aggs.iter().map(|a| a.kind.new_accumulator()).collect(),
        dirty: true,
    }
}

/// Input columns of one aggregate: its argument and max_by/min_by's ordering.
pub(super) type AggInputs = (Option<InputColumn>, Option<InputColumn>);

/// Puts a row at `event_time` into its windows that are not late, counting the late ones.
fn add_windows(
    sorter: &mut GroupSorter,
    windows: &mut RowWindows,
    key: u32,
    event_time: i64,
    row: usize,
    watermark: Option<i64>,
    stats: &mut UpdateStats,
) {
    windows.each(event_time, |bounds| {
        if is_late(bounds.end, watermark) {
            stats.dropped_by_watermark += 1;
        } else {
            sorter.add(key, (bounds.start, bounds.end), row);
            stats.rows_updated += 1;
        }
    });
}

fn window_fields() -> Fields {
    Fields::from(vec![
        Field::new("start", timestamp_type(), true),
        Field::new("end", timestamp_type(), true),
    ])
}

/// Spark's `window` / `session_window` output column.
pub fn window_field(name: &str) -> Field {
    Field::new(name, DataType::Struct(window_fields()), false)
}
