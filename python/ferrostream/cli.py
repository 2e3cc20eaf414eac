"""The ``ferrostream`` command installed with the wheel.

ferrostream --version
ferrostream produce --bootstrap 127.0.0.1:9092 --symbols BTCUSDT,ETHUSDT [--stream trade]
ferrostream demo [--replay] [--speed 3600] [--kafka 127.0.0.1:9092]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any, Dict, List, Optional

DEFAULT_TOPIC = "crypto-prices"


def _sigterm_as_interrupt() -> None:
    """SIGTERM (docker stop, systemd) stops as cleanly as Ctrl-C: flush, then a summary."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        pass


def produce_args(args: argparse.Namespace) -> Dict[str, Any]:
    """The JSON arguments of ``ferrostream._core.produce`` from the command line."""
    feed = {
        "symbols": args.symbols,
        "stream": args.stream,
        "interval": f"{args.interval} seconds",
        "restUrl": args.rest_url,
        "wsUrl": args.ws_url,
        "gapFill": "false" if args.no_gap_fill else "true",
    }
    kafka: Dict[str, str] = {}
    for pair in args.kafka_option or []:
        name, _, value = pair.partition("=")
        kafka[name] = value
    return {
        "bootstrap": args.bootstrap,
        "topic": args.topic,
        "partitions": args.partitions,
        "feed": feed,
        "kafka": kafka,
        "stats_interval": args.stats_interval,
        "max_messages": args.max_messages,
        "duration": args.duration,
    }


def format_summary(summary: Dict[str, Any]) -> str:
    """The producer's summary as a few lines for people."""
    feed = summary.get("feed", {})
    lines = [
        f"produced {summary['delivered']:,} of {summary['sent']:,} messages "
        f"in {summary['elapsed_seconds']:.1f} s ({summary['messages_per_second']:,.0f} msg/s), "
        f"{summary['failed']} failed",
        "per symbol: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(summary.get("per_symbol", {}).items())),
        "feed: "
        + ", ".join(
            f"{k.replace('_', ' ')} {v:,}" for k, v in feed.items() if k != "received" and v
        ),
    ]
    return "\n".join(line for line in lines if not line.endswith(": "))


def _produce(args: argparse.Namespace) -> int:
    from ferrostream._core import produce

    _sigterm_as_interrupt()
    summary = json.loads(produce(json.dumps(produce_args(args))))
    if args.json:
        print(json.dumps(summary))
    else:
        print(format_summary(summary), file=sys.stderr)
    return 0 if summary["failed"] == 0 else 1


def _demo(args: argparse.Namespace) -> int:
    from ferrostream.demo import run_demo

    _sigterm_as_interrupt()
    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser (also used by the docs and tests)."""
    from ferrostream import __version__

    parser = argparse.ArgumentParser(
        prog="ferrostream", description="ferrostream: streaming with the PySpark API, in Rust."
    )
    parser.add_argument("-V", "--version", action="version", version=f"ferrostream {__version__}")
    commands = parser.add_subparsers(dest="command")

    produce = commands.add_parser(
        "produce",
        help="Binance tickers or trades into a Kafka topic",
        description="Polls Binance's 24-hour tickers or streams its trades into Kafka, keyed by "
        "symbol, as JSON. Ctrl-C or SIGTERM stops it after flushing.",
    )
    produce.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers")
    produce.add_argument("--topic", default=DEFAULT_TOPIC)
    produce.add_argument("--partitions", type=int, default=2, help="if the topic is created")
    produce.add_argument("--symbols", default="BTCUSDT,ETHUSDT", help="comma-separated markets")
    produce.add_argument(
        "--stream",
        default="ticker",
        choices=["ticker", "trade", "aggTrade"],
        help="ticker: REST 24hr ticker polled every --interval (the 12-field contract); "
        "trade / aggTrade: WebSocket trades",
    )
    produce.add_argument("--interval", type=float, default=1.0, help="ticker poll, seconds")
    produce.add_argument("--rest-url", default="https://api.binance.com")
    produce.add_argument("--ws-url", default="wss://stream.binance.com:9443")
    produce.add_argument("--no-gap-fill", action="store_true", help="no REST backfill of gaps")
    produce.add_argument("--stats-interval", type=float, default=10.0, help="seconds; 0: none")
    produce.add_argument("--max-messages", type=int, default=None, help="stop after N messages")
    produce.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    produce.add_argument(
        "--kafka-option", action="append", metavar="NAME=VALUE", help="a librdkafka setting"
    )
    produce.add_argument("--json", action="store_true", help="print the summary as JSON")
    produce.set_defaults(run=_produce)

    demo = commands.add_parser(
        "demo",
        help="the crypto OHLC pipeline end to end",
        description="Binance trades (live when reachable, else a replay of recorded trades "
        "shipped with the package) into hourly and daily OHLC candles with a 1-hour watermark: "
        "Parquet under --output, the console, and a live memory table.",
    )
    source = demo.add_mutually_exclusive_group()
    source.add_argument("--replay", action="store_true", help="never contact Binance")
    source.add_argument("--live", action="store_true", help="fail if Binance is unreachable")
    demo.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="replay at N x real time (3600: an hour a second); 0 (default): as fast as possible",
    )
    demo.add_argument("--kafka", metavar="HOST:PORT", help="go through this Kafka broker")
    demo.add_argument("--topic", default=None, help="Kafka topic (default: a fresh one)")
    demo.add_argument(
        "--consume-only",
        action="store_true",
        help="with --kafka and --topic: only run the engine (another process produces)",
    )
    demo.add_argument("--symbols", default="BTCUSDT,ETHUSDT", help="live markets")
    demo.add_argument("--duration", type=float, default=None, help="live: stop after N seconds")
    demo.add_argument("--output", default="ferrostream-demo", help="output folder")
    demo.add_argument("--trigger", default="1 second", help="micro-batch interval")
    demo.add_argument("--quiet", action="store_true", help="no console sink output")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the command line."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if getattr(args, "run", None) is None:
        parser.print_usage(sys.stderr)
        return 2
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
