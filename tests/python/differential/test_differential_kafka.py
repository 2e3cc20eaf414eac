"""The seed's pipeline on the Kafka source (a real broker), PySpark 3.5 with the
spark-sql-kafka connector from scripts/pyspark.sh against ferrostream: Kafka's schema, from_json
of the 12-field contract, and the OHLC / stats tables must be equal."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed (scripts/pyspark.sh installs it)")

import pipelines as P  # noqa: E402
import pyarrow as pa  # noqa: E402
from engines import Engine, assert_same, run_stream, table_of  # noqa: E402

from ferrostream.kafka import create_topic  # noqa: E402
from kafka_broker import unique_topic  # noqa: E402

pytestmark = pytest.mark.kafka


def produce(engine: Engine, bootstrap: str, topic: str, records: List[Dict[str, Any]]) -> None:
    """Writes records with ferrostream's batch Kafka writer (key = symbol, as the producer)."""
    (
        engine.spark.createDataFrame(pa.Table.from_pylist(records))
        .write.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("topic", topic)
        .save()
    )


def test_ohlc_staged_batches_update_and_append(
    pyspark_engine: Engine, ferro_engine: Engine, kafka_bootstrap: str, tmp_path: Any
) -> None:
    """One partition, ticks produced a batch at a time while both queries run (processingTime):
    hourly candles in append mode and daily candles in update mode, open/close included."""
    topic = unique_topic("diff")
    assert create_topic(kafka_bootstrap, topic, partitions=1)
    batches = P.tick_batches(seed=41, ordered=True, batches=6)
    queries = []
    for engine in (pyspark_engine, ferro_engine):
        ticks = P.with_event_time(engine, P.kafka_ticks(engine, kafka_bootstrap, topic))
        for label, duration, mode in (("hourly", "1 hour", "append"), ("daily", "1 day", "update")):
            name = engine.unique(label)
            query = (
                P.ohlc(engine, ticks, duration)
                .writeStream.format("memory")
                .queryName(name)
                .outputMode(mode)
                .option("checkpointLocation", str(tmp_path / engine.name / label))
                .trigger(processingTime="100 milliseconds")
                .start()
            )
            queries.append((engine, label, name, query))
    try:
        for rows in batches:
            produce(ferro_engine, kafka_bootstrap, topic, P.key_and_value(rows))
            for _, _, _, query in queries:
                query.processAllAvailable()
    finally:
        for _, _, _, query in queries:
            query.stop()
    tables = {(e.name, label): table_of(e.spark.table(name)) for e, label, name, _ in queries}
    for label in ("hourly", "daily"):
        assert tables[("pyspark", label)][1], label
        assert_same(tables[("pyspark", label)], tables[("ferrostream", label)], label)


def test_two_partitions_keyed_by_symbol_complete_once(
    pyspark_engine: Engine, ferro_engine: Engine, kafka_bootstrap: str, tmp_path: Any
) -> None:
    """The seed's topic layout (2 partitions, key = symbol), a malformed message included:
    the raw Kafka columns and the crypto_daily_stats table (complete mode, trigger once)."""
    topic = unique_topic("diff")
    assert create_topic(kafka_bootstrap, topic, partitions=2)
    records = P.key_and_value([t for rows in P.tick_batches(seed=43, batches=4) for t in rows])
    records.append({"key": "BTCUSDT", "value": '{"symbol": "BTCUSDT", "price": '})
    produce(ferro_engine, kafka_bootstrap, topic, records)
    raw, stats = [], []
    for engine in (pyspark_engine, ferro_engine):
        F = engine.F
        source = (
            engine.spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", kafka_bootstrap)
            .option("subscribe", topic)
            .option("startingOffsets", "earliest")
            .load()
        )
        name, _ = run_stream(
            engine,
            source.select(
                F.col("key").cast("string").alias("key"),
                F.col("value").cast("string").alias("value"),
                "topic",
                "partition",
                "offset",
                "timestampType",
            ),
            mode="append",
            trigger={"once": True},
            checkpoint=tmp_path / engine.name / "raw",
        )
        raw.append(table_of(engine.spark.table(name)))
        ticks = P.with_event_time(engine, P.kafka_ticks(engine, kafka_bootstrap, topic))
        name, _ = run_stream(
            engine,
            P.daily_stats(engine, ticks),
            mode="complete",
            trigger={"once": True},
            checkpoint=tmp_path / engine.name / "stats",
        )
        stats.append(table_of(engine.spark.table(name)))
    assert len(raw[0][1]) == len(records)
    assert_same(*raw, "raw Kafka columns")
    assert_same(*stats, "daily stats")
