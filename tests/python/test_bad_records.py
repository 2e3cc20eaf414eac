"""Malformed JSON never stops a query and is not lost: with `option("badRecordsPath", dir)`
on the reader, each record `from_json` could not parse is kept with its topic, partition
and offset (or its file and line), once, even when a batch runs again after a crash; in
FAILFAST mode the error names the offset."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from ferrostream.errors import StreamingQueryException
from ferrostream.kafka import create_topic
from ferrostream.sql import SparkSession
from ferrostream.sql import functions as F

SCHEMA = "symbol STRING, price DOUBLE, event_time LONG"
VALID = 3_000
# (position in the produced stream, value): truncated, an array, a wrongly typed field,
# invalid UTF-8, two objects, and the very last message, so the last batch has one too.
MALFORMED: list[tuple[int, bytes]] = [
    (17, b'{"symbol": "S1", "price": '),
    (400, b"[1, 2, 3]"),
    (1_201, b'{"symbol": "S1", "price": "cheap", "event_time": 1}'),
    (2_222, b'{"symbol": "S\xff\xfe", "price": 1.0, "event_time": 1}'),
    (2_900, b'{"symbol": "S1"} {"symbol": "S2"}'),
    (VALID + 5, b"{not json"),
]


def produce(spark: SparkSession, bootstrap: str, topic: str) -> dict[bytes, tuple[int, int]]:
    """Writes the stream to two partitions; returns each malformed value's (partition,
    offset), known because a fresh partition numbers its messages from 0 in write order."""
    values = [
        json.dumps({"symbol": f"S{i % 7}", "price": 1.0 + i, "event_time": i}).encode()
        for i in range(VALID)
    ]
    for at, value in MALFORMED:
        values.insert(at, value)
    partitions = [i % 2 for i in range(len(values))]
    spark.createDataFrame(
        pa.table({"value": pa.array(values, pa.binary()), "partition": partitions})
    ).write.format("kafka").option("kafka.bootstrap.servers", bootstrap).option(
        "topic", topic
    ).save()
    where = {}
    for index, value in enumerate(values):
        if any(value == bad for _, bad in MALFORMED):
            where[value] = (index % 2, index // 2)
    return where


def parsed(
    spark: SparkSession, bootstrap: str, topic: str, bad_path: Path, mode: str = "PERMISSIVE"
) -> Any:
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", 500)
        .option("badRecordsPath", str(bad_path))
        .load()
        .select(F.from_json(F.col("value").cast("string"), SCHEMA, {"mode": mode}).alias("t"))
        .select("t.*")
    )


def kept(folder: Path) -> list[dict[str, Any]]:
    rows = []
    for file in sorted(folder.glob("*.json")):
        for line in file.read_text().splitlines():
            row = json.loads(line)
            assert str(row["batchId"]) == file.stem, "a record is filed under its batch"
            rows.append(row)
    return rows


def run_to_memory(df: Any, name: str, bad: Path) -> list[dict[str, Any]]:
    """Runs `df` to the end into memory table `name`; returns the bad records it kept."""
    q = df.writeStream.format("memory").queryName(name).trigger(availableNow=True).start()
    assert q.awaitTermination(60)
    assert q.exception() is None
    return kept(bad / q.id)


def test_bad_records_are_kept_with_their_offsets_once_across_a_rerun(
    spark: SparkSession, kafka_bootstrap: str, kafka_topic: str, tmp_path: Path
) -> None:
    assert create_topic(kafka_bootstrap, kafka_topic, partitions=2)
    where = produce(spark, kafka_bootstrap, kafka_topic)
    expected = sorted(
        (kafka_topic, p, o, v.decode("utf-8", "replace")) for v, (p, o) in where.items()
    )
    bad = tmp_path / "bad"

    def start_files() -> Any:
        return (
            parsed(spark, kafka_bootstrap, kafka_topic, bad)
            .writeStream.format("parquet")
            .option("path", str(tmp_path / "out"))
            .option("checkpointLocation", str(tmp_path / "cp"))
            .trigger(availableNow=True)
            .start()
        )

    # Two queries with the same reader: they share scanned chunks, and each keeps its own.
    # Both read every field (a field a query leaves out is not type-checked, see below).
    files = start_files()
    counts = (
        parsed(spark, kafka_bootstrap, kafka_topic, bad)
        .groupBy("symbol")
        .agg(F.count("*"), F.max("price"), F.max("event_time"))
        .writeStream.format("memory")
        .queryName("bad_records_counts")
        .outputMode("complete")
        .trigger(availableNow=True)
        .start()
    )
    for q in (files, counts):
        assert q.awaitTermination(120)
        assert q.exception() is None
        assert sum(p["numMalformedRows"] for p in q.recentProgress) == len(MALFORMED)
        rows = kept(bad / q.id)
        assert (
            sorted((r["topic"], r["partition"], r["offset"], r["record"]) for r in rows) == expected
        )
        assert all(r["reason"] and r["timestamp"].endswith("Z") for r in rows)
    assert {p.name for p in bad.iterdir()} == {files.id, counts.id}

    # A crash after the last batch's output but before its commit: the batch runs again and
    # rewrites its file, so nothing is kept twice.
    commits = sorted((tmp_path / "cp" / "commits").iterdir(), key=lambda p: int(p.name))
    last = commits[-1]
    assert (bad / files.id / f"{last.name}.json").exists(), "the last batch has a bad record"
    last.unlink()
    again = start_files()
    assert again.awaitTermination(120)
    assert again.exception() is None
    assert again.id == files.id
    assert [p["batchId"] for p in again.recentProgress] == [int(last.name)]
    rows = kept(bad / files.id)
    assert sorted((r["topic"], r["partition"], r["offset"], r["record"]) for r in rows) == expected


def test_a_wrongly_typed_field_the_query_leaves_out_does_not_spoil_the_record(
    spark: SparkSession, kafka_bootstrap: str, kafka_topic: str, tmp_path: Path
) -> None:
    # As Spark's optimizer does, from_json parses only the fields a query uses; a wrong type
    # in another field leaves the record whole (Spark keeps a record's other fields too).
    assert create_topic(kafka_bootstrap, kafka_topic, partitions=1)
    values = [
        '{"symbol": "S1", "price": 1.0, "event_time": 1}',
        '{"symbol": "S1", "price": "cheap", "event_time": 2}',
        '{"symbol": "S2", "price": 3.0, "event_time": "late"}',
        '{"symbol": "S2", "price": ',
    ]
    spark.createDataFrame(pa.table({"value": values})).write.format("kafka").option(
        "kafka.bootstrap.servers", kafka_bootstrap
    ).option("topic", kafka_topic).save()

    def run(name: str, agg: Any) -> tuple[dict[Any, int], int]:
        q = (
            parsed(spark, kafka_bootstrap, kafka_topic, tmp_path / name)
            .groupBy("symbol")
            .agg(agg.alias("n"))
            .writeStream.format("memory")
            .queryName(name)
            .outputMode("complete")
            .trigger(availableNow=True)
            .start()
        )
        assert q.awaitTermination(60)
        assert q.exception() is None
        rows = {r["symbol"]: r["n"] for r in spark.sql(f"select * from {name}").collect()}
        return rows, sum(p["numMalformedRows"] for p in q.recentProgress)

    # Only `symbol` is used: the truncated record alone is malformed (a null symbol).
    assert run("typed_symbols", F.count("*")) == ({"S1": 2, "S2": 1, None: 1}, 1)
    # `price` is used too: the record with a text price is malformed as well.
    assert run("typed_prices", F.count("price")) == ({"S1": 1, "S2": 1, None: 0}, 2)


def test_failfast_names_the_offset(
    spark: SparkSession, kafka_bootstrap: str, kafka_topic: str, tmp_path: Path
) -> None:
    assert create_topic(kafka_bootstrap, kafka_topic, partitions=2)
    where = produce(spark, kafka_bootstrap, kafka_topic)
    q = (
        parsed(spark, kafka_bootstrap, kafka_topic, tmp_path / "bad", mode="FAILFAST")
        .writeStream.format("memory")
        .queryName("bad_records_failfast")
        .trigger(availableNow=True)
        .start()
    )
    with pytest.raises(StreamingQueryException) as failure:
        q.awaitTermination(120)
    # The first malformed record met stops the query; the error quotes it and names its offset.
    named = re.search(rf"at offset (\d+) of {kafka_topic}-(\d+): '(.*?)': ", str(failure.value))
    assert named, str(failure.value)
    offset, partition, record = int(named[1]), int(named[2]), named[3]
    assert where[record.encode()] == (partition, offset)


def test_a_value_changed_before_parsing_is_kept_without_a_location(
    spark: SparkSession, kafka_bootstrap: str, kafka_topic: str, tmp_path: Path
) -> None:
    assert create_topic(kafka_bootstrap, kafka_topic, partitions=1)
    spark.createDataFrame(pa.table({"value": ['{"symbol": "a"}', '{"symbol": ']})).write.format(
        "kafka"
    ).option("kafka.bootstrap.servers", kafka_bootstrap).option("topic", kafka_topic).save()
    changed = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", kafka_bootstrap)
        .option("subscribe", kafka_topic)
        .option("startingOffsets", "earliest")
        .option("badRecordsPath", str(tmp_path / "bad"))
        .load()
        .select(F.from_json(F.upper(F.col("value").cast("string")), "SYMBOL STRING").alias("t"))
    )
    rows = run_to_memory(changed, "bad_records_changed", tmp_path / "bad")
    assert [r["record"] for r in rows] == ['{"SYMBOL": ']
    assert "offset" not in rows[0]


def test_json_file_source_keeps_file_and_line(spark: SparkSession, tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "ticks.json").write_text(
        '{"symbol": "a", "price": 1.0, "event_time": 1}\n'
        "\n"
        '{"symbol": "b", "price": oops}\n'
        '{"symbol": "c", "price": 3.0, "event_time": 3}\n'
    )
    ticks = (
        spark.readStream.schema(SCHEMA)
        .option("badRecordsPath", str(tmp_path / "bad"))
        .json(str(source))
    )
    rows = run_to_memory(ticks, "bad_records_file", tmp_path / "bad")
    assert [(Path(r["path"]).name, r["line"], r["record"]) for r in rows] == [
        ("ticks.json", 3, '{"symbol": "b", "price": oops}')
    ]
    assert spark.table("bad_records_file").count() == 3
