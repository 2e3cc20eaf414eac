"""The Binance producer (``ferrostream produce``) against the replay server and the real
Kafka broker: every recorded trade arrives exactly once, keyed by symbol; rate limits are
waited out for the advertised time; reconnects lose and duplicate nothing; malformed payloads
are counted and skipped; unchanged tickers are not sent twice."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from ferrostream._core import produce
from ferrostream.replay import Faults, ReplayServer, Trade, demo_trades, load_trades_csv
from ferrostream.sql import SparkSession

DATA = Path(__file__).resolve().parents[1] / "data"
pytestmark = pytest.mark.kafka


def recorded() -> Dict[str, List[Trade]]:
    """Two markets: 3,000 BTCUSD_PERP aggregated trades and 1,660 spot BTCUSDT trades."""
    return {
        "BTCUSD_PERP": demo_trades()["BTCUSD_PERP"][:3000],
        "BTCUSDT": load_trades_csv(DATA / "BTCUSDT-trades-2024-12-31.minute0000.csv", "BTCUSDT"),
    }


def run_producer(
    server: ReplayServer,
    bootstrap: str,
    topic: str,
    symbols: str,
    stream: str = "trade",
    **extra: Any,
) -> Dict[str, Any]:
    args = {
        "bootstrap": bootstrap,
        "topic": topic,
        "partitions": 2,
        "feed": {
            "symbols": symbols,
            "stream": stream,
            "restUrl": server.rest_url,
            "wsUrl": server.ws_url,
            "interval": "0.2 seconds",
        },
        "stats_interval": 0,
        "duration": 60,
    }
    args.update(extra)
    summary: Dict[str, Any] = json.loads(produce(json.dumps(args)))
    return summary


def read_topic(spark: SparkSession, bootstrap: str, topic: str) -> List[Dict[str, Any]]:
    rows = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .load()
        .toArrow()
        .to_pylist()
    )
    return [
        {
            "key": r["key"].decode(),
            "value": json.loads(r["value"]),
            "partition": r["partition"],
        }
        for r in rows
    ]


def assert_exactly_once(messages: List[Dict[str, Any]], trades: Dict[str, List[Trade]]) -> None:
    ids = Counter((m["value"]["symbol"], m["value"]["trade_id"]) for m in messages)
    duplicated = [k for k, n in ids.items() if n > 1]
    assert duplicated == []
    expected = {(s, t.trade_id) for s, ts in trades.items() for t in ts}
    assert set(ids) == expected


def test_every_recorded_trade_arrives_once_keyed_by_symbol(
    spark: SparkSession, kafka_bootstrap: str, kafka_topic: str
) -> None:
    trades = recorded()
    with ReplayServer(trades) as server:
        total = server.total_trades()
        summary = run_producer(
            server, kafka_bootstrap, kafka_topic, "BTCUSD_PERP,BTCUSDT", max_messages=total
        )
    assert summary["delivered"] == total == 4660
    assert summary["topic_created"] is True
    assert summary["per_symbol"] == {"BTCUSD_PERP": 3000, "BTCUSDT": 1660}
    messages = read_topic(spark, kafka_bootstrap, kafka_topic)
    assert_exactly_once(messages, trades)
    # Keyed by symbol: the key is the value's symbol, and one symbol stays in one partition.
    assert all(m["key"] == m["value"]["symbol"] for m in messages)
    partitions = {s: {m["partition"] for m in messages if m["key"] == s} for s in trades}
    assert all(len(p) == 1 for p in partitions.values())
    # The trade schema, with the recorded values.
    first = next(m["value"] for m in messages if m["value"]["trade_id"] == 4356587539)
    assert first == {
        "symbol": "BTCUSDT",
        "trade_id": 4356587539,
        "price": 92792.05,
        "qty": 0.00129,
        "is_buyer_maker": False,
        "event_time": 1735603200213,
        "trade_time": 1735603200213,
    }
    # Each symbol's trades are in id order within its partition.
    for symbol in trades:
        ids = [m["value"]["trade_id"] for m in messages if m["key"] == symbol]
        assert ids == sorted(ids)


def test_disconnects_lose_nothing_gaps_are_backfilled(
    spark: SparkSession, kafka_bootstrap: str, kafka_topic: str
) -> None:
    trades = {"BTCUSD_PERP": demo_trades()["BTCUSD_PERP"][:2000]}
    # Each reconnect resumes 150 trades after where the connection dropped: a gap the
    # producer must backfill through REST aggTrades (fromId = last id + 1).
    faults = Faults(ws_disconnect_after=[500, 400], ws_resume_shift=150)
    with ReplayServer(trades, faults=faults) as server:
        summary = run_producer(
            server,
            kafka_bootstrap,
            kafka_topic,
            "BTCUSD_PERP",
            stream="aggTrade",
            max_messages=2000,
        )
        requests = server.stats["requests"]
    feed = summary["feed"]
    assert feed["reconnects"] == 2
    assert feed["gap_filled"] == 300
    assert feed["gap_lost"] == 0
    assert requests == 2
    assert_exactly_once(read_topic(spark, kafka_bootstrap, kafka_topic), trades)


def test_overlap_after_reconnect_is_deduplicated(
    spark: SparkSession, kafka_bootstrap: str, kafka_topic: str
) -> None:
    trades = {"BTCUSD_PERP": demo_trades()["BTCUSD_PERP"][:1500]}
    faults = Faults(ws_disconnect_after=[700], ws_resume_shift=-250)
    with ReplayServer(trades, faults=faults) as server:
        summary = run_producer(
            server,
            kafka_bootstrap,
            kafka_topic,
            "BTCUSD_PERP",
            stream="aggTrade",
            max_messages=1500,
        )
    assert summary["feed"]["duplicates"] == 250
    assert summary["feed"]["reconnects"] == 1
    assert_exactly_once(read_topic(spark, kafka_bootstrap, kafka_topic), trades)


def test_malformed_frames_are_counted_and_skipped(
    spark: SparkSession, kafka_bootstrap: str, kafka_topic: str
) -> None:
    trades = {"BTCUSD_PERP": demo_trades()["BTCUSD_PERP"][:300]}
    faults = Faults(
        ws_malformed=[
            '{"stream":"btcusd_perp@aggTrade","data":{"e":"aggTrade","s":"BTCUSD_PERP"',
            '{"stream":"btcusd_perp@aggTrade","data":{"e":"aggTrade","s":"BTCUSD_PERP",'
            '"a":"x","p":"1","q":"1","T":1,"E":1,"m":true}}',
            "not json at all",
        ]
    )
    with ReplayServer(trades, faults=faults) as server:
        summary = run_producer(
            server,
            kafka_bootstrap,
            kafka_topic,
            "BTCUSD_PERP",
            stream="aggTrade",
            max_messages=300,
        )
    assert summary["feed"]["malformed"] == 3
    assert_exactly_once(read_topic(spark, kafka_bootstrap, kafka_topic), trades)


def ticker(base: Dict[str, Any], **changes: Any) -> Dict[str, Any]:
    out = dict(base)
    out.update(changes)
    return out


def recorded_ticker() -> Dict[str, Any]:
    loaded: Dict[str, Any] = json.loads((DATA / "binance_ticker_24hr.json").read_text())
    return loaded


def test_rate_limits_wait_for_retry_after_and_tickers_follow_the_contract(
    spark: SparkSession, kafka_bootstrap: str, kafka_topic: str
) -> None:
    first = recorded_ticker()
    same = ticker(first, closeTime=first["closeTime"] + 1000)  # only the time moved
    moved = ticker(first, lastPrice="60760.00000000", closeTime=first["closeTime"] + 2000)
    faults = Faults(
        rest=[
            {"status": 429, "retry_after": 2},
            {"status": 418, "retry_after": 1},
            {"status": 503},
            {"body": "{not json"},
        ]
    )
    with ReplayServer({}, tickers={"BTCUSDT": [first, same, moved]}, faults=faults) as server:
        started = time.monotonic()
        summary = run_producer(
            server, kafka_bootstrap, kafka_topic, "BTCUSDT", stream="ticker", max_messages=2
        )
        elapsed = time.monotonic() - started
    feed = summary["feed"]
    assert feed["rate_limited"] == 2
    assert feed["http_errors"] == 1
    assert feed["malformed"] == 1
    assert feed["unchanged"] >= 1
    assert elapsed >= 3.0  # 2 s + 1 s of Retry-After
    assert feed["backoff_ms"] >= 3000
    messages = read_topic(spark, kafka_bootstrap, kafka_topic)
    assert [m["key"] for m in messages] == ["BTCUSDT", "BTCUSDT"]
    values = [m["value"] for m in messages]
    assert set(values[0]) == {
        "symbol",
        "price",
        "volume",
        "quote_volume",
        "price_change",
        "price_change_percent",
        "high",
        "low",
        "open",
        "weighted_avg_price",
        "trade_count",
        "event_time",
    }
    assert [v["price"] for v in values] == [60755.18, 60760.0]
    assert values[0]["event_time"] == first["closeTime"]
    assert values[0]["trade_count"] == 1580643


def test_cli_produce_prints_a_summary(kafka_bootstrap: str, kafka_topic: str) -> None:
    import subprocess
    import sys

    trades = {"BTCUSD_PERP": demo_trades()["BTCUSD_PERP"][:200]}
    with ReplayServer(trades) as server:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ferrostream.cli",
                "produce",
                "--bootstrap",
                kafka_bootstrap,
                "--topic",
                kafka_topic,
                "--symbols",
                "BTCUSD_PERP",
                "--stream",
                "aggTrade",
                "--rest-url",
                server.rest_url,
                "--ws-url",
                server.ws_url,
                "--max-messages",
                "200",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    summary: Optional[Dict[str, Any]] = json.loads(done.stdout)
    assert summary is not None and summary["delivered"] == 200
