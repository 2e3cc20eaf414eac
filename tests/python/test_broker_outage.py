"""The broker goes away mid-run and comes back: the query waits (and says so in its status)
instead of failing, then goes on by itself with every message once."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator, List

import pyarrow as pa
import pytest

from ferrostream.kafka import create_topic
from ferrostream.sql import SparkSession

KAFKA_SH = Path(__file__).resolve().parents[2] / "scripts" / "kafka.sh"


def kafka_sh(state: Path, *args: str) -> str:
    env = {**os.environ, "FERROSTREAM_KAFKA_STATE": str(state)}
    done = subprocess.run(
        ["bash", str(KAFKA_SH), *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A broker of this test's own, so restarting it disturbs no other test."""
    state = tmp_path / "kafka"
    bootstrap = kafka_sh(state, "start")
    try:
        yield bootstrap, state
    finally:
        kafka_sh(state, "stop")


def produce(spark: SparkSession, bootstrap: str, topic: str, values: List[str]) -> None:
    rows = [{"key": v, "value": v} for v in values]
    (
        spark.createDataFrame(pa.Table.from_pylist(rows))
        .write.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("topic", topic)
        .save()
    )


def wait_for_rows(spark: SparkSession, rows: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while spark.table("outage").count() < rows:
        assert time.monotonic() < deadline, f"fewer than {rows} rows after {timeout_s} s"
        time.sleep(0.1)


def test_query_waits_out_a_broker_restart(
    spark: SparkSession, own_broker: tuple[str, Path]
) -> None:
    bootstrap, state = own_broker
    topic = "outage"
    assert create_topic(bootstrap, topic, partitions=2)
    produce(spark, bootstrap, topic, [f"a{i}" for i in range(1000)])
    q = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("kafkaConsumer.pollTimeoutMs", 1000)
        .load()
        .selectExpr("CAST(value AS STRING) AS value", "partition", "offset")
        .writeStream.format("memory")
        .queryName("outage")
        .start()
    )
    try:
        wait_for_rows(spark, 1000)

        restart = threading.Thread(target=kafka_sh, args=(state, "restart", "--down-seconds", "4"))
        restart.start()
        seen_waiting = False
        while restart.is_alive():
            seen_waiting |= "Waiting for the source" in q.status["message"]
            assert q.isActive, q.exception()
            time.sleep(0.1)
        restart.join()
        assert seen_waiting, "the status never said the query waits for the broker"
        assert q.isActive, q.exception()

        produce(spark, bootstrap, topic, [f"b{i}" for i in range(1000)])
        wait_for_rows(spark, 2000)
        q.processAllAvailable()
        table = spark.table("outage").toArrow()
    finally:
        q.stop()
    assert q.exception() is None
    values = table.column("value").to_pylist()
    assert sorted(values) == sorted([f"a{i}" for i in range(1000)] + [f"b{i}" for i in range(1000)])
    offsets = list(zip(table.column("partition").to_pylist(), table.column("offset").to_pylist()))
    assert len(set(offsets)) == len(offsets) == 2000
