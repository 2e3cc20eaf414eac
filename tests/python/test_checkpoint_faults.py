"""A damaged or foreign checkpoint stops the query at start() with the file at fault named;
it never starts over from scratch silently."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ferrostream.errors import PySparkException
from ferrostream.sql import SparkSession
from ferrostream.sql import functions as F

SCHEMA = "symbol STRING, price DOUBLE, event_time LONG"
BASE_MS = 1_732_406_400_000


def write_ticks(folder: Path, name: str, minutes: list[int]) -> None:
    folder.mkdir(exist_ok=True)
    rows = [
        {"symbol": "BTCUSDT", "price": 1.0 + m, "event_time": BASE_MS + m * 60_000} for m in minutes
    ]
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


def start(spark: SparkSession, source: Path, checkpoint: Path, window: str = "1 hour") -> Any:
    return (
        spark.readStream.schema(SCHEMA)
        .option("maxFilesPerTrigger", 1)
        .json(str(source))
        .withColumn("ts", F.timestamp_millis("event_time"))
        .withWatermark("ts", "10 minutes")
        .groupBy(F.window("ts", window), "symbol")
        .agg(F.first("price").alias("open"), F.count("*").alias("ticks"))
        .writeStream.format("memory")
        .queryName("faults")
        .outputMode("append")
        .option("checkpointLocation", str(checkpoint))
        .start()
    )


@pytest.fixture
def used_checkpoint(spark: SparkSession, tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint after two committed batches."""
    source, checkpoint = tmp_path / "in", tmp_path / "chk"
    write_ticks(source, "a.json", [1, 2, 3])
    write_ticks(source, "b.json", [65, 70])
    q = start(spark, source, checkpoint)
    q.processAllAvailable()
    q.stop()
    assert sorted(p.name for p in (checkpoint / "commits").iterdir()) == ["0", "1"]
    return source, checkpoint


def test_restart_from_an_intact_checkpoint_works(
    spark: SparkSession, used_checkpoint: tuple[Path, Path]
) -> None:
    source, checkpoint = used_checkpoint
    write_ticks(source, "c.json", [200])
    os.utime(source / "c.json", (2_000_000_000, 2_000_000_000))
    q = start(spark, source, checkpoint)
    q.processAllAvailable()
    q.stop()
    assert q.exception() is None
    assert sorted(p.name for p in (checkpoint / "commits").iterdir()) == ["0", "1", "2"]


@pytest.mark.parametrize(
    "damaged, damage",
    [
        ("offsets/1", "truncate"),
        ("state/1.json", "truncate"),
        ("state/1.json", "garbage"),
        ("metadata", "garbage"),
        ("state/1.json", "delete"),
    ],
)
def test_damaged_checkpoint_file_is_named(
    spark: SparkSession, used_checkpoint: tuple[Path, Path], damaged: str, damage: str
) -> None:
    _, checkpoint = used_checkpoint
    path = checkpoint / damaged
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00\xffnot json")
    else:
        path.unlink()
    source = checkpoint.parent / "in"
    with pytest.raises(PySparkException) as raised:
        start(spark, source, checkpoint)
    assert str(path) in str(raised.value)
    # Nothing was rewritten under the damaged checkpoint.
    assert sorted(p.name for p in (checkpoint / "commits").iterdir()) == ["0", "1"]


def test_another_aggregation_is_refused(
    spark: SparkSession, used_checkpoint: tuple[Path, Path]
) -> None:
    source, checkpoint = used_checkpoint
    with pytest.raises(PySparkException, match="another aggregation"):
        start(spark, source, checkpoint, window="1 day")


def test_another_source_is_refused(
    spark: SparkSession, used_checkpoint: tuple[Path, Path], tmp_path: Path
) -> None:
    _, checkpoint = used_checkpoint
    other = tmp_path / "other"
    write_ticks(other, "a.json", [1])
    with pytest.raises(PySparkException, match="belongs to a query reading"):
        start(spark, other, checkpoint)


def test_file_with_an_older_mtime_is_taken_once_after_restart(
    spark: SparkSession, tmp_path: Path
) -> None:
    """The checkpoint keeps the list of files taken, so a late file whose modification time
    sorts before the others is not confused with them on restart."""
    source, checkpoint = tmp_path / "in", tmp_path / "chk"
    write_ticks(source, "a.json", [1])
    write_ticks(source, "b.json", [2])
    seen: list[int] = []

    def record(df: Any, batch_id: int) -> None:
        seen.extend(int(m) for m in df.toPandas()["event_time"])

    def run() -> None:
        q = (
            spark.readStream.schema(SCHEMA)
            .json(str(source))
            .writeStream.foreachBatch(record)
            .option("checkpointLocation", str(checkpoint))
            .start()
        )
        q.processAllAvailable()
        q.stop()

    run()
    write_ticks(source, "c.json", [3])
    os.utime(source / "c.json", (0, 0))
    run()
    assert sorted((t - BASE_MS) // 60_000 for t in seen) == [1, 2, 3]
