//! The Kafka source against the real broker from scripts/kafka.sh: exact offset ranges,
//! `maxOffsetsPerTrigger`, and a rerun of the same range giving the same messages.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{AsArray, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema};
use ferrostream::sink::kafka::{create_topic, KafkaSink};
use ferrostream::source::kafka::KafkaSource;
use ferrostream::source::{Cancel, ReadLimit, Source};

fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn produce(bootstrap: &str, topic: &str, count: usize) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("value", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
    ]));
    let values: StringArray = (0..count).map(|i| Some(format!("m{i}"))).collect();
    let partitions: Int32Array = (0..count).map(|i| Some((i % 2) as i32)).collect();
    let batch =
        RecordBatch::try_new(schema, vec![Arc::new(values), Arc::new(partitions)]).expect("batch");
    let sink = KafkaSink::new(&options(&[
        ("kafka.bootstrap.servers", bootstrap),
        ("topic", topic),
    ]))
    .expect("sink");
    assert_eq!(sink.write(&[batch]).expect("produced"), count as u64);
}

fn rows(batches: &[RecordBatch]) -> Vec<(i32, i64, String)> {
    let mut out = Vec::new();
    for batch in batches {
        let partitions = batch.column(3).as_primitive::<Int32Type>();
        let offsets = batch.column(4).as_primitive::<Int64Type>();
        let values = batch.column(1).as_binary::<i32>();
        for row in 0..batch.num_rows() {
            out.push((
                partitions.value(row),
                offsets.value(row),
                String::from_utf8_lossy(values.value(row)).to_string(),
            ));
        }
    }
    out.sort();
    out
}

/// A new 2-partition topic holding `count` messages (`m0`, `m1`, ... alternating between
/// the partitions), and the source options that read it from the beginning.
fn filled_topic(name: &str, count: usize) -> BTreeMap<String, String> {
    let bootstrap = common::kafka::bootstrap();
    let topic = format!("{name}-{}", std::process::id());
    create_topic(&bootstrap, &topic, 2, Duration::from_secs(30)).expect("topic");
    produce(&bootstrap, &topic, count);
    options(&[
        ("kafka.bootstrap.servers", &bootstrap),
        ("subscribe", &topic),
        ("startingOffsets", "earliest"),
    ])
}

#[test]
fn batches_are_exact_offset_ranges_and_reruns_repeat_them() {
    let mut map = filled_topic("rust-source", 1_000);
    map.insert("maxOffsetsPerTrigger".into(), "300".into());
    let mut source = KafkaSource::new(&map, true).expect("source");
    let cancel = Cancel::default();
    let mut seen = Vec::new();
    let mut batches = 0;
    common::kafka::each_batch(&mut source, &mut |source, start, end, first| {
        let read = rows(&first);
        assert!(read.len() <= 300, "maxOffsetsPerTrigger bounds a batch");
        assert_eq!(Some(read.len() as u64), source.rows_between(start, end));
        // A rerun of the same range (a crash before commit) reads the same messages.
        let mut fresh = KafkaSource::new(&map, true).expect("source");
        assert_eq!(
            rows(&fresh.get_batch(start, end, &cancel).expect("rerun")),
            read
        );
        seen.extend(read);
        batches += 1;
    });
    assert!(batches >= 4);
    seen.sort();
    let mut expected: Vec<(i32, i64, String)> = (0..1_000i64)
        .map(|i| (i32::from(i % 2 == 1), i / 2, format!("m{i}")))
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
}

/// The consumer is read on a thread of its own that hands chunks to the caller: a caller
/// failing on a chunk stops the reading with its own error, and the source reads the same
/// range again in full afterwards.
#[test]
fn a_failing_chunk_consumer_stops_the_read_and_the_range_reads_again() {
    let map = filled_topic("rust-source-stop", 200_000);
    let mut source = KafkaSource::new(&map, true).expect("source");
    let cancel = Cancel::default();
    let start = source.initial_offset().expect("initial");
    let end = source
        .latest_offset(&start, ReadLimit::Configured)
        .expect("latest");
    let chunks = source
        .plan_chunks(&start, &end)
        .expect("planned")
        .expect("kafka plans chunks");
    assert!(
        chunks.len() >= 4,
        "100,000 messages per partition: several chunks each"
    );
    let mut handed = Vec::new();
    let error = source
        .read_chunks(&chunks, &cancel, &mut |index, batch| {
            assert_eq!(
                batch.num_rows() as i64,
                chunks[index].until - chunks[index].from,
                "a chunk holds its whole range"
            );
            handed.push(index);
            if handed.len() == 2 {
                return Err(ferrostream::error::Error::Sink("stop here".into()));
            }
            Ok(())
        })
        .expect_err("the consumer's error comes back");
    assert!(error.to_string().contains("stop here"), "{error}");
    assert_eq!(handed.len(), 2, "nothing is handed on after the error");

    let again = source.get_batch(&start, &end, &cancel).expect("read again");
    let read = rows(&again);
    assert_eq!(read.len(), 200_000);
    let offsets: Vec<(i32, i64)> = read.iter().map(|r| (r.0, r.1)).collect();
    let expected: Vec<(i32, i64)> = (0..2)
        .flat_map(|p| (0..100_000).map(move |o| (p, o)))
        .collect();
    assert_eq!(offsets, expected, "every offset once, none lost or doubled");
}

/// Transaction markers take offsets that no message has, so a batch whose range ends on one
/// is only complete when the consumer reports the partition's end: the read must finish, with
/// every message once. As in Spark, the messages of an aborted transaction are read unless
/// `kafka.isolation.level` is `read_committed`.
#[test]
fn a_range_ending_on_transaction_markers_is_read_to_its_end() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rdkafka::ClientConfig;

    let bootstrap = common::kafka::bootstrap();
    let topic = format!("rust-source-txn-{}", std::process::id());
    create_topic(&bootstrap, &topic, 2, Duration::from_secs(30)).expect("topic");
    let timeout = Duration::from_secs(30);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("transactional.id", format!("{topic}-producer"))
        .create()
        .expect("producer");
    producer.init_transactions(timeout).expect("init");
    let (mut all, mut committed) = (Vec::new(), Vec::new());
    for round in 0..3 {
        producer.begin_transaction().expect("begin");
        for i in 0..10i32 {
            let value = format!("t{round}-{i}");
            producer
                .send(
                    BaseRecord::<(), _>::to(&topic)
                        .partition(i % 2)
                        .payload(&value),
                )
                .map_err(|(e, _)| e)
                .expect("sent");
            all.push(value.clone());
            if round != 1 {
                committed.push(value);
            }
        }
        producer.flush(timeout).expect("flushed");
        if round == 1 {
            producer.abort_transaction(timeout).expect("abort");
        } else {
            producer.commit_transaction(timeout).expect("commit");
        }
    }
    let read = |isolation: Option<&str>| {
        let mut map = options(&[
            ("kafka.bootstrap.servers", &bootstrap),
            ("subscribe", &topic),
            ("startingOffsets", "earliest"),
        ]);
        if let Some(level) = isolation {
            map.insert("kafka.isolation.level".into(), level.into());
        }
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut source = KafkaSource::new(&map, true).expect("source");
            let start = source.initial_offset().expect("initial");
            let end = source
                .latest_offset(&start, ReadLimit::Configured)
                .expect("latest");
            let planned = source.rows_between(&start, &end);
            let batch = source.get_batch(&start, &end, &Cancel::default());
            let _ = done.send((planned, batch.map(|b| rows(&b))));
        });
        let (planned, read) = finished
            .recv_timeout(Duration::from_secs(60))
            .expect("the read finished within a minute");
        // Each partition's log holds 15 messages and 3 markers.
        assert_eq!(
            planned,
            Some(36),
            "the planned range counts the markers' offsets"
        );
        let mut values: Vec<String> = read.expect("read").into_iter().map(|r| r.2).collect();
        values.sort();
        values
    };
    all.sort();
    committed.sort();
    assert_eq!(read(None), all, "read uncommitted by default, as Spark");
    assert_eq!(read(Some("read_committed")), committed);
}
