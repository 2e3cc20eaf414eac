//! The Kafka side of `benches/vs_pyspark.py` (issue 8): plain librdkafka, no engine.
//!
//!     kafka_bench create  --bootstrap B --topic T [--partitions 2] [--log-append-time]
//!     kafka_bench fill    --bootstrap B --topic T --ticks N [--symbols 100] [--span-hours 72]
//!     kafka_bench rate    --bootstrap B --topic T --rate R --seconds S [--symbols 100]
//!     kafka_bench raw     --bootstrap B --topic T
//!     kafka_bench times   --bootstrap B --topic T --out FILE
//!
//! `fill` writes N ticks in the 12-field JSON contract of DESIGN.md as fast as the broker takes
//! them: event time advances evenly over `span-hours`, with up to 2 s of disorder, and about one
//! tick in a thousand arrives 3 hours late (beyond the 1-hour watermark, but always into a
//! window that other ticks open anyway, so candle counts do not depend on batch boundaries).
//! `rate` produces ticks stamped with the wall clock at a fixed rate, for the latency
//! benchmark. `raw` is the limit for any engine on this topic: consume every message from the
//! earliest offset to the end of each partition and discard it. `times` dumps each message's
//! (partition, offset, broker timestamp) as little-endian i32/i64/i64 records, so the harness
//! can tell when each tick was appended. Every command prints one JSON line with its figures
//! and wall-clock times in Unix seconds.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

type Result<T> = std::result::Result<T, String>;

/// 2024-11-24T00:00:00Z, the first tick's event time in `fill`.
const BASE_EVENT_TIME_MS: i64 = 1_732_406_400_000;
const LATE_BY_MS: i64 = 3 * 3_600_000;
const MAX_DISORDER_MS: i64 = 2_000;

struct Args {
    command: String,
    values: HashMap<String, String>,
    flags: Vec<String>,
}

impl Args {
    fn parse() -> Result<Args> {
        let mut raw = std::env::args().skip(1);
        let command = raw
            .next()
            .ok_or("missing command: create, fill, rate, raw or times")?;
        let mut values = HashMap::new();
        let mut flags = Vec::new();
        let rest: Vec<String> = raw.collect();
        let mut i = 0;
        while i < rest.len() {
            let name = rest[i]
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --option, got {}", rest[i]))?;
            match rest.get(i + 1) {
                Some(value) if !value.starts_with("--") => {
                    values.insert(name.to_string(), value.clone());
                    i += 2;
                }
                // `cargo bench` appends `--bench`; a lone flag is a switch.
                _ => {
                    flags.push(name.to_string());
                    i += 1;
                }
            }
        }
        Ok(Args {
            command,
            values,
            flags,
        })
    }

    fn text(&self, name: &str) -> Result<String> {
        self.values
            .get(name)
            .cloned()
            .ok_or_else(|| format!("{}: missing --{name}", self.command))
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: Option<T>) -> Result<T> {
        match self.values.get(name) {
            Some(text) => text
                .parse()
                .map_err(|_| format!("{}: --{name} {text} is not a number", self.command)),
            None => default.ok_or_else(|| format!("{}: missing --{name}", self.command)),
        }
    }

    fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn symbols(count: usize) -> Vec<String> {
    const KNOWN: [&str; 10] = [
        "BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "TRXUSDT",
        "DOTUSDT", "LINKUSDT",
    ];
    (0..count)
        .map(|i| match KNOWN.get(i) {
            Some(name) => (*name).to_string(),
            None => format!("SYM{i:03}USDT"),
        })
        .collect()
}

/// A cheap deterministic hash, so the topic's content is the same on every run.
fn mix(i: u64) -> u64 {
    let mut x = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// One tick in the reference producer's 12-field JSON (about 230 bytes).
fn tick_json(out: &mut String, symbol: &str, symbol_index: usize, i: u64, event_time: i64) {
    use std::fmt::Write as _;
    let noise = mix(i);
    let base = 10.0 + symbol_index as f64 * 37.5;
    let price = base * (1.0 + ((noise % 2001) as f64 - 1000.0) / 100_000.0);
    let open = base;
    let volume = 1000.0 + (noise >> 16) as f64 % 50_000.0 / 7.0;
    out.clear();
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        r#"{{"symbol":"{symbol}","price":{price:.4},"volume":{volume:.5},"quote_volume":{:.2},"price_change":{:.4},"price_change_percent":{:.3},"high":{:.4},"low":{:.4},"open":{open:.4},"weighted_avg_price":{:.4},"trade_count":{},"event_time":{event_time}}}"#,
        volume * price,
        price - open,
        (price - open) / open * 100.0,
        base * 1.011,
        base * 0.989,
        (base + price) / 2.0,
        100_000 + (noise >> 40) % 900_000,
    );
}

fn producer(bootstrap: &str, linger_ms: &str) -> Result<BaseProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", linger_ms)
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("acks", "1")
        .create()
        .map_err(|e| format!("cannot create a producer for {bootstrap}: {e}"))
}

/// Sends one record, waiting for queue space instead of failing when librdkafka is full.
fn send(producer: &BaseProducer, topic: &str, key: &str, value: &str) -> Result<()> {
    let mut record = BaseRecord::to(topic).key(key).payload(value);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(format!("producing to {topic}: {e}")),
        }
    }
}

fn flush(producer: &BaseProducer, topic: &str) -> Result<()> {
    producer
        .flush(Duration::from_secs(120))
        .map_err(|e| format!("flushing to {topic}: {e}"))
}

fn create(args: &Args) -> Result<()> {
    let bootstrap = args.text("bootstrap")?;
    let topic = args.text("topic")?;
    let partitions: i32 = args.number("partitions", Some(2))?;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .map_err(|e| format!("cannot create an admin client for {bootstrap}: {e}"))?;
    let mut new_topic = NewTopic::new(&topic, partitions, TopicReplication::Fixed(1));
    if args.flag("log-append-time") {
        // The broker stamps each message as it appends it: the start of the latency clock.
        new_topic = new_topic.set("message.timestamp.type", "LogAppendTime");
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = futures::executor::block_on(admin.create_topics([&new_topic], &options))
        .map_err(|e| format!("creating {topic}: {e}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(format!("creating {topic}: {code}")),
        }
    }
    println!(r#"{{"topic":"{topic}","partitions":{partitions}}}"#);
    Ok(())
}

fn fill(args: &Args) -> Result<()> {
    let bootstrap = args.text("bootstrap")?;
    let topic = args.text("topic")?;
    let ticks: u64 = args.number("ticks", None)?;
    let names = symbols(args.number("symbols", Some(100))?);
    let span_ms = (args.number::<f64>("span-hours", Some(72.0))? * 3_600_000.0) as i64;
    let step_ms = (span_ms as f64 / ticks.max(1) as f64).max(1.0);
    let producer = producer(&bootstrap, "50")?;
    let began = Instant::now();
    let mut json = String::with_capacity(256);
    let (mut bytes, mut late) = (0u64, 0u64);
    for i in 0..ticks {
        let symbol_index = (mix(i ^ 0x5eed) % names.len() as u64) as usize;
        let on_time = BASE_EVENT_TIME_MS + (i as f64 * step_ms) as i64;
        let mut event_time = on_time - (mix(i) % MAX_DISORDER_MS as u64) as i64;
        // Late only once the stream is 4 hours in: the late tick's hour and day are open.
        if i % 1000 == 999 && on_time - BASE_EVENT_TIME_MS > LATE_BY_MS + 3_600_000 {
            event_time = on_time - LATE_BY_MS;
            late += 1;
        }
        let symbol = &names[symbol_index];
        tick_json(&mut json, symbol, symbol_index, i, event_time);
        bytes += json.len() as u64;
        send(&producer, &topic, symbol, &json)?;
        if i % 10_000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    flush(&producer, &topic)?;
    let seconds = began.elapsed().as_secs_f64();
    println!(
        r#"{{"ticks":{ticks},"late":{late},"bytes":{bytes},"seconds":{seconds:.3},"rate":{:.0}}}"#,
        ticks as f64 / seconds
    );
    Ok(())
}

fn rate(args: &Args) -> Result<()> {
    let bootstrap = args.text("bootstrap")?;
    let topic = args.text("topic")?;
    let per_second: f64 = args.number("rate", None)?;
    let seconds: f64 = args.number("seconds", None)?;
    let names = symbols(args.number("symbols", Some(100))?);
    let producer = producer(&bootstrap, "1")?;
    let total = (per_second * seconds) as u64;
    let began = Instant::now();
    let started_at = unix_now();
    let mut json = String::with_capacity(256);
    let mut sent = 0u64;
    while sent < total {
        let due = ((began.elapsed().as_secs_f64() * per_second) as u64).min(total);
        if sent >= due {
            producer.poll(Duration::ZERO);
            std::thread::sleep(Duration::from_micros(500));
            continue;
        }
        let now_ms = (unix_now() * 1000.0) as i64;
        while sent < due {
            let symbol_index = (sent % names.len() as u64) as usize;
            let symbol = &names[symbol_index];
            tick_json(&mut json, symbol, symbol_index, sent, now_ms);
            send(&producer, &topic, symbol, &json)?;
            sent += 1;
        }
        producer.poll(Duration::ZERO);
    }
    flush(&producer, &topic)?;
    let elapsed = began.elapsed().as_secs_f64();
    println!(
        r#"{{"ticks":{sent},"started":{started_at:.6},"seconds":{elapsed:.3},"rate":{:.0}}}"#,
        sent as f64 / elapsed
    );
    Ok(())
}

fn consumer(bootstrap: &str) -> Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("kafka-bench-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(|e| format!("cannot create a consumer for {bootstrap}: {e}"))
}

/// Assigns every partition of `topic` from its low watermark; returns the high watermarks.
fn assign_all(consumer: &BaseConsumer, topic: &str) -> Result<HashMap<i32, i64>> {
    let timeout = Duration::from_secs(30);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| format!("metadata of {topic}: {e}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut list = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for partition in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, timeout)
            .map_err(|e| format!("offsets of {topic}-{partition}: {e}"))?;
        if high > low {
            list.add_partition_offset(topic, partition, Offset::Offset(low))
                .map_err(|e| format!("assigning {topic}-{partition}: {e}"))?;
            ends.insert(partition, high);
        }
    }
    consumer
        .assign(&list)
        .map_err(|e| format!("assigning {topic}: {e}"))?;
    Ok(ends)
}

/// Polls until every partition reached the end it had at start, calling `each` per message.
///
/// Polled a batch at a time (`rd_kafka_consume_batch_queue`), as the engine's Kafka source
/// polls: one by one through rust-rdkafka's `poll`, the same read took ~1 CPU-s more for 5 M
/// messages (benches/RESULTS.md), and `raw` would understate the limit.
fn consume_to_end(
    consumer: &BaseConsumer,
    topic: &str,
    mut ends: HashMap<i32, i64>,
    mut each: impl FnMut(i32, i64, i64, usize) -> Result<()>,
) -> Result<Option<f64>> {
    use rdkafka::bindings as rdsys;
    const BATCH: usize = 1_024;
    let mut first_message_at = None;
    // SAFETY: the client pointer is valid while `consumer` lives, which outlasts this
    // function; the queue's reference is released below.
    let queue = unsafe { rdsys::rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
    if queue.is_null() {
        return Err(format!("consuming {topic}: the consumer has no queue"));
    }
    let mut polled: Vec<*mut rdsys::rd_kafka_message_t> = Vec::with_capacity(BATCH);
    let mut outcome = Ok(());
    // What is ready at once; when nothing is, wait up to 100 ms for one message (librdkafka
    // waits for a whole batch or the timeout, which would add up to 100 ms at the end).
    let consume = |polled: &mut Vec<*mut rdsys::rd_kafka_message_t>, timeout_ms, up_to| {
        // SAFETY: librdkafka writes at most `up_to` (<= BATCH) message pointers into the
        // spare capacity and returns how many (or -1, writing none).
        let written = unsafe {
            rdsys::rd_kafka_consume_batch_queue(queue, timeout_ms, polled.as_mut_ptr(), up_to)
        };
        // SAFETY: the first `written` slots were initialised by librdkafka.
        unsafe { polled.set_len(usize::try_from(written).unwrap_or(0).min(up_to)) };
    };
    while !ends.is_empty() && outcome.is_ok() {
        consume(&mut polled, 0, BATCH);
        if polled.is_empty() {
            consume(&mut polled, 100, 1);
        }
        for &message in &polled {
            if outcome.is_ok() {
                // SAFETY: a message librdkafka just returned, destroyed only below.
                let raw = unsafe { &*message };
                if raw.err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    let error = KafkaError::MessageConsumption(RDKafkaErrorCode::from(raw.err));
                    outcome = Err(format!("consuming {topic}: {error}"));
                } else {
                    first_message_at.get_or_insert_with(unix_now);
                    let mut kind =
                        rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
                    // SAFETY: reads the live message's timestamp (-1 when it has none).
                    let timestamp =
                        unsafe { rdsys::rd_kafka_message_timestamp(message, &mut kind) };
                    let (partition, offset) = (raw.partition, raw.offset);
                    outcome = each(partition, offset, timestamp, raw.len);
                    if ends.get(&partition).is_some_and(|end| offset + 1 >= *end) {
                        ends.remove(&partition);
                    }
                }
            }
            // SAFETY: each polled message is destroyed once.
            unsafe { rdsys::rd_kafka_message_destroy(message) };
        }
        polled.clear();
    }
    // SAFETY: releases the reference `rd_kafka_queue_get_consumer` gave.
    unsafe { rdsys::rd_kafka_queue_destroy(queue) };
    outcome.map(|()| first_message_at)
}

fn raw(args: &Args) -> Result<()> {
    let started = unix_now();
    let bootstrap = args.text("bootstrap")?;
    let topic = args.text("topic")?;
    let consumer = consumer(&bootstrap)?;
    let ends = assign_all(&consumer, &topic)?;
    let (mut rows, mut bytes) = (0u64, 0u64);
    let first = consume_to_end(&consumer, &topic, ends, |_, _, _, size| {
        rows += 1;
        bytes += size as u64;
        Ok(())
    })?;
    let ended = unix_now();
    println!(
        r#"{{"started":{started:.6},"first_batch":{:.6},"ended":{ended:.6},"rows":{rows},"bytes":{bytes}}}"#,
        first.unwrap_or(ended)
    );
    Ok(())
}

fn times(args: &Args) -> Result<()> {
    let bootstrap = args.text("bootstrap")?;
    let topic = args.text("topic")?;
    let path = args.text("out")?;
    let file = std::fs::File::create(&path).map_err(|e| format!("creating {path}: {e}"))?;
    let mut out = std::io::BufWriter::new(file);
    let consumer = consumer(&bootstrap)?;
    let ends = assign_all(&consumer, &topic)?;
    let mut rows = 0u64;
    consume_to_end(
        &consumer,
        &topic,
        ends,
        |partition, offset, timestamp, _| {
            rows += 1;
            out.write_all(&partition.to_le_bytes())
                .and_then(|()| out.write_all(&offset.to_le_bytes()))
                .and_then(|()| out.write_all(&timestamp.to_le_bytes()))
                .map_err(|e| format!("writing {path}: {e}"))
        },
    )?;
    out.flush().map_err(|e| format!("writing {path}: {e}"))?;
    println!(r#"{{"rows":{rows},"out":"{path}"}}"#);
    Ok(())
}

fn main() {
    let outcome = Args::parse().and_then(|args| match args.command.as_str() {
        "create" => create(&args),
        "fill" => fill(&args),
        "rate" => rate(&args),
        "raw" => raw(&args),
        "times" => times(&args),
        other => Err(format!(
            "unknown command {other}: use create, fill, rate, raw or times"
        )),
    });
    if let Err(message) = outcome {
        eprintln!("kafka_bench: {message}");
        std::process::exit(1);
    }
}
