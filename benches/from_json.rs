//! `from_json` over Kafka-shaped ticks: the benchmark pipeline's parsing stage alone,
//! `select(from_json(col("value").cast("string"), <12 fields>).alias("t")).select("t.*")`
//! on binary `value`s in chunks of 65,536 messages, one core.
//!
//!     cargo bench --no-default-features --bench from_json -- [ticks]
//!
//! Prints rows/s and MB/s (of JSON text) for a clean stream and for one with a malformed
//! message every 100,000 (truncated, an array, two objects, a wrongly typed field, in turn).

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{BinaryArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;
use ferrostream::exec::runtime::block_on;
use ferrostream::exec::Pipeline;
use ferrostream::expr::ExprMetrics;
use ferrostream::plan::{OutputMode, Plan};

const CHUNK: usize = 65_536;
const MALFORMED_EVERY: usize = 100_000;

const FIELDS: [(&str, &str); 12] = [
    ("symbol", "string"),
    ("price", "double"),
    ("volume", "double"),
    ("quote_volume", "double"),
    ("price_change", "double"),
    ("price_change_percent", "double"),
    ("high", "double"),
    ("low", "double"),
    ("open", "double"),
    ("weighted_avg_price", "double"),
    ("trade_count", "long"),
    ("event_time", "long"),
];

fn plan() -> Plan {
    let fields: Vec<String> = FIELDS
        .iter()
        .map(|(name, kind)| {
            format!(r#"{{"name":"{name}","type":"{kind}","nullable":true,"metadata":{{}}}}"#)
        })
        .collect();
    Plan::from_json(&format!(
        r#"{{"node":"project","exprs":[{{"kind":"col","name":"t.*"}}],
             "input":{{"node":"project","exprs":[{{"kind":"alias","name":"t","expr":
               {{"kind":"call","name":"from_json",
                 "args":[{{"kind":"cast","type":"string","expr":{{"kind":"col","name":"value"}}}}],
                 "options":{{"schema":{{"type":"struct","fields":[{}]}}}}}}}}],
               "input":{{"node":"source","format":"memory","streaming":true}}}}}}"#,
        fields.join(",")
    ))
    .expect("valid plan")
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Binary,
        true,
    )]))
}

/// One tick as the reference producer writes it (~267 bytes).
fn tick(i: usize) -> String {
    let price = 84_000.0 + (i % 9_973) as f64 * 0.37;
    format!(
        concat!(
            r#"{{"symbol":"SYM{:03}USDT","price":{:.2},"volume":{:.8},"quote_volume":{:.4},"#,
            r#""price_change":{:.2},"price_change_percent":{:.3},"high":{:.2},"low":{:.2},"#,
            r#""open":{:.2},"weighted_avg_price":{:.2},"trade_count":{},"event_time":{}}}"#
        ),
        i % 100,
        price,
        12_345.678_901_23 + (i % 97) as f64,
        1_043_567_890.123_4 + i as f64,
        -1_234.56 + (i % 50) as f64,
        -1.457 + (i % 7) as f64 * 0.1,
        price + 1_000.0,
        price - 1_000.0,
        price - 12.5,
        price - 3.25,
        1_234_567 + i,
        1_732_406_400_000u64 + i as u64 * 10,
    )
}

fn message(i: usize, malformed: bool) -> String {
    if !malformed || i % MALFORMED_EVERY != MALFORMED_EVERY - 1 {
        return tick(i);
    }
    let whole = tick(i);
    match (i / MALFORMED_EVERY) % 4 {
        0 => whole[..whole.len() / 2].to_string(),
        1 => "[1,2,3]".to_string(),
        2 => format!("{whole}{whole}"),
        _ => whole.replace(r#""trade_count":"#, r#""trade_count":"many","x":"#),
    }
}

fn chunks(ticks: usize, malformed: bool) -> (Vec<RecordBatch>, usize) {
    let mut bytes = 0;
    let batches = (0..ticks)
        .step_by(CHUNK)
        .map(|start| {
            let messages: Vec<String> = (start..(start + CHUNK).min(ticks))
                .map(|i| message(i, malformed))
                .collect();
            bytes += messages.iter().map(String::len).sum::<usize>();
            let values = BinaryArray::from_iter_values(messages.iter().map(String::as_bytes));
            RecordBatch::try_new(schema(), vec![Arc::new(values)]).expect("valid batch")
        })
        .collect();
    (batches, bytes)
}

/// Runs the parsing stage over every chunk; returns (seconds, rows out, malformed rows).
fn run(batches: &[RecordBatch]) -> (f64, usize, u64) {
    let ctx = SessionContext::new();
    let metrics = Arc::new(ExprMetrics::default());
    let mut pipeline = Pipeline::new(
        &ctx,
        schema(),
        &plan().ops,
        OutputMode::Append,
        Arc::clone(&metrics),
    )
    .expect("pipeline");
    let mut rows = 0;
    let began = Instant::now();
    for (batch_id, batch) in batches.iter().enumerate() {
        let (out, _) = block_on(pipeline.process(vec![batch.clone()], batch_id as u64, None))
            .expect("runtime")
            .expect("batch");
        rows += out.iter().map(|b| b.num_rows()).sum::<usize>();
    }
    (
        began.elapsed().as_secs_f64(),
        rows,
        metrics.malformed_rows(),
    )
}

fn main() {
    let ticks: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    println!("from_json bench: {ticks} ticks, chunks of {CHUNK}, best of 3");
    for malformed in [false, true] {
        let (batches, bytes) = chunks(ticks, malformed);
        let mut best = f64::MAX;
        let mut counts = (0, 0);
        for _ in 0..3 {
            let (seconds, rows, bad) = run(&batches);
            best = best.min(seconds);
            counts = (rows, bad);
        }
        println!(
            "{:>24}: {:>10.0} rows/s {:>7.1} MB/s  ({} rows out, {} malformed, {:.0} B/message)",
            if malformed {
                "1 malformed per 100k"
            } else {
                "clean"
            },
            ticks as f64 / best,
            bytes as f64 / best / 1e6,
            counts.0,
            counts.1,
            bytes as f64 / ticks as f64,
        );
    }
}
