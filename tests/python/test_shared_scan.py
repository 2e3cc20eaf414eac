"""Queries of one session on the same topic with the same parsing share the reading and
parsing of each chunk (src/exec/shared_scan/). Sharing must change nothing a user sees:
every query's output, malformed-row counts and event-time ties are the same as when each
query reads for itself, and match candles computed here from the produced ticks."""

from __future__ import annotations

import json
import random
import threading
from collections import defaultdict
from typing import Any

import pyarrow as pa
import pytest

from ferrostream.errors import IllegalArgumentException
from ferrostream.kafka import create_topic
from ferrostream.sql import DataFrame, SparkSession
from ferrostream.sql import functions as F

SYMBOLS = [f"S{i:02d}USDT" for i in range(12)]
TICKS = 24_000
MALFORMED = 7
SCHEMA = "symbol STRING, price DOUBLE, volume DOUBLE, event_time LONG"
HOUR_MS = 3_600_000
START_MS = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS


def ticks(count: int = TICKS) -> list[dict[str, Any]]:
    """Ticks over six hours; many share a millisecond within a symbol, so `first` and `last`
    need the arrival order (the Kafka offset) to break ties."""
    rng = random.Random(7)
    rows = []
    for i in range(count):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        event_time = START_MS + (i * 6 * HOUR_MS) // count // 1000 * 1000
        rows.append(
            {
                "symbol": symbol,
                "price": round(rng.uniform(10, 20), 2),
                "volume": 1.0,
                "event_time": event_time,
            }
        )
    return rows


def produce(spark: SparkSession, bootstrap: str, topic: str, rows: list[dict[str, Any]]) -> None:
    values = [json.dumps(r) for r in rows]
    keys = [r["symbol"] for r in rows]
    for n in range(MALFORMED):
        at = (n + 1) * len(values) // (MALFORMED + 1)
        values.insert(at, '{"symbol": "S00USDT", "price": ')
        keys.insert(at, "S00USDT")
    partitions = [SYMBOLS.index(k) % 2 for k in keys]
    (
        spark.createDataFrame(pa.table({"key": keys, "value": values, "partition": partitions}))
        .write.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("topic", topic)
        .save()
    )


def expected_candles(rows: list[dict[str, Any]], window_ms: int) -> dict[tuple, tuple]:
    """OHLC per (window start, symbol) in produce order: a symbol's ticks are in one
    partition, so produce order is offset order, which breaks event-time ties."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["event_time"] - r["event_time"] % window_ms, r["symbol"])].append(r)
    out = {}
    for key, group in groups.items():
        first = min(range(len(group)), key=lambda i: (group[i]["event_time"], i))
        last = max(range(len(group)), key=lambda i: (group[i]["event_time"], i))
        prices = [g["price"] for g in group]
        out[key] = (
            group[first]["price"],
            max(prices),
            min(prices),
            group[last]["price"],
            len(group),
        )
    return out


def run(
    spark: SparkSession,
    bootstrap: str,
    topic: str,
    shared: bool,
    tag: str,
    max_offsets: int | None = 5_000,
) -> dict[str, Any]:
    spark.conf.set("ferrostream.sharedScans", "true" if shared else "false")

    def parsed() -> Any:
        reader = (
            spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", bootstrap)
            .option("subscribe", topic)
            .option("startingOffsets", "earliest")
        )
        if max_offsets is not None:
            reader = reader.option("maxOffsetsPerTrigger", max_offsets)
        return (
            reader.load()
            .select(
                F.from_json(F.col("value").cast("string"), SCHEMA).alias("t"),
                "partition",
                "offset",
            )
            .select("t.*", "partition", "offset")
            .withColumn("ts", F.timestamp_millis("event_time"))
            .withWatermark("ts", "1 hour")
        )

    def candles(duration: str) -> Any:
        return (
            parsed()
            .groupBy(F.window("ts", duration), "symbol")
            .agg(
                F.first("price").alias("open"),
                F.max("price").alias("high"),
                F.min("price").alias("low"),
                F.last("price").alias("close"),
                F.count("*").alias("n"),
            )
        )

    # Sharing starts when a query joins its group, at `start()`. On a loaded machine the first
    # query can finish batches before the others start, so its first batch waits in the sink
    # until all three have started: every later chunk is then claimed by a group of three.
    started = threading.Event()
    hourly: list[dict[str, Any]] = []

    def hold_first_batch(df: DataFrame, batch_id: int) -> None:
        if batch_id == 0:
            assert started.wait(60), "the other queries did not start"
        hourly[:] = df.toArrow().to_pylist()

    queries = {
        "hourly": candles("1 hour")
        .writeStream.foreachBatch(hold_first_batch)
        .outputMode("complete")
        .trigger(availableNow=True)
        .start(),
        "daily": candles("1 day")
        .writeStream.format("memory")
        .queryName(f"daily_{tag}")
        .outputMode("complete")
        .trigger(availableNow=True)
        .start(),
        "rows": parsed()
        .select("symbol", "price", "partition", "offset")
        .writeStream.format("memory")
        .queryName(f"rows_{tag}")
        .trigger(availableNow=True)
        .start(),
    }
    started.set()
    for q in queries.values():
        assert q.awaitTermination(120), "the query did not finish"
        assert q.exception() is None
    result: dict[str, Any] = {"progress": {k: q.recentProgress for k, q in queries.items()}}
    tables = {"hourly": hourly, "daily": spark.table(f"daily_{tag}").toArrow().to_pylist()}
    for name, table in tables.items():
        result[name] = {
            (int(r["window"]["start"].timestamp() * 1000), r["symbol"]): (
                r["open"],
                r["high"],
                r["low"],
                r["close"],
                r["n"],
            )
            for r in table
        }
    # A memory table's row order is not defined (as in Spark): compare as sorted lists.
    result["rows"] = sorted(
        spark.table(f"rows_{tag}").toArrow().to_pylist(),
        key=lambda r: (r["partition"], r["offset"]),
    )
    return result


def chunk_counts(progress: list[dict[str, Any]]) -> tuple[int, int]:
    metrics = [p["sources"][0]["metrics"] for p in progress]
    return (
        sum(int(m["chunksScanned"]) for m in metrics),
        sum(int(m["chunksShared"]) for m in metrics),
    )


def test_shared_scans_change_no_result_and_scan_each_chunk_about_once(
    spark: SparkSession, kafka_bootstrap: str, kafka_topic: str
) -> None:
    assert create_topic(kafka_bootstrap, kafka_topic, partitions=2)
    rows = ticks()
    produce(spark, kafka_bootstrap, kafka_topic, rows)
    try:
        alone = run(spark, kafka_bootstrap, kafka_topic, shared=False, tag="alone")
        shared = run(spark, kafka_bootstrap, kafka_topic, shared=True, tag="shared")
    finally:
        spark.conf.set("ferrostream.sharedScans", "true")

    assert shared["hourly"] == expected_candles(rows, HOUR_MS)
    assert shared["daily"] == expected_candles(rows, 24 * HOUR_MS)
    assert alone["hourly"] == shared["hourly"]
    assert alone["daily"] == shared["daily"]
    assert shared["rows"] == alone["rows"]
    offsets = [(r["partition"], r["offset"]) for r in shared["rows"]]
    assert len(offsets) == len(set(offsets)) == TICKS + MALFORMED
    assert sum(r["symbol"] is None for r in shared["rows"]) == MALFORMED

    for name in ("hourly", "daily", "rows"):
        for run_ in (alone, shared):
            malformed = sum(p["numMalformedRows"] for p in run_["progress"][name])
            assert malformed == MALFORMED, (name, malformed)
            read = sum(p["numInputRows"] for p in run_["progress"][name])
            assert read == TICKS + MALFORMED

    scanned_alone = [chunk_counts(alone["progress"][n]) for n in ("hourly", "daily", "rows")]
    assert all(shared_ == 0 for _, shared_ in scanned_alone)
    per_query = scanned_alone[0][0]
    scanned, taken = map(
        sum, zip(*(chunk_counts(shared["progress"][n]) for n in alone["progress"]))
    )
    assert scanned + taken == 3 * per_query
    # Each chunk is scanned by one query of the three, save the first batch: the first query
    # may scan it before the others joined, and then one of them scans it again.
    first_batch = chunk_counts(alone["progress"]["hourly"][:1])[0]
    assert scanned <= per_query + first_batch, (scanned, taken, per_query, first_batch)


def test_a_batch_larger_than_the_shared_memory_is_still_scanned_once(
    spark: SparkSession, kafka_bootstrap: str, kafka_topic: str
) -> None:
    """availableNow without maxOffsetsPerTrigger reads the whole topic as one batch, here ~100
    chunks against room for one or two. Each query must take the others' chunks as they
    come: when a query took them only after computing its own, the chunks it had yet to take
    filled the cache, the other query waited a second per chunk and then dropped them, and
    they were read and parsed again (the seed pipeline took 64 s instead of 3)."""
    assert create_topic(kafka_bootstrap, kafka_topic, partitions=2)
    rows = ticks(800_000)
    produce(spark, kafka_bootstrap, kafka_topic, rows)
    spark.conf.set("ferrostream.sharedScans.maxMemory", "1536k")
    try:
        shared = run(spark, kafka_bootstrap, kafka_topic, shared=True, tag="big", max_offsets=None)
    finally:
        spark.conf.set("ferrostream.sharedScans.maxMemory", "64m")

    assert shared["hourly"] == expected_candles(rows, HOUR_MS)
    assert shared["daily"] == expected_candles(rows, 24 * HOUR_MS)
    assert len(shared["rows"]) == len(rows) + MALFORMED
    progress = shared["progress"]
    assert all(len([p for p in progress[n] if p["numInputRows"]]) == 1 for n in progress)
    per_query = sum(chunk_counts(progress["hourly"]))
    scanned, taken = map(sum, zip(*(chunk_counts(progress[n]) for n in progress)))
    assert scanned + taken == 3 * per_query
    # The first query starts reading alone; a chunk it scanned before the others joined is
    # scanned again by each of them. Nothing else is scanned twice.
    assert scanned <= per_query + 10, (scanned, taken, per_query)


@pytest.mark.parametrize("value", ["lots", "0", "-1m", "1.5g"])
def test_a_bad_shared_scan_memory_is_refused_with_its_name(
    spark: SparkSession, kafka_bootstrap: str, kafka_topic: str, value: str
) -> None:
    assert create_topic(kafka_bootstrap, kafka_topic, partitions=1)
    spark.conf.set("ferrostream.sharedScans.maxMemory", value)
    try:
        stream = (
            spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", kafka_bootstrap)
            .option("subscribe", kafka_topic)
            .load()
        )
        with pytest.raises(
            IllegalArgumentException,
            match=f"'ferrostream.sharedScans.maxMemory' must be a positive size.*'{value}'",
        ):
            stream.writeStream.format("memory").queryName("bad_cap").start()
    finally:
        spark.conf.set("ferrostream.sharedScans.maxMemory", "64m")
