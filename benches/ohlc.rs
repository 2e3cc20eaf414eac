//! The seed's hourly and daily OHLC over in-memory ticks: the aggregation engine alone
//! (DataFusion projection + window assignment + keyed state + emission), one core.
//!
//!     cargo bench --no-default-features --bench ohlc -- [ticks] [symbols]
//!
//! Prints ticks/s for each query and the peak RSS, which must not grow with the ticks:
//! input batches are generated and dropped as they go, so only state stays.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use ferrostream::exec::runtime::block_on;
use ferrostream::exec::Pipeline;
use ferrostream::expr::ExprMetrics;
use ferrostream::plan::{OutputMode, Plan};
use ferrostream::window::WatermarkTracker;

const BATCH: usize = 100_000;

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("symbol", DataType::Utf8, true),
        Field::new("price", DataType::Float64, true),
        Field::new("volume", DataType::Float64, true),
        Field::new(
            "event_timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]))
}

fn plan(duration: &str) -> Plan {
    let agg = |name: &str, column: &str, alias: &str| {
        format!(
            r#"{{"kind":"alias","name":"{alias}","expr":{{"kind":"agg","name":"{name}","args":[{{"kind":"col","name":"{column}"}}]}}}}"#
        )
    };
    Plan::from_json(&format!(
        r#"{{"node":"aggregate",
             "keys":[{{"kind":"call","name":"window","args":[{{"kind":"col","name":"event_timestamp"}}],"options":{{"duration":"{duration}"}}}},{{"kind":"col","name":"symbol"}}],
             "aggs":[{},{},{},{},{},{{"kind":"alias","name":"ticks","expr":{{"kind":"agg","name":"count","args":[{{"kind":"col","name":"*"}}]}}}}],
             "input":{{"node":"watermark","column":"event_timestamp","delay":"1 hour",
               "input":{{"node":"source","format":"memory","streaming":true}}}}}}"#,
        agg("first", "price", "open"),
        agg("max", "price", "high"),
        agg("min", "price", "low"),
        agg("last", "price", "close"),
        agg("sum", "volume", "volume"),
    ))
    .expect("valid plan")
}

/// Ticks with event time advancing 10 ms per tick, a little disorder, and symbols in turn.
fn batch(start: usize, symbols: &[String]) -> RecordBatch {
    let base = 1_732_406_400_000_000i64;
    let mut names = Vec::with_capacity(BATCH);
    let mut prices = Vec::with_capacity(BATCH);
    let mut volumes = Vec::with_capacity(BATCH);
    let mut times = Vec::with_capacity(BATCH);
    for i in start..start + BATCH {
        names.push(symbols[i % symbols.len()].as_str());
        prices.push(100.0 + (i % 977) as f64 * 0.01);
        volumes.push(0.5 + (i % 13) as f64);
        let disorder = ((i * 7919) % 2000) as i64 * 1000;
        times.push(base + i as i64 * 10_000 - disorder);
    }
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from(names)),
            Arc::new(Float64Array::from(prices)),
            Arc::new(Float64Array::from(volumes)),
            Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")),
        ],
    )
    .expect("valid batch")
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(str::to_string)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn run(duration: &str, ticks: usize, symbols: &[String]) -> (f64, usize) {
    let ctx = ferrostream::exec::stateless::context();
    let mut pipeline = Pipeline::new(
        &ctx,
        schema(),
        &plan(duration).ops,
        OutputMode::Append,
        Arc::new(ExprMetrics::default()),
    )
    .expect("pipeline");
    let mut tracker =
        WatermarkTracker::new([("event_timestamp", 3_600_000_000i64)]).expect("tracker");
    let mut emitted = 0;
    let mut busy = 0.0;
    for (batch_id, start) in (0..ticks).step_by(BATCH).enumerate() {
        let input = batch(start, symbols);
        let began = Instant::now();
        let (out, stats) =
            block_on(pipeline.process(vec![input], batch_id as u64, tracker.current()))
                .expect("runtime")
                .expect("batch");
        if let Some(max) = stats.event_times[0].max {
            tracker.observe(0, max).expect("observe");
        }
        let watermark = tracker.advance_at_batch_end(ferrostream::window::ProcessingTime(0));
        let rows = block_on(pipeline.emit(out, OutputMode::Append, watermark))
            .expect("runtime")
            .expect("emit");
        emitted += rows.iter().map(|b| b.num_rows()).sum::<usize>();
        busy += began.elapsed().as_secs_f64();
    }
    (ticks as f64 / busy, emitted)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let ticks: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    let symbol_count: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let symbols: Vec<String> = (0..symbol_count)
        .map(|i| format!("SYM{i:03}USDT"))
        .collect();
    println!("ohlc bench: {ticks} ticks, {symbol_count} symbols, batches of {BATCH}");
    for duration in ["1 hour", "1 day"] {
        let (rate, emitted) = run(duration, ticks, &symbols);
        println!(
            "{duration:>7} OHLC: {:>12.0} ticks/s  candles emitted {emitted:>7}  peak RSS {:.1} MB",
            rate,
            peak_rss_mb()
        );
    }
}
