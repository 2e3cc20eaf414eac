"""ferrostream against PySpark Structured Streaming on the same Kafka topic (issue 8).

Run it through ``benches/run.sh`` (which builds the release wheel and the Kafka tool, installs
PySpark and starts a broker), or directly with a venv that has both engines::

    python benches/vs_pyspark.py --bootstrap 127.0.0.1:9092 \\
        --kafka-bench PATH/kafka_bench --spark-jars JAR,JAR,... [--quick]

Two benchmarks, each engine in its own subprocess:

throughput
    ``kafka_bench fill`` writes N ticks (12-field JSON, 100 symbols, disorder, a few late rows)
    to a 2-partition topic; after untimed raw reads that warm the broker (``--broker-warmup``),
    each engine reads it from earliest to the end
    (``trigger(availableNow=True)``): **raw** (librdkafka consuming and discarding, the
    limit), **ferrostream** and **pyspark** running the seed pipeline, the same function
    ``seed_pipeline(sql, ...)`` with ``sql`` = ``ferrostream.sql`` or ``pyspark.sql``:
    from_json, a 1-hour watermark, hourly and daily OHLC to Parquet partitioned by symbol,
    and daily candles in a memory table (complete mode). Output row counts must agree.
    The engines run in turn, ``--rounds`` times (default 3); the table gives each measure's
    median and every round's run time.
latency
    ``kafka_bench rate`` appends ticks at a fixed rate to a topic whose broker stamps each
    message with its append time (LogAppendTime); the engine runs hourly OHLC in update mode
    into a memory table with its fastest trigger. A tick's latency is the time from its
    append to the end of the micro-batch that put its candle in the memory table (the batch's
    progress ``timestamp`` + ``durationMs.triggerExecution``, matched by Kafka offset).

Peak RSS and CPU seconds cover the engine's whole process tree (the JVM under PySpark),
sampled from /proc every 50 ms. The broker is outside every tree.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import importlib
import itertools
import json
import os
import platform
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Tuple

TICK_SCHEMA = (
    "symbol STRING, price DOUBLE, volume DOUBLE, quote_volume DOUBLE, price_change DOUBLE, "
    "price_change_percent DOUBLE, high DOUBLE, low DOUBLE, open DOUBLE, "
    "weighted_avg_price DOUBLE, trade_count LONG, event_time LONG"
)
RESULT_PREFIX = "BENCH-RESULT "
BATCH_PREFIX = "BENCH-BATCH "
READY_LINE = "BENCH-READY"
ENGINE_MODULES = {"ferrostream": "ferrostream.sql", "pyspark": "pyspark.sql"}
MEMORY_TABLE = "daily_stats"
LATENCY_TABLE = "hourly_live"
SAMPLE_INTERVAL_S = 0.05
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------
# The pipeline: one function, either engine's `sql` module.
# --------------------------------------------------------------------------------------------


def functions_of(sql: Any) -> Any:
    """``ferrostream.sql.functions`` or ``pyspark.sql.functions``."""
    return importlib.import_module(f"{sql.__name__}.functions")


def tick_stream(sql: Any, spark: Any, bootstrap: str, topic: str, max_offsets: int) -> Any:
    """Kafka ticks parsed from JSON, with their event time behind a 1-hour watermark."""
    F = functions_of(sql)
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
    )
    if max_offsets > 0:
        reader = reader.option("maxOffsetsPerTrigger", max_offsets)
    if sql.__name__.startswith("ferrostream"):
        # Experiments: FERROSTREAM_BENCH_OPTIONS="kafka.queued.max.messages.kbytes=8192,..."
        for pair in filter(None, os.environ.get("FERROSTREAM_BENCH_OPTIONS", "").split(",")):
            name, _, value = pair.partition("=")
            reader = reader.option(name.strip(), value.strip())
    return (
        reader.load()
        .select(F.from_json(F.col("value").cast("string"), TICK_SCHEMA).alias("t"))
        .select("t.*")
        .withColumn("event_timestamp", F.timestamp_millis("event_time"))
        .withWatermark("event_timestamp", "1 hour")
    )


def candles(sql: Any, ticks: Any, duration: str) -> Any:
    """The seed's OHLC candles for one window length."""
    F = functions_of(sql)
    return (
        ticks.groupBy(F.window("event_timestamp", duration), "symbol")
        .agg(
            F.first("price").alias("open"),
            F.max("price").alias("high"),
            F.min("price").alias("low"),
            F.last("price").alias("close"),
            F.sum("volume").alias("volume"),
            F.avg("price").alias("avg_price"),
            F.count("*").alias("ticks"),
        )
        .select(
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            "symbol",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "avg_price",
            "ticks",
        )
    )


def seed_pipeline(
    sql: Any, spark: Any, bootstrap: str, topic: str, out: Path, max_offsets: int
) -> List[Any]:
    """The seed's queries, read to the end of the topic: hourly and daily candles to Parquet
    (append, partitioned by symbol) and daily candles in a memory table (complete)."""
    queries = []
    for name, duration in (("hourly", "1 hour"), ("daily", "1 day")):
        ticks = tick_stream(sql, spark, bootstrap, topic, max_offsets)
        queries.append(
            candles(sql, ticks, duration)
            .writeStream.format("parquet")
            .queryName(name)
            .outputMode("append")
            .partitionBy("symbol")
            .option("checkpointLocation", str(out / "checkpoints" / name))
            .trigger(availableNow=True)
            .start(str(out / name))
        )
    ticks = tick_stream(sql, spark, bootstrap, topic, max_offsets)
    queries.append(
        candles(sql, ticks, "1 day")
        .writeStream.format("memory")
        .queryName(MEMORY_TABLE)
        .outputMode("complete")
        .option("checkpointLocation", str(out / "checkpoints" / MEMORY_TABLE))
        .trigger(availableNow=True)
        .start()
    )
    return queries


def live_candles(sql: Any, spark: Any, bootstrap: str, topic: str, out: Path) -> Any:
    """The latency benchmark's query: hourly candles updated in a memory table as ticks
    arrive, with the engine's fastest trigger (the default)."""
    ticks = tick_stream(sql, spark, bootstrap, topic, 0)
    return (
        candles(sql, ticks, "1 hour")
        .writeStream.format("memory")
        .queryName(LATENCY_TABLE)
        .outputMode("update")
        .option("checkpointLocation", str(out / "checkpoints" / LATENCY_TABLE))
        .start()
    )


def session(engine: str, spark_jars: str) -> Tuple[Any, Any]:
    """The engine's ``sql`` module and a session. PySpark gets what a tuned single-machine
    user sets: local[2], 2 shuffle partitions (not 200), no UI."""
    sql = importlib.import_module(ENGINE_MODULES[engine])
    builder = sql.SparkSession.builder.appName(f"vs-pyspark-{engine}")
    if engine == "pyspark":
        builder = (
            builder.master("local[2]")
            .config("spark.jars", spark_jars)
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.streaming.numRecentProgressUpdates", "1000")
        )
    spark = builder.getOrCreate()
    if engine == "ferrostream":
        # Experiments: FERROSTREAM_BENCH_CONF="ferrostream.sharedScans=false,..."
        for pair in filter(None, os.environ.get("FERROSTREAM_BENCH_CONF", "").split(",")):
            name, _, value = pair.partition("=")
            spark.conf.set(name.strip(), value.strip())
    if engine == "pyspark":
        spark.sparkContext.setLogLevel("WARN")
    return sql, spark


def batch_end(progress: Dict[str, Any], engine: str) -> float:
    """When a batch ended, in Unix seconds: its trigger time plus its execution time.

    Spark's progress ``timestamp`` is the trigger's start, before ``latestOffset``;
    ferrostream (src/exec/query.rs, ``run_batch``) takes it after ``latestOffset``, while its
    ``triggerExecution`` still counts from the trigger's start, so that part is taken off.
    """
    started = dt.datetime.strptime(progress["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
    started = started.replace(tzinfo=dt.timezone.utc)
    durations = progress["durationMs"]
    execution = float(durations["triggerExecution"])
    if engine == "ferrostream":
        execution -= float(durations.get("latestOffset", 0))
    return started.timestamp() + execution / 1000.0


def end_offsets(progress: Dict[str, Any]) -> Dict[str, int]:
    """``{"partition": next offset}`` after the batch, from Spark's offset JSON."""
    offsets = progress["sources"][0]["endOffset"]
    if isinstance(offsets, str):
        offsets = json.loads(offsets)
    return {p: int(o) for topic in offsets.values() for p, o in topic.items()}


def summed_durations(progress: List[Dict[str, Any]]) -> Dict[str, int]:
    """Each phase's milliseconds over a query's batches (where its time went)."""
    total: Dict[str, int] = {}
    for report in progress:
        for phase, ms in report["durationMs"].items():
            total[phase] = total.get(phase, 0) + int(ms)
    return total


def child_throughput(args: argparse.Namespace) -> None:
    """One engine's throughput run (in its own process)."""
    started = time.time()
    sql, spark = session(args.engine, args.spark_jars)
    query_started = time.time()
    queries = seed_pipeline(
        sql, spark, args.bootstrap, args.topic, Path(args.out), args.max_offsets
    )
    # Engines keep only the last 100 progress reports: collect them while the queries run.
    seen: Dict[Tuple[str, int], Dict[str, Any]] = {}

    def collect() -> None:
        for query in queries:
            for report in query.recentProgress:
                seen[(query.name, report["batchId"])] = report

    pending = list(queries)
    while pending:
        collect()
        # Returns as soon as the query ends; collecting is work in the measured process, so
        # both engines are asked as often.
        if pending[0].awaitTermination(0.2):
            pending.pop(0)
    ended = time.time()
    collect()
    by_query: Dict[str, List[Dict[str, Any]]] = {}
    for (name, _), report in sorted(seen.items()):
        by_query.setdefault(name, []).append(report)
    data_batches = [p for p in seen.values() if p["numInputRows"] > 0]
    first_batch = min((batch_end(p, args.engine) for p in data_batches), default=ended)
    result = {
        "started": started,
        "query_started": query_started,
        "first_batch": first_batch,
        "ended": ended,
        "batches": {name: len(reports) for name, reports in by_query.items()},
        "input_rows": {
            name: sum(p["numInputRows"] for p in reports) for name, reports in by_query.items()
        },
        "memory_rows": spark.table(MEMORY_TABLE).count(),
        "duration_ms": {name: summed_durations(reports) for name, reports in by_query.items()},
    }
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    spark.stop()


def child_latency(args: argparse.Namespace) -> None:
    """One engine's latency run: prints each batch's end and offsets as it sees them, until
    its stdin closes."""
    sql, spark = session(args.engine, args.spark_jars)
    query = live_candles(sql, spark, args.bootstrap, args.topic, Path(args.out))
    stop = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    print(READY_LINE, flush=True)
    seen = -1
    # PySpark answers recentProgress over py4j: ask it less often than ferrostream.
    interval = 0.2 if args.engine == "pyspark" else 0.05
    while True:
        for progress in query.recentProgress:
            if progress["batchId"] > seen:
                seen = progress["batchId"]
                batch = {
                    "batch": seen,
                    "end": batch_end(progress, args.engine),
                    "rows": progress["numInputRows"],
                    "offsets": end_offsets(progress),
                    "durations": progress.get("durationMs", {}),
                }
                print(BATCH_PREFIX + json.dumps(batch), flush=True)
        if stop.is_set() or not query.isActive:
            break
        time.sleep(interval)
    failure = query.exception()
    query.stop()
    spark.stop()
    if failure is not None:
        raise SystemExit(f"query failed: {failure}")


def child_count(args: argparse.Namespace) -> None:
    """Rows and ticks in a Parquet output folder (Hive partitions; `_`-folders skipped)."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    path = Path(args.path)
    if not path.exists():
        print(json.dumps({"rows": 0, "ticks": 0}))
        return
    table = ds.dataset(str(path), format="parquet", partitioning="hive").to_table(["ticks"])
    ticks = pc.sum(table["ticks"]).as_py() or 0
    print(json.dumps({"rows": table.num_rows, "ticks": ticks}))


# --------------------------------------------------------------------------------------------
# Measuring a process tree.
# --------------------------------------------------------------------------------------------


def children_of() -> Dict[int, List[int]]:
    """Parent pid → child pids, from /proc."""
    tree: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def descendants(root: int) -> List[int]:
    tree = children_of()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(tree.get(pid, []))
    return found


class TreeSampler:
    """Samples RSS (summed over the tree) and CPU time (per process, kept after it exits)."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_rss = 0
        self.cpu_ticks: Dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self, pids: List[int]) -> None:
        rss = 0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/statm", "rb") as statm:
                    rss += int(statm.read().split()[1]) * PAGE_SIZE
                with open(f"/proc/{pid}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError, ValueError):
                continue
            # utime and stime are fields 14 and 15 of stat; fields[0] here is field 3.
            ticks = int(fields[11]) + int(fields[12])
            self.cpu_ticks[pid] = max(ticks, self.cpu_ticks.get(pid, 0))
        self.peak_rss = max(self.peak_rss, rss)

    def _run(self) -> None:
        # Walking all of /proc costs more than reading a few files: look for new processes
        # (the JVM PySpark starts) every 10th sample only.
        pids: List[int] = []
        for sample in itertools.count():
            if self._stop.is_set():
                break
            if sample % 10 == 0:
                pids = descendants(self.root)
            self._sample(pids)
            time.sleep(SAMPLE_INTERVAL_S)
        self._sample(descendants(self.root))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu_ticks.values()) / CLOCK_TICKS


@dataclass
class RunResult:
    """One engine's throughput run."""

    engine: str
    wall_s: float
    run_s: float
    first_batch_s: float
    peak_rss_bytes: int
    cpu_s: float
    rows: int
    outputs: Dict[str, int] = field(default_factory=dict)
    ticks_in_candles: Dict[str, int] = field(default_factory=dict)
    details: Dict[str, Any] = field(default_factory=dict)
    # Every round's run time and outputs, when this is the median of several runs.
    runs_s: List[float] = field(default_factory=list)
    round_outputs: List[Dict[str, int]] = field(default_factory=list)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.run_s if self.run_s > 0 else 0.0


def run_measured(
    command: Sequence[str], log: Path, timeout: float
) -> Tuple[float, TreeSampler, str]:
    """Runs a command, sampling its process tree; returns (spawn time, sampler, stdout)."""
    with open(log, "wb") as stderr:
        spawned = time.time()
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr)
        sampler = TreeSampler(child.pid)
        try:
            stdout, _ = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_tree(child.pid)
            child.wait()
            sampler.stop()
            raise SystemExit(f"{command[0]} timed out after {timeout:.0f} s (log: {log})") from None
        sampler.stop()
    if child.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{' '.join(command[:4])}... failed ({child.returncode}):\n{tail}")
    return spawned, sampler, stdout.decode(errors="replace")


def kill_tree(root: int) -> None:
    """Kills a child and everything it started (a JVM under PySpark), children first."""
    for pid in reversed(descendants(root)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def result_line(stdout: str, prefix: str = RESULT_PREFIX) -> Dict[str, Any]:
    for line in stdout.splitlines():
        if line.startswith(prefix):
            return json.loads(line[len(prefix) :])  # type: ignore[no-any-return]
        if prefix == "" and line.startswith("{"):
            return json.loads(line)  # type: ignore[no-any-return]
    raise SystemExit(f"no result line in:\n{stdout[-2000:]}")


# --------------------------------------------------------------------------------------------
# The benchmarks.
# --------------------------------------------------------------------------------------------


@dataclass
class Bench:
    """Where things are and how big the runs are."""

    args: argparse.Namespace
    work: Path

    def kafka(self, *argv: str, timeout: float = 600) -> Dict[str, Any]:
        """Runs the Kafka tool; returns its JSON line."""
        command = [self.args.kafka_bench, *argv, "--bootstrap", self.args.bootstrap]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
        return result_line(done.stdout, prefix="")

    def set_aside(self, path: Path) -> None:
        """Moves an earlier run's output out of the way, to be deleted after the measurements
        (`empty_trash`). Deleted right before a run, its files would cost that run: ext4
        without a journal (this machine's root) skips inodes deleted in the last minute when
        it allocates new ones, checking each in the inode table, so a run creating ~1,300
        files after ~1,300 were deleted spent ~0.5 s more in the kernel."""
        if path.exists():
            trash = self.work / "trash"
            trash.mkdir(exist_ok=True)
            path.rename(trash / uuid.uuid4().hex)

    def empty_trash(self) -> None:
        shutil.rmtree(self.work / "trash", ignore_errors=True)

    def child(self, role: str, *argv: str) -> List[str]:
        """The command line of a child role of this script, in the engines' venv."""
        return [
            self.args.python,
            str(Path(__file__).resolve()),
            role,
            "--bootstrap",
            self.args.bootstrap,
            "--spark-jars",
            self.args.spark_jars,
            *argv,
        ]

    def count(self, path: Path) -> Dict[str, int]:
        done = subprocess.run(
            [self.args.python, str(Path(__file__).resolve()), "count", str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(done.stdout)  # type: ignore[no-any-return]


def throughput(bench: Bench, engines: Sequence[str]) -> Tuple[Dict[str, Any], List[RunResult]]:
    args = bench.args
    topic = f"vs-pyspark-{uuid.uuid4().hex[:8]}"
    bench.kafka("create", "--topic", topic, "--partitions", "2")
    say(f"filling {topic} with {args.ticks:,} ticks ({args.symbols} symbols)")
    fill = bench.kafka(
        "fill",
        "--topic",
        topic,
        "--ticks",
        str(args.ticks),
        "--symbols",
        str(args.symbols),
        "--span-hours",
        str(args.span_hours),
    )
    say(
        f"  {fill['ticks']:,} ticks ({fill['bytes'] / fill['ticks']:.0f} B each, "
        f"{fill['late']} late) in {fill['seconds']:.1f} s, {fill['rate']:,.0f} ticks/s"
    )
    # A fresh broker's JVM spends about twice the CPU per fetch until its fetch path is
    # compiled, and on a small machine that CPU is taken from whichever engine runs first.
    # Untimed reads warm it, as a broker that has been up for a while is.
    for _ in range(args.broker_warmup):
        warm = bench.kafka("raw", "--topic", topic)
        say(f"  broker warm-up read: {warm['ended'] - warm['started']:.2f} s")
    runs: Dict[str, List[RunResult]] = {engine: [] for engine in engines}
    # Rounds of every engine in turn: a machine whose speed drifts during the harness (this
    # one's swings ~20 % from one run to the next) weighs on every engine alike.
    for round_ in range(args.rounds):
        for engine in engines:
            say(f"throughput: {engine} (round {round_ + 1} of {args.rounds})")
            runs[engine].append(throughput_run(bench, engine, topic, fill))
    return fill, [median_of(runs[engine]) for engine in engines]


def median_of(runs: List[RunResult]) -> RunResult:
    """An engine's rounds as one result: each measure's median (an odd number of rounds gives a
    measured value, not an average of two). Details are the median run's."""
    by_time = sorted(runs, key=lambda r: r.run_s)
    middle = by_time[(len(by_time) - 1) // 2]

    def median(values: List[float]) -> float:
        ordered = sorted(values)
        return ordered[(len(ordered) - 1) // 2]

    return RunResult(
        engine=middle.engine,
        wall_s=median([r.wall_s for r in runs]),
        run_s=middle.run_s,
        first_batch_s=median([r.first_batch_s for r in runs]),
        peak_rss_bytes=int(median([float(r.peak_rss_bytes) for r in runs])),
        cpu_s=median([r.cpu_s for r in runs]),
        rows=middle.rows,
        outputs=middle.outputs,
        ticks_in_candles=middle.ticks_in_candles,
        details=middle.details,
        runs_s=[r.run_s for r in runs],
        round_outputs=[r.outputs for r in runs],
    )


def throughput_run(bench: Bench, engine: str, topic: str, fill: Dict[str, Any]) -> RunResult:
    """One engine's run over the whole topic."""
    args = bench.args
    log = bench.work / f"throughput-{engine}.log"
    if engine == "raw":
        command = [args.kafka_bench, "raw", "--topic", topic, "--bootstrap", args.bootstrap]
    else:
        out = bench.work / f"out-{engine}"
        bench.set_aside(out)
        command = bench.child(
            "child-throughput",
            "--engine",
            engine,
            "--topic",
            topic,
            "--out",
            str(out),
            "--max-offsets",
            str(args.max_offsets),
        )
    spawned, sampler, stdout = run_measured(command, log, args.timeout)
    wall = time.time() - spawned
    line = result_line(stdout, prefix="" if engine == "raw" else RESULT_PREFIX)
    result = RunResult(
        engine=engine,
        wall_s=wall,
        run_s=line["ended"] - line.get("query_started", line["started"]),
        first_batch_s=line["first_batch"] - spawned,
        peak_rss_bytes=sampler.peak_rss,
        cpu_s=sampler.cpu_seconds,
        rows=fill["ticks"],
        details=line,
    )
    if engine == "raw":
        if line["rows"] != fill["ticks"]:
            raise SystemExit(f"raw consumer read {line['rows']} of {fill['ticks']} ticks")
    else:
        for name in ("hourly", "daily"):
            counted = bench.count(bench.work / f"out-{engine}" / name)
            result.outputs[f"{name} parquet"] = counted["rows"]
            result.ticks_in_candles[name] = counted["ticks"]
        result.outputs["memory table"] = line["memory_rows"]
    say(
        f"  {result.rows_per_s:,.0f} ticks/s, {result.run_s:.1f} s "
        f"(wall {result.wall_s:.1f} s), first batch {result.first_batch_s:.2f} s, "
        f"peak RSS {result.peak_rss_bytes / 2**20:,.0f} MB, CPU {result.cpu_s:.1f} s, "
        f"outputs {result.outputs}"
    )
    return result


@dataclass
class LatencyResult:
    engine: str
    target_rate: int
    achieved_rate: float
    measured: int
    caught_up: bool
    percentiles_ms: Dict[str, float]
    early_p50_ms: float
    late_p50_ms: float
    batches: int
    missed_batches: int

    @property
    def sustained(self) -> bool:
        """Kept up: read everything by the deadline, and latency did not grow over the run."""
        return (
            self.caught_up
            and self.measured > 0
            and self.achieved_rate >= 0.9 * self.target_rate
            and self.late_p50_ms <= 1.25 * self.early_p50_ms + 250
        )


def read_times(path: Path) -> Dict[int, Dict[int, int]]:
    """partition → offset → append time (ms), from `kafka_bench times`."""
    record = struct.Struct("<iqq")
    times: Dict[int, Dict[int, int]] = {}
    data = path.read_bytes()
    for partition, offset, timestamp in record.iter_unpack(data):
        times.setdefault(partition, {})[offset] = timestamp
    return times


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


def latencies(
    batches: List[Dict[str, Any]], times: Dict[int, Dict[int, int]], warmup_until_ms: float
) -> Tuple[List[Tuple[int, float]], int]:
    """(append time ms, latency ms) for every tick appended after the warm-up, and how many
    ticks no batch covered."""
    batches = sorted(batches, key=lambda b: b["batch"])
    result: List[Tuple[int, float]] = []
    uncovered = 0
    for partition, offsets in times.items():
        ends = [b["offsets"].get(str(partition), 0) for b in batches]
        # End offsets never go back; a batch with no data for this partition repeats its end.
        for offset, appended in offsets.items():
            if appended < warmup_until_ms:
                continue
            index = bisect.bisect_right(ends, offset)
            if index == len(batches):
                uncovered += 1
                continue
            result.append((appended, batches[index]["end"] * 1000.0 - appended))
    result.sort()
    return result, uncovered


def latency_run(bench: Bench, engine: str, rate: int) -> LatencyResult:
    args = bench.args
    topic = f"latency-{engine}-{rate}-{uuid.uuid4().hex[:6]}"
    bench.kafka("create", "--topic", topic, "--partitions", "2", "--log-append-time")
    out = bench.work / f"latency-{engine}-{rate}"
    bench.set_aside(out)
    command = bench.child("child-latency", "--engine", engine, "--topic", topic, "--out", str(out))
    log = bench.work / f"latency-{engine}-{rate}.log"
    batches: List[Dict[str, Any]] = []
    consumed = [0]
    ready = threading.Event()
    with open(log, "wb") as stderr:
        child = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        assert child.stdout is not None and child.stdin is not None

        def read(stdout: IO[str]) -> None:
            for line in stdout:
                if line.startswith(READY_LINE):
                    ready.set()
                elif line.startswith(BATCH_PREFIX):
                    batch = json.loads(line[len(BATCH_PREFIX) :])
                    batches.append(batch)
                    consumed[0] = sum(batch["offsets"].values())

        reader = threading.Thread(target=read, args=(child.stdout,), daemon=True)
        reader.start()
        try:
            if not ready.wait(args.timeout):
                raise SystemExit(f"{engine} did not start its query (log: {log})")
            # Warm the engine up first (a JVM compiles its first batches for seconds): a short
            # burst it must have read before the measured producer starts.
            warmup = bench.kafka("rate", "--topic", topic, "--rate", "1000", "--seconds", "2")
            until = time.time() + args.timeout
            while consumed[0] < warmup["ticks"] and time.time() < until:
                if child.poll() is not None:
                    raise SystemExit(f"{engine} exited early (log: {log})")
                time.sleep(0.1)
            seconds = args.latency_warmup + args.latency_seconds
            produced = bench.kafka(
                "rate", "--topic", topic, "--rate", str(rate), "--seconds", str(seconds),
                timeout=seconds * 3 + 60,
            )  # fmt: skip
            produced["ticks"] += warmup["ticks"]
            deadline = time.time() + max(30.0, args.latency_seconds)
            while consumed[0] < produced["ticks"] and time.time() < deadline:
                if child.poll() is not None:
                    raise SystemExit(f"{engine} exited early (log: {log})")
                time.sleep(0.1)
            caught_up = consumed[0] >= produced["ticks"]
            child.stdin.close()
            child.wait(timeout=120)
        finally:
            if child.poll() is None:
                kill_tree(child.pid)
                child.wait()
        reader.join(timeout=10)
    if child.returncode != 0:
        raise SystemExit(f"{engine} latency run failed (log: {log})")
    # Each batch's end, offsets and durations, to see where a slow batch spent its time.
    (bench.work / f"latency-{engine}-{rate}-batches.json").write_text(json.dumps(batches))
    times_file = bench.work / f"times-{topic}.bin"
    bench.kafka("times", "--topic", topic, "--out", str(times_file))
    times = read_times(times_file)
    times_file.unlink()
    warmup_until = (produced["started"] + args.latency_warmup) * 1000.0
    measured, uncovered = latencies(batches, times, warmup_until)
    values = sorted(latency for _, latency in measured)
    quarter = max(1, len(measured) // 4)
    ids = [b["batch"] for b in batches]
    missed = (max(ids) - min(ids) + 1 - len(set(ids))) if ids else 0
    return LatencyResult(
        engine=engine,
        target_rate=rate,
        achieved_rate=produced["rate"],
        measured=len(values),
        caught_up=caught_up and uncovered == 0,
        percentiles_ms={
            "p50": percentile(values, 50),
            "p95": percentile(values, 95),
            "p99": percentile(values, 99),
            "max": values[-1] if values else float("nan"),
        },
        early_p50_ms=statistics.median([v for _, v in measured[:quarter]]) if measured else 0.0,
        late_p50_ms=statistics.median([v for _, v in measured[-quarter:]]) if measured else 0.0,
        batches=len(batches),
        missed_batches=missed,
    )


def latency(bench: Bench, engines: Sequence[str]) -> List[LatencyResult]:
    results = []
    for engine in engines:
        for rate in bench.args.rates:
            say(f"latency: {engine} at {rate:,} ticks/s")
            result = latency_run(bench, engine, rate)
            results.append(result)
            p = result.percentiles_ms
            say(
                f"  p50 {p['p50']:.0f} ms, p95 {p['p95']:.0f}, p99 {p['p99']:.0f}, "
                f"max {p['max']:.0f} over {result.measured:,} ticks, {result.batches} batches; "
                f"{'sustained' if result.sustained else 'FELL BEHIND'}"
            )
    return results


# --------------------------------------------------------------------------------------------
# Report.
# --------------------------------------------------------------------------------------------


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> Dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        memory_kb = 0
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(memory_kb / 2**20, 1),
        "kernel": platform.release(),
        "load": os.getloadavg(),
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def mb(value: int) -> str:
    return f"{value / 2**20:,.0f} MB"


def report_throughput(fill: Dict[str, Any], results: List[RunResult]) -> Tuple[str, List[str]]:
    headers = [
        "engine",
        "ticks/s",
        "run s",
        "run s, each round",
        "wall s",
        "first batch s",
        "peak RSS",
        "CPU s",
        "hourly parquet",
        "daily parquet",
        "memory table",
    ]
    rows = []
    for r in results:
        outputs = [f"{r.outputs[k]:,}" if k in r.outputs else "–" for k in OUTPUT_KEYS]
        rows.append(
            [
                r.engine,
                f"{r.rows_per_s:,.0f}",
                f"{r.run_s:.2f}",
                " / ".join(f"{run:.2f}" for run in r.runs_s) or "–",
                f"{r.wall_s:.2f}",
                f"{r.first_batch_s:.2f}",
                mb(r.peak_rss_bytes),
                f"{r.cpu_s:.1f}",
                *outputs,
            ]
        )
    text = table(headers, rows)
    problems = []
    by = {r.engine: r for r in results}
    engines = [r for r in results if r.outputs]
    for key in OUTPUT_KEYS:
        counts = {r.engine: r.outputs[key] for r in engines}
        for r in engines:
            rounds = [outputs.get(key) for outputs in r.round_outputs]
            if len(set(rounds)) > 1:
                problems.append(f"{r.engine} {key} row counts differ between rounds: {rounds}")
        if len(set(counts.values())) > 1:
            problems.append(f"{key} row counts differ between engines: {counts}")
        if any(count == 0 for count in counts.values()):
            problems.append(f"{key}: an engine wrote no rows: {counts}")
    for r in engines:
        for name, read in r.details.get("input_rows", {}).items():
            if read != r.rows:
                problems.append(f"{r.engine} query {name} read {read:,} of {r.rows:,} ticks")
    ratios = []
    fs, ps, raw = by.get("ferrostream"), by.get("pyspark"), by.get("raw")
    if fs and ps:
        ratios += [
            f"ferrostream / PySpark throughput: {fs.rows_per_s / ps.rows_per_s:.1f}x (target >= 20x)",
            f"PySpark / ferrostream peak RSS: {ps.peak_rss_bytes / fs.peak_rss_bytes:.1f}x "
            "(target >= 10x)",
            f"PySpark / ferrostream CPU seconds: {ps.cpu_s / max(fs.cpu_s, 1e-9):.1f}x",
        ]
    if fs and raw:
        ratios.append(
            f"ferrostream / raw throughput: {100 * fs.rows_per_s / raw.rows_per_s:.0f} % "
            "(target >= 60 %)"
        )
    if fs:
        ratios.append(f"ferrostream first batch: {fs.first_batch_s:.2f} s (target < 1 s)")
    for r in engines:
        ratios.append(f"{r.engine} ticks in candles: {r.ticks_in_candles}")
    return text + "\n\n" + "\n".join(f"- {line}" for line in ratios), problems


OUTPUT_KEYS = ("hourly parquet", "daily parquet", "memory table")


def report_latency(results: List[LatencyResult]) -> str:
    headers = [
        "engine",
        "rate (target)",
        "rate (achieved)",
        "ticks measured",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "batches",
        "kept up",
    ]
    rows = [
        [
            r.engine,
            f"{r.target_rate:,}",
            f"{r.achieved_rate:,.0f}",
            f"{r.measured:,}",
            *(f"{r.percentiles_ms[k]:,.0f}" for k in ("p50", "p95", "p99", "max")),
            f"{r.batches}" + (f" ({r.missed_batches} unseen)" if r.missed_batches else ""),
            "yes" if r.sustained else "no",
        ]
        for r in results
    ]
    lines = [table(headers, rows), ""]
    for engine in dict.fromkeys(r.engine for r in results):
        kept = [r.target_rate for r in results if r.engine == engine and r.sustained]
        tried = max(r.target_rate for r in results if r.engine == engine)
        best = max(kept) if kept else 0
        suffix = " (the highest rate tried)" if best == tried else ""
        lines.append(f"- {engine} keeps up with {best:,} ticks/s{suffix}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Command line.
# --------------------------------------------------------------------------------------------


def parse(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="role")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
        p.add_argument(
            "--spark-jars", default="", help="spark-sql-kafka and its jars, comma-separated"
        )

    main = sub.add_parser("run", help="both benchmarks (the default)")
    common(main)
    main.add_argument("--kafka-bench", required=True, help="the kafka_bench binary")
    main.add_argument("--python", default=sys.executable, help="the engines' venv python")
    main.add_argument("--quick", action="store_true", help="small N, short latency runs (< 10 min)")
    main.add_argument("--ticks", type=int, help="ticks in the throughput topic (default 5,000,000)")
    main.add_argument("--symbols", type=int, default=100)
    main.add_argument("--span-hours", type=float, default=72.0, help="event time the ticks cover")
    main.add_argument(
        "--broker-warmup", type=int, default=3, help="untimed raw reads of the topic first"
    )
    main.add_argument("--max-offsets", type=int, help="maxOffsetsPerTrigger for both engines")
    main.add_argument("--engines", default="raw,ferrostream,pyspark")
    main.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="throughput runs of each engine, in turn; the table gives each measure's median",
    )
    main.add_argument("--rates", help="latency rates, comma-separated (default 1000,10000,100000)")
    main.add_argument("--latency-seconds", type=float, help="measured seconds per rate")
    main.add_argument("--latency-warmup", type=float, help="seconds left out at the start")
    main.add_argument("--skip-throughput", action="store_true")
    main.add_argument("--skip-latency", action="store_true")
    main.add_argument("--work", default="/tmp/ferrostream-vs-pyspark", help="scratch folder")
    main.add_argument("--json", help="also write the results here as JSON")
    main.add_argument("--timeout", type=float, default=3600, help="seconds per engine run")

    for role in ("child-throughput", "child-latency"):
        child = sub.add_parser(role)
        common(child)
        child.add_argument("--engine", choices=sorted(ENGINE_MODULES), required=True)
        child.add_argument("--topic", required=True)
        child.add_argument("--out", required=True)
        child.add_argument("--max-offsets", type=int, default=0)
    count = sub.add_parser("count")
    count.add_argument("path")

    args = parser.parse_args(argv)
    if args.role is None:
        args = parser.parse_args(["run", *(argv if argv is not None else sys.argv[1:])])
    if args.role == "run":
        quick = args.quick
        args.ticks = args.ticks or (200_000 if quick else 5_000_000)
        args.max_offsets = args.max_offsets or (50_000 if quick else 500_000)
        args.rates = [int(r) for r in (args.rates or "1000,10000,100000").split(",")]
        args.latency_seconds = args.latency_seconds or (6.0 if quick else 20.0)
        args.latency_warmup = (
            args.latency_warmup if args.latency_warmup is not None else (3.0 if quick else 5.0)
        )
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse(argv)
    roles: Dict[str, Callable[[argparse.Namespace], None]] = {
        "child-throughput": child_throughput,
        "child-latency": child_latency,
        "count": child_count,
    }
    if args.role in roles:
        roles[args.role](args)
        return 0
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    bench = Bench(args, work)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    facts = machine()
    say(f"machine: {facts}")
    report: Dict[str, Any] = {"machine": facts, "args": {k: v for k, v in vars(args).items()}}
    text = [f"machine: {facts['cpus']} x {facts['cpu']}, {facts['memory_gib']} GiB, "
            f"Linux {facts['kernel']}, {facts['date']}, load at start {facts['load']}"]  # fmt: skip
    problems: List[str] = []
    if not args.skip_throughput:
        fill, results = throughput(bench, engines)
        body, problems = report_throughput(fill, results)
        text += [
            "",
            f"## Throughput: {args.ticks:,} ticks, {args.symbols} symbols, "
            f"maxOffsetsPerTrigger {args.max_offsets:,}, availableNow",
            "",
            body,
        ]
        report["fill"] = fill
        report["throughput"] = [vars(r) | {"rows_per_s": r.rows_per_s} for r in results]
    if not args.skip_latency:
        lat = latency(bench, [e for e in engines if e != "raw"])
        text += [
            "",
            f"## Latency: append to Kafka → candle in the memory table (update mode), "
            f"{args.latency_seconds:.0f} s per rate after {args.latency_warmup:.0f} s warm-up",
            "",
            report_latency(lat),
        ]
        report["latency"] = [vars(r) | {"sustained": r.sustained} for r in lat]
    bench.empty_trash()
    report["load_at_end"] = os.getloadavg()
    text.append(f"\nload at end {report['load_at_end']}")
    print("\n".join(text))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    if problems:
        print("\nFAILED: " + "\n".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
