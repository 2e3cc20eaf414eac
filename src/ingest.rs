//! The producer behind `ferrostream produce`: a Binance feed (see
//! [`crate::source::binance::feed`]) into a Kafka topic, keyed by symbol, one JSON tick per
//! message (the 12-field ticker contract of `DESIGN.md`, or the trade schema).
//!
//! The Kafka producer is idempotent (`enable.idempotence`), so librdkafka's retries never
//! duplicate a message; the topic is created with N partitions when missing. Stats go to
//! stderr at an interval and a summary is returned at the end; stopping flushes every message
//! still in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::error::{Error, Result};
use crate::exec::runtime::runtime;
use crate::illegal;
use crate::sink::kafka::create_topic;
use crate::source::binance::feed::{self, FeedConfig, FeedCounts, FeedStats};
use crate::source::Cancel;

/// What to produce, and where.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// The Binance feed.
    pub feed: FeedConfig,
    /// Kafka bootstrap servers.
    pub bootstrap: String,
    /// The topic (`crypto-prices`).
    pub topic: String,
    /// Partitions of the topic when it has to be created.
    pub partitions: i32,
    /// Extra librdkafka settings.
    pub kafka_options: Vec<(String, String)>,
    /// How often a stats line is printed (`None`: never).
    pub stats_interval: Option<Duration>,
    /// Stop after this many messages (tests, bounded runs).
    pub max_messages: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct ProducerSummary {
    /// Messages handed to Kafka.
    pub sent: u64,
    /// Messages the broker acknowledged.
    pub delivered: u64,
    /// Messages Kafka refused after its retries.
    pub failed: u64,
    /// Seconds the producer ran.
    pub elapsed_seconds: f64,
    /// `delivered / elapsed_seconds`.
    pub messages_per_second: f64,
    /// Messages per symbol.
    pub per_symbol: HashMap<String, u64>,
    /// The feed's counters (malformed, duplicates, reconnects, rate limits...).
    pub feed: FeedCounts,
    /// Whether the topic was created by this run.
    pub topic_created: bool,
}

#[derive(Default)]
struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err((error, _)) => {
                log::warn!("produce: a message was not delivered: {error}");
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// Runs the producer until the feed ends, a limit is reached, or `cancel` is set.
pub fn run(config: ProducerConfig, cancel: &Cancel) -> Result<ProducerSummary> {
    let topic_created = create_topic(
        &config.bootstrap,
        &config.topic,
        config.partitions,
        Duration::from_secs(30),
    )?;
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("compression.type", "lz4");
    for (name, value) in &config.kafka_options {
        client.set(name, value);
    }
    let context = Deliveries::default();
    let producer: ThreadedProducer<Deliveries> = client
        .create_with_context(context)
        .map_err(|e| illegal!("produce: invalid Kafka client settings: {e}"))?;

    let stats = Arc::new(FeedStats::default());
    let (sender, mut receiver) = mpsc::channel(1 << 14);
    let (stop, stop_receiver) = watch::channel(false);
    let rt = runtime()?;
    let feed_task = rt.spawn(feed::run(
        config.feed.clone(),
        Arc::clone(&stats),
        sender,
        stop_receiver,
    ));

    let started = Instant::now();
    let mut sent = 0u64;
    let mut per_symbol: HashMap<String, u64> = HashMap::new();
    let mut last_report = (Instant::now(), 0u64);
    let outcome: Result<()> = rt.block_on(async {
        let mut ticker = tokio::time::interval(Duration::from_millis(100));
        loop {
            let tick = tokio::select! {
                tick = receiver.recv() => tick,
                _ = ticker.tick() => {
                    if cancel.is_cancelled()
                        || config.duration.is_some_and(|d| started.elapsed() >= d)
                    {
                        return Ok(());
                    }
                    if let Some(every) = config.stats_interval {
                        if last_report.0.elapsed() >= every {
                            let rate = (sent - last_report.1) as f64
                                / last_report.0.elapsed().as_secs_f64();
                            eprintln!("{}", stats_line(sent, rate, producer.context(), &stats));
                            last_report = (Instant::now(), sent);
                        }
                    }
                    continue;
                }
            };
            let Some(tick) = tick else {
                return Ok(()); // the feed ended (it reports why below)
            };
            let payload = tick.to_json().to_string();
            let key = tick.symbol().to_string();
            loop {
                let record = BaseRecord::to(&config.topic).key(&key).payload(&payload);
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Err((error, _)) => {
                        return Err(Error::Sink(format!(
                            "produce: cannot send to topic '{}': {error}",
                            config.topic
                        )))
                    }
                }
            }
            sent += 1;
            *per_symbol.entry(key).or_default() += 1;
            if config.max_messages.is_some_and(|max| sent >= max) {
                return Ok(());
            }
        }
    });
    let _ = stop.send(true);
    let feed_outcome = rt.block_on(feed_task);
    producer
        .flush(Duration::from_secs(60))
        .map_err(|e| Error::Sink(format!("produce: flushing to Kafka failed: {e}")))?;
    outcome?;
    match feed_outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(error),
        Err(join) => return Err(Error::Source(format!("produce: the feed failed: {join}"))),
    }
    let elapsed = started.elapsed().as_secs_f64();
    let delivered = producer.context().delivered.load(Ordering::Relaxed);
    Ok(ProducerSummary {
        sent,
        delivered,
        failed: producer.context().failed.load(Ordering::Relaxed),
        elapsed_seconds: elapsed,
        messages_per_second: if elapsed > 0.0 {
            delivered as f64 / elapsed
        } else {
            0.0
        },
        per_symbol,
        feed: stats.snapshot(),
        topic_created,
    })
}

fn stats_line(sent: u64, rate: f64, deliveries: &Deliveries, stats: &FeedStats) -> String {
    let feed = stats.snapshot();
    format!(
        "produce: {sent} sent ({rate:.1} msg/s), {} delivered, {} failed | malformed {}, \
         duplicates {}, unchanged {}, gap-filled {}, reconnects {}, rate-limited {}, http errors {}",
        deliveries.delivered.load(Ordering::Relaxed),
        deliveries.failed.load(Ordering::Relaxed),
        feed.malformed,
        feed.duplicates,
        feed.unchanged,
        feed.gap_filled,
        feed.reconnects,
        feed.rate_limited,
        feed.http_errors,
    )
}
