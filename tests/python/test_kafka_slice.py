"""The first vertical slice against a real broker: Kafka → streaming query → memory table →
Arrow, with Spark's Kafka schema and exactly the produced offsets."""

from __future__ import annotations

import time
from collections import Counter

import pyarrow as pa
import pytest

from ferrostream.errors import IllegalArgumentException, PySparkException
from ferrostream.kafka import create_topic
from ferrostream.sql import SparkSession

MESSAGES = 100_000


def produce(spark: SparkSession, bootstrap: str, topic: str, rows: list[dict]) -> None:
    (
        spark.createDataFrame(pa.Table.from_pylist(rows))
        .write.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("topic", topic)
        .save()
    )


def test_reads_every_produced_offset_once_with_spark_schema(
    spark: SparkSession, kafka_bootstrap: str, kafka_topic: str
) -> None:
    assert create_topic(kafka_bootstrap, kafka_topic, partitions=2)
    rows = [
        {"key": f"k{i % 10}", "value": f"tick-{i}", "partition": i % 2} for i in range(MESSAGES)
    ]
    produce(spark, kafka_bootstrap, kafka_topic, rows)

    df = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", kafka_bootstrap)
        .option("subscribe", kafka_topic)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", 30_000)
        .load()
    )
    q = df.writeStream.format("memory").queryName("raw_slice").start()
    try:
        q.processAllAvailable()
        table = spark.table("raw_slice").toArrow()
        also = pa.table(spark.table("raw_slice"))
    finally:
        q.stop()

    assert table.schema.names == [
        "key",
        "value",
        "topic",
        "partition",
        "offset",
        "timestamp",
        "timestampType",
    ]
    types = [str(t) for t in table.schema.types]
    assert types == [
        "binary",
        "binary",
        "string",
        "int32",
        "int64",
        "timestamp[us, tz=UTC]",
        "int32",
    ]
    assert also.num_rows == table.num_rows == MESSAGES
    per_partition: dict[int, list[int]] = {0: [], 1: []}
    for partition, offset in zip(table["partition"].to_pylist(), table["offset"].to_pylist()):
        per_partition[partition].append(offset)
    for partition, offsets in per_partition.items():
        assert sorted(offsets) == list(range(MESSAGES // 2)), f"partition {partition}"
    values = Counter(v.decode() for v in table["value"].to_pylist())
    assert values == Counter(r["value"] for r in rows)
    assert set(table["topic"].to_pylist()) == {kafka_topic}
    # maxOffsetsPerTrigger split the backlog into several batches.
    progress = q.recentProgress
    assert len(progress) >= 4
    assert all(p["numInputRows"] <= 30_000 for p in progress)
    assert sum(p["numInputRows"] for p in progress) == MESSAGES


def test_missing_subscription_names_the_options(spark: SparkSession, kafka_bootstrap: str) -> None:
    df = spark.readStream.format("kafka").option("kafka.bootstrap.servers", kafka_bootstrap).load()
    with pytest.raises(
        IllegalArgumentException, match="'subscribe', 'subscribePattern' or 'assign'"
    ):
        df.writeStream.format("memory").queryName("no_subscription").start()


def test_unreachable_broker_fails_start_with_the_address(spark: SparkSession) -> None:
    df = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", "127.0.0.1:1")
        .option("subscribe", "nowhere")
        .option("kafkaConsumer.pollTimeoutMs", 2000)
        .load()
    )
    started = time.monotonic()
    with pytest.raises(PySparkException, match="127.0.0.1:1"):
        df.writeStream.format("memory").queryName("unreachable").start()
    assert time.monotonic() - started < 30


def test_bad_starting_offsets_are_refused(spark: SparkSession, kafka_bootstrap: str) -> None:
    df = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", kafka_bootstrap)
        .option("subscribe", "t")
        .option("startingOffsets", "yesterday")
        .load()
    )
    with pytest.raises(IllegalArgumentException, match="startingOffsets"):
        df.writeStream.format("memory").queryName("bad_offsets").start()


def test_a_write_the_brokers_refuse_fails_and_says_how_many(
    spark: SparkSession, kafka_bootstrap: str
) -> None:
    df = spark.createDataFrame(pa.table({"value": ["x", "y"]}))
    with pytest.raises(PySparkException, match=r"2 of 2 message\(s\) were not delivered"):
        (
            df.write.format("kafka")
            .option("kafka.bootstrap.servers", kafka_bootstrap)
            .option("topic", "not/a/valid/topic")
            .option("kafka.message.timeout.ms", 5000)
            .save()
        )


def test_repeated_writes_reuse_the_producer(
    spark: SparkSession, kafka_bootstrap: str, kafka_topic: str
) -> None:
    assert create_topic(kafka_bootstrap, kafka_topic, partitions=1)
    for i in range(3):
        produce(spark, kafka_bootstrap, kafka_topic, [{"value": f"v{i}"}])
    started = time.monotonic()
    for i in range(3, 13):
        produce(spark, kafka_bootstrap, kafka_topic, [{"value": f"v{i}"}])
    # A new producer per write costs ~0.6 s of connecting; ten writes on one stay far below.
    assert time.monotonic() - started < 3.0
    table = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", kafka_bootstrap)
        .option("subscribe", kafka_topic)
        .load()
        .toArrow()
    )
    assert sorted(table.column("value").to_pylist()) == sorted(f"v{i}".encode() for i in range(13))
