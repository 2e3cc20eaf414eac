"""``ferrostream demo`` in replay mode (Binance is never contacted): the hourly candles it
writes are the ones the recorded trades imply, computed here with plain Python from the
shipped file; the Kafka variant gives the same candles. Also the ``binance`` source on its
own, and the docker-compose file."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from collections import defaultdict
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pyarrow.parquet as pq
import pytest

from ferrostream.replay import ReplayServer, demo_trades
from ferrostream.sql import SparkSession

ROOT = Path(__file__).resolve().parents[2]
HOUR_MS = 3_600_000


def expected_hourly() -> Dict[Tuple[str, int], Dict[str, Any]]:
    """Hourly OHLC of the shipped trades: open/close by (trade time, id), as Binance does."""
    data = resources.files("ferrostream") / "data" / "BTCUSD_PERP-aggTrades-2026-05-08.zip"
    with zipfile.ZipFile(io.BytesIO(data.read_bytes())) as archive:
        text = archive.read(archive.namelist()[0]).decode()
    rows = [r for r in csv.reader(io.StringIO(text)) if r and r[0].isdigit()]
    by_hour: Dict[int, List[Tuple[int, int, float, float]]] = defaultdict(list)
    for r in rows:
        time_ms = int(r[5])
        by_hour[time_ms - time_ms % HOUR_MS].append((time_ms, int(r[0]), float(r[1]), float(r[2])))
    candles = {}
    for hour, trades in by_hour.items():
        trades.sort()
        candles[("BTCUSD_PERP", hour)] = {
            "open": trades[0][2],
            "high": max(t[2] for t in trades),
            "low": min(t[2] for t in trades),
            "close": trades[-1][2],
            "volume": sum(t[3] for t in trades),
            "trades": len(trades),
        }
    return candles


def as_ms(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.replace(tzinfo=value.tzinfo or timezone.utc).timestamp() * 1000)
    return int(datetime.fromisoformat(str(value)).timestamp() * 1000)


def check(candle: Dict[str, Any], want: Dict[str, Any]) -> None:
    for field in ("open", "high", "low", "close", "trades"):
        assert candle[field] == want[field], (field, candle, want)
    assert math.isclose(candle["volume"], want["volume"], rel_tol=1e-9)


def run_demo(tmp_path: Path, *extra: str) -> Tuple[str, Dict[str, Any]]:
    output = tmp_path / "demo"
    env = dict(os.environ, FERROSTREAM_DEMO_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-m", "ferrostream.cli", "demo", "--replay", "--quiet"]
        + ["--output", str(output), "--trigger", "0.2 seconds", *extra],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, json.loads((output / "summary.json").read_text())


def check_demo(tmp_path: Path, stdout: str, summary: Dict[str, Any]) -> None:
    expected = expected_hourly()
    assert len(expected) == 24
    assert stdout.startswith("source: REPLAY of 105,280 recorded Binance BTCUSD_PERP trades")
    # The live memory table: every hour of the day, open or final, with its latest values.
    live = {(c["symbol"], as_ms(c["window_start"])): c for c in summary["hourly_candles"]}
    assert set(live) == set(expected)
    for key, candle in live.items():
        check(candle, expected[key])
    # Parquet: the hours the 1-hour watermark closed (all but the last two), read back here.
    output = tmp_path / "demo"
    table = pq.read_table(output / "hourly").to_pylist()
    written = {("BTCUSD_PERP", as_ms(r["window_start"])): r for r in table}
    last_hour = max(h for _, h in expected)
    assert set(written) == {k for k in expected if k[1] < last_hour - HOUR_MS}
    for key, candle in written.items():
        check(candle, expected[key])
    assert all(f.startswith("hourly/symbol=BTCUSD_PERP/") for f in summary["files"]["hourly"])
    assert "22 final candles" in stdout and "2 hourly candle(s) still open" in stdout


def test_demo_replay_writes_the_candles_the_trades_imply(tmp_path: Path) -> None:
    stdout, summary = run_demo(tmp_path)
    assert summary["source"] == "replay"
    check_demo(tmp_path, stdout, summary)


@pytest.mark.kafka
def test_demo_through_kafka_gives_the_same_candles(tmp_path: Path, kafka_bootstrap: str) -> None:
    stdout, summary = run_demo(tmp_path, "--kafka", kafka_bootstrap)
    assert "ingest: producer -> Kafka" in stdout
    assert summary["producer"]["delivered"] == 105_280
    check_demo(tmp_path, stdout, summary)


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "precious.txt").write_text("keep me")
    done = subprocess.run(
        [sys.executable, "-m", "ferrostream.cli", "demo", "--replay"]
        + ["--output", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "was not made by the demo" in done.stderr
    assert (tmp_path / "demo" / "precious.txt").exists()


def test_binance_source_reads_every_trade_once(spark: SparkSession) -> None:
    trades = {"BTCUSD_PERP": demo_trades()["BTCUSD_PERP"][:4000]}
    with ReplayServer(trades) as server:
        df = (
            spark.readStream.format("binance")
            .option("symbols", "btcusd_perp")
            .option("stream", "aggTrade")
            .option("restUrl", server.rest_url)
            .option("wsUrl", server.ws_url)
            .load()
        )
        assert df.columns == [
            "symbol",
            "trade_id",
            "price",
            "qty",
            "is_buyer_maker",
            "event_time",
            "trade_time",
            "timestamp",
        ]
        query = df.writeStream.format("memory").queryName("binance_trades").start()
        try:
            for _ in range(100):
                query.processAllAvailable()
                if spark.table("binance_trades").count() >= 4000:
                    break
                server.finished.wait(0.1)
            rows = spark.table("binance_trades").toArrow().to_pylist()
            progress = query.lastProgress
        finally:
            query.stop()
    ids = [r["trade_id"] for r in rows]
    assert sorted(ids) == [t.trade_id for t in trades["BTCUSD_PERP"]]
    assert progress is not None
    assert progress["sources"][0]["endOffset"] == {"BTCUSD_PERP": ids[-1]}


def test_binance_source_rejects_bad_options(spark: SparkSession) -> None:
    from ferrostream.errors import IllegalArgumentException

    with pytest.raises(IllegalArgumentException, match="stream"):
        spark.readStream.format("binance").option("symbols", "X").option("stream", "x").load()


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_docker_compose_file_is_valid() -> None:
    done = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "apache/kafka" in done.stdout
    assert "--partitions" in done.stdout and "crypto-prices" in done.stdout
    services = done.stdout.split("services:", 1)[1]
    for name in ("kafka:", "create-topic:", "producer:", "engine:"):
        assert f"\n  {name}" in services
