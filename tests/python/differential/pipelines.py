"""The seed's pipeline, written once against an engine's ``pyspark.sql``-shaped modules, and
the generated tick streams it runs on.

Ticks follow DESIGN.md's 12-field JSON contract. Prices and volumes are multiples of 1/64,
so sums are exact in any order and both engines' tables can be compared with ``==``.

Late rows are placed where both late-row rules give the same answer (see :func:`tick_batches`):
ours judges batch k by the watermark at the end of batch k-1, Spark 3.5 (batches back to back)
by the one at the end of batch k-2. ``test_differential_semantics`` pins the gap between them.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from engines import Engine

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MINUTE_MS = 60_000
BASE_MS = 1_732_406_400_000  # 2024-11-24 00:00:00 UTC
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
WATERMARK_DELAY_MS = HOUR_MS

TICK_FIELDS = (
    "symbol STRING, price DOUBLE, volume DOUBLE, quote_volume DOUBLE, price_change DOUBLE, "
    "price_change_percent DOUBLE, high DOUBLE, low DOUBLE, open DOUBLE, "
    "weighted_avg_price DOUBLE, trade_count LONG, event_time LONG"
)

Tick = Dict[str, Any]


# -- the pipeline (the seed's spark_streaming_consumer.py, engine-neutral) ---------------------


def tick_schema(engine: Engine) -> Any:
    """The tick contract as a StructType built from the engine's ``types`` module."""
    T = engine.T
    double = T.DoubleType()
    return T.StructType(
        [T.StructField("symbol", T.StringType(), True)]
        + [
            T.StructField(name, double, True)
            for name in (
                "price",
                "volume",
                "quote_volume",
                "price_change",
                "price_change_percent",
                "high",
                "low",
                "open",
                "weighted_avg_price",
            )
        ]
        + [
            T.StructField("trade_count", T.LongType(), True),
            T.StructField("event_time", T.LongType(), True),
        ]
    )


def file_ticks(engine: Engine, folder: Path) -> Any:
    """JSON tick files appearing in ``folder``, one file per micro-batch."""
    return (
        engine.spark.readStream.schema(tick_schema(engine))
        .option("maxFilesPerTrigger", 1)
        .json(str(folder))
    )


def kafka_ticks(
    engine: Engine, bootstrap: str, topic: str, max_offsets: Optional[int] = None
) -> Any:
    """The tick topic parsed with from_json, as the seed's consumer reads it."""
    F = engine.F
    reader = (
        engine.spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
    )
    if max_offsets is not None:
        reader = reader.option("maxOffsetsPerTrigger", max_offsets)
    return (
        reader.load()
        .select(
            F.col("key").cast("string").alias("kafka_key"),
            F.from_json(F.col("value").cast("string"), tick_schema(engine)).alias("data"),
        )
        .select("kafka_key", "data.*")
    )


def with_event_time(engine: Engine, ticks: Any) -> Any:
    """``event_timestamp`` from the exchange's milliseconds, behind the seed's 1-hour watermark."""
    F = engine.F
    return ticks.withColumn(
        "event_timestamp", F.timestamp_millis(F.col("event_time"))
    ).withWatermark("event_timestamp", "1 hour")


def ohlc(engine: Engine, ticks: Any, duration: str, flat: bool = False) -> Any:
    """The seed's hourly / daily candles: open, high, low, close, volume, count, average."""
    F = engine.F
    candles = ticks.groupBy(F.window("event_timestamp", duration), "symbol").agg(
        F.first("price").alias("open"),
        F.max("price").alias("high"),
        F.min("price").alias("low"),
        F.last("price").alias("close"),
        F.sum("volume").alias("volume"),
        F.count("*").alias("ticks"),
        F.avg("price").alias("avg_price"),
    )
    if not flat:
        return candles
    # Parquet output flattens the window, as the seed's consumer does before writing.
    return candles.select(
        F.col("window.start").alias("window_start"),
        F.col("window.end").alias("window_end"),
        "symbol",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "ticks",
        "avg_price",
    )


def without_open_close(engine: Engine, candles: Any) -> Any:
    """Candles without the arrival-order-dependent columns (for out-of-order inputs)."""
    return candles.drop("open", "close")


def daily_stats(engine: Engine, ticks: Any) -> Any:
    """The seed's ``crypto_daily_stats`` memory table: per-symbol statistics, complete mode."""
    F = engine.F
    return ticks.groupBy("symbol").agg(
        F.count("*").alias("ticks"),
        F.min("price").alias("low"),
        F.max("price").alias("high"),
        F.avg("price").alias("avg_price"),
        F.sum("volume").alias("volume"),
        F.max("event_timestamp").alias("last_seen"),
    )


def console_view(engine: Engine, ticks: Any) -> Any:
    """The seed's console monitor: the raw ticks it prints."""
    F = engine.F
    return ticks.select(
        "symbol",
        "price",
        "volume",
        "price_change_percent",
        F.col("event_timestamp"),
    )


# -- generated tick streams --------------------------------------------------------------------


def window_end(event_ms: int, size_ms: int) -> int:
    return event_ms - event_ms % size_ms + size_ms


def make_tick(rng: random.Random, symbol: str, event_ms: int) -> Tick:
    """One tick with the 12 fields; numbers are multiples of 1/64 (exact sums)."""
    base = {"BTCUSDT": 84_000, "ETHUSDT": 2_700, "SOLUSDT": 140}[symbol]
    price = base + rng.randint(0, 64 * 50) / 64
    volume = rng.randint(1, 64 * 8) / 64
    return {
        "symbol": symbol,
        "price": price,
        "volume": volume,
        "quote_volume": rng.randint(0, 64 * 1000) / 64,
        "price_change": rng.randint(-640, 640) / 64,
        "price_change_percent": rng.randint(-256, 256) / 64,
        "high": price + 1,
        "low": price - 1,
        "open": price - 0.5,
        "weighted_avg_price": price + 0.25,
        "trade_count": rng.randint(1, 1_000_000),
        "event_time": event_ms,
    }


def tick_batches(
    seed: int,
    batches: int = 10,
    per_symbol: int = 6,
    step_ms: int = 3 * HOUR_MS,
    late: bool = True,
    duplicates: bool = True,
    ordered: bool = False,
    window_sizes: Sequence[int] = (HOUR_MS, DAY_MS),
) -> List[List[Tick]]:
    """Micro-batches of ticks for three symbols, time moving forward by ``step_ms`` a batch.

    ``late`` adds rows from 1-7 hours back: kept only where both engines' late-row rules agree
    for every window size (dropped by both, or kept by both). ``duplicates`` repeats some rows
    exactly, in the same batch or the next. Unless ``ordered``, rows arrive out of event-time
    order inside a batch. With ``ordered``, every row either engine keeps arrives in event-time
    order (late rows are only ones both drop, duplicates follow their original), so Spark's
    arrival-order first/last equal our event-time ones.
    """
    rng = random.Random(seed)
    out: List[List[Tick]] = []
    max_seen: Optional[int] = None
    watermarks: List[Optional[int]] = []  # the watermark at the end of each batch
    clock = BASE_MS
    for index in range(batches):
        rows: List[Tick] = []
        for _ in range(per_symbol):
            for symbol in SYMBOLS:
                gap = step_ms // (per_symbol * len(SYMBOLS))
                clock += rng.randint(gap // 2, gap + gap // 2)
                rows.append(make_tick(rng, symbol, clock))
        # Ours judges this batch by the watermark after batch index-1; Spark 3.5 by the one
        # after index-2 (or no watermark at all in its first two batches).
        ours = watermarks[index - 1] if index >= 1 else None
        spark = watermarks[index - 2] if index >= 2 else None
        if late and index >= 1:
            for _ in range(3):
                symbol = rng.choice(SYMBOLS)
                event = clock - rng.randint(1, 7 * 60) * MINUTE_MS
                verdict = _verdict(event, ours, spark, window_sizes)
                if verdict == "late" or (verdict != "ambiguous" and not ordered):
                    rows.insert(rng.randrange(len(rows) + 1), make_tick(rng, symbol, event))
        if duplicates:
            at = rng.randrange(len(rows))
            rows.insert(at + 1, dict(rows[at]))
            if out and not ordered:
                for again in rng.sample(out[-1], 2):
                    if _verdict(again["event_time"], ours, spark, window_sizes) != "ambiguous":
                        rows.append(dict(again))
        if not ordered:
            rng.shuffle(rows)
        out.append(rows)
        batch_max = max(r["event_time"] for r in rows)
        max_seen = batch_max if max_seen is None else max(max_seen, batch_max)
        watermarks.append(max_seen - WATERMARK_DELAY_MS)
    return out


def _verdict(
    event_ms: int, ours: Optional[int], spark: Optional[int], window_sizes: Sequence[int]
) -> str:
    """ "late" when both rules drop the row for every window size, "on time" when both keep
    it, "mixed" when they agree per size but drop it for some sizes only, "ambiguous" when
    the two rules disagree (such rows are left out)."""
    verdicts = set()
    for size in window_sizes:
        end = window_end(event_ms, size)
        late_ours = ours is not None and end <= ours
        late_spark = spark is not None and end <= spark
        if late_ours != late_spark:
            return "ambiguous"
        verdicts.add(late_ours)
    if verdicts == {True}:
        return "late"
    return "on time" if verdicts == {False} else "mixed"


def write_tick_files(folder: Path, batches: List[List[Tick]], start: int = 0) -> None:
    """One newline-delimited JSON file per batch, modification times one second apart so both
    engines list them in the same order."""
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time() - 3600
    for index, rows in enumerate(batches, start=start):
        path = folder / f"ticks-{index:04d}.json"
        tmp = folder / f".ticks-{index:04d}.json.tmp"
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        os.utime(tmp, (now + index, now + index))
        tmp.rename(path)


def key_and_value(ticks: List[Tick]) -> List[Dict[str, Any]]:
    """Kafka records of the contract: key = symbol, value = the JSON tick."""
    return [{"key": t["symbol"], "value": json.dumps(t)} for t in ticks]
