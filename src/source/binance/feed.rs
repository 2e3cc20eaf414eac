//! The Binance feed the producer and the `binance` source share: REST polling of 24-hour
//! tickers, or WebSocket trade streams, turned into [`Tick`]s on a channel.
//!
//! What it guarantees downstream: per symbol, trades arrive once and in id order. A reconnect
//! (the exchange drops every connection after 24 hours, a proxy cuts it, the stream goes
//! silent) is followed by a REST backfill of the ids missed in between (`historicalTrades` or
//! `aggTrades` from the last id seen), and ids already delivered are dropped. REST calls
//! honour `429` / `418` with `Retry-After`, back off on `5xx`, and slow down when
//! `X-MBX-USED-WEIGHT-1M` nears the limit. A payload that does not parse is counted and
//! skipped. Unchanged tickers are not sent twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use super::model::{parse_rest_ticker, parse_rest_trade, parse_ws_event, StreamKind, Tick, Ticker};
use crate::error::{Error, Result};

/// Binance's spot REST API.
pub const DEFAULT_REST_URL: &str = "https://api.binance.com";
/// Binance's spot WebSocket streams.
pub const DEFAULT_WS_URL: &str = "wss://stream.binance.com:9443";

/// What to read and from where.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// REST base URL (`https://api.binance.com`, `https://api.binance.us`, a replay server).
    pub rest_url: String,
    /// WebSocket base URL (`wss://stream.binance.com:9443`).
    pub ws_url: String,
    /// Markets, upper case.
    pub symbols: Vec<String>,
    /// Tickers or trades.
    pub kind: StreamKind,
    /// How often tickers are polled.
    pub poll_interval: Duration,
    /// A WebSocket silent this long is reconnected (Binance pings every 20 s).
    pub idle_timeout: Duration,
    /// Reconnect before the exchange's own 24-hour disconnect.
    pub max_connection_age: Duration,
    /// Fill gaps in trade ids through REST.
    pub gap_fill: bool,
    /// At most this many trades are fetched for one gap (older ones are reported lost).
    pub max_gap_fill: i64,
    /// The request weight allowed per minute (`X-MBX-USED-WEIGHT-1M` is compared with it).
    pub weight_limit: u64,
    /// Last sequence (trade id or ticker time) already delivered, per symbol, for a resume.
    pub resume_from: HashMap<String, i64>,
}

impl FeedConfig {
    /// Binance's endpoints and the defaults for `symbols` and `kind`.
    pub fn new(symbols: Vec<String>, kind: StreamKind) -> Self {
        FeedConfig {
            rest_url: DEFAULT_REST_URL.into(),
            ws_url: DEFAULT_WS_URL.into(),
            symbols: symbols
                .iter()
                .map(|s| s.trim().to_ascii_uppercase())
                .collect(),
            kind,
            poll_interval: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(60),
            max_connection_age: Duration::from_secs(23 * 3600 + 30 * 60),
            gap_fill: true,
            max_gap_fill: 100_000,
            weight_limit: 6000,
            resume_from: HashMap::new(),
        }
    }
}

/// Counters, updated as the feed runs.
#[derive(Debug, Default)]
pub struct FeedStats {
    /// Ticks handed downstream.
    pub received: AtomicU64,
    /// Payloads that did not parse.
    pub malformed: AtomicU64,
    /// Trades dropped because their id was already delivered.
    pub duplicates: AtomicU64,
    /// Tickers dropped because nothing but the time changed.
    pub unchanged: AtomicU64,
    /// Trades recovered through REST after a gap.
    pub gap_filled: AtomicU64,
    /// Trade ids the REST backfill could not recover.
    pub gap_lost: AtomicU64,
    /// WebSocket (re)connections after the first.
    pub reconnects: AtomicU64,
    /// `429` / `418` replies.
    pub rate_limited: AtomicU64,
    /// Other failed requests (`5xx`, connection errors).
    pub http_errors: AtomicU64,
    /// Time spent waiting because of rate limits and errors, ms.
    pub backoff_ms: AtomicU64,
}

/// A copy of [`FeedStats`].
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FeedCounts {
    /// See [`FeedStats`].
    pub received: u64,
    /// See [`FeedStats`].
    pub malformed: u64,
    /// See [`FeedStats`].
    pub duplicates: u64,
    /// See [`FeedStats`].
    pub unchanged: u64,
    /// See [`FeedStats`].
    pub gap_filled: u64,
    /// See [`FeedStats`].
    pub gap_lost: u64,
    /// See [`FeedStats`].
    pub reconnects: u64,
    /// See [`FeedStats`].
    pub rate_limited: u64,
    /// See [`FeedStats`].
    pub http_errors: u64,
    /// See [`FeedStats`].
    pub backoff_ms: u64,
}

impl FeedStats {
    /// The counters now.
    pub fn snapshot(&self) -> FeedCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FeedCounts {
            received: get(&self.received),
            malformed: get(&self.malformed),
            duplicates: get(&self.duplicates),
            unchanged: get(&self.unchanged),
            gap_filled: get(&self.gap_filled),
            gap_lost: get(&self.gap_lost),
            reconnects: get(&self.reconnects),
            rate_limited: get(&self.rate_limited),
            http_errors: get(&self.http_errors),
            backoff_ms: get(&self.backoff_ms),
        }
    }
}

/// Resolves once a stop is asked for (or the stop sender is gone).
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// Why the feed stopped early.
enum Halt {
    /// Asked to stop, or nobody listens any more.
    Stopped,
    /// A failure that retrying cannot fix (an unknown symbol).
    Failed(Error),
}

type Step<T> = std::result::Result<T, Halt>;

/// A REST reply.
enum Reply {
    Json(Value),
    Malformed,
}

/// Runs the feed until `stop` turns true or the receiver is dropped.
pub async fn run(
    config: FeedConfig,
    stats: Arc<FeedStats>,
    sender: mpsc::Sender<Tick>,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    if config.symbols.is_empty() {
        return Err(crate::illegal!(
            "binance: no symbols given; e.g. symbols=\"BTCUSDT,ETHUSDT\""
        ));
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| Error::Source(format!("binance: cannot build an HTTP client: {e}")))?;
    let mut feed = Feed {
        last: config.resume_from.clone(),
        tickers: HashMap::new(),
        config,
        stats,
        sender,
        stop,
        http,
    };
    let outcome = match feed.config.kind {
        StreamKind::Ticker => feed.poll_tickers().await,
        StreamKind::Trade | StreamKind::AggTrade => feed.stream_trades().await,
    };
    match outcome {
        Ok(()) | Err(Halt::Stopped) => Ok(()),
        Err(Halt::Failed(error)) => Err(error),
    }
}

struct Feed {
    config: FeedConfig,
    stats: Arc<FeedStats>,
    sender: mpsc::Sender<Tick>,
    stop: watch::Receiver<bool>,
    http: reqwest::Client,
    /// The last sequence delivered per symbol (trade id, or ticker time).
    last: HashMap<String, i64>,
    tickers: HashMap<String, Ticker>,
}

impl Feed {
    fn stopped(&self) -> bool {
        // A dropped stop sender means the owner is gone: stop too.
        *self.stop.borrow() || self.stop.has_changed().is_err() || self.sender.is_closed()
    }

    /// Sleeps, or returns early when asked to stop.
    async fn pause(&mut self, duration: Duration) -> Step<()> {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(duration) => {},
            _ = stop_requested(&mut stop) => {},
        }
        if self.stopped() {
            Err(Halt::Stopped)
        } else {
            Ok(())
        }
    }

    async fn backoff(&mut self, duration: Duration) -> Step<()> {
        bump(&self.stats.backoff_ms, duration.as_millis() as u64);
        self.pause(duration).await
    }

    async fn emit(&mut self, tick: Tick) -> Step<()> {
        self.last.insert(tick.symbol().to_string(), tick.sequence());
        self.sender.send(tick).await.map_err(|_| Halt::Stopped)?;
        bump(&self.stats.received, 1);
        Ok(())
    }

    /// GET `path` (with query) on the REST API, retrying what can be retried.
    async fn get(&mut self, path: &str) -> Step<Reply> {
        let url = format!("{}{path}", self.config.rest_url.trim_end_matches('/'));
        let mut delay = Duration::from_millis(250);
        loop {
            if self.stopped() {
                return Err(Halt::Stopped);
            }
            let response = match self.http.get(&url).send().await {
                Ok(response) => response,
                Err(error) => {
                    bump(&self.stats.http_errors, 1);
                    log::warn!("binance: GET {url} failed: {error}; retrying in {delay:?}");
                    self.backoff(delay).await?;
                    delay = (delay * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            let retry_after = header("retry-after");
            let used_weight = header("x-mbx-used-weight-1m");
            match status {
                429 | 418 => {
                    bump(&self.stats.rate_limited, 1);
                    // 418 means an IP ban for ignoring 429s: never retry before it ends.
                    let wait = retry_after
                        .map(Duration::from_secs)
                        .unwrap_or(delay.max(Duration::from_secs(1)));
                    log::warn!("binance: HTTP {status} from {url}; waiting {wait:?}");
                    self.backoff(wait).await?;
                    delay = (delay * 2).min(Duration::from_secs(60));
                    continue;
                }
                500..=599 => {
                    bump(&self.stats.http_errors, 1);
                    log::warn!("binance: HTTP {status} from {url}; retrying in {delay:?}");
                    self.backoff(delay).await?;
                    delay = (delay * 2).min(Duration::from_secs(30));
                    continue;
                }
                200..=299 => {}
                _ => {
                    let body = response.text().await.unwrap_or_default();
                    return Err(Halt::Failed(Error::Source(format!(
                        "binance: GET {url} answered HTTP {status}: {}",
                        body.chars().take(300).collect::<String>()
                    ))));
                }
            }
            let body = match response.text().await {
                Ok(body) => body,
                Err(error) => {
                    bump(&self.stats.http_errors, 1);
                    log::warn!("binance: reading {url} failed: {error}");
                    self.backoff(delay).await?;
                    continue;
                }
            };
            if let Some(used) = used_weight {
                // Near the per-minute budget: wait for the next minute rather than risk a 429.
                if used * 10 >= self.config.weight_limit * 9 {
                    let now_ms = chrono::Utc::now().timestamp_millis();
                    let wait = Duration::from_millis((60_000 - now_ms.rem_euclid(60_000)) as u64);
                    log::warn!("binance: used weight {used}; pausing {wait:?}");
                    bump(&self.stats.rate_limited, 1);
                    self.backoff(wait).await?;
                }
            }
            return Ok(match serde_json::from_str(&body) {
                Ok(value) => Reply::Json(value),
                Err(_) => {
                    bump(&self.stats.malformed, 1);
                    Reply::Malformed
                }
            });
        }
    }

    async fn poll_tickers(&mut self) -> Step<()> {
        let mut interval = tokio::time::interval(self.config.poll_interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut stop = self.stop.clone();
            tokio::select! {
                _ = interval.tick() => {},
                _ = stop_requested(&mut stop) => return Err(Halt::Stopped),
            }
            for symbol in self.config.symbols.clone() {
                let reply = self
                    .get(&format!("/api/v3/ticker/24hr?symbol={symbol}"))
                    .await?;
                let Reply::Json(value) = reply else { continue };
                // One symbol gives an object; a `symbols=[...]` request an array.
                let object = match &value {
                    Value::Array(items) => items.first().cloned().unwrap_or(Value::Null),
                    _ => value,
                };
                let Some(ticker) = parse_rest_ticker(&object) else {
                    bump(&self.stats.malformed, 1);
                    continue;
                };
                let known = self.tickers.get(&ticker.symbol);
                let last_time = self.last.get(&ticker.symbol).copied();
                if known.is_some_and(|k| k.same_values(&ticker))
                    || last_time.is_some_and(|t| ticker.event_time <= t)
                {
                    bump(&self.stats.unchanged, 1);
                    continue;
                }
                self.tickers.insert(ticker.symbol.clone(), ticker.clone());
                self.emit(Tick::Ticker(ticker)).await?;
            }
        }
    }

    fn stream_url(&self) -> String {
        let streams: Vec<String> = self
            .config
            .symbols
            .iter()
            .map(|s| {
                format!(
                    "{}@{}",
                    s.to_ascii_lowercase(),
                    self.config.kind.stream_name()
                )
            })
            .collect();
        format!(
            "{}/stream?streams={}",
            self.config.ws_url.trim_end_matches('/'),
            streams.join("/")
        )
    }

    async fn stream_trades(&mut self) -> Step<()> {
        let url = self.stream_url();
        let mut delay = Duration::from_millis(250);
        let mut first = true;
        loop {
            if self.stopped() {
                return Err(Halt::Stopped);
            }
            if !first {
                bump(&self.stats.reconnects, 1);
            }
            first = false;
            let connect = tokio::time::timeout(
                Duration::from_secs(15),
                tokio_tungstenite::connect_async(url.as_str()),
            )
            .await;
            let mut socket = match connect {
                Ok(Ok((socket, _))) => socket,
                Ok(Err(error)) => {
                    bump(&self.stats.http_errors, 1);
                    log::warn!("binance: cannot connect to {url}: {error}; retrying in {delay:?}");
                    self.backoff(delay).await?;
                    delay = (delay * 2).min(Duration::from_secs(30));
                    continue;
                }
                Err(_) => {
                    bump(&self.stats.http_errors, 1);
                    self.backoff(delay).await?;
                    continue;
                }
            };
            let connected = Instant::now();
            loop {
                let mut stop = self.stop.clone();
                let message = tokio::select! {
                    message = tokio::time::timeout(self.config.idle_timeout, socket.next()) => message,
                    _ = stop_requested(&mut stop) => {
                        let _ = socket.close(None).await;
                        return Err(Halt::Stopped);
                    }
                };
                match message {
                    Ok(Some(Ok(Message::Text(text)))) => {
                        delay = Duration::from_millis(250);
                        self.on_text(text.as_str()).await?;
                    }
                    Ok(Some(Ok(Message::Binary(bytes)))) => match std::str::from_utf8(&bytes) {
                        Ok(text) => self.on_text(text).await?,
                        Err(_) => bump(&self.stats.malformed, 1),
                    },
                    Ok(Some(Ok(Message::Ping(payload)))) => {
                        // tungstenite queues the pong itself; flushing sends it now.
                        let _ = payload;
                        let _ = socket.flush().await;
                    }
                    Ok(Some(Ok(_))) => {}
                    Ok(Some(Err(error))) => {
                        log::warn!("binance: WebSocket error: {error}; reconnecting");
                        break;
                    }
                    Ok(None) => {
                        log::info!("binance: WebSocket closed by the server; reconnecting");
                        break;
                    }
                    Err(_) => {
                        log::warn!(
                            "binance: no message for {:?}; reconnecting",
                            self.config.idle_timeout
                        );
                        break;
                    }
                }
                if connected.elapsed() >= self.config.max_connection_age {
                    log::info!(
                        "binance: connection is old; reconnecting before the server drops it"
                    );
                    let _ = socket.close(None).await;
                    break;
                }
            }
            // A little pause so a server that drops every connection is not hammered.
            self.pause(Duration::from_millis(100)).await?;
        }
    }

    async fn on_text(&mut self, text: &str) -> Step<()> {
        let tick = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| parse_ws_event(&v));
        let Some(Tick::Trade(trade)) = tick else {
            // Subscription acknowledgements carry an `id` and `result`: not data, not errors.
            if !text.contains("\"result\"") {
                bump(&self.stats.malformed, 1);
            }
            return Ok(());
        };
        let last = self.last.get(&trade.symbol).copied();
        match last {
            Some(last) if trade.trade_id <= last => {
                bump(&self.stats.duplicates, 1);
                return Ok(());
            }
            Some(last) if trade.trade_id > last + 1 && self.config.gap_fill => {
                self.fill_gap(&trade.symbol, last + 1, trade.trade_id)
                    .await?;
            }
            _ => {}
        }
        self.emit(Tick::Trade(trade)).await
    }

    /// Fetches trade ids `[from, until)` of `symbol` through REST.
    async fn fill_gap(&mut self, symbol: &str, from: i64, until: i64) -> Step<()> {
        let endpoint = match self.config.kind {
            StreamKind::AggTrade => "aggTrades",
            _ => "historicalTrades",
        };
        let start = from.max(until - self.config.max_gap_fill);
        bump(&self.stats.gap_lost, (start - from) as u64);
        let mut next = start;
        while next < until {
            let limit = (until - next).min(1000);
            let path = format!("/api/v3/{endpoint}?symbol={symbol}&fromId={next}&limit={limit}");
            let reply = match self.get(&path).await {
                Ok(reply) => reply,
                Err(Halt::Stopped) => return Err(Halt::Stopped),
                // An endpoint that refuses (say, one wanting an API key) costs the gap, not
                // the stream.
                Err(Halt::Failed(error)) => {
                    log::warn!("binance: backfill of {symbol} failed: {error}");
                    break;
                }
            };
            let Reply::Json(Value::Array(rows)) = reply else {
                break;
            };
            let mut advanced = false;
            for row in &rows {
                let Some(trade) = parse_rest_trade(symbol, row) else {
                    bump(&self.stats.malformed, 1);
                    continue;
                };
                if trade.trade_id < next || trade.trade_id >= until {
                    continue;
                }
                next = trade.trade_id + 1;
                advanced = true;
                bump(&self.stats.gap_filled, 1);
                self.emit(Tick::Trade(trade)).await?;
            }
            if !advanced {
                break;
            }
        }
        if next < until {
            log::warn!("binance: {symbol} trade ids {next}..{until} could not be recovered");
            bump(&self.stats.gap_lost, (until - next) as u64);
        }
        Ok(())
    }
}
