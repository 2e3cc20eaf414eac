//! The Parquet file sink alone, as the OHLC pipeline drives it: each micro-batch is a few
//! closed candles per symbol, written in append mode with `partitionBy("symbol")`, so a batch
//! writes up to one small file per symbol (and compacts a folder every `minFilesToCompact`
//! batches, as the pipeline's sink does by default).
//!
//!     cargo bench --no-default-features --bench parquet_sink -- [batches] [symbols] [key=value ...]
//!
//! `key=value` arguments are writer options (`compression=snappy`, `minFilesToCompact=0`).
//! The output goes to a temporary folder under `$FERROSTREAM_BENCH_DIR` (default: the system's
//! temporary folder). Prints batches/s, wall and CPU milliseconds per batch (p50, p99) and the
//! peak RSS. Every file is fsynced, as in production, so wall time includes the disk's syncs;
//! CPU time (this thread's, from `/proc/thread-self/schedstat`) does not.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use ferrostream::plan::OutputMode;
use ferrostream::sink::file::{committed_files, FileSink};
use ferrostream::sink::Sink;

const HOUR_MICROS: i64 = 3_600_000_000;

fn schema() -> SchemaRef {
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let double = |name: &str| Field::new(name, DataType::Float64, true);
    Arc::new(Schema::new(vec![
        Field::new("window_start", timestamp.clone(), true),
        Field::new("window_end", timestamp, true),
        Field::new("symbol", DataType::Utf8, true),
        double("open"),
        double("high"),
        double("low"),
        double("close"),
        double("volume"),
        double("avg_price"),
        Field::new("ticks", DataType::Int64, false),
    ]))
}

/// The hourly candles batch `batch_id` emits: one per symbol, in the engine's output order
/// (by window, then symbol, so not grouped by partition folder).
fn candles(batch_id: usize, symbols: &[String]) -> RecordBatch {
    let start = 1_732_406_400_000_000 + batch_id as i64 * HOUR_MICROS;
    let rows = symbols.len();
    let price =
        |i: usize, offset: f64| 100.0 + ((batch_id * 31 + i * 7) % 977) as f64 * 0.01 + offset;
    let doubles = |offset: f64| -> Arc<Float64Array> {
        Arc::new((0..rows).map(|i| Some(price(i, offset))).collect())
    };
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(TimestampMicrosecondArray::from(vec![start; rows]).with_timezone("UTC")),
            Arc::new(
                TimestampMicrosecondArray::from(vec![start + HOUR_MICROS; rows])
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from_iter_values(symbols)),
            doubles(0.0),
            doubles(0.5),
            doubles(-0.5),
            doubles(0.1),
            Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|i| 10.0 + ((batch_id + i) % 13) as f64),
            )),
            doubles(0.05),
            Arc::new(Int64Array::from_iter_values(
                (0..rows).map(|i| 3600 + ((batch_id * 17 + i) % 101) as i64),
            )),
        ],
    )
    .expect("valid batch")
}

/// A `/proc/self/status` field in MB (Linux; 0 elsewhere).
fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// This thread's CPU time in nanoseconds (Linux; 0 elsewhere).
fn cpu_nanos() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or(0.0)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let numbers: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let batches = numbers.first().copied().unwrap_or(200);
    let symbol_count = numbers.get(1).copied().unwrap_or(100);
    let options: BTreeMap<String, String> = args
        .iter()
        .filter_map(|a| a.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let symbols: Vec<String> = (0..symbol_count)
        .map(|i| format!("SYM{i:03}USDT"))
        .collect();

    let parent =
        std::env::var_os("FERROSTREAM_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::tempdir_in(parent).expect("temporary folder");
    let root = dir.path().join("hourly");
    let mut sink = FileSink::new(
        "parquet",
        &root,
        &["symbol".to_string()],
        &options,
        schema(),
    )
    .expect("sink");

    println!(
        "parquet sink bench: {batches} batches of {symbol_count} candles, partitionBy(symbol), \
         options {options:?}"
    );
    let rss_before = status_mb("VmRSS");
    let mut wall_ms = Vec::with_capacity(batches);
    let mut cpu_ms = Vec::with_capacity(batches);
    let began = Instant::now();
    for batch_id in 0..batches {
        let input = [candles(batch_id, &symbols)];
        let cpu = cpu_nanos();
        let wall = Instant::now();
        sink.add_batch(batch_id as u64, &schema(), &input, OutputMode::Append)
            .expect("batch written");
        wall_ms.push(wall.elapsed().as_secs_f64() * 1e3);
        cpu_ms.push(cpu_nanos().saturating_sub(cpu) as f64 / 1e6);
    }
    let total = began.elapsed().as_secs_f64();

    let files = committed_files(&root).expect("manifests");
    let bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(root.join(f)).ok())
        .map(|m| m.len())
        .sum();
    let busy: f64 = wall_ms.iter().sum::<f64>() / 1e3;
    let cpu: f64 = cpu_ms.iter().sum::<f64>();
    wall_ms.sort_by(f64::total_cmp);
    cpu_ms.sort_by(f64::total_cmp);
    println!(
        "{:>8.1} batches/s  wall ms/batch p50 {:.2} p99 {:.2}  CPU ms/batch mean {:.2} p50 {:.2} \
         p99 {:.2}",
        batches as f64 / busy,
        percentile(&wall_ms, 0.5),
        percentile(&wall_ms, 0.99),
        cpu / batches as f64,
        percentile(&cpu_ms, 0.5),
        percentile(&cpu_ms, 0.99),
    );
    println!(
        "{:>8} live files, {:.1} KB on disk  total {total:.2} s  RSS before {rss_before:.1} MB, \
         peak {:.1} MB",
        files.len(),
        bytes as f64 / 1024.0,
        status_mb("VmHWM"),
    );
}
