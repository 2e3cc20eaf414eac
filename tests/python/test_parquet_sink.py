"""Hourly OHLC to Parquet partitioned by symbol, exactly once across a restart from the
checkpoint, readable by spark.read.parquet (through the manifest) and by pyarrow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pyarrow.dataset as ds
import pytest

from ferrostream.errors import IllegalArgumentException
from ferrostream.sql import SparkSession
from ferrostream.sql import functions as F

HOUR_MS = 3_600_000
BASE_MS = 1_732_406_400_000
SCHEMA = "symbol STRING, price DOUBLE, volume DOUBLE, event_time LONG"


def tick(symbol: str, minutes: int, price: float) -> Dict[str, Any]:
    return {
        "symbol": symbol,
        "price": price,
        "volume": 1.0,
        "event_time": BASE_MS + minutes * 60_000,
    }


def write(folder: Path, name: str, rows: List[Dict[str, Any]]) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


def start(spark: SparkSession, source: Path, out: Path, checkpoint: Path):  # type: ignore[no-untyped-def]
    hourly = (
        spark.readStream.schema(SCHEMA)
        .json(str(source))
        .withColumn("event_timestamp", F.timestamp_millis("event_time"))
        .withWatermark("event_timestamp", "1 hour")
        .groupBy(F.window("event_timestamp", "1 hour"), "symbol")
        .agg(
            F.first("price").alias("open"),
            F.last("price").alias("close"),
            F.count("*").alias("ticks"),
        )
        .select(F.col("window.start").alias("window_start"), "symbol", "open", "close", "ticks")
    )
    return (
        hourly.writeStream.format("parquet")
        .option("checkpointLocation", str(checkpoint))
        .partitionBy("symbol")
        .outputMode("append")
        .start(str(out))
    )


def test_ohlc_to_parquet_exactly_once_across_restart(spark: SparkSession, tmp_path: Path) -> None:
    source, out, checkpoint = tmp_path / "in", tmp_path / "out", tmp_path / "chk"
    write(
        source,
        "a.json",
        [tick("BTCUSDT", 5, 10.0), tick("ETHUSDT", 6, 5.0), tick("BTCUSDT", 50, 11.0)],
    )
    write(source, "b.json", [tick("BTCUSDT", 70, 12.0), tick("BTCUSDT", 130, 13.0)])
    q = start(spark, source, out, checkpoint)
    q.processAllAvailable()
    q.stop()
    # Watermark = 130 min − 1 h = 70 min: only hour 0 is closed.
    first = spark.read.parquet(str(out)).collect()
    assert sorted((r["symbol"], r["open"], r["close"], r["ticks"]) for r in first) == [
        ("BTCUSDT", 10.0, 11.0, 2),
        ("ETHUSDT", 5.0, 5.0, 1),
    ]

    write(source, "c.json", [tick("BTCUSDT", 300, 14.0)])
    q = start(spark, source, out, checkpoint)
    q.processAllAvailable()
    q.stop()
    rows = spark.read.parquet(str(out)).collect()
    got = sorted(
        (r["symbol"], r["window_start"].hour, r["open"], r["close"], r["ticks"]) for r in rows
    )
    # Hours 1 and 2 closed after the restart, from state restored from the checkpoint;
    # hour 0 is there once.
    assert got == [
        ("BTCUSDT", 0, 10.0, 11.0, 2),
        ("BTCUSDT", 1, 12.0, 12.0, 1),
        ("BTCUSDT", 2, 13.0, 13.0, 1),
        ("ETHUSDT", 0, 5.0, 5.0, 1),
    ]
    dataset = ds.dataset(str(out), format="parquet", partitioning="hive")
    assert dataset.to_table().num_rows == len(rows)
    assert {p.name for p in out.iterdir() if p.is_dir()} == {
        "symbol=BTCUSDT",
        "symbol=ETHUSDT",
        "_ferrostream_metadata",
    }


def test_file_sink_needs_a_checkpoint(spark: SparkSession, tmp_path: Path) -> None:
    df = spark.readStream.schema(SCHEMA).json(str(tmp_path))
    with pytest.raises(IllegalArgumentException, match="checkpointLocation"):
        df.writeStream.format("parquet").start(str(tmp_path / "out"))
