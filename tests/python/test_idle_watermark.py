"""Quiet streams: with `watermarkIdleTimeout`, the watermark moves with processing time once
input stops, so the last window is emitted; without it (Spark's semantics) it is not."""

from __future__ import annotations

import time

from ferrostream.sql import SparkSession
from ferrostream.sql import functions as F
from ferrostream.testing import MemoryStream


def start(spark: SparkSession, name: str, idle: bool):  # type: ignore[no-untyped-def]
    stream = MemoryStream(spark, "symbol STRING, price DOUBLE, event_time LONG")
    candles = (
        stream.toDF()
        .withColumn("ts", F.timestamp_millis("event_time"))
        .withWatermark("ts", "0 seconds")
        .groupBy(F.window("ts", "2 seconds"), "symbol")
        .agg(F.last("price").alias("close"))
    )
    writer = candles.writeStream.format("memory").queryName(name).outputMode("append")
    if idle:
        writer = writer.option("watermarkIdleTimeout", "1 second")
    query = writer.start()
    stream.addData([("BTCUSDT", 1.0, 500), ("BTCUSDT", 2.0, 900)])
    query.processAllAvailable()
    return query


def rows_after(spark: SparkSession, name: str, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        count = spark.table(name).count()
        if count:
            return count
        time.sleep(0.1)
    return spark.table(name).count()


def test_idle_timeout_emits_the_last_window(spark: SparkSession) -> None:
    query = start(spark, "idle_on", idle=True)
    try:
        assert rows_after(spark, "idle_on", 10) == 1
        assert spark.table("idle_on").collect()[0]["close"] == 2.0
    finally:
        query.stop()


def test_without_idle_timeout_the_last_window_waits_for_data(spark: SparkSession) -> None:
    query = start(spark, "idle_off", idle=False)
    try:
        assert rows_after(spark, "idle_off", 3) == 0
    finally:
        query.stop()
