"""Query control and the smaller sources and sinks: rate, console, triggers, status,
progress, spark.streams, and a failing query's exception."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ferrostream.errors import StreamingQueryException
from ferrostream.sql import SparkSession
from ferrostream.sql import functions as F
from ferrostream.testing import MemoryStream


def test_rate_source_counts_up_with_timestamps(spark: SparkSession) -> None:
    df = spark.readStream.format("rate").option("rowsPerSecond", 200).load()
    assert df.columns == ["timestamp", "value"]
    q = df.writeStream.format("memory").queryName("rate_rows").start()
    try:
        time.sleep(1.2)
        q.processAllAvailable()
        values = sorted(r["value"] for r in spark.table("rate_rows").collect())
    finally:
        q.stop()
    assert len(values) >= 150
    assert values == list(range(len(values)))


def test_console_sink_prints_spark_batches(
    spark: SparkSession, capfd: pytest.CaptureFixture[str]
) -> None:
    stream = MemoryStream(spark, "symbol STRING, price DOUBLE")
    q = stream.toDF().writeStream.format("console").option("truncate", False).start()
    try:
        stream.addData([("BTCUSDT", 84569.37)])
        q.processAllAvailable()
    finally:
        q.stop()
    out = capfd.readouterr().out
    assert "Batch: 0" in out
    assert "|symbol |price   |" in out
    assert "|BTCUSDT|84569.37|" in out


def test_trigger_once_and_available_now_stop_by_themselves(
    spark: SparkSession, tmp_path: Path
) -> None:
    (tmp_path / "a.json").write_text('{"x": 1}\n{"x": 2}\n')
    (tmp_path / "b.json").write_text('{"x": 3}\n')
    df = spark.readStream.schema("x LONG").option("maxFilesPerTrigger", 1).json(str(tmp_path))
    once = df.writeStream.format("memory").queryName("once_rows").trigger(once=True).start()
    assert once.awaitTermination(30)
    assert spark.table("once_rows").count() == 3, "once ignores maxFilesPerTrigger, as Spark"
    now = df.writeStream.format("memory").queryName("now_rows").trigger(availableNow=True).start()
    assert now.awaitTermination(30)
    assert spark.table("now_rows").count() == 3
    assert len(now.recentProgress) == 2, "availableNow honours maxFilesPerTrigger"
    assert not now.isActive


def test_status_progress_and_manager(spark: SparkSession) -> None:
    stream = MemoryStream(spark, "x LONG")
    q = stream.toDF().writeStream.format("memory").queryName("managed").start()
    try:
        assert q.isActive and q.name == "managed"
        assert spark.streams.get(q.id) is not None
        assert q.id in [a.id for a in spark.streams.active]
        stream.addData([(1,), (2,)])
        q.processAllAvailable()
        progress = q.lastProgress
        assert progress is not None
        assert progress["numInputRows"] == 2 and progress["batchId"] == 0
        assert progress["sources"][0]["endOffset"] == 1
        assert progress["sink"]["numOutputRows"] == 2
        assert set(q.status) == {"message", "isDataAvailable", "isTriggerActive"}
        assert "<table>" in q._repr_html_()
    finally:
        q.stop()
    assert not q.isActive
    assert q.exception() is None


def test_failing_query_reports_its_exception(spark: SparkSession) -> None:
    stream = MemoryStream(spark, "value STRING")
    parsed = stream.toDF().select(F.from_json("value", "a LONG", {"mode": "FAILFAST"}).alias("d"))
    q = parsed.writeStream.format("memory").queryName("failfast").start()
    stream.addData([('{"a": 1}',), ('{"a": ',)])
    with pytest.raises(StreamingQueryException, match="FAILFAST"):
        q.processAllAvailable()
    assert not q.isActive
    exception = q.exception()
    assert exception is not None and "malformed record" in str(exception)
