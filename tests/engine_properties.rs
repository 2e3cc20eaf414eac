//! Property tests of the whole engine: random tick streams (random order, late rows, equal
//! timestamps, several keys, random batch boundaries) through a real query — memory source,
//! the micro-batch loop, memory sink — for tumbling, sliding and session windows in every
//! output mode, compared with a plain batch computation over the rows the watermark admits.
//!
//! The late-row rule of the reference: a row in batch k is dropped when its window ended at
//! or before the watermark computed at the end of batch k−1 (max event time − delay).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, TimeUnit};
use ferrostream::plan::Plan;
use ferrostream::session::{Session, WriterSpec};
use proptest::prelude::*;

const MINUTE: i64 = 60_000_000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Tumbling,
    Sliding,
    Session,
}

#[derive(Debug, Clone)]
struct Tick {
    key: &'static str,
    micros: i64,
    price: f64,
}

/// A window result: (key, start, end) → (open, close, high, count).
type Candles = BTreeMap<(String, i64, i64), (f64, f64, f64, i64)>;

fn windows_of(kind: Kind, ts: i64) -> Vec<(i64, i64)> {
    match kind {
        Kind::Tumbling => {
            let start = ts.div_euclid(10 * MINUTE) * 10 * MINUTE;
            vec![(start, start + 10 * MINUTE)]
        }
        Kind::Sliding => {
            let last = ts.div_euclid(5 * MINUTE) * 5 * MINUTE;
            vec![
                (last - 5 * MINUTE, last + 5 * MINUTE),
                (last, last + 10 * MINUTE),
            ]
        }
        Kind::Session => vec![(ts, ts + 7 * MINUTE)],
    }
}

/// Rows of one window: (event time, arrival, price).
type Rows = Vec<(i64, usize, f64)>;

/// The plain computation: rows admitted batch by batch; time windows are grouped at the end,
/// sessions are kept as simple interval lists that merge when they overlap or touch and
/// close when the watermark passes their end (after which a new row starts a new session).
fn reference(batches: &[Vec<Tick>], kind: Kind, delay: i64, mode: &str) -> (Candles, Option<i64>) {
    let mut watermark: Option<i64> = None;
    let mut max_seen: Option<i64> = None;
    let mut groups: BTreeMap<(String, i64, i64), Rows> = BTreeMap::new();
    let mut open: BTreeMap<&str, Vec<(i64, i64, Rows)>> = BTreeMap::new();
    let mut arrival = 0;
    for batch in batches {
        for tick in batch {
            for bounds in windows_of(kind, tick.micros) {
                let late = watermark.is_some_and(|w| bounds.1 <= w);
                if late && mode != "complete" {
                    continue;
                }
                let row = (tick.micros, arrival, tick.price);
                if kind == Kind::Session {
                    let sessions = open.entry(tick.key).or_default();
                    let (mut start, mut end, mut rows) = (bounds.0, bounds.1, vec![row]);
                    let mut kept = Vec::new();
                    for (s, e, r) in sessions.drain(..) {
                        if s <= end && start <= e {
                            start = start.min(s);
                            end = end.max(e);
                            rows.extend(r);
                        } else {
                            kept.push((s, e, r));
                        }
                    }
                    kept.push((start, end, rows));
                    *sessions = kept;
                } else {
                    groups
                        .entry((tick.key.to_string(), bounds.0, bounds.1))
                        .or_default()
                        .push(row);
                }
            }
            arrival += 1;
        }
        if let Some(batch_max) = batch.iter().map(|t| t.micros).max() {
            max_seen = Some(max_seen.map_or(batch_max, |m| m.max(batch_max)));
            let candidate = max_seen.unwrap_or(batch_max) - delay;
            watermark = Some(watermark.map_or(candidate, |w| w.max(candidate)));
        }
        if mode != "complete" {
            for (key, sessions) in open.iter_mut() {
                let (closed, still_open): (Vec<_>, Vec<_>) = sessions
                    .drain(..)
                    .partition(|(_, e, _)| watermark.is_some_and(|w| *e <= w));
                *sessions = still_open;
                for (s, e, r) in closed {
                    groups.insert((key.to_string(), s, e), r);
                }
            }
        }
    }
    for (key, sessions) in open {
        for (s, e, r) in sessions {
            groups.insert((key.to_string(), s, e), r);
        }
    }
    let candles = groups
        .into_iter()
        .map(|(key, mut rows)| {
            rows.sort_by_key(|r| (r.0, r.1));
            let high = rows.iter().map(|r| r.2).fold(f64::MIN, f64::max);
            let open = rows[0].2;
            let close = rows[rows.len() - 1].2;
            (key, (open, close, high, rows.len() as i64))
        })
        .collect();
    (candles, watermark)
}

fn plan_json(kind: Kind, stream_id: u64) -> String {
    let window = match kind {
        Kind::Tumbling => {
            r#"{"kind":"call","name":"window","args":[{"kind":"col","name":"ts"}],"options":{"duration":"10 minutes"}}"#
        }
        Kind::Sliding => {
            r#"{"kind":"call","name":"window","args":[{"kind":"col","name":"ts"}],"options":{"duration":"10 minutes","slide":"5 minutes"}}"#
        }
        Kind::Session => {
            r#"{"kind":"call","name":"session_window","args":[{"kind":"col","name":"ts"}],"options":{"gap":"7 minutes"}}"#
        }
    };
    let agg = |name: &str, alias: &str| {
        format!(
            r#"{{"kind":"alias","name":"{alias}","expr":{{"kind":"agg","name":"{name}","args":[{{"kind":"col","name":"price"}}]}}}}"#
        )
    };
    format!(
        r#"{{"node":"aggregate","keys":[{window},{{"kind":"col","name":"key"}}],
            "aggs":[{},{},{},{{"kind":"alias","name":"n","expr":{{"kind":"agg","name":"count","args":[{{"kind":"col","name":"*"}}]}}}}],
            "input":{{"node":"watermark","column":"ts","delay":"15 minutes",
              "input":{{"node":"source","format":"memory","options":{{"id":"{stream_id}"}},"streaming":true}}}}}}"#,
        agg("first", "open"),
        agg("last", "close"),
        agg("max", "high"),
    )
}

fn input_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("price", DataType::Float64, true),
    ]))
}

fn to_batch(ticks: &[Tick]) -> RecordBatch {
    let keys: StringArray = ticks.iter().map(|t| Some(t.key)).collect();
    let times = arrow::array::TimestampMicrosecondArray::from(
        ticks.iter().map(|t| t.micros).collect::<Vec<_>>(),
    )
    .with_timezone("UTC");
    let prices: Float64Array = ticks.iter().map(|t| Some(t.price)).collect();
    RecordBatch::try_new(
        input_schema(),
        vec![Arc::new(keys), Arc::new(times), Arc::new(prices)],
    )
    .expect("valid batch")
}

/// Runs the query batch by batch and returns the final table as candles (for update mode,
/// the last version of each window).
fn run_engine(batches: &[Vec<Tick>], kind: Kind, mode: &str, name: &str) -> Candles {
    let session = Session::new();
    let (id, stream) = session.memory_stream(input_schema()).expect("stream");
    let plan = Plan::from_json(&plan_json(kind, id)).expect("plan");
    let writer: WriterSpec = serde_json::from_value(serde_json::json!({
        "format": "memory", "output_mode": mode, "query_name": name,
    }))
    .expect("writer");
    let query = session
        .start_query(&plan, &writer, None)
        .expect("query starts");
    for batch in batches {
        stream.add(to_batch(batch)).expect("add");
        assert!(query
            .process_all_available(Duration::from_secs(30))
            .expect("no failure"));
    }
    let table = session
        .collect(&Plan::from_json(&format!(r#"{{"node":"table","name":"{name}"}}"#)).expect("plan"))
        .expect("table")
        .1;
    query.stop();
    let mut candles = Candles::new();
    for batch in &table {
        let keys = batch.column(1).as_string::<i32>();
        let window = batch.column(0).as_struct();
        let starts = arrow::compute::cast(window.column(0), &DataType::Int64).expect("cast");
        let ends = arrow::compute::cast(window.column(1), &DataType::Int64).expect("cast");
        let (starts, ends) = (
            starts.as_primitive::<Int64Type>(),
            ends.as_primitive::<Int64Type>(),
        );
        let open = batch.column(2).as_primitive::<Float64Type>();
        let close = batch.column(3).as_primitive::<Float64Type>();
        let high = batch.column(4).as_primitive::<Float64Type>();
        let n = batch
            .column(5)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("count is long");
        for row in 0..batch.num_rows() {
            candles.insert(
                (
                    keys.value(row).to_string(),
                    starts.value(row),
                    ends.value(row),
                ),
                (
                    open.value(row),
                    close.value(row),
                    high.value(row),
                    n.value(row),
                ),
            );
        }
    }
    candles
}

fn ticks() -> impl Strategy<Value = Vec<Vec<Tick>>> {
    let tick =
        (0usize..3, 0i64..240, 0i64..4, any::<bool>()).prop_map(|(key, minute, jitter, late)| {
            let micros = 1_700_000_000_000_000 + (minute + jitter) * MINUTE
                - if late { 40 * MINUTE } else { 0 };
            (["BTC", "ETH", "SOL"][key], micros)
        });
    proptest::collection::vec(proptest::collection::vec(tick, 0..12), 1..8).prop_map(|batches| {
        let mut price = 0.0;
        batches
            .into_iter()
            .map(|batch| {
                batch
                    .into_iter()
                    .map(|(key, micros)| {
                        price += 1.0; // unique prices make first/last checkable
                        Tick { key, micros, price }
                    })
                    .collect()
            })
            .collect()
    })
}

fn check(batches: &[Vec<Tick>], kind: Kind, mode: &str) {
    let name = format!("t_{}", uuid_like());
    let actual = run_engine(batches, kind, mode, &name);
    let (all, watermark) = reference(batches, kind, 15 * MINUTE, mode);
    let expected: Candles = match mode {
        "append" => all
            .into_iter()
            .filter(|((_, _, end), _)| watermark.is_some_and(|w| *end <= w))
            .collect(),
        _ => all,
    };
    assert_eq!(actual, expected, "{kind:?} {mode}");
}

fn uuid_like() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn tumbling_windows_match_the_reference(batches in ticks()) {
        for mode in ["append", "update", "complete"] {
            check(&batches, Kind::Tumbling, mode);
        }
    }

    #[test]
    fn sliding_windows_match_the_reference(batches in ticks()) {
        for mode in ["append", "update", "complete"] {
            check(&batches, Kind::Sliding, mode);
        }
    }

    #[test]
    fn session_windows_match_the_reference(batches in ticks()) {
        for mode in ["append", "complete"] {
            check(&batches, Kind::Session, mode);
        }
    }
}
