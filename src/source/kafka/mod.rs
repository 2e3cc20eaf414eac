//! The Kafka source, with Spark's schema (`key`, `value`, `topic`, `partition`, `offset`,
//! `timestamp`, `timestampType`, and `headers` with `includeHeaders`) and options
//! (`subscribe`, `subscribePattern`, `assign`, `startingOffsets`, `endingOffsets`,
//! `maxOffsetsPerTrigger`, `failOnDataLoss`, `includeHeaders`, `kafka.*`).
//!
//! Offsets live in the query's checkpoint, never in a consumer group: each batch is the
//! exact range `{"topic": {"partition": next_offset}}` to `{...}`, read with `assign`, so a
//! rerun reads the same messages. Messages fetched past a batch's end are kept for the next
//! batch instead of being fetched twice.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Map, Value};

use super::options::{redact, Options};
use super::{Cancel, ChunkRange, ReadLimit, Source, SourceOffset};
use crate::error::{Error, Result};
use crate::expr::types::timestamp_type;
use crate::illegal;

mod batch_poll;
mod chunks;
mod columns;
mod direct;
mod wire;

use columns::{header_fields, Buffered, SizeHint};

/// A topic and partition.
type TopicPartition = (String, i32);

/// Which partitions the source reads.
#[derive(Debug, Clone)]
enum Subscription {
    Topics(Vec<String>),
    Pattern(regex::Regex),
    Assign(BTreeMap<String, Vec<i32>>),
}

/// Where a partition starts.
#[derive(Debug, Clone)]
enum Bound {
    Earliest,
    Latest,
    Specific(BTreeMap<TopicPartition, i64>),
}

/// Spark's Kafka source schema; `headers: array<struct<key, value>>` with `includeHeaders`.
pub fn kafka_schema(include_headers: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new("key", DataType::Binary, true),
        Field::new("value", DataType::Binary, true),
        Field::new("topic", DataType::Utf8, true),
        Field::new("partition", DataType::Int32, true),
        Field::new("offset", DataType::Int64, true),
        Field::new("timestamp", timestamp_type(), true),
        Field::new("timestampType", DataType::Int32, true),
    ];
    if include_headers {
        fields.push(Field::new(
            "headers",
            DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(header_fields()),
                true,
            ))),
            true,
        ));
    }
    Arc::new(Schema::new(fields))
}

/// Whether the options ask for the `headers` column (`includeHeaders`, default false).
pub fn include_headers(map: &BTreeMap<String, String>) -> Result<bool> {
    Options::new(map, "kafka source").bool("includeHeaders", false)
}

/// The source's clients' context. librdkafka reports a partition's end through the error
/// callback too (when a client closes with one pending); the source asks for partition ends
/// (`enable.partition.eof`) and handles them, so they are not errors. The rest are warnings:
/// a running query waits out an unreachable broker (as Spark's Java client, which says WARN).
struct SourceContext;

impl ClientContext for SourceContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(error, KafkaError::PartitionEOF(_))
            || error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF)
        {
            return;
        }
        log::warn!(target: "librdkafka", "librdkafka: {error}: {reason}");
    }
}

impl ConsumerContext for SourceContext {}

/// A client of the source.
type Client = BaseConsumer<SourceContext>;

/// A Kafka source.
pub struct KafkaSource {
    /// Fetches the messages of the assigned partitions (shared with the reader's
    /// `ConsumerQueue`, which must not outlive it).
    consumer: Arc<Client>,
    /// Asks for metadata and offsets on connections of its own: a broker answers one
    /// request per connection at a time, so on the consumer's connections these would queue
    /// behind a fetch the broker holds for up to `fetch.wait.max.ms` (0.5 s per request).
    offsets: Client,
    subscription: Subscription,
    starting: Bound,
    ending: Bound,
    max_offsets_per_trigger: Option<u64>,
    fail_on_data_loss: bool,
    timeout: Duration,
    bootstrap: String,
    client_options: Vec<(String, String)>,
    /// Next offset the consumer will deliver, per assigned partition.
    positions: HashMap<TopicPartition, i64>,
    buffered: HashMap<TopicPartition, VecDeque<Buffered>>,
    include_headers: bool,
    /// Each partition's earliest offset when last asked (`latest_offset`).
    low_marks: HashMap<TopicPartition, i64>,
    /// Message sizes of the chunks read so far, to size the next chunk's builders.
    size_hint: SizeHint,
    /// Topics whose partition leaders the consumer knows (`warm_up`).
    warm: HashSet<String>,
    /// The reader over Kafka's wire protocol, unless the option `fetcher` is `librdkafka`
    /// (or the connection is secured, or reads committed records only).
    direct: Option<direct::Direct>,
}

/// The option `fetcher`: `direct` reads records over Kafka's wire protocol and leaves to
/// librdkafka only what it does not read (`direct`); `librdkafka` reads everything with
/// librdkafka. Unset, it is `direct` on plain-text, read_uncommitted connections and
/// `librdkafka` otherwise; set to `direct` on others, it is refused.
fn direct_fetcher(
    options: &Options,
    client_options: &[(String, String)],
) -> Result<Option<direct::Direct>> {
    let unsupported = client_options.iter().find_map(|(name, value)| {
        let name = name.to_ascii_lowercase();
        let value = value.to_ascii_lowercase();
        let secured = (name == "security.protocol" && value != "plaintext")
            || name.starts_with("sasl.")
            || name.starts_with("ssl.");
        let committed = name == "isolation.level" && value != "read_uncommitted";
        (secured || committed).then_some(name)
    });
    match options
        .get("fetcher")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => Ok(unsupported.is_none().then(direct::Direct::default)),
        Some("librdkafka") => Ok(None),
        Some("direct") => match unsupported {
            None => Ok(Some(direct::Direct::default())),
            Some(name) => Err(illegal!(
                "kafka source: option 'fetcher'='direct' reads plain-text connections with \
                 read_uncommitted only, and 'kafka.{name}' is set; leave 'fetcher' unset or \
                 use 'librdkafka'"
            )),
        },
        Some(other) => Err(illegal!(
            "kafka source: option 'fetcher' must be 'direct' or 'librdkafka', got '{other}'"
        )),
    }
}

/// Java-client options Spark users pass that have no librdkafka twin, with what to do.
fn translate_client_option(name: &str, value: &str) -> Result<Vec<(String, String)>> {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "key.deserializer"
        | "value.deserializer"
        | "auto.offset.reset"
        | "enable.auto.commit"
        | "interceptor.classes" => Err(illegal!(
            "Kafka option 'kafka.{name}' is not supported, as in Spark: the source manages it \
             (use the source options 'startingOffsets' / 'endingOffsets' for positions)"
        )),
        "sasl.jaas.config" => {
            let field = |key: &str| {
                value
                    .split_whitespace()
                    .find_map(|part| part.strip_prefix(&format!("{key}=")))
                    .map(|v| v.trim_end_matches(';').trim_matches('"').to_string())
            };
            match (field("username"), field("password")) {
                (Some(user), Some(password)) => Ok(vec![
                    ("sasl.username".into(), user),
                    ("sasl.password".into(), password),
                ]),
                _ => Err(illegal!(
                    "Kafka option 'kafka.sasl.jaas.config' must hold username=\"...\" and \
                     password=\"...\" (PlainLoginModule or ScramLoginModule)"
                )),
            }
        }
        "ssl.truststore.location" | "ssl.keystore.location" => Err(illegal!(
            "Kafka option 'kafka.{name}' names a Java keystore, which librdkafka cannot read; \
             use 'kafka.ssl.ca.location' / 'kafka.ssl.certificate.location' with PEM files"
        )),
        _ => Ok(vec![(name.to_string(), value.to_string())]),
    }
}

/// librdkafka's configuration, the options it came from (to redact secrets) and the brokers.
pub type ClientSettings = (ClientConfig, Vec<(String, String)>, String);

/// Builds librdkafka's configuration from `kafka.*` options.
pub fn client_config(options: &Options) -> Result<ClientSettings> {
    let bootstrap = options
        .required(
            "kafka.bootstrap.servers",
            "e.g. .option(\"kafka.bootstrap.servers\", \"localhost:9092\")",
        )?
        .to_string();
    let mut config = ClientConfig::new();
    let mut pairs = Vec::new();
    for (name, value) in options.with_prefix("kafka.") {
        for (name, value) in translate_client_option(&name, &value)? {
            config.set(&name, &value);
            pairs.push((name, value));
        }
    }
    Ok((config, pairs, bootstrap))
}

impl KafkaSource {
    /// Opens a source from Spark's options; `streaming` picks the defaults of readStream.
    pub fn new(map: &BTreeMap<String, String>, streaming: bool) -> Result<Self> {
        let options = Options::new(map, "kafka source");
        let given: Vec<&str> = ["subscribe", "subscribePattern", "assign"]
            .into_iter()
            .filter(|name| options.get(name).is_some())
            .collect();
        let subscription =
            match given.as_slice() {
                ["subscribe"] => Subscription::Topics(
                    options
                        .get("subscribe")
                        .unwrap_or_default()
                        .split(',')
                        .map(|t| t.trim().to_string())
                        .filter(|t| !t.is_empty())
                        .collect(),
                ),
                ["subscribePattern"] => {
                    let pattern = options.get("subscribePattern").unwrap_or_default();
                    Subscription::Pattern(regex::Regex::new(&format!("^(?:{pattern})$")).map_err(
                        |e| {
                            illegal!(
                                "kafka source: option 'subscribePattern' is not a valid regex: {e}"
                            )
                        },
                    )?)
                }
                ["assign"] => {
                    Subscription::Assign(parse_assign(options.get("assign").unwrap_or_default())?)
                }
                _ => {
                    return Err(illegal!(
                    "kafka source: exactly one of the options 'subscribe', 'subscribePattern' or \
                     'assign' must be specified, got {}",
                    if given.is_empty() { "none".to_string() } else { given.join(", ") }
                ))
                }
            };
        if matches!(&subscription, Subscription::Topics(t) if t.is_empty()) {
            return Err(illegal!("kafka source: option 'subscribe' names no topic"));
        }
        let starting = parse_bound(
            options.get("startingOffsets"),
            if streaming {
                Bound::Latest
            } else {
                Bound::Earliest
            },
            "startingOffsets",
        )?;
        let ending = parse_bound(options.get("endingOffsets"), Bound::Latest, "endingOffsets")?;
        if streaming && options.get("endingOffsets").is_some() {
            return Err(illegal!(
                "kafka source: option 'endingOffsets' is for batch queries (spark.read) only"
            ));
        }
        if !streaming && matches!(starting, Bound::Latest) {
            return Err(illegal!(
                "kafka source: startingOffsets='latest' is not allowed for batch queries"
            ));
        }
        let timeout_ms = options
            .positive("kafkaConsumer.pollTimeoutMs")?
            .unwrap_or(30_000);
        let (mut config, client_options, bootstrap) = client_config(&options)?;
        if options.get("kafka.group.id").is_none() {
            let prefix = options.get("groupIdPrefix").unwrap_or("spark-kafka-source");
            config.set("group.id", format!("{prefix}-{}", uuid::Uuid::new_v4()));
        }
        set_fetch_defaults(&mut config, &options);
        config
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "error");
        let create = |config: &ClientConfig| -> Result<Client> {
            config.create_with_context(SourceContext).map_err(|e| {
                illegal!(
                    "kafka source: invalid Kafka client option: {}",
                    redact(&e.to_string(), &client_options)
                )
            })
        };
        let direct = direct_fetcher(&options, &client_options)?;
        let consumer = create(&config)?;
        let offsets = create(&config)?;
        Ok(KafkaSource {
            consumer: Arc::new(consumer),
            offsets,
            subscription,
            starting,
            ending,
            max_offsets_per_trigger: options.positive("maxOffsetsPerTrigger")?,
            fail_on_data_loss: options.bool("failOnDataLoss", true)?,
            timeout: Duration::from_millis(timeout_ms),
            bootstrap,
            client_options,
            positions: HashMap::new(),
            buffered: HashMap::new(),
            include_headers: include_headers(map)?,
            low_marks: HashMap::new(),
            size_hint: SizeHint::default(),
            warm: HashSet::new(),
            direct,
        })
    }

    /// A metadata or offset request failed: the brokers are unreachable or busy, which a
    /// running query waits out.
    fn source_error(&self, what: &str, error: KafkaError) -> Error {
        Error::SourceUnavailable(format!(
            "kafka source: {what} from the brokers at {} failed within {} ms: {}",
            self.bootstrap,
            self.timeout.as_millis(),
            redact(&error.to_string(), &self.client_options)
        ))
    }

    /// Offsets `from..low` were removed before they were read: an error with
    /// failOnDataLoss (Spark's default), else a warning and they are skipped.
    fn check_data_loss(&self, partition: &TopicPartition, from: i64, low: i64) -> Result<()> {
        if self.fail_on_data_loss {
            return Err(Error::Source(format!(
                "kafka source: offsets {from}..{low} of {}-{} were removed (retention) before \
                 they were read; some data may have been lost. Set failOnDataLoss=false to skip \
                 them with a warning.",
                partition.0, partition.1
            )));
        }
        log::warn!(
            "kafka source: skipping removed offsets {from}..{low} of {}-{}",
            partition.0,
            partition.1
        );
        Ok(())
    }

    /// The partitions the subscription covers now.
    fn partitions(&self) -> Result<Vec<TopicPartition>> {
        let topics: Vec<String> = match &self.subscription {
            Subscription::Assign(map) => {
                return Ok(map
                    .iter()
                    .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
                    .collect())
            }
            Subscription::Topics(topics) => topics.clone(),
            Subscription::Pattern(_) => vec![],
        };
        let metadata = if topics.len() == 1 {
            self.offsets.fetch_metadata(Some(&topics[0]), self.timeout)
        } else {
            self.offsets.fetch_metadata(None, self.timeout)
        }
        .map_err(|e| self.source_error("fetching metadata", e))?;
        let mut result = Vec::new();
        for topic in metadata.topics() {
            let wanted = match &self.subscription {
                Subscription::Topics(topics) => topics.iter().any(|t| t == topic.name()),
                Subscription::Pattern(pattern) => {
                    pattern.is_match(topic.name()) && !topic.name().starts_with("__")
                }
                Subscription::Assign(_) => false,
            };
            if wanted && topic.error().is_none() {
                result.extend(
                    topic
                        .partitions()
                        .iter()
                        .map(|p| (topic.name().to_string(), p.id())),
                );
            }
        }
        result.sort();
        Ok(result)
    }

    fn watermarks(&self, partition: &TopicPartition) -> Result<(i64, i64)> {
        self.offsets
            .fetch_watermarks(&partition.0, partition.1, self.timeout)
            .map_err(|e| {
                self.source_error(
                    &format!("reading offsets of {}-{}", partition.0, partition.1),
                    e,
                )
            })
    }

    fn resolve(&self, bound: &Bound, name: &str) -> Result<BTreeMap<TopicPartition, i64>> {
        let mut offsets = BTreeMap::new();
        for partition in self.partitions()? {
            let (low, high) = self.watermarks(&partition)?;
            let offset = match bound {
                Bound::Earliest => low,
                Bound::Latest => high,
                Bound::Specific(map) => match map.get(&partition) {
                    Some(-2) => low,
                    Some(-1) => high,
                    Some(&offset) => offset,
                    None => {
                        return Err(illegal!(
                            "kafka source: option '{name}' gives no offset for partition {}-{}; \
                             list every partition of the subscribed topics (-2 = earliest, -1 = latest)",
                            partition.0,
                            partition.1
                        ))
                    }
                },
            };
            offsets.insert(partition, offset);
        }
        Ok(offsets)
    }

    /// Has the consumer ask for the metadata of `topics` it has not asked for yet, before
    /// they are assigned. The consumer's own client (not `offsets`) must know a partition's
    /// leader to fetch from it: assigned cold, librdkafka looked the leader up on its next
    /// one-second timer, and a query's first data came 0.7 s late in about a third of runs
    /// (a cold consumer's first message after `assign`: 0.7 s or 5 ms; warmed: 1-2 ms). A
    /// failure only costs that wait, so it is logged, not returned.
    fn warm_up<'a>(&mut self, topics: impl Iterator<Item = &'a str>) {
        let cold: BTreeSet<&str> = topics.filter(|t| !self.warm.contains(*t)).collect();
        for topic in cold {
            match self.consumer.fetch_metadata(Some(topic), self.timeout) {
                Ok(_) => {
                    self.warm.insert(topic.to_string());
                }
                Err(e) => log::warn!(
                    "kafka source: metadata of topic '{topic}' before reading it: {}",
                    redact(&e.to_string(), &self.client_options)
                ),
            }
        }
    }

    /// Reassigns the consumer unless it is already positioned at every start.
    fn position_at(&mut self, starts: &BTreeMap<TopicPartition, i64>) -> Result<()> {
        // Partitions without data in this batch may stay assigned: what they deliver is
        // buffered for a later batch.
        let ready = starts.iter().all(|(tp, start)| {
            let next_buffered = self
                .buffered
                .get(tp)
                .and_then(|b| b.front())
                .map(|m| m.offset);
            next_buffered.or_else(|| self.positions.get(tp).copied()) == Some(*start)
        });
        if ready {
            return Ok(());
        }
        self.warm_up(starts.keys().map(|(topic, _)| topic.as_str()));
        let mut list = TopicPartitionList::new();
        for ((topic, partition), start) in starts {
            list.add_partition_offset(topic, *partition, Offset::Offset(*start))
                .map_err(|e| self.source_error("assigning partitions", e))?;
        }
        self.consumer
            .assign(&list)
            .map_err(|e| self.source_error("assigning partitions", e))?;
        self.positions = starts.iter().map(|(k, v)| (k.clone(), *v)).collect();
        self.buffered.clear();
        Ok(())
    }
}

/// librdkafka settings the source chooses unless the user passes them as `kafka.*` options.
///
/// Low-latency fetching: the broker answers a fetch at once when data arrives, and these
/// bound the wait after an empty fetch. librdkafka postpones a partition's next fetch by
/// `fetch.queue.backoff.ms` (1 s by default) whenever its prefetch queue is over the
/// threshold, which it is at the end of every batch (the query stops polling there): a query
/// then waited up to a second per batch for data (1 M messages read in 4.0 s instead of 1.1 s).
/// It is 2 ms: the queue below (5,000 messages) is read in ~3 ms at the engine's speed, so at
/// 10 ms the consumer waited on the backoff after most fetches (seed pipeline, 5 M ticks:
/// 2.67-3.16 s at 2 ms, 3.24-3.31 s at 10). The price is a wake-up of an idle query's fetcher
/// thread every 2 ms while its queue is full (0.4 % of a core per idle query more than at 10).
///
/// A smaller prefetch queue: every query has a consumer of its own, and librdkafka's default
/// `queued.min.messages` (100,000 messages, each ~270 bytes of JSON plus its per-message op)
/// held by three queries was ~200 MB of the seed pipeline's 488 MB peak RSS. librdkafka keeps
/// one fetch in flight per broker, and a fetch brings at most `max.partition.fetch.bytes`
/// (1 MB, ~3,900 such messages) per partition, so a queue deeper than a fetch or two should
/// not read faster from a broker farther away either (measured on loopback only): it holds
/// more. 5,000 messages (~20 ms of reading at
/// 250,000 messages/s) read as fast as 20,000 and 100,000 did (issue-8 benchmark: 488 -> 284
/// MB at 20,000, ~20 MB less again at 5,000, ticks/s unchanged).
///
/// Spark's isolation level: the Java consumer Spark uses reads uncommitted by default (the
/// messages of aborted transactions included), librdkafka reads committed. Users who want
/// only committed messages pass `kafka.isolation.level=read_committed`, as with Spark.
fn set_fetch_defaults(config: &mut ClientConfig, options: &Options) {
    for (name, value) in [
        ("fetch.wait.max.ms", "100"),
        ("fetch.error.backoff.ms", "10"),
        ("fetch.queue.backoff.ms", "2"),
        ("queued.min.messages", "5000"),
        ("isolation.level", "read_uncommitted"),
    ] {
        if options.get(&format!("kafka.{name}")).is_none() {
            config.set(name, value);
        }
    }
}

/// Parses `{"topic": [0, 1]}`.
fn parse_assign(text: &str) -> Result<BTreeMap<String, Vec<i32>>> {
    serde_json::from_str(text).map_err(|e| {
        illegal!("kafka source: option 'assign' must be JSON like {{\"topicA\":[0,1]}}: {e}")
    })
}

fn parse_bound(text: Option<&str>, default: Bound, name: &str) -> Result<Bound> {
    let Some(text) = text else { return Ok(default) };
    match text.trim().to_ascii_lowercase().as_str() {
        "earliest" => Ok(Bound::Earliest),
        "latest" => Ok(Bound::Latest),
        _ => Ok(Bound::Specific(offsets_from_json(
            &serde_json::from_str(text).map_err(|e| {
                illegal!(
                    "kafka source: option '{name}' must be 'earliest', 'latest' or JSON like \
                     {{\"topicA\":{{\"0\":23,\"1\":-2}}}}: {e}"
                )
            })?,
        )?)),
    }
}

/// Reads Spark's offset JSON `{"topic": {"0": 12}}`.
fn offsets_from_json(value: &Value) -> Result<BTreeMap<TopicPartition, i64>> {
    let mut offsets = BTreeMap::new();
    let topics = value
        .as_object()
        .ok_or_else(|| illegal!("Kafka offsets must be a JSON object, got {value}"))?;
    for (topic, partitions) in topics {
        let partitions = partitions
            .as_object()
            .ok_or_else(|| illegal!("Kafka offsets of topic '{topic}' must be an object"))?;
        for (partition, offset) in partitions {
            let partition: i32 = partition.parse().map_err(|_| {
                illegal!("Kafka partition '{partition}' of '{topic}' is not a number")
            })?;
            let offset = offset
                .as_i64()
                .ok_or_else(|| illegal!("Kafka offset of {topic}-{partition} is not a number"))?;
            offsets.insert((topic.clone(), partition), offset);
        }
    }
    Ok(offsets)
}

fn offsets_to_json(offsets: &BTreeMap<TopicPartition, i64>) -> Value {
    let mut topics: Map<String, Value> = Map::new();
    for ((topic, partition), offset) in offsets {
        let entry = topics.entry(topic.clone()).or_insert_with(|| json!({}));
        if let Value::Object(map) = entry {
            map.insert(partition.to_string(), json!(offset));
        }
    }
    Value::Object(topics)
}

impl Source for KafkaSource {
    fn schema(&self) -> SchemaRef {
        kafka_schema(self.include_headers)
    }

    fn initial_offset(&mut self) -> Result<SourceOffset> {
        let starting = self.starting.clone();
        Ok(offsets_to_json(
            &self.resolve(&starting, "startingOffsets")?,
        ))
    }

    fn latest_offset(&mut self, start: &SourceOffset, limit: ReadLimit) -> Result<SourceOffset> {
        let start = offsets_from_json(start)?;
        let mut end = BTreeMap::new();
        let mut lags = Vec::new();
        for partition in self.partitions()? {
            let (low, high) = self.watermarks(&partition)?;
            // A partition added later starts at its beginning, as in Spark.
            let from = start.get(&partition).copied().unwrap_or(low);
            self.low_marks.insert(partition.clone(), low);
            if from < low {
                self.check_data_loss(&partition, from, low)?;
            }
            let from = from.max(low);
            lags.push((partition.clone(), from, (high - from).max(0)));
            end.insert(partition, high.max(from));
        }
        if let (ReadLimit::Configured, Some(limit)) = (limit, self.max_offsets_per_trigger) {
            let total: i64 = lags.iter().map(|l| l.2).sum();
            if total as u64 > limit {
                // Share the limit in proportion to each partition's lag, as Spark does.
                let mut granted = 0i64;
                for (partition, from, lag) in &lags {
                    let share = ((*lag as f64) * (limit as f64) / (total as f64)).floor() as i64;
                    end.insert(partition.clone(), from + share);
                    granted += share;
                }
                if granted == 0 {
                    if let Some((partition, from, _)) = lags.iter().find(|l| l.2 > 0) {
                        end.insert(partition.clone(), from + 1);
                    }
                }
            }
        }
        Ok(offsets_to_json(&end))
    }

    fn get_batch(
        &mut self,
        start: &SourceOffset,
        end: &SourceOffset,
        cancel: &Cancel,
    ) -> Result<Vec<RecordBatch>> {
        let chunks = self.chunks_of(start, end)?;
        let mut batches = Vec::new();
        self.read_chunk_list(&chunks, cancel, &mut |_, batch| {
            if batch.num_rows() > 0 {
                batches.push(batch);
            }
            Ok(())
        })?;
        Ok(batches)
    }

    fn share_key(&self) -> Option<String> {
        // The data at an offset is the broker's and the schema is the options': sources
        // that agree on both read the same rows for the same chunk. The subscription keeps
        // queries of other topics out of the group (they would never take its chunks).
        Some(format!(
            "kafka|{}|{}|headers={}",
            self.bootstrap,
            self.description(),
            self.include_headers
        ))
    }

    fn plan_chunks(
        &mut self,
        start: &SourceOffset,
        end: &SourceOffset,
    ) -> Result<Option<Vec<ChunkRange>>> {
        self.chunks_of(start, end).map(Some)
    }

    fn read_chunks(
        &mut self,
        chunks: &[ChunkRange],
        cancel: &Cancel,
        each: &mut dyn FnMut(usize, RecordBatch) -> Result<()>,
    ) -> Result<()> {
        self.read_chunk_list(chunks, cancel, each)
    }

    fn commit(&mut self, end: &SourceOffset) -> Result<()> {
        // For lag monitoring only: the checkpoint is the source of truth.
        let offsets = offsets_from_json(end)?;
        let mut list = TopicPartitionList::new();
        for ((topic, partition), offset) in &offsets {
            if list
                .add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .is_err()
            {
                return Ok(());
            }
        }
        let _ = self
            .consumer
            .commit(&list, rdkafka::consumer::CommitMode::Async);
        Ok(())
    }

    fn description(&self) -> String {
        match &self.subscription {
            Subscription::Topics(topics) => format!("KafkaV2[Subscribe[{}]]", topics.join(",")),
            Subscription::Pattern(pattern) => {
                format!("KafkaV2[SubscribePattern[{}]]", pattern.as_str())
            }
            Subscription::Assign(map) => format!("KafkaV2[Assign[{}]]", offsets_summary(map)),
        }
    }

    fn rows_between(&self, start: &SourceOffset, end: &SourceOffset) -> Option<u64> {
        let (start, end) = (offsets_from_json(start).ok()?, offsets_from_json(end).ok()?);
        Some(
            end.iter()
                .map(|(p, e)| (e - start.get(p).copied().unwrap_or(*e)).max(0) as u64)
                .sum(),
        )
    }
}

impl KafkaSource {
    /// The end offsets of a batch read (`spark.read.format("kafka")`).
    pub fn ending_offset(&mut self) -> Result<SourceOffset> {
        let ending = self.ending.clone();
        Ok(offsets_to_json(&self.resolve(&ending, "endingOffsets")?))
    }
}

fn offsets_summary(map: &BTreeMap<String, Vec<i32>>) -> String {
    map.iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| format!("{t}-{p}")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn exactly_one_subscription_option_is_required() {
        let error = KafkaSource::new(
            &options(&[("kafka.bootstrap.servers", "127.0.0.1:1")]),
            true,
        )
        .err()
        .expect("no subscription");
        assert!(error
            .to_string()
            .contains("'subscribe', 'subscribePattern' or 'assign'"));
    }

    #[test]
    fn bootstrap_servers_are_required() {
        let error = KafkaSource::new(&options(&[("subscribe", "t")]), true)
            .err()
            .expect("no brokers");
        assert!(error.to_string().contains("kafka.bootstrap.servers"));
    }

    #[test]
    fn offsets_round_trip_in_spark_form() {
        let value = json!({"ticks": {"0": 12, "1": 7}});
        let offsets = offsets_from_json(&value).expect("valid");
        assert_eq!(offsets[&("ticks".to_string(), 1)], 7);
        assert_eq!(offsets_to_json(&offsets), value);
    }

    #[test]
    fn fetch_defaults_give_way_to_the_users_options() {
        let map = options(&[
            ("kafka.bootstrap.servers", "127.0.0.1:1"),
            ("kafka.queued.min.messages", "100000"),
        ]);
        let options = Options::new(&map, "kafka source");
        let (mut config, _, _) = client_config(&options).expect("valid options");
        set_fetch_defaults(&mut config, &options);
        assert_eq!(config.get("queued.min.messages"), Some("100000"));
        assert_eq!(config.get("fetch.queue.backoff.ms"), Some("2"));
    }

    #[test]
    fn java_only_options_are_refused_or_translated() {
        assert!(translate_client_option("auto.offset.reset", "earliest").is_err());
        let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";"#;
        let pairs = translate_client_option("sasl.jaas.config", jaas).expect("translatable");
        assert_eq!(pairs[1], ("sasl.password".to_string(), "p".to_string()));
    }
}
