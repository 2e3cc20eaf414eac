//! The Kafka sink (`write` / `writeStream.format("kafka")`), as Spark's: a `value` column
//! (string or binary), optional `key`, `topic` (or the `topic` option), `partition` and
//! `headers` (`array<struct<key: string, value: binary>>`).
//! Like Spark's it is at-least-once: a batch rerun after a crash is produced again. Also the
//! topic creation the producer command and tests use.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a write waits for the brokers to acknowledge its messages.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use super::Sink;
use crate::error::{Error, Result};
use crate::exec::runtime::block_on;
use crate::plan::OutputMode;
use crate::source::kafka::client_config;
use crate::source::options::{redact, Options};
use crate::{analysis, illegal};

/// Counts the messages the brokers did not take (librdkafka reports them in delivery
/// callbacks, after its retries), so a write never reports success for lost messages.
#[derive(Default)]
struct Deliveries {
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, message)) = result {
            self.failed.fetch_add(1, Ordering::SeqCst);
            let mut first = self
                .first_error
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if first.is_none() {
                *first = Some(format!(
                    "{error} (topic {}, partition {})",
                    message.topic(),
                    message.partition()
                ));
            }
        }
    }
}

/// The `headers` column: a list of `(key, value)` structs per row.
struct HeaderColumn {
    lists: arrow::array::ListArray,
}

impl HeaderColumn {
    fn new(column: &ArrayRef) -> Result<Self> {
        let fail = || {
            analysis!(
                "kafka sink: column 'headers' must be array<struct<key: string, value: binary>>, \
                 got {}",
                column.data_type()
            )
        };
        let lists = column.as_list_opt::<i32>().ok_or_else(fail)?.clone();
        let entries = lists.values().as_struct_opt().ok_or_else(fail)?;
        let names: Vec<&str> = entries.fields().iter().map(|f| f.name().as_str()).collect();
        if names != ["key", "value"] {
            return Err(fail());
        }
        Ok(HeaderColumn { lists })
    }

    /// The headers of one row (None when the row's list is null or empty).
    fn row(&self, row: usize) -> Option<OwnedHeaders> {
        if self.lists.is_null(row) {
            return None;
        }
        let entries = self.lists.value(row);
        let entries = entries.as_struct();
        let keys = cast(entries.column(0), &DataType::Utf8).ok()?;
        let values = cast(entries.column(1), &DataType::Binary).ok()?;
        let (keys, values) = (keys.as_string::<i32>(), values.as_binary::<i32>());
        let mut headers = OwnedHeaders::new_with_capacity(entries.len());
        for i in 0..entries.len() {
            headers = headers.insert(Header {
                key: if keys.is_valid(i) { keys.value(i) } else { "" },
                value: values.is_valid(i).then(|| values.value(i)),
            });
        }
        (entries.len() > 0).then_some(headers)
    }
}

/// Writes rows to Kafka.
pub struct KafkaSink {
    producer: BaseProducer<Deliveries>,
    topic: Option<String>,
    client_options: Vec<(String, String)>,
}

impl KafkaSink {
    /// Opens a producer from Spark's options (`kafka.bootstrap.servers`, `topic`, `kafka.*`).
    pub fn new(map: &BTreeMap<String, String>) -> Result<Self> {
        let options = Options::new(map, "kafka sink");
        let (mut config, client_options, _) = client_config(&options)?;
        config.set("enable.idempotence", "true");
        config.set("linger.ms", "5");
        let producer: BaseProducer<Deliveries> = config
            .create_with_context(Deliveries::default())
            .map_err(|e| {
                illegal!(
                    "kafka sink: invalid Kafka client option: {}",
                    redact(&e.to_string(), &client_options)
                )
            })?;
        Ok(KafkaSink {
            producer,
            topic: options.get("topic").map(str::to_string),
            client_options,
        })
    }

    /// Produces every row and waits until the brokers acknowledged them.
    pub fn write(&self, batches: &[RecordBatch]) -> Result<u64> {
        let mut sent = 0u64;
        for batch in batches {
            let column = |name: &str| batch.column_by_name(name).cloned();
            let value = column("value").ok_or_else(|| {
                analysis!(
                    "kafka sink: Required attribute 'value' not found in the columns {:?}",
                    column_names(batch)
                )
            })?;
            let value = as_binary(&value, "value")?;
            let key = column("key").map(|k| as_binary(&k, "key")).transpose()?;
            let topics = column("topic")
                .map(|t| cast(&t, &DataType::Utf8))
                .transpose()?;
            let partitions = column("partition")
                .map(|p| cast(&p, &DataType::Int32))
                .transpose()?;
            let headers = column("headers")
                .map(|h| HeaderColumn::new(&h))
                .transpose()?;
            for row in 0..batch.num_rows() {
                let topic = match &topics {
                    Some(t) if t.is_valid(row) => t.as_string::<i32>().value(row).to_string(),
                    _ => self.topic.clone().ok_or_else(|| {
                        illegal!("kafka sink: give the option 'topic' or a 'topic' column")
                    })?,
                };
                let value_bytes = value
                    .is_valid(row)
                    .then(|| value.as_binary::<i32>().value(row));
                let key_bytes = key
                    .as_ref()
                    .and_then(|k| k.is_valid(row).then(|| k.as_binary::<i32>().value(row)));
                let partition = partitions.as_ref().and_then(|p| {
                    p.is_valid(row)
                        .then(|| p.as_primitive::<arrow::datatypes::Int32Type>().value(row))
                });
                let row_headers = headers.as_ref().and_then(|h| h.row(row));
                self.send(&topic, key_bytes, value_bytes, partition, row_headers)?;
                sent += 1;
            }
        }
        // librdkafka's flush waits in 100 ms polls; polling ourselves returns as soon as the
        // last acknowledgement is in.
        let deadline = Instant::now() + FLUSH_TIMEOUT;
        while self.producer.in_flight_count() > 0 {
            if Instant::now() >= deadline {
                return Err(Error::Sink(format!(
                    "kafka sink: {} message(s) not acknowledged within {FLUSH_TIMEOUT:?}",
                    self.producer.in_flight_count()
                )));
            }
            self.producer.poll(Duration::from_millis(2));
        }
        let failed = self.producer.context().failed.swap(0, Ordering::SeqCst);
        if failed > 0 {
            let first = self
                .producer
                .context()
                .first_error
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take()
                .unwrap_or_default();
            return Err(Error::Sink(format!(
                "kafka sink: {failed} of {sent} message(s) were not delivered; the first: {}",
                redact(&first, &self.client_options)
            )));
        }
        Ok(sent)
    }

    fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partition: Option<i32>,
        headers: Option<OwnedHeaders>,
    ) -> Result<()> {
        loop {
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
            if let Some(key) = key {
                record = record.key(key);
            }
            if let Some(value) = value {
                record = record.payload(value);
            }
            if let Some(partition) = partition {
                record = record.partition(partition);
            }
            if let Some(headers) = &headers {
                record = record.headers(headers.clone());
            }
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((error, _)) => return Err(self.error("producing", error)),
            }
        }
    }

    fn error(&self, what: &str, error: KafkaError) -> Error {
        Error::Sink(format!(
            "kafka sink: {what} failed: {}",
            redact(&error.to_string(), &self.client_options)
        ))
    }
}

fn column_names(batch: &RecordBatch) -> Vec<String> {
    batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

fn as_binary(array: &ArrayRef, name: &str) -> Result<ArrayRef> {
    match array.data_type() {
        DataType::Binary => Ok(array.clone()),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::LargeBinary => {
            Ok(cast(array, &DataType::Binary)?)
        }
        other => Err(analysis!(
            "kafka sink: the '{name}' column must be a string or binary, got {other}; cast it first"
        )),
    }
}

impl Sink for KafkaSink {
    fn add_batch(
        &mut self,
        _batch_id: u64,
        _schema: &SchemaRef,
        batches: &[RecordBatch],
        _mode: OutputMode,
    ) -> Result<()> {
        self.write(batches).map(|_| ())
    }

    fn description(&self) -> String {
        format!(
            "KafkaTable[{}]",
            self.topic.as_deref().unwrap_or("<topic column>")
        )
    }
}

/// Creates a topic with `partitions` partitions unless it exists; returns whether it made it.
pub fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<bool> {
    let mut config = rdkafka::ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    let admin: AdminClient<DefaultClientContext> = config
        .create()
        .map_err(|e| illegal!("cannot create a Kafka admin client for {bootstrap}: {e}"))?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout));
    let results =
        block_on(async { admin.create_topics([&new_topic], &options).await })?.map_err(|e| {
            Error::Source(format!(
                "creating topic '{topic}' at {bootstrap} failed: {e}"
            ))
        })?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(true),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(false),
        Some(Err((_, code))) => Err(Error::Source(format!(
            "creating topic '{topic}' at {bootstrap} failed: {code}"
        ))),
        None => Err(Error::Source(format!(
            "creating topic '{topic}': no answer from {bootstrap}"
        ))),
    }
}
