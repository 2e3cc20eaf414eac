"""``ferrostream demo``: the seed's crypto pipeline end to end, in one process.

Trades come from live Binance when it answers, otherwise from a replay of the real trades
shipped with the package (a whole UTC day of ``BTCUSD_PERP``, 2026-05-08) served by
:mod:`ferrostream.replay` on 127.0.0.1; the first line of output says which. They are read
with ``readStream.format("binance")`` or, with ``--kafka``, produced into a Kafka topic by the
Rust producer and read back with ``readStream.format("kafka")``. Four queries run, as in the
seed: hourly and daily OHLC candles (1-hour watermark, append mode) to Parquet under
``--output``, the hourly candles on the console as they close, and a live memory table
``crypto_hourly`` (update mode). At exit it prints the candles and the files written, and
writes them to ``<output>/summary.json``.

With a 1-hour watermark, a candle is final (and written to Parquet) once trades an hour past
its end have been seen: at the end of a replay the last hour(s) and the day are still open;
the memory table shows them with the values so far.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

MARKER = ".ferrostream-demo"
BINANCE_REST = "https://api.binance.com"
BINANCE_WS = "wss://stream.binance.com:9443"
TRADE_SCHEMA = (
    "symbol STRING, trade_id LONG, price DOUBLE, qty DOUBLE, is_buyer_maker BOOLEAN, "
    "event_time LONG, trade_time LONG"
)


def binance_reachable(rest_url: str = BINANCE_REST, timeout: float = 3.0) -> bool:
    """Whether Binance's REST API answers ``/api/v3/ping``."""
    if os.environ.get("FERROSTREAM_DEMO_OFFLINE"):
        return False
    try:
        with urllib.request.urlopen(f"{rest_url}/api/v3/ping", timeout=timeout) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def _prepare_output(output: Path) -> None:
    """Starts from an empty folder; only a folder an earlier demo made is ever cleared."""
    if output.exists() and any(output.iterdir()):
        if not (output / MARKER).exists():
            raise SystemExit(
                f"ferrostream demo: {output} exists and was not made by the demo; "
                "pick another --output"
            )
        shutil.rmtree(output)
    output.mkdir(parents=True, exist_ok=True)
    (output / MARKER).write_text("made by `ferrostream demo`; cleared by the next run\n")


def _fmt_time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")
    return str(value)


def _latest_candles(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The memory table in update mode holds every version of a candle: keep the last."""
    latest: Dict[Tuple[Any, Any], Dict[str, Any]] = {}
    for row in rows:
        latest[(row["symbol"], row["window_start"])] = row
    return [latest[k] for k in sorted(latest, key=lambda k: (str(k[0]), k[1]))]


def run_demo(args: argparse.Namespace) -> int:
    """Runs the demo with the command line's arguments; returns the exit code."""
    from ferrostream.sql import SparkSession
    from ferrostream.sql import functions as F

    output = Path(args.output).resolve()
    _prepare_output(output)

    replay = None
    consume_only = bool(getattr(args, "consume_only", False))
    if consume_only and not (args.kafka and args.topic):
        print("ferrostream demo: --consume-only needs --kafka and --topic", file=sys.stderr)
        return 2
    live = consume_only or (not args.replay and (args.live or binance_reachable()))
    if args.live and not live:
        print("ferrostream demo: Binance is not reachable (--live)", file=sys.stderr)
        return 1
    expected: Dict[str, int] = {}
    symbols: List[str] = []
    if consume_only:
        stream, rest_url, ws_url = "trade", BINANCE_REST, BINANCE_WS
        print(f"source: Kafka topic {args.topic} at {args.kafka} (another process produces)")
    elif live:
        symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
        stream, rest_url, ws_url = "trade", BINANCE_REST, BINANCE_WS
        print(f"source: LIVE Binance trades for {', '.join(symbols)} ({ws_url})", flush=True)
    else:
        from ferrostream.replay import ReplayServer, demo_trades

        trades = demo_trades()
        replay = ReplayServer(trades, speed=args.speed).start()
        symbols = sorted(trades)
        stream, rest_url, ws_url = "aggTrade", replay.rest_url, replay.ws_url
        expected = {s: max(t.trade_id for t in trades[s]) for s in symbols}
        total = replay.total_trades()
        pace = f"{args.speed:g}x real time" if args.speed > 0 else "as fast as possible"
        first = min(t.time_ms for ts in trades.values() for t in ts)
        day = datetime.fromtimestamp(first / 1000, timezone.utc).date()
        print(
            f"source: REPLAY of {total:,} recorded Binance {', '.join(symbols)} trades of {day} "
            f"shipped with ferrostream (Binance not contacted), {pace}, via {ws_url}",
            flush=True,
        )

    spark = SparkSession.builder.appName("ferrostream-demo").getOrCreate()
    producer: Optional[threading.Thread] = None
    produced: Dict[str, Any] = {}
    started = time.monotonic()
    feed = {"symbols": ",".join(symbols), "stream": stream, "restUrl": rest_url, "wsUrl": ws_url}

    raw: Any = None
    if args.kafka:
        from ferrostream._core import produce
        from ferrostream.kafka import create_topic

        topic = args.topic or (
            "crypto-prices" if live else f"crypto-prices-demo-{uuid.uuid4().hex[:8]}"
        )
        create_topic(args.kafka, topic, partitions=2)
        request: Dict[str, Any] = {
            "bootstrap": args.kafka,
            "topic": topic,
            "partitions": 2,
            "feed": feed,
            "stats_interval": 0,
            "max_messages": replay.total_trades() if replay else None,
            "duration": args.duration if live else None,
        }

        def run_producer() -> None:
            produced.update(json.loads(produce(json.dumps(request))))

        if not consume_only:
            producer = threading.Thread(target=run_producer, name="producer", daemon=True)
            producer.start()
            print(f"ingest: producer -> Kafka {args.kafka} topic {topic} (2 partitions)")
        raw = (
            spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", args.kafka)
            .option("subscribe", topic)
            .option("startingOffsets", "earliest")
            .load()
            .select(F.from_json(F.col("value").cast("string"), TRADE_SCHEMA).alias("t"))
            .select("t.*")
            .withColumn("timestamp", F.timestamp_millis("trade_time"))
        )
    else:
        print('ingest: in-process, readStream.format("binance")', flush=True)

    def ticks_of() -> Any:
        if raw is not None:  # one Kafka DataFrame serves every query
            return raw
        reader = spark.readStream.format("binance")
        for key, value in feed.items():
            reader = reader.option(key, value)
        return reader.load()

    def candles(duration: str) -> Any:
        return (
            ticks_of()
            .withWatermark("timestamp", "1 hour")
            .groupBy(F.window("timestamp", duration), "symbol")
            .agg(
                F.first("price").alias("open"),
                F.max("price").alias("high"),
                F.min("price").alias("low"),
                F.last("price").alias("close"),
                F.sum("qty").alias("volume"),
                F.count("*").alias("trades"),
            )
            .select(
                F.col("window.start").alias("window_start"),
                F.col("window.end").alias("window_end"),
                "symbol",
                "open",
                "high",
                "low",
                "close",
                "volume",
                "trades",
            )
        )

    checkpoints = output / "_checkpoints"
    queries = []
    for name, duration in (("hourly", "1 hour"), ("daily", "1 day")):
        queries.append(
            candles(duration)
            .writeStream.format("parquet")
            .outputMode("append")
            .partitionBy("symbol")
            .option("checkpointLocation", str(checkpoints / name))
            .trigger(processingTime=args.trigger)
            .queryName(f"{name}_parquet")
            .start(str(output / name))
        )
    if not args.quiet:
        queries.append(
            candles("1 hour")
            .writeStream.format("console")
            .outputMode("append")
            .option("truncate", False)
            .trigger(processingTime=args.trigger)
            .queryName("console")
            .start()
        )
    memory = (
        candles("1 hour")
        .writeStream.format("memory")
        .outputMode("update")
        .queryName("crypto_hourly")
        .trigger(processingTime=args.trigger)
        .start()
    )
    queries.append(memory)

    interrupted = False
    try:
        if replay is not None:
            _wait_for_replay(queries, expected, producer)
        else:
            deadline = None if args.duration is None else time.monotonic() + args.duration
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.5)
                for q in queries:
                    if q.exception() is not None:
                        raise SystemExit(f"ferrostream demo: query failed: {q.exception()}")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for q in queries:
            q.stop()
        if replay is not None:
            replay.stop()
    if producer is not None:
        producer.join(60)

    elapsed = time.monotonic() - started
    summary = _summarize(spark, output, elapsed, live, produced)
    (output / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    _print_summary(summary)
    spark.stop()
    return 130 if interrupted else 0


def _wait_for_replay(
    queries: List[Any], expected: Dict[str, int], producer: Optional[threading.Thread]
) -> None:
    """Returns once every query has read the last recorded trade."""
    pending = list(queries)
    while pending:
        for q in list(pending):
            if q.exception() is not None:
                raise SystemExit(f"ferrostream demo: query {q.name} failed: {q.exception()}")
            if producer is None:
                progress = q.lastProgress or {}
                sources = progress.get("sources") or [{}]
                end = sources[0].get("endOffset") or {}
                if isinstance(end, str):
                    end = json.loads(end)
                if all(end.get(s, -1) >= last for s, last in expected.items()):
                    q.processAllAvailable()
                    pending.remove(q)
            elif not producer.is_alive():
                q.processAllAvailable()
                pending.remove(q)
        time.sleep(0.2)


def _summarize(
    spark: Any, output: Path, elapsed: float, live: bool, produced: Dict[str, Any]
) -> Dict[str, Any]:
    import pyarrow.parquet as pq

    rows = spark.table("crypto_hourly").toArrow().to_pylist()
    hourly = _latest_candles(rows)
    files: Dict[str, List[str]] = {}
    final: Dict[str, List[Dict[str, Any]]] = {}
    for name in ("hourly", "daily"):
        folder = output / name
        paths = sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith("."))
        files[name] = [str(p.relative_to(output)) for p in paths]
        candles: List[Dict[str, Any]] = []
        for path in paths:
            table = pq.read_table(path)
            symbol = path.parent.name.split("=", 1)[-1]
            for row in table.to_pylist():
                row.setdefault("symbol", symbol)
                candles.append(row)
        final[name] = sorted(candles, key=lambda r: (str(r["symbol"]), r["window_start"]))
    return {
        "source": "live" if live else "replay",
        "elapsed_seconds": round(elapsed, 2),
        "hourly_candles": hourly,
        "final_candles": final,
        "files": files,
        "producer": produced,
    }


def _print_summary(summary: Dict[str, Any]) -> None:
    hourly = summary["hourly_candles"]
    final_keys = {
        (c["symbol"], _fmt_time(c["window_start"])) for c in summary["final_candles"]["hourly"]
    }
    print(
        f"\n== ferrostream demo: {summary['source']} run, {summary['elapsed_seconds']:.1f} s ==",
        flush=True,
    )
    print(
        f"{'symbol':<12} {'hour (UTC)':<17} {'open':>10} {'high':>10} {'low':>10} "
        f"{'close':>10} {'volume':>12} {'trades':>7}  status"
    )
    for c in hourly:
        start = _fmt_time(c["window_start"])
        status = "final (Parquet)" if (c["symbol"], start) in final_keys else "open"
        print(
            f"{c['symbol']:<12} {start:<17} {c['open']:>10.2f} {c['high']:>10.2f} "
            f"{c['low']:>10.2f} {c['close']:>10.2f} {c['volume']:>12.2f} {c['trades']:>7}  {status}"
        )
    for name in ("hourly", "daily"):
        final = summary["final_candles"][name]
        print(
            f"{name}: {len(final)} final candles in {len(summary['files'][name])} Parquet "
            f"file(s) under {name}/"
        )
    if not summary["final_candles"]["daily"]:
        print("the daily candle is still open: the watermark has not passed the day's end")
    open_count = len(hourly) - len(summary["final_candles"]["hourly"])
    if open_count:
        print(
            f"{open_count} hourly candle(s) still open: the 1-hour watermark has not passed "
            "their end (they are in the memory table crypto_hourly)"
        )
    if summary["producer"]:
        p = summary["producer"]
        print(
            f"producer: {p['delivered']:,} messages to Kafka at {p['messages_per_second']:,.0f} "
            "msg/s"
        )
