//! A session: the catalog of memory tables, temporary views and in-memory data, the
//! factories that open sources and sinks by format name, batch execution of plans, and the
//! queries it started (Spark's `SparkSession` and `StreamingQueryManager`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;
use serde::Deserialize;

use crate::checkpoint::{Checkpoint, Metadata};
use crate::error::{Error, Result};
use crate::exec::bad_records::BadRecordsPath;
use crate::exec::runtime::block_on;
use crate::exec::shared_scan::{ScanCache, DEFAULT_MEMORY_CAP};
use crate::exec::{Pipeline, QuerySpec, StreamingQuery, TriggerSpec};
use crate::expr::types::{arrow_schema, spark_struct};
use crate::expr::ExprMetrics;
use crate::plan::{validate_streaming, Leaf, Op, OutputMode, Plan};
use crate::sink::console::ConsoleSink;
use crate::sink::file::{FileSink, SaveMode};
use crate::sink::foreach_batch::{BatchFn, ForeachBatchSink};
use crate::sink::memory::{MemorySink, MemoryTable};
use crate::sink::Sink;
use crate::source::binance::{binance_schema, stream_kind, BinanceSource};
use crate::source::file::{file_format, FileSource};
use crate::source::kafka::{include_headers, kafka_schema, KafkaSource};
use crate::source::memory::MemoryStream;
use crate::source::options::parse_bytes;
use crate::source::rate::RateSource;
use crate::source::{Cancel, ReadLimit, Source};
use crate::window::{parse_positive_interval, Clock, SystemClock};
use crate::{analysis, illegal};

/// The session configuration that turns sharing scanned chunks between queries on or off.
pub const SHARED_SCANS: &str = "ferrostream.sharedScans";

/// The session configuration for the memory of chunks scanned once and kept for the other
/// queries of their group (bytes, or with a `k`, `m` or `g` suffix as Spark's sizes).
pub const SHARED_SCANS_MEMORY: &str = "ferrostream.sharedScans.maxMemory";

/// Arrow data held for `createDataFrame` and SQL results.
type HeldData = (SchemaRef, Arc<Vec<RecordBatch>>);

/// How a query writes, as Python sends it (see `docs/plan-format.md`).
#[derive(Debug, Clone, Deserialize)]
pub struct WriterSpec {
    /// The sink's format.
    pub format: String,
    /// The sink's options.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// `append`, `update` or `complete`.
    #[serde(default = "default_mode")]
    pub output_mode: String,
    /// The trigger.
    #[serde(default)]
    pub trigger: TriggerSpec,
    /// `queryName`.
    #[serde(default)]
    pub query_name: Option<String>,
    /// `partitionBy` columns.
    #[serde(default)]
    pub partition_by: Vec<String>,
    /// `df.write.mode(...)`: Spark's save mode of a batch write.
    #[serde(default)]
    pub save_mode: Option<String>,
}

fn default_mode() -> String {
    "append".into()
}

/// A session.
pub struct Session {
    ctx: SessionContext,
    tables: RwLock<HashMap<String, Arc<MemoryTable>>>,
    views: RwLock<HashMap<String, Plan>>,
    batches: RwLock<HashMap<u64, HeldData>>,
    streams: RwLock<HashMap<u64, MemoryStream>>,
    queries: Mutex<Vec<Arc<StreamingQuery>>>,
    config: RwLock<BTreeMap<String, String>>,
    /// Producers of `df.write.format("kafka")`, kept by their options: a new librdkafka
    /// producer spends about 0.6 s connecting before its first message is acknowledged.
    producers: Mutex<HashMap<String, Arc<crate::sink::kafka::KafkaSink>>>,
    next_id: AtomicU64,
    clock: Arc<dyn Clock>,
    /// Chunks scanned once for the queries that read the same data the same way.
    scans: Arc<ScanCache>,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

fn poisoned<T>(_: T) -> Error {
    Error::State("a session lock was poisoned by a panic".into())
}

impl Session {
    /// A new session.
    pub fn new() -> Self {
        crate::exec::memory::limit_arenas();
        Session {
            ctx: crate::exec::stateless::context(),
            tables: RwLock::default(),
            views: RwLock::default(),
            batches: RwLock::default(),
            streams: RwLock::default(),
            queries: Mutex::default(),
            config: RwLock::default(),
            producers: Mutex::default(),
            next_id: AtomicU64::new(1),
            clock: Arc::new(SystemClock::new()),
            scans: Arc::default(),
        }
    }

    /// Sets a configuration value (`spark.sql.streaming.checkpointLocation`, ...).
    pub fn set_config(&self, key: &str, value: &str) -> Result<()> {
        self.config
            .write()
            .map_err(poisoned)?
            .insert(key.into(), value.into());
        Ok(())
    }

    /// A configuration value.
    pub fn config(&self, key: &str) -> Result<Option<String>> {
        Ok(self.config.read().map_err(poisoned)?.get(key).cloned())
    }

    /// Whether queries started now share scanned chunks (`ferrostream.sharedScans`, default
    /// true; `false` makes every query read and parse its source itself, as Spark does).
    fn shares_scans(&self) -> Result<bool> {
        match self
            .config(SHARED_SCANS)?
            .as_deref()
            .map(str::to_ascii_lowercase)
        {
            None => Ok(true),
            Some(v) if v == "true" => Ok(true),
            Some(v) if v == "false" => Ok(false),
            Some(other) => Err(illegal!(
                "config '{SHARED_SCANS}' must be true or false, got '{other}'"
            )),
        }
    }

    /// The memory for shared chunks (`ferrostream.sharedScans.maxMemory`, default 64 MB).
    fn shared_scans_memory(&self) -> Result<usize> {
        let Some(text) = self.config(SHARED_SCANS_MEMORY)? else {
            return Ok(DEFAULT_MEMORY_CAP);
        };
        parse_bytes(&text)
            .filter(|&bytes| bytes > 0)
            .ok_or_else(|| {
                illegal!(
                    "config '{SHARED_SCANS_MEMORY}' must be a positive size in bytes such as \
                 67108864 or 64m, got '{text}' (ferrostream.sharedScans=false turns sharing off)"
                )
            })
    }

    /// Holds Arrow data for `createDataFrame`; returns its id for a `batch` plan node.
    pub fn add_batches(&self, schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<u64> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.batches
            .write()
            .map_err(poisoned)?
            .insert(id, (schema, Arc::new(batches)));
        Ok(id)
    }

    /// Lets go of data added with `add_batches` (a `foreachBatch` batch once its function
    /// returned). Frames built on it fail afterwards with an unknown-data error.
    pub fn remove_batches(&self, id: u64) -> Result<()> {
        self.batches.write().map_err(poisoned)?.remove(&id);
        Ok(())
    }

    /// Creates a memory stream (Spark's `MemoryStream`); returns its id for the `memory` format.
    pub fn memory_stream(&self, schema: SchemaRef) -> Result<(u64, MemoryStream)> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let stream = MemoryStream::new(schema);
        self.streams
            .write()
            .map_err(poisoned)?
            .insert(id, stream.clone());
        Ok((id, stream))
    }

    /// Registers a temporary view.
    pub fn create_view(&self, name: &str, plan: Plan) -> Result<()> {
        if plan.is_streaming() {
            return Err(analysis!(
                "createOrReplaceTempView on a streaming DataFrame is not supported; write it to a \
                 memory table with writeStream.format(\"memory\").queryName(\"{name}\")"
            ));
        }
        self.views
            .write()
            .map_err(poisoned)?
            .insert(name.into(), plan);
        Ok(())
    }

    /// Names of memory tables and views.
    pub fn table_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .tables
            .read()
            .map_err(poisoned)?
            .keys()
            .cloned()
            .collect();
        names.extend(self.views.read().map_err(poisoned)?.keys().cloned());
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The schema of a plan's leaf, without connecting to anything.
    fn leaf_schema(&self, leaf: &Leaf, metrics: &Arc<ExprMetrics>) -> Result<SchemaRef> {
        match leaf {
            Leaf::Source {
                format, options, ..
            } if format == "kafka" => Ok(kafka_schema(include_headers(options)?)),
            Leaf::Source {
                format, options, ..
            } if format == "binance" => Ok(binance_schema(stream_kind(options)?)),
            Leaf::Source { .. } => Ok(self.open_source(leaf, metrics)?.schema()),
            Leaf::Table(name) => {
                if let Some(table) = self.tables.read().map_err(poisoned)?.get(name) {
                    return Ok(table.schema());
                }
                let view = self.views.read().map_err(poisoned)?.get(name).cloned();
                match view {
                    Some(plan) => self.schema_of(&plan),
                    None => Err(self.unknown_table(name)),
                }
            }
            Leaf::Batch(id) => self
                .batches
                .read()
                .map_err(poisoned)?
                .get(id)
                .map(|(schema, _)| schema.clone())
                .ok_or_else(|| analysis!("the DataFrame's data (id {id}) is no longer held")),
        }
    }

    fn unknown_table(&self, name: &str) -> Error {
        let names = self.table_names().unwrap_or_default();
        analysis!(
            "[TABLE_OR_VIEW_NOT_FOUND] The table or view `{name}` cannot be found. Known tables \
             and views: [{}]. A memory sink's table exists once its query started.",
            names.join(", ")
        )
    }

    /// Opens a source for a leaf.
    fn open_source(&self, leaf: &Leaf, metrics: &Arc<ExprMetrics>) -> Result<Box<dyn Source>> {
        let Leaf::Source {
            format,
            options,
            schema,
            path,
            streaming,
        } = leaf
        else {
            return Err(illegal!("internal: not a source"));
        };
        Ok(match format.as_str() {
            "kafka" => Box::new(KafkaSource::new(options, *streaming)?),
            "rate" => Box::new(RateSource::new(options, Arc::clone(&self.clock))?),
            "binance" => Box::new(BinanceSource::new(options)?),
            "memory" => {
                let id: u64 = options
                    .get("id")
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| {
                        illegal!("memory source: use ferrostream.testing.MemoryStream")
                    })?;
                let stream = self
                    .streams
                    .read()
                    .map_err(poisoned)?
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| illegal!("memory source: no MemoryStream with id {id}"))?;
                Box::new(stream.source())
            }
            other => match file_format(other) {
                Some(file) => Box::new(FileSource::new(
                    file,
                    path.as_deref(),
                    schema.as_ref(),
                    options,
                    Arc::clone(metrics),
                )?),
                None => {
                    return Err(illegal!(
                        "unknown source format '{other}'; supported: kafka, binance, json, csv, \
                         parquet, rate, memory"
                    ))
                }
            },
        })
    }

    /// The schema of a plan's result; fails at the operation that is wrong.
    pub fn schema_of(&self, plan: &Plan) -> Result<SchemaRef> {
        let metrics = Arc::new(ExprMetrics::default());
        let mut schema = self.leaf_schema(&plan.leaf, &metrics)?;
        for segment in split_at_unions(&plan.ops) {
            match segment {
                OpsOrUnion::Ops(ops) => {
                    schema = Pipeline::new(
                        &self.ctx,
                        schema,
                        ops,
                        OutputMode::Complete,
                        Arc::clone(&metrics),
                    )?
                    .output_schema();
                }
                OpsOrUnion::Union(other) => {
                    let other_schema = self.schema_of(other)?;
                    check_union(&schema, &other_schema)?;
                }
            }
        }
        Ok(schema)
    }

    /// Spark's JSON schema of a plan's result.
    pub fn schema_json(&self, plan: &Plan) -> Result<serde_json::Value> {
        spark_struct(self.schema_of(plan)?.fields())
    }

    /// Runs a batch plan and returns its rows.
    pub fn collect(&self, plan: &Plan) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        if plan.is_streaming() {
            return Err(analysis!(
                "Queries with streaming sources must be executed with writeStream.start()"
            ));
        }
        let metrics = Arc::new(ExprMetrics::default());
        let (mut schema, mut batches) = self.leaf_data(&plan.leaf, &metrics)?;
        for segment in split_at_unions(&plan.ops) {
            match segment {
                OpsOrUnion::Ops(ops) => {
                    let mut pipeline = Pipeline::new(
                        &self.ctx,
                        schema,
                        ops,
                        OutputMode::Complete,
                        Arc::clone(&metrics),
                    )?;
                    let (stateless, _) = block_on(pipeline.process(batches, 0, None))??;
                    batches = block_on(pipeline.emit(stateless, OutputMode::Complete, None))??;
                    schema = pipeline.output_schema();
                }
                OpsOrUnion::Union(other) => {
                    let (other_schema, other_batches) = self.collect(other)?;
                    check_union(&schema, &other_schema)?;
                    for batch in other_batches {
                        batches.push(
                            RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
                                .or_else(|_| conform_by_position(&batch, &schema))?,
                        );
                    }
                }
            }
        }
        Ok((schema, batches))
    }

    fn leaf_data(
        &self,
        leaf: &Leaf,
        metrics: &Arc<ExprMetrics>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        match leaf {
            Leaf::Table(name) => {
                if let Some(table) = self.tables.read().map_err(poisoned)?.get(name) {
                    return Ok((table.schema(), table.snapshot().as_ref().clone()));
                }
                let view = self.views.read().map_err(poisoned)?.get(name).cloned();
                match view {
                    Some(plan) => self.collect(&plan),
                    None => Err(self.unknown_table(name)),
                }
            }
            Leaf::Batch(id) => {
                let batches = self.batches.read().map_err(poisoned)?;
                let (schema, data) = batches
                    .get(id)
                    .ok_or_else(|| analysis!("the DataFrame's data (id {id}) is no longer held"))?;
                Ok((schema.clone(), data.as_ref().clone()))
            }
            Leaf::Source {
                format, options, ..
            } if format == "kafka" => {
                let mut kafka = KafkaSource::new(options, false)?;
                let start = kafka.initial_offset()?;
                let end = kafka.ending_offset()?;
                let batches = kafka.get_batch(&start, &end, &Cancel::default())?;
                Ok((kafka.schema(), batches))
            }
            Leaf::Source { .. } => {
                let mut source = self.open_source(leaf, metrics)?;
                let start = source.initial_offset()?;
                let end = source.latest_offset(&start, ReadLimit::All)?;
                let batches = source.get_batch(&start, &end, &Cancel::default())?;
                Ok((source.schema(), batches))
            }
        }
    }

    /// Runs SQL over the memory tables and views (each a snapshot taken now); returns the
    /// result's data id.
    pub fn sql(&self, text: &str) -> Result<u64> {
        let ctx = SessionContext::new();
        let tables: Vec<(String, Arc<MemoryTable>)> = self
            .tables
            .read()
            .map_err(poisoned)?
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect();
        for (name, table) in tables {
            let data = table.snapshot().as_ref().clone();
            register(&ctx, &name, table.schema(), data)?;
        }
        let views: Vec<(String, Plan)> = self
            .views
            .read()
            .map_err(poisoned)?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (name, plan) in views {
            let (schema, data) = self.collect(&plan)?;
            register(&ctx, &name, schema, data)?;
        }
        let (schema, batches) = block_on(async {
            let df = ctx.sql(text).await?;
            let schema = Arc::new(df.schema().as_arrow().clone());
            Ok::<_, datafusion::error::DataFusionError>((schema, df.collect().await?))
        })?
        .map_err(|e| analysis!("{e}"))?;
        self.add_batches(schema, batches)
    }

    /// Starts a streaming query; `foreach_batch` is the function of a `foreachBatch` writer.
    pub fn start_query(
        &self,
        plan: &Plan,
        writer: &WriterSpec,
        foreach_batch: Option<BatchFn>,
    ) -> Result<Arc<StreamingQuery>> {
        if !plan.is_streaming() {
            return Err(analysis!(
                "'writeStream' can be called only on a streaming DataFrame; use df.write for batch \
                 DataFrames"
            ));
        }
        let mode = OutputMode::parse(&writer.output_mode)?;
        let trigger = writer.trigger.resolve()?;
        let metrics = Arc::new(ExprMetrics::default());
        // A streaming query's scans take them per chunk, to locate and keep them.
        metrics.bad_records.keep();
        let mut source = self.open_source(&plan.leaf, &metrics)?;
        let pipeline = Pipeline::new(
            &self.ctx,
            source.schema(),
            &plan.ops,
            mode,
            Arc::clone(&metrics),
        )?;
        validate_streaming(plan, mode, pipeline.windowed_on_watermark())?;
        let name = writer.query_name.clone();
        if let Some(name) = &name {
            let running = self.active()?;
            if running.iter().any(|q| q.name() == Some(name.as_str())) {
                return Err(illegal!(
                    "Cannot start query with name {name} as a query with that name is already \
                     active in this SparkSession"
                ));
            }
        }
        let options = crate::source::options::Options::new(&writer.options, "writeStream");
        let idle_timeout = options
            .get("watermarkIdleTimeout")
            .map(|text| {
                parse_positive_interval(text)
                    .map_err(|e| illegal!("writeStream option 'watermarkIdleTimeout': {e}"))
            })
            .transpose()?;
        let output_schema = pipeline.output_schema();
        let checkpoint = match self.checkpoint_dir(&options, name.as_deref())? {
            Some(dir) => Some(Checkpoint::open(
                &dir,
                Metadata {
                    id: uuid::Uuid::new_v4().to_string(),
                    source: source.description(),
                    output_schema: spark_struct(output_schema.fields())?.to_string(),
                    state: pipeline.state_signature(),
                },
            )?),
            None => None,
        };
        if let Some(checkpoint) = &checkpoint {
            source.use_checkpoint(&checkpoint.source_dir())?;
        }
        let sink = self.open_sink(
            writer,
            name.as_deref(),
            &output_schema,
            foreach_batch,
            checkpoint.is_some(),
        )?;
        let id = checkpoint
            .as_ref()
            .map(|c| c.query_id().to_string())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let scan_group = match (source.share_key(), self.shares_scans()?) {
            (Some(key), true) => {
                self.scans.set_memory_cap(self.shared_scans_memory()?);
                Some(
                    self.scans
                        .join(&format!("{key}#{}", pipeline.scan_signature())),
                )
            }
            _ => None,
        };
        let bad_records = match &plan.leaf {
            Leaf::Source { options, .. } => options
                .get("badRecordsPath")
                .map(|root| BadRecordsPath::new(root, &id))
                .transpose()?,
            _ => None,
        };
        let query = StreamingQuery::start(QuerySpec {
            id,
            name,
            source,
            pipeline,
            sink,
            mode,
            trigger,
            idle_timeout,
            clock: Arc::clone(&self.clock),
            checkpoint,
            scan_group,
            bad_records,
        })?;
        let mut queries = self.queries.lock().map_err(poisoned)?;
        queries.retain(|q| q.is_active());
        queries.push(Arc::clone(&query));
        Ok(query)
    }

    /// Writes a batch plan's rows once (`df.write...save()`); returns the rows written.
    pub fn write(&self, plan: &Plan, writer: &WriterSpec) -> Result<u64> {
        let (schema, batches) = self.collect(plan)?;
        match writer.format.to_ascii_lowercase().as_str() {
            "kafka" => self.producer(&writer.options)?.write(&batches),
            "console" => {
                ConsoleSink::new(&writer.options)?.add_batch(
                    0,
                    &schema,
                    &batches,
                    OutputMode::Append,
                )?;
                Ok(batches.iter().map(|b| b.num_rows() as u64).sum())
            }
            format @ ("parquet" | "json" | "csv") => {
                let options = crate::source::options::Options::new(&writer.options, "df.write");
                let path = options.required("path", "e.g. df.write.parquet(\"/data/out\")")?;
                crate::sink::file::save_files(
                    format,
                    std::path::Path::new(path),
                    &writer.partition_by,
                    &writer.options,
                    SaveMode::parse(writer.save_mode.as_deref().unwrap_or("errorifexists"))?,
                    schema,
                    &batches,
                )
            }
            other => Err(illegal!(
                "df.write.format('{other}') is not supported; supported: parquet, json, csv, \
                 kafka, console"
            )),
        }
    }

    /// The batch-write producer for these options, made on first use.
    fn producer(
        &self,
        options: &BTreeMap<String, String>,
    ) -> Result<Arc<crate::sink::kafka::KafkaSink>> {
        let key = serde_json::to_string(options).map_err(|e| Error::Sink(e.to_string()))?;
        let mut producers = self.producers.lock().map_err(poisoned)?;
        if let Some(producer) = producers.get(&key) {
            return Ok(Arc::clone(producer));
        }
        let producer = Arc::new(crate::sink::kafka::KafkaSink::new(options)?);
        producers.insert(key, Arc::clone(&producer));
        Ok(producer)
    }

    fn checkpoint_dir(
        &self,
        options: &crate::source::options::Options,
        name: Option<&str>,
    ) -> Result<Option<PathBuf>> {
        if let Some(dir) = options.get("checkpointLocation") {
            return Ok(Some(PathBuf::from(dir)));
        }
        Ok(self
            .config("spark.sql.streaming.checkpointLocation")?
            .map(|root| PathBuf::from(root).join(name.unwrap_or("query"))))
    }

    fn open_sink(
        &self,
        writer: &WriterSpec,
        name: Option<&str>,
        schema: &SchemaRef,
        foreach_batch: Option<BatchFn>,
        checkpointed: bool,
    ) -> Result<Box<dyn Sink>> {
        Ok(match writer.format.to_ascii_lowercase().as_str() {
            "foreachbatch" => Box::new(ForeachBatchSink::new(foreach_batch.ok_or_else(|| {
                illegal!("format 'foreachBatch' needs a function: use writeStream.foreachBatch(fn)")
            })?)),
            "memory" => {
                let name = name.ok_or_else(|| illegal!("queryName must be specified for memory sink"))?;
                let table = MemoryTable::new(schema.clone());
                self.views.write().map_err(poisoned)?.remove(name);
                self.tables.write().map_err(poisoned)?.insert(name.to_string(), Arc::clone(&table));
                Box::new(MemorySink::new(name, table))
            }
            "console" => Box::new(ConsoleSink::new(&writer.options)?),
            "noop" => Box::new(NoopSink),
            "kafka" => Box::new(crate::sink::kafka::KafkaSink::new(&writer.options)?),
            format @ ("parquet" | "json" | "csv") => {
                let options = crate::source::options::Options::new(&writer.options, "file sink");
                let path = options.required("path", "e.g. .start(\"/data/hourly\")")?;
                if !checkpointed {
                    return Err(illegal!(
                        "checkpointLocation must be specified either through \
                         option(\"checkpointLocation\", ...) or \
                         spark.conf.set(\"spark.sql.streaming.checkpointLocation\", ...): a file \
                         sink is exactly-once only with a checkpoint"
                    ));
                }
                Box::new(FileSink::new(
                    format,
                    std::path::Path::new(path),
                    &writer.partition_by,
                    &writer.options,
                    schema.clone(),
                )?)
            }
            other => {
                return Err(illegal!(
                    "unknown or unsupported sink format '{other}'; supported: memory, console, parquet, json, csv, kafka, noop, foreachBatch"
                ))
            }
        })
    }

    /// The queries still running.
    pub fn active(&self) -> Result<Vec<Arc<StreamingQuery>>> {
        let mut queries = self.queries.lock().map_err(poisoned)?;
        queries.retain(|q| q.is_active());
        Ok(queries.clone())
    }

    /// Every query started, running or not.
    pub fn stop_all(&self) -> Result<()> {
        self.producers.lock().map_err(poisoned)?.clear();
        let queries: Vec<_> = self.queries.lock().map_err(poisoned)?.drain(..).collect();
        for query in queries {
            query.stop();
        }
        Ok(())
    }

    /// The arrow schema of a Spark JSON struct.
    pub fn parse_schema(spark: &serde_json::Value) -> Result<SchemaRef> {
        Ok(Arc::new(arrow_schema(spark)?))
    }
}

fn register(
    ctx: &SessionContext,
    name: &str,
    schema: SchemaRef,
    data: Vec<RecordBatch>,
) -> Result<()> {
    let table = datafusion::datasource::MemTable::try_new(schema, vec![data])?;
    ctx.register_table(name, Arc::new(table))?;
    Ok(())
}

/// A sink that discards rows (Spark's `noop` format), for benchmarks.
struct NoopSink;

impl Sink for NoopSink {
    fn add_batch(
        &mut self,
        _batch_id: u64,
        _schema: &SchemaRef,
        _batches: &[RecordBatch],
        _mode: OutputMode,
    ) -> Result<()> {
        Ok(())
    }

    fn is_durable(&self) -> bool {
        false
    }

    fn description(&self) -> String {
        "NoopSink".into()
    }
}

enum OpsOrUnion<'a> {
    Ops(&'a [Op]),
    Union(&'a Plan),
}

fn split_at_unions(ops: &[Op]) -> Vec<OpsOrUnion<'_>> {
    let mut segments = Vec::new();
    let mut start = 0;
    for (index, op) in ops.iter().enumerate() {
        if let Op::Union(other) = op {
            segments.push(OpsOrUnion::Ops(&ops[start..index]));
            segments.push(OpsOrUnion::Union(other));
            start = index + 1;
        }
    }
    segments.push(OpsOrUnion::Ops(&ops[start..]));
    segments
}

fn check_union(left: &SchemaRef, right: &SchemaRef) -> Result<()> {
    if left.fields().len() != right.fields().len() {
        return Err(analysis!(
            "[NUM_COLUMNS_MISMATCH] union can only be performed on inputs with the same number of \
             columns, but the first input has {} columns and the second input has {} columns",
            left.fields().len(),
            right.fields().len()
        ));
    }
    Ok(())
}

fn conform_by_position(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| Ok(arrow::compute::cast(c, f.data_type())?))
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}
