"""Exactly-once under crashes: the seed pipeline (Kafka → hourly and daily OHLC → Parquet) is
killed with SIGKILL at random moments, restarted from its checkpoints each time, and must end
with the same Parquet rows as an uninterrupted run: none lost, none twice."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pyarrow as pa
import pytest

from ferrostream.kafka import create_topic
from ferrostream.sql import SparkSession

PIPELINE = Path(__file__).with_name("seed_pipeline.py")
TICKS = 200_000
SYMBOLS = [f"SYM{i:02d}USDT" for i in range(20)]
BASE_MS = 1_732_406_400_000  # 2024-11-24 00:00 UTC
SPAN_MS = 3 * 86_400_000  # three days: some daily candles close
# Out of order by up to 10 minutes: always inside the 1-hour watermark, so which rows count
# never depends on where batches (or crashes) cut the stream.
DISORDER_MS = 600_000
KILLS = 20


def tick_rows() -> List[Dict[str, Any]]:
    """Deterministic ticks, each symbol's in the order a producer would send them."""
    rng = random.Random(20241124)
    rows = []
    for i in range(TICKS):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        event_time = BASE_MS + i * SPAN_MS // TICKS - rng.randrange(DISORDER_MS)
        price = round(100 + rng.uniform(-5, 5) + i / 10_000, 4)
        tick = {
            "symbol": symbol,
            "price": price,
            "volume": round(rng.uniform(0.01, 2.0), 6),
            "quote_volume": 0.0,
            "price_change": 0.0,
            "price_change_percent": 0.0,
            "high": price,
            "low": price,
            "open": price,
            "weighted_avg_price": price,
            "trade_count": i,
            "event_time": event_time,
        }
        rows.append({"key": symbol, "value": json.dumps(tick)})
    return rows


def run_pipeline(bootstrap: str, topic: str, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    out.mkdir(exist_ok=True)
    with open(out / "stderr.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, str(PIPELINE), bootstrap, topic, str(out), *extra],
            stdout=subprocess.DEVNULL,
            stderr=log,
            # Its own process group: the kill reaches nothing else.
            start_new_session=True,
        )


def log_tail(out: Path) -> str:
    return (out / "stderr.log").read_text(errors="replace")[-3000:]


def run_to_end(bootstrap: str, topic: str, out: Path) -> None:
    process = run_pipeline(bootstrap, topic, out, "--available-now")
    assert process.wait(timeout=300) == 0, log_tail(out)


def committed_batches(out: Path) -> int:
    commits = out / "checkpoints" / "hourly" / "commits"
    return len(list(commits.iterdir())) if commits.exists() else 0


Row = Tuple[Any, ...]


def candles(spark: SparkSession, folder: Path) -> List[Row]:
    table: pa.Table = spark.read.parquet(str(folder)).toArrow()
    names = ["symbol", "window_start", "open", "high", "low", "close", "volume", "ticks"]
    return sorted(zip(*[table.column(n).to_pylist() for n in names]))


@pytest.fixture(scope="module")
def tick_topic(kafka_bootstrap: str) -> str:
    from kafka_broker import unique_topic

    topic = unique_topic("crash")
    assert create_topic(kafka_bootstrap, topic, partitions=2)
    spark = SparkSession.builder.getOrCreate()
    (
        spark.createDataFrame(pa.Table.from_pylist(tick_rows()))
        .write.format("kafka")
        .option("kafka.bootstrap.servers", kafka_bootstrap)
        .option("topic", topic)
        .save()
    )
    return topic


def test_kill_9_twenty_times_loses_and_duplicates_nothing(
    spark: SparkSession, kafka_bootstrap: str, tick_topic: str, tmp_path: Path
) -> None:
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    run_to_end(kafka_bootstrap, tick_topic, reference)

    rng = random.Random(7)
    progress = []
    for _ in range(KILLS):
        process = run_pipeline(kafka_bootstrap, tick_topic, crashed, "--max-offsets", "3000")
        time.sleep(rng.uniform(0.3, 2.5))
        assert process.poll() is None, log_tail(crashed)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        progress.append(committed_batches(crashed))
    # The kills landed at many stages of the run (committed batches kept growing between
    # them), not all before the first commit or after the last.
    assert len(set(progress)) >= 3 and progress[-1] > 0, progress
    run_to_end(kafka_bootstrap, tick_topic, crashed)

    for query in ("hourly", "daily"):
        expected = candles(spark, reference / query)
        got = candles(spark, crashed / query)
        assert len({(r[0], r[1]) for r in got}) == len(got), f"{query}: a candle written twice"
        # Volumes are float sums: how batches split a window changes the rounding in the
        # last bits (as in Spark); every other column must match exactly.
        assert [r[:6] + r[7:] for r in got] == [r[:6] + r[7:] for r in expected], query
        for a, b in zip(got, expected):
            assert a[6] == pytest.approx(b[6], rel=1e-12), (query, a, b)
    hourly = candles(spark, reference / "hourly")
    # Every closed hour of every symbol: 3 days minus the hour still open under the watermark.
    assert len(hourly) >= len(SYMBOLS) * 70
    assert sum(r[7] for r in hourly) > TICKS * 0.95
