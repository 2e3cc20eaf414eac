"""A local Binance for tests and the offline demo: REST and WebSocket payloads in the
exchange's exact formats, served on 127.0.0.1 from recorded trades, with scripted faults.

Endpoints (Binance's paths and field names):

- ``GET /api/v3/ticker/24hr?symbol=S`` — the next recorded ticker of ``S`` (the last one again
  once they are used up, as a quiet market would answer);
- ``GET /api/v3/historicalTrades`` and ``GET /api/v3/aggTrades`` with ``symbol``, ``fromId``,
  ``limit`` — rows of the recorded trades;
- ``GET /api/v3/klines`` is not served;
- WebSocket ``/stream?streams=btcusdt@trade/...`` (or ``@aggTrade``) — combined-stream events
  ``{"stream": ..., "data": {...}}`` in trade-time order, as fast as possible or ``speed`` ×
  real time, with a ping every ``ping_interval`` seconds.

Faults (:class:`Faults`): REST replies taken in order (429 / 418 with ``Retry-After``, 5xx,
malformed JSON, a used-weight header), WebSocket disconnects after N messages with the next
connection resuming ahead (a gap the client must backfill) or behind (duplicates), and
malformed frames. Only the standard library is used, so the wheel needs nothing more.

    python -m ferrostream.replay --speed 60     # prints the REST and WebSocket URLs
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import hashlib
import heapq
import io
import json
import os
import struct
import threading
import time
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Dict, Iterable, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "Faults",
    "ReplayServer",
    "Trade",
    "demo_trades",
    "load_agg_trades_zip",
    "load_trades_csv",
]

_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
DEMO_FILE = "BTCUSD_PERP-aggTrades-2026-05-08.zip"


@dataclass(frozen=True)
class Trade:
    """One recorded trade, with Binance's decimal strings kept as they were."""

    symbol: str
    trade_id: int
    price: str
    qty: str
    time_ms: int
    is_buyer_maker: bool


def load_agg_trades_zip(path: os.PathLike[str] | str | io.BytesIO, symbol: str) -> List[Trade]:
    """Reads a Binance ``aggTrades`` dump (``agg_trade_id, price, quantity, first_trade_id,
    last_trade_id, transact_time, is_buyer_maker``, header or not) from its zip."""
    with zipfile.ZipFile(path) as archive:
        name = archive.namelist()[0]
        with archive.open(name) as raw:
            rows = list(csv.reader(io.TextIOWrapper(raw, encoding="utf-8")))
    if rows and not rows[0][0].isdigit():
        rows = rows[1:]
    return [
        Trade(symbol, int(r[0]), r[1], r[2], int(r[5]), r[6].strip().lower() == "true")
        for r in rows
    ]


def load_trades_csv(path: os.PathLike[str] | str, symbol: str) -> List[Trade]:
    """Reads a Binance spot ``trades`` dump (``id, price, qty, quote_qty, time,
    is_buyer_maker, is_best_match``, no header)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [
            Trade(symbol, int(r[0]), r[1], r[2], int(r[4]), r[5].strip().lower() == "true")
            for r in csv.reader(handle)
            if r and r[0].isdigit()
        ]


def demo_trades() -> Dict[str, List[Trade]]:
    """The real trades shipped with the package: a whole UTC day (2026-05-08) of Binance
    COIN-M ``BTCUSD_PERP`` aggregated trades, 105,280 of them."""
    data = resources.files("ferrostream") / "data" / DEMO_FILE
    with data.open("rb") as handle:
        payload = io.BytesIO(handle.read())
    return {"BTCUSD_PERP": load_agg_trades_zip(payload, "BTCUSD_PERP")}


@dataclass
class Faults:
    """Scripted misbehaviour.

    ``rest``: replies used, in order, instead of the real answer to the next REST requests;
    each is ``{"status": 429, "retry_after": 2}``, ``{"status": 503}``, ``{"body": "{oops"}``
    (status 200 with that body) or ``{"used_weight": 5900}`` (the real answer with that
    ``X-MBX-USED-WEIGHT-1M``).
    ``ws_disconnect_after``: for the 1st, 2nd... connection, close it after that many trade
    messages. ``ws_resume_shift``: a new connection starts that many trades after (positive:
    a gap) or before (negative: duplicates) where the last one stopped.
    ``ws_malformed``: raw frames sent at the start of the first connection.
    """

    rest: List[Dict[str, Any]] = field(default_factory=list)
    ws_disconnect_after: List[int] = field(default_factory=list)
    ws_resume_shift: int = 0
    ws_malformed: List[str] = field(default_factory=list)


def _event(trade: Trade, kind: str) -> Dict[str, Any]:
    if kind == "aggTrade":
        return {
            "e": "aggTrade",
            "E": trade.time_ms,
            "s": trade.symbol,
            "a": trade.trade_id,
            "p": trade.price,
            "q": trade.qty,
            "f": trade.trade_id,
            "l": trade.trade_id,
            "T": trade.time_ms,
            "m": trade.is_buyer_maker,
            "M": True,
        }
    return {
        "e": "trade",
        "E": trade.time_ms,
        "s": trade.symbol,
        "t": trade.trade_id,
        "p": trade.price,
        "q": trade.qty,
        "T": trade.time_ms,
        "m": trade.is_buyer_maker,
        "M": True,
    }


def _rest_row(trade: Trade, endpoint: str) -> Dict[str, Any]:
    if endpoint == "aggTrades":
        return {
            "a": trade.trade_id,
            "p": trade.price,
            "q": trade.qty,
            "f": trade.trade_id,
            "l": trade.trade_id,
            "T": trade.time_ms,
            "m": trade.is_buyer_maker,
            "M": True,
        }
    quote = float(trade.price) * float(trade.qty)
    return {
        "id": trade.trade_id,
        "price": trade.price,
        "qty": trade.qty,
        "quoteQty": f"{quote:.8f}",
        "time": trade.time_ms,
        "isBuyerMaker": trade.is_buyer_maker,
        "isBestMatch": True,
    }


def _frame(opcode: int, payload: bytes) -> bytes:
    """A server-to-client WebSocket frame (never masked)."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
    return header + payload


class ReplayServer:
    """Serves recorded trades and tickers as Binance would, on 127.0.0.1 (a random port).

    >>> server = ReplayServer(demo_trades(), speed=0).start()
    >>> server.rest_url, server.ws_url
    ('http://127.0.0.1:40123', 'ws://127.0.0.1:40123')
    >>> server.stop()
    """

    def __init__(
        self,
        trades: Dict[str, List[Trade]],
        tickers: Optional[Dict[str, List[Dict[str, Any]]]] = None,
        speed: float = 0.0,
        faults: Optional[Faults] = None,
        ping_interval: float = 20.0,
        port: int = 0,
    ) -> None:
        self.trades = {s.upper(): sorted(t, key=lambda x: x.trade_id) for s, t in trades.items()}
        self.tickers = {s.upper(): list(t) for s, t in (tickers or {}).items()}
        self.speed = speed
        self.faults = faults or Faults()
        self.ping_interval = ping_interval
        self.port = port
        #: Set once a connection has sent every trade it was asked for.
        self.finished = threading.Event()
        #: Counters: requests, rest_faults, ws_connections, ws_messages, pongs.
        self.stats: Dict[str, int] = {
            "requests": 0,
            "rest_faults": 0,
            "ws_connections": 0,
            "ws_messages": 0,
            "pongs": 0,
        }
        self._ticker_position: Dict[str, int] = {}
        # Where the connection after a scripted disconnect resumes (None: from the start).
        self._resume_at: Optional[int] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._server: Optional[asyncio.base_events.Server] = None
        self._thread: Optional[threading.Thread] = None
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None

    @property
    def rest_url(self) -> str:
        """The REST base URL (``restUrl``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """The WebSocket base URL (``wsUrl``)."""
        return f"ws://127.0.0.1:{self.port}"

    def total_trades(self, symbols: Optional[Iterable[str]] = None) -> int:
        """How many trades the recording holds (for ``symbols``)."""
        wanted = {s.upper() for s in symbols} if symbols is not None else set(self.trades)
        return sum(len(t) for s, t in self.trades.items() if s in wanted)

    def start(self) -> ReplayServer:
        """Starts serving on a background thread; returns once the port is bound."""
        self._thread = threading.Thread(target=self._run, name="binance-replay", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        """Stops serving and closes every connection."""
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", self.port)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as error:  # reported by start()
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = (lines[0].split(" ") + ["", "", ""])[:3]
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            if headers.get("upgrade", "").lower() == "websocket":
                await self._websocket(target, headers, reader, writer)
            else:
                await self._rest(method, target, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # the server is stopping; asyncio would report a cancelled handler as an error
        finally:
            writer.close()

    # ---- REST ---------------------------------------------------------------------------

    async def _rest(self, method: str, target: str, writer: asyncio.StreamWriter) -> None:
        self.stats["requests"] += 1
        url = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        extra: Dict[str, str] = {}
        if self.faults.rest:
            fault = self.faults.rest.pop(0)
            self.stats["rest_faults"] += 1
            if "status" in fault:
                status = int(fault["status"])
                if "retry_after" in fault:
                    extra["Retry-After"] = str(fault["retry_after"])
                body = {"code": -1003, "msg": "Too many requests; scripted by the replay server."}
                self._reply(writer, status, json.dumps(body).encode(), extra)
                return
            if "body" in fault:
                self._reply(writer, 200, str(fault["body"]).encode(), extra)
                return
            if "used_weight" in fault:
                extra["X-MBX-USED-WEIGHT-1M"] = str(fault["used_weight"])
        status, payload = self._answer(method, url.path, query)
        self._reply(writer, status, json.dumps(payload).encode(), extra)
        await writer.drain()

    def _answer(self, method: str, path: str, query: Dict[str, str]) -> Tuple[int, Any]:
        if method != "GET":
            return 405, {"code": -1, "msg": "only GET is served"}
        symbol = query.get("symbol", "").upper()
        if path == "/api/v3/ticker/24hr":
            recorded = self.tickers.get(symbol)
            if not recorded:
                return 400, {"code": -1121, "msg": "Invalid symbol."}
            position = self._ticker_position.get(symbol, 0)
            self._ticker_position[symbol] = position + 1
            return 200, recorded[min(position, len(recorded) - 1)]
        if path in ("/api/v3/historicalTrades", "/api/v3/aggTrades", "/api/v3/trades"):
            trades = self.trades.get(symbol)
            if trades is None:
                return 400, {"code": -1121, "msg": "Invalid symbol."}
            limit = min(int(query.get("limit", "500")), 1000)
            if "fromId" in query:
                from_id = int(query["fromId"])
                rows = [t for t in trades if t.trade_id >= from_id][:limit]
            else:
                rows = trades[-limit:]
            endpoint = path.rsplit("/", 1)[-1]
            return 200, [_rest_row(t, endpoint) for t in rows]
        if path == "/api/v3/ping":
            return 200, {}
        return 404, {"code": -1, "msg": f"{path} is not served by the replay server"}

    @staticmethod
    def _reply(
        writer: asyncio.StreamWriter, status: int, body: bytes, headers: Dict[str, str]
    ) -> None:
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 418: "I'm a teapot"}.get(
            status, "Too Many Requests" if status == 429 else "Error"
        )
        lines = [
            f"HTTP/1.1 {status} {reason}",
            "Content-Type: application/json;charset=UTF-8",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    # ---- WebSocket ----------------------------------------------------------------------

    async def _websocket(
        self,
        target: str,
        headers: Dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        key = headers.get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        writer.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        connection = self.stats["ws_connections"]
        self.stats["ws_connections"] += 1
        streams = parse_qs(urlsplit(target).query).get("streams", [""])[0].split("/")
        wanted: Dict[str, str] = {}
        for stream in streams:
            if "@" in stream:
                symbol, kind = stream.split("@", 1)
                wanted[symbol.upper()] = kind
        merged = list(
            heapq.merge(
                *(self.trades.get(s, []) for s in wanted),
                key=lambda t: (t.time_ms, t.symbol, t.trade_id),
            )
        )
        start = 0
        if self._resume_at is not None:
            start = max(0, self._resume_at + self.faults.ws_resume_shift)
            self._resume_at = None
        limit = (
            self.faults.ws_disconnect_after[connection]
            if connection < len(self.faults.ws_disconnect_after)
            else None
        )
        pump = asyncio.ensure_future(self._read_client(reader, writer))
        pinger = asyncio.ensure_future(self._ping(writer))
        try:
            if connection == 0:
                for raw in self.faults.ws_malformed:
                    writer.write(_frame(0x1, raw.encode()))
            sent = 0
            previous_time: Optional[int] = None
            started = time.monotonic()
            first_time = merged[start].time_ms if start < len(merged) else 0
            for index in range(start, len(merged)):
                if limit is not None and sent >= limit:
                    self._resume_at = index
                    return  # the scripted disconnect: close without a close frame
                trade = merged[index]
                if self.speed > 0 and previous_time != trade.time_ms:
                    due = started + (trade.time_ms - first_time) / 1000.0 / self.speed
                    delay = due - time.monotonic()
                    if delay > 0:
                        await writer.drain()
                        await asyncio.sleep(delay)
                previous_time = trade.time_ms
                kind = wanted[trade.symbol]
                stream = f"{trade.symbol.lower()}@{kind}"
                message = {"stream": stream, "data": _event(trade, kind)}
                writer.write(_frame(0x1, json.dumps(message, separators=(",", ":")).encode()))
                sent += 1
                self.stats["ws_messages"] += 1
                if sent % 512 == 0:
                    await writer.drain()
            await writer.drain()
            self.finished.set()
            await pump  # stay connected (pings continue) until the client leaves
        finally:
            pump.cancel()
            pinger.cancel()

    async def _ping(self, writer: asyncio.StreamWriter) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            writer.write(_frame(0x9, str(int(time.time() * 1000)).encode()))
            await writer.drain()

    async def _read_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Reads the client's (masked) frames: counts pongs, answers close."""
        while True:
            first, second = await reader.readexactly(2)
            opcode = first & 0x0F
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await reader.readexactly(8))
            mask = await reader.readexactly(4) if second & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(await reader.readexactly(length)))
            if opcode == 0xA:
                self.stats["pongs"] += 1
            elif opcode == 0x9:
                writer.write(_frame(0xA, data))
            elif opcode == 0x8:
                writer.write(_frame(0x8, data[:2]))
                await writer.drain()
                return


def main(argv: Optional[List[str]] = None) -> int:
    """Serves the shipped demo trades until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m ferrostream.replay", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--speed", type=float, default=0.0, help="N x real time; 0: at once")
    args = parser.parse_args(argv)
    server = ReplayServer(demo_trades(), speed=args.speed, port=args.port).start()
    print(f"REST {server.rest_url}  WebSocket {server.ws_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
