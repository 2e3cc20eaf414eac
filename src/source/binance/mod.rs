//! `readStream.format("binance")`: trades or 24-hour tickers straight from Binance, without
//! Kafka (the embedded default for notebooks and `ferrostream demo`).
//!
//! Options: `symbols` (comma-separated, required), `stream` (`trade` (default), `aggTrade`,
//! `ticker`), `interval` (ticker polling, default `1 second`), `restUrl`, `wsUrl`, `gapFill`.
//! A background task on the shared runtime runs the [`feed`]; the source buffers what it
//! delivered. The offset is, per symbol, the last trade id (the ticker's event time for
//! tickers) a batch includes, so it is checkpointable: a restarted query resumes the feed from
//! the checkpoint and the feed backfills the ids it missed through REST.

pub mod feed;
pub mod model;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch};

use self::feed::{FeedConfig, FeedStats};
use self::model::{StreamKind, Tick};
use super::options::Options;
use super::{Cancel, ReadLimit, Source, SourceOffset};
use crate::error::{Error, Result};
use crate::exec::runtime::runtime;
use crate::expr::types::timestamp_type;
use crate::illegal;
use crate::window::parse_positive_interval;

/// How long `get_batch` waits for a rerun batch's ticks to come back after a restart.
const RERUN_WAIT: Duration = Duration::from_secs(60);

/// The schema of a `binance` source of `kind`.
pub fn binance_schema(kind: StreamKind) -> SchemaRef {
    let mut fields = vec![Field::new("symbol", DataType::Utf8, true)];
    let float = |name: &str| Field::new(name, DataType::Float64, true);
    let long = |name: &str| Field::new(name, DataType::Int64, true);
    match kind {
        StreamKind::Ticker => {
            for name in [
                "price",
                "volume",
                "quote_volume",
                "price_change",
                "price_change_percent",
                "high",
                "low",
                "open",
                "weighted_avg_price",
            ] {
                fields.push(float(name));
            }
            fields.push(long("trade_count"));
            fields.push(long("event_time"));
        }
        StreamKind::Trade | StreamKind::AggTrade => {
            fields.push(long("trade_id"));
            fields.push(float("price"));
            fields.push(float("qty"));
            fields.push(Field::new("is_buyer_maker", DataType::Boolean, true));
            fields.push(long("event_time"));
            fields.push(long("trade_time"));
        }
    }
    fields.push(Field::new("timestamp", timestamp_type(), true));
    Arc::new(Schema::new(fields))
}

/// The stream kind named by a source's options.
pub fn stream_kind(map: &BTreeMap<String, String>) -> Result<StreamKind> {
    let options = Options::new(map, "binance source");
    let name = options.get("stream").unwrap_or("trade");
    StreamKind::parse(name).ok_or_else(|| {
        illegal!("binance source: option 'stream' is '{name}'; expected trade, aggTrade or ticker")
    })
}

/// Parses the feed's options (shared with the producer's command line).
pub fn feed_config(map: &BTreeMap<String, String>) -> Result<FeedConfig> {
    let options = Options::new(map, "binance source");
    let symbols: Vec<String> = options
        .required("symbols", "e.g. .option(\"symbols\", \"BTCUSDT,ETHUSDT\")")?
        .split(',')
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty())
        .collect();
    if symbols.is_empty() {
        return Err(illegal!(
            "binance source: option 'symbols' is empty; e.g. \"BTCUSDT,ETHUSDT\""
        ));
    }
    let mut config = FeedConfig::new(symbols, stream_kind(map)?);
    if let Some(url) = options.get("restUrl") {
        config.rest_url = url.to_string();
    }
    if let Some(url) = options.get("wsUrl") {
        config.ws_url = url.to_string();
    }
    if let Some(interval) = options.get("interval") {
        let micros = parse_positive_interval(interval).map_err(|e| {
            illegal!("binance source: option 'interval' is '{interval}': {e}; e.g. \"1 second\"")
        })?;
        config.poll_interval = Duration::from_micros(micros as u64);
    }
    config.gap_fill = options.bool("gapFill", true)?;
    Ok(config)
}

/// The running feed behind a source.
struct Running {
    receiver: mpsc::Receiver<Tick>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<()>>,
}

/// The `binance` source.
pub struct BinanceSource {
    config: FeedConfig,
    stats: Arc<FeedStats>,
    running: Option<Running>,
    /// Delivered ticks not yet committed, in arrival order (per symbol, in sequence order).
    buffer: Vec<Tick>,
}

impl BinanceSource {
    /// Reads the options; connects only when the query asks for data.
    pub fn new(map: &BTreeMap<String, String>) -> Result<Self> {
        Ok(BinanceSource {
            config: feed_config(map)?,
            stats: Arc::default(),
            running: None,
            buffer: Vec::new(),
        })
    }

    /// Starts the feed, resuming after `offset`.
    fn ensure_running(&mut self, offset: &SourceOffset) -> Result<()> {
        if self.running.is_some() {
            return Ok(());
        }
        let mut config = self.config.clone();
        config.resume_from = sequences(offset);
        let (sender, receiver) = mpsc::channel(1 << 16);
        let (stop, stop_receiver) = watch::channel(false);
        let stats = Arc::clone(&self.stats);
        let task = runtime()?.spawn(feed::run(config, stats, sender, stop_receiver));
        self.running = Some(Running {
            receiver,
            stop,
            task,
        });
        Ok(())
    }

    /// Moves what the feed delivered into the buffer; reports a feed that failed.
    fn drain(&mut self) -> Result<()> {
        let Some(running) = self.running.as_mut() else {
            return Ok(());
        };
        while let Ok(tick) = running.receiver.try_recv() {
            self.buffer.push(tick);
        }
        if running.task.is_finished() {
            let running = self.running.take();
            if let Some(running) = running {
                let outcome = crate::exec::runtime::block_on(running.task)?;
                match outcome {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => return Err(error),
                    Err(join) => {
                        return Err(Error::Source(format!(
                            "binance: the feed task failed: {join}"
                        )))
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the buffer holds every tick of `(start, end]`: a symbol that did not move
    /// needs nothing.
    fn covers(&self, start: &HashMap<String, i64>, end: &HashMap<String, i64>) -> bool {
        end.iter().all(|(symbol, sequence)| {
            start.get(symbol).is_some_and(|s| s >= sequence)
                || self
                    .buffer
                    .iter()
                    .any(|t| t.symbol() == symbol && t.sequence() >= *sequence)
        })
    }
}

impl Drop for BinanceSource {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(true);
        }
    }
}

/// Per-symbol sequences of an offset (`{"BTCUSDT": 123}`).
fn sequences(offset: &SourceOffset) -> HashMap<String, i64> {
    offset
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_i64().map(|v| (k.clone(), v)))
                .collect()
        })
        .unwrap_or_default()
}

fn in_range(tick: &Tick, start: &HashMap<String, i64>, end: &HashMap<String, i64>) -> bool {
    let sequence = tick.sequence();
    let after_start = start.get(tick.symbol()).is_none_or(|s| sequence > *s);
    let before_end = end.get(tick.symbol()).is_some_and(|e| sequence <= *e);
    after_start && before_end
}

fn to_batch(schema: SchemaRef, ticks: &[&Tick]) -> Result<RecordBatch> {
    let strings = |f: &dyn Fn(&Tick) -> String| -> ArrayRef {
        Arc::new(ticks.iter().map(|t| Some(f(t))).collect::<StringArray>())
    };
    let mut columns: Vec<ArrayRef> = vec![strings(&|t| t.symbol().to_string())];
    let trades: Vec<_> = ticks
        .iter()
        .filter_map(|t| match t {
            Tick::Trade(trade) => Some(trade),
            Tick::Ticker(_) => None,
        })
        .collect();
    let tickers: Vec<_> = ticks
        .iter()
        .filter_map(|t| match t {
            Tick::Ticker(ticker) => Some(ticker),
            Tick::Trade(_) => None,
        })
        .collect();
    let times: Vec<i64> = if schema.field_with_name("trade_id").is_ok() {
        columns.push(Arc::new(Int64Array::from_iter_values(
            trades.iter().map(|t| t.trade_id),
        )));
        columns.push(Arc::new(Float64Array::from_iter_values(
            trades.iter().map(|t| t.price),
        )));
        columns.push(Arc::new(Float64Array::from_iter_values(
            trades.iter().map(|t| t.qty),
        )));
        columns.push(Arc::new(BooleanArray::from(
            trades.iter().map(|t| t.is_buyer_maker).collect::<Vec<_>>(),
        )));
        columns.push(Arc::new(Int64Array::from_iter_values(
            trades.iter().map(|t| t.event_time),
        )));
        columns.push(Arc::new(Int64Array::from_iter_values(
            trades.iter().map(|t| t.trade_time),
        )));
        trades.iter().map(|t| t.trade_time).collect()
    } else {
        let floats: [fn(&model::Ticker) -> f64; 9] = [
            |t| t.price,
            |t| t.volume,
            |t| t.quote_volume,
            |t| t.price_change,
            |t| t.price_change_percent,
            |t| t.high,
            |t| t.low,
            |t| t.open,
            |t| t.weighted_avg_price,
        ];
        for get in floats {
            columns.push(Arc::new(Float64Array::from_iter_values(
                tickers.iter().map(|t| get(t)),
            )));
        }
        columns.push(Arc::new(Int64Array::from_iter_values(
            tickers.iter().map(|t| t.trade_count),
        )));
        columns.push(Arc::new(Int64Array::from_iter_values(
            tickers.iter().map(|t| t.event_time),
        )));
        tickers.iter().map(|t| t.event_time).collect()
    };
    columns.push(Arc::new(
        TimestampMicrosecondArray::from_iter_values(times.iter().map(|ms| ms * 1000))
            .with_timezone("UTC"),
    ));
    Ok(RecordBatch::try_new(schema, columns)?)
}

impl Source for BinanceSource {
    fn schema(&self) -> SchemaRef {
        binance_schema(self.config.kind)
    }

    fn initial_offset(&mut self) -> Result<SourceOffset> {
        Ok(Value::Object(Map::new()))
    }

    fn latest_offset(&mut self, start: &SourceOffset, _limit: ReadLimit) -> Result<SourceOffset> {
        self.ensure_running(start)?;
        self.drain()?;
        let mut end = start.as_object().cloned().unwrap_or_default();
        for tick in &self.buffer {
            let current = end.get(tick.symbol()).and_then(Value::as_i64);
            if current.is_none_or(|c| tick.sequence() > c) {
                end.insert(tick.symbol().to_string(), Value::from(tick.sequence()));
            }
        }
        Ok(Value::Object(end))
    }

    fn get_batch(
        &mut self,
        start: &SourceOffset,
        end: &SourceOffset,
        cancel: &Cancel,
    ) -> Result<Vec<RecordBatch>> {
        self.ensure_running(start)?;
        let (start, end) = (sequences(start), sequences(end));
        // After a restart the batch being rerun comes back through the feed's backfill.
        let deadline = Instant::now() + RERUN_WAIT;
        self.drain()?;
        while !self.covers(&start, &end) {
            if cancel.is_cancelled() {
                return Err(Error::Stopped);
            }
            if Instant::now() >= deadline {
                return Err(Error::Source(format!(
                    "binance: the ticks up to {end:?} did not come back within {RERUN_WAIT:?} \
                     (the exchange no longer serves them?)"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
            self.drain()?;
        }
        let ticks: Vec<&Tick> = self
            .buffer
            .iter()
            .filter(|t| in_range(t, &start, &end))
            .collect();
        Ok(vec![to_batch(self.schema(), &ticks)?])
    }

    fn commit(&mut self, end: &SourceOffset) -> Result<()> {
        let end = sequences(end);
        self.buffer
            .retain(|t| end.get(t.symbol()).is_none_or(|e| t.sequence() > *e));
        Ok(())
    }

    fn description(&self) -> String {
        format!(
            "Binance[{}@{}]",
            self.config.symbols.join(","),
            self.config.kind.stream_name()
        )
    }

    fn rows_between(&self, start: &SourceOffset, end: &SourceOffset) -> Option<u64> {
        let (start, end) = (sequences(start), sequences(end));
        Some(
            self.buffer
                .iter()
                .filter(|t| in_range(t, &start, &end))
                .count() as u64,
        )
    }
}
