"""The seed's hourly and daily OHLC queries over JSON files with late and out-of-order ticks,
checked candle by candle against a plain reference computation of the same semantics:
watermark = max event time − delay at the end of each batch; a row whose window ended at or
before the previous batch's watermark is dropped; open/close follow event time."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from ferrostream.errors import AnalysisException, IllegalArgumentException
from ferrostream.sql import SparkSession
from ferrostream.sql import functions as F

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
SCHEMA = "symbol STRING, price DOUBLE, volume DOUBLE, event_time LONG"
BASE_MS = 1_732_406_400_000  # 2024-11-24 00:00:00 UTC


def make_batches(seed: int, batches: int = 12, per_batch: int = 60) -> List[List[Dict[str, Any]]]:
    """Ticks drifting forward in time, shuffled inside each batch, with some rows hours late."""
    rng = random.Random(seed)
    out = []
    clock = BASE_MS
    for b in range(batches):
        rows = []
        for i in range(per_batch):
            clock += rng.randint(0, 4 * 60_000)
            event = clock
            if rng.random() < 0.08:
                event -= rng.randint(1, 5) * HOUR_MS  # late, often behind the watermark
            rows.append(
                {
                    "symbol": rng.choice(["BTCUSDT", "ETHUSDT", "SOLUSDT"]),
                    # unique prices make first/last unambiguous
                    "price": round(100 + b + i / 1000 + rng.random(), 6),
                    "volume": round(rng.random() * 3, 6),
                    "event_time": event,
                }
            )
        rng.shuffle(rows)
        out.append(rows)
    return out


def reference(
    batches: List[List[Dict[str, Any]]], size_ms: int, delay_ms: int
) -> Tuple[Dict[Tuple[int, str], Dict[str, Any]], int]:
    """Candles over the rows the watermark admits, and the final watermark."""
    watermark = None
    groups: Dict[Tuple[int, str], List[Dict[str, Any]]] = defaultdict(list)
    max_seen = None
    for rows in batches:
        for row in rows:
            start = row["event_time"] - row["event_time"] % size_ms
            if watermark is not None and start + size_ms <= watermark:
                continue
            groups[(start, row["symbol"])].append(row)
        batch_max = max(r["event_time"] for r in rows)
        max_seen = batch_max if max_seen is None else max(max_seen, batch_max)
        watermark = max(watermark or max_seen - delay_ms, max_seen - delay_ms)
    candles = {}
    for key, rows in groups.items():
        ordered = sorted(rows, key=lambda r: r["event_time"])
        candles[key] = {
            "open": ordered[0]["price"],
            "high": max(r["price"] for r in rows),
            "low": min(r["price"] for r in rows),
            "close": ordered[-1]["price"],
            "volume": sum(r["volume"] for r in rows),
            "ticks": len(rows),
        }
    assert watermark is not None
    return candles, watermark


def write_files(directory: Path, batches: List[List[Dict[str, Any]]]) -> None:
    directory.mkdir()
    for index, rows in enumerate(batches):
        path = directory / f"part-{index:04d}.json"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def ohlc(spark: SparkSession, path: Path, duration: str) -> Any:
    ticks = (
        spark.readStream.schema(SCHEMA)
        .option("maxFilesPerTrigger", 1)
        .json(str(path))
        .withColumn("event_timestamp", F.timestamp_millis("event_time"))
    )
    return (
        ticks.withWatermark("event_timestamp", "1 hour")
        .groupBy(F.window("event_timestamp", duration), "symbol")
        .agg(
            F.first("price").alias("open"),
            F.max("price").alias("high"),
            F.min("price").alias("low"),
            F.last("price").alias("close"),
            F.sum("volume").alias("volume"),
            F.count("*").alias("ticks"),
        )
    )


def candles_of(rows: List[Dict[str, Any]]) -> Dict[Tuple[int, str], Dict[str, Any]]:
    out = {}
    for row in rows:
        start_ms = int(row["window"]["start"].timestamp() * 1000)
        out[(start_ms, row["symbol"])] = {
            k: row[k] for k in ("open", "high", "low", "close", "volume", "ticks")
        }
    return out


def assert_same(actual: Dict[Any, Dict[str, Any]], expected: Dict[Any, Dict[str, Any]]) -> None:
    assert sorted(actual) == sorted(expected)
    for key, candle in expected.items():
        got = actual[key]
        for field in ("open", "high", "low", "close", "ticks"):
            assert got[field] == candle[field], (key, field)
        assert got["volume"] == pytest.approx(candle["volume"], rel=1e-9), key


@pytest.mark.parametrize("duration,size_ms", [("1 hour", HOUR_MS), ("1 day", DAY_MS)])
@pytest.mark.parametrize("mode", ["append", "update", "complete"])
def test_ohlc_matches_reference(
    spark: SparkSession, tmp_path: Path, duration: str, size_ms: int, mode: str
) -> None:
    batches = make_batches(seed=size_ms // HOUR_MS + len(mode))
    write_files(tmp_path / "in", batches)
    name = f"ohlc_{mode}_{size_ms}"
    q = (
        ohlc(spark, tmp_path / "in", duration)
        .writeStream.format("memory")
        .outputMode(mode)
        .queryName(name)
        .start()
    )
    try:
        q.processAllAvailable()
        rows = spark.table(name).collect()
        progress = q.recentProgress
    finally:
        q.stop()
    candles, watermark = reference(batches, size_ms, HOUR_MS)
    if mode == "complete":
        # Complete mode keeps late rows too (no state is dropped), as Spark.
        all_rows, _ = reference([sum(batches, [])], size_ms, 10**15)
        assert_same(candles_of([r.asDict() for r in rows]), all_rows)
        return
    if mode == "append":
        expected = {k: v for k, v in candles.items() if k[0] + size_ms <= watermark}
        assert len(rows) == len(expected), "append emits each closed window exactly once"
        assert_same(candles_of([r.asDict() for r in rows]), expected)
    else:
        latest: Dict[Any, Dict[str, Any]] = {}
        for r in rows:
            latest.update(candles_of([r.asDict()]))
        assert_same(latest, candles)
    dropped = sum(p["stateOperators"][0]["numRowsDroppedByWatermark"] for p in progress)
    admitted = sum(c["ticks"] for c in candles.values())
    assert dropped + admitted == sum(len(b) for b in batches)
    assert len(progress) == len(batches), "maxFilesPerTrigger=1 makes one batch per file"


def test_open_and_close_follow_event_time_across_batches(
    spark: SparkSession, tmp_path: Path
) -> None:
    # The earliest tick of the hour arrives in the second batch: it is still the open.
    batches = [
        [{"symbol": "BTCUSDT", "price": 2.0, "volume": 1.0, "event_time": BASE_MS + 30 * 60_000}],
        [{"symbol": "BTCUSDT", "price": 1.0, "volume": 1.0, "event_time": BASE_MS + 60_000}],
        [{"symbol": "BTCUSDT", "price": 9.0, "volume": 1.0, "event_time": BASE_MS + 3 * HOUR_MS}],
    ]
    write_files(tmp_path / "in", batches)
    q = (
        ohlc(spark, tmp_path / "in", "1 hour")
        .writeStream.format("memory")
        .queryName("event_order")
        .start()
    )
    try:
        q.processAllAvailable()
        rows = [r.asDict() for r in spark.table("event_order").collect()]
    finally:
        q.stop()
    first_hour = candles_of(rows)[(BASE_MS, "BTCUSDT")]
    assert (first_hour["open"], first_hour["close"]) == (1.0, 2.0)


def test_append_aggregation_without_watermark_is_rejected_at_start(
    spark: SparkSession, tmp_path: Path
) -> None:
    ticks = spark.readStream.schema(SCHEMA).json(str(tmp_path))
    counts = ticks.groupBy("symbol").agg(F.count("*"))
    with pytest.raises(AnalysisException, match="withWatermark"):
        counts.writeStream.format("memory").queryName("no_watermark").outputMode("append").start()


def test_unknown_column_names_it_and_lists_the_columns(spark: SparkSession, tmp_path: Path) -> None:
    ticks = spark.readStream.schema(SCHEMA).json(str(tmp_path))
    with pytest.raises(AnalysisException, match=r"`prize`.*`price`"):
        ticks.select("prize")


def test_bad_output_mode_lists_the_accepted_modes(spark: SparkSession, tmp_path: Path) -> None:
    ticks = spark.readStream.schema(SCHEMA).json(str(tmp_path))
    with pytest.raises(IllegalArgumentException, match="'append', 'complete', 'update'"):
        ticks.writeStream.outputMode("upsert")


def test_malformed_json_is_counted_not_fatal(spark: SparkSession, tmp_path: Path) -> None:
    from ferrostream.testing import MemoryStream

    stream = MemoryStream(spark, "value STRING")
    parsed = stream.toDF().select(F.from_json("value", SCHEMA).alias("d")).select("d.*")
    q = parsed.writeStream.format("memory").queryName("malformed").start()
    try:
        stream.addData(
            [
                ('{"symbol":"BTCUSDT","price":1.5,"volume":1,"event_time":1}',),
                ('{"symbol":"ETH',),
                ("[]",),
            ]
        )
        q.processAllAvailable()
        rows = spark.table("malformed").collect()
        progress = q.lastProgress
    finally:
        q.stop()
    assert [r["symbol"] for r in rows] == ["BTCUSDT", None, None]
    assert progress is not None and progress["numMalformedRows"] == 2
