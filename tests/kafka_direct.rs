//! The Kafka source's direct reader (the default, `fetcher`=`direct`) against librdkafka
//! (`fetcher`=`librdkafka`) on the real broker from scripts/kafka.sh: the same rows, column for column, over keys and values that
//! are null, headers, transaction markers, and compressed batches it hands over to librdkafka
//! in the middle of a partition.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use ferrostream::sink::kafka::create_topic;
use ferrostream::source::kafka::KafkaSource;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Sends messages `from..to` alternating between two partitions, with some null keys and
/// values and some headers.
fn send(producer: &BaseProducer, topic: &str, from: usize, to: usize) {
    for i in from..to {
        let key = format!("k{i}");
        let value = format!("v{i}");
        let mut record = BaseRecord::<String, String>::to(topic).partition((i % 2) as i32);
        if i % 7 != 0 {
            record = record.key(&key);
        }
        if i % 11 != 0 {
            record = record.payload(&value);
        }
        if i % 3 == 0 {
            let bytes = i.to_le_bytes();
            record = record.headers(
                OwnedHeaders::new()
                    .insert(Header {
                        key: "h",
                        value: Some(&bytes[..]),
                    })
                    .insert(Header::<&[u8]> {
                        key: "n",
                        value: None,
                    }),
            );
        }
        producer.send(record).map_err(|(e, _)| e).expect("sent");
    }
    producer.flush(Duration::from_secs(30)).expect("flushed");
}

fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> BaseProducer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5");
    for (name, value) in extra {
        config.set(*name, *value);
    }
    config.create().expect("producer")
}

/// Every row of `batches` rendered column by column, sorted.
fn rendered(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows = Vec::new();
    for batch in batches {
        let formatters: Vec<ArrayFormatter<'_>> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default()).expect("fmt"))
            .collect();
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = formatters
                .iter()
                .map(|f| f.value(row).to_string())
                .collect();
            rows.push(cells.join(" | "));
        }
    }
    rows.sort();
    rows
}

/// Reads the whole topic in batches of at most 150 offsets.
fn read_all(map: &BTreeMap<String, String>) -> Vec<String> {
    let mut map = map.clone();
    map.insert("maxOffsetsPerTrigger".into(), "150".into());
    let mut source = KafkaSource::new(&map, true).expect("source");
    let mut batches = Vec::new();
    common::kafka::each_batch(&mut source, &mut |_, _, _, read| batches.extend(read));
    rendered(&batches)
}

#[test]
fn the_direct_reader_reads_what_librdkafka_reads() {
    let bootstrap = common::kafka::bootstrap();
    let topic = format!("rust-direct-{}", std::process::id());
    create_topic(&bootstrap, &topic, 2, Duration::from_secs(30)).expect("topic");
    send(&producer(&bootstrap, &[]), &topic, 0, 400);
    let transactional = producer(&bootstrap, &[("transactional.id", &format!("{topic}-txn"))]);
    let timeout = Duration::from_secs(30);
    transactional.init_transactions(timeout).expect("init");
    transactional.begin_transaction().expect("begin");
    send(&transactional, &topic, 400, 420);
    transactional.commit_transaction(timeout).expect("commit");
    send(&producer(&bootstrap, &[]), &topic, 420, 500);
    // Compressed batches, which the direct reader leaves to librdkafka.
    send(
        &producer(&bootstrap, &[("compression.type", "lz4")]),
        &topic,
        500,
        700,
    );
    let map = options(&[
        ("kafka.bootstrap.servers", &bootstrap),
        ("subscribe", &topic),
        ("startingOffsets", "earliest"),
        ("includeHeaders", "true"),
    ]);
    let mut librdkafka = map.clone();
    librdkafka.insert("fetcher".into(), "librdkafka".into());
    let expected = read_all(&librdkafka);
    assert_eq!(expected.len(), 700);
    assert_eq!(read_all(&map), expected, "the default reads directly");
    let mut direct = map.clone();
    direct.insert("fetcher".into(), "direct".into());
    assert_eq!(read_all(&direct), expected);
}

#[test]
fn the_fetcher_option_is_checked_when_the_source_is_created() {
    let bootstrap = common::kafka::bootstrap();
    let base = [
        ("kafka.bootstrap.servers", bootstrap.as_str()),
        ("subscribe", "t"),
    ];
    let error = |extra: &[(&str, &str)]| {
        let mut map = options(&base);
        map.extend(options(extra));
        KafkaSource::new(&map, true)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(error(&[("fetcher", "fast")]).contains("option 'fetcher'"));
    let secured = error(&[("fetcher", "direct"), ("kafka.security.protocol", "SSL")]);
    assert!(secured.contains("kafka.security.protocol"), "{secured}");
    let committed = error(&[
        ("fetcher", "direct"),
        ("kafka.isolation.level", "read_committed"),
    ]);
    assert!(committed.contains("kafka.isolation.level"), "{committed}");
    assert_eq!(error(&[("fetcher", "direct")]), "");
    assert_eq!(error(&[("fetcher", "librdkafka")]), "");
}
