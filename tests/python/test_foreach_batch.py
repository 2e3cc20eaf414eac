"""writeStream.foreachBatch: the user's function gets each micro-batch as a DataFrame with its
id, a failing function fails the query with the Python traceback, and a batch replayed after
a crash comes with the same id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Tuple

import pytest

from ferrostream.errors import PySparkTypeError, StreamingQueryException
from ferrostream.sql import DataFrame, SparkSession
from ferrostream.sql import functions as F
from ferrostream.testing import MemoryStream


def test_each_batch_arrives_with_its_id(spark: SparkSession) -> None:
    stream = MemoryStream(spark, "symbol STRING, price DOUBLE")
    seen: List[Tuple[int, List[Tuple[str, float]]]] = []

    def collect(df: DataFrame, batch_id: int) -> None:
        pdf = df.toPandas()
        assert df.columns == ["symbol", "price"]
        seen.append((batch_id, list(zip(pdf["symbol"], pdf["price"]))))

    q = stream.toDF().where(F.col("price") > 0).writeStream.foreachBatch(collect).start()
    try:
        stream.addData([("BTCUSDT", 1.5), ("ETHUSDT", -1.0)])
        q.processAllAvailable()
        stream.addData([("ETHUSDT", 2.5)])
        q.processAllAvailable()
    finally:
        q.stop()
    assert seen == [(0, [("BTCUSDT", 1.5)]), (1, [("ETHUSDT", 2.5)])]
    assert q.lastProgress is not None
    assert q.lastProgress["sink"]["description"] == "ForeachBatchSink"


def test_batch_frame_supports_batch_operations(spark: SparkSession) -> None:
    stream = MemoryStream(spark, "symbol STRING, price DOUBLE")
    totals: List[Any] = []

    def summarise(df: DataFrame, batch_id: int) -> None:
        rows = df.groupBy("symbol").agg(F.sum("price").alias("total")).orderBy("symbol").collect()
        totals.append([(r["symbol"], r["total"]) for r in rows])

    q = stream.toDF().writeStream.foreachBatch(summarise).start()
    try:
        stream.addData([("b", 1.0), ("a", 2.0), ("b", 3.0)])
        q.processAllAvailable()
    finally:
        q.stop()
    assert totals == [[("a", 2.0), ("b", 4.0)]]


def test_failing_function_fails_the_query_with_its_traceback(spark: SparkSession) -> None:
    stream = MemoryStream(spark, "x LONG")

    def broken(df: DataFrame, batch_id: int) -> None:
        raise ValueError(f"cannot store batch {batch_id}")

    q = stream.toDF().writeStream.foreachBatch(broken).start()
    stream.addData([(1,)])
    with pytest.raises(StreamingQueryException) as raised:
        q.awaitTermination(30)
    message = str(raised.value)
    assert "ValueError: cannot store batch 0" in message
    assert "in broken" in message  # the traceback's frame
    assert not q.isActive
    error = q.exception()
    assert error is not None and "cannot store batch 0" in str(error)


def test_function_is_required(spark: SparkSession) -> None:
    stream = MemoryStream(spark, "x LONG")
    with pytest.raises(PySparkTypeError, match="foreachBatch needs a function"):
        stream.toDF().writeStream.foreachBatch("not a function")  # type: ignore[arg-type]


def test_replayed_batch_keeps_its_id(spark: SparkSession, tmp_path: Path) -> None:
    source, checkpoint = tmp_path / "in", tmp_path / "chk"
    source.mkdir()
    (source / "a.json").write_text(json.dumps({"x": 1}) + "\n")
    calls: List[Tuple[int, List[int]]] = []

    def record(df: DataFrame, batch_id: int) -> None:
        calls.append((batch_id, sorted(df.toPandas()["x"].tolist())))

    def start() -> Any:
        return (
            spark.readStream.schema("x LONG")
            .json(str(source))
            .writeStream.foreachBatch(record)
            .option("checkpointLocation", str(checkpoint))
            .start()
        )

    q = start()
    q.processAllAvailable()
    q.stop()
    (source / "b.json").write_text(json.dumps({"x": 2}) + "\n")
    q = start()
    q.processAllAvailable()
    q.stop()
    assert calls == [(0, [1]), (1, [2])]
    # A crash after batch 1 ran but before it committed: its commit and state are missing.
    (checkpoint / "commits" / "1").unlink()
    (checkpoint / "state" / "1.json").unlink()
    q = start()
    q.processAllAvailable()
    q.stop()
    assert calls[2:] == [(1, [2])]
