"""Rebuilds the small recorded samples the notebooks read, from the project's shared data.

    python notebooks/data/make_samples.py /path/to/shared/data

Only maintainers run this; the outputs are committed so the notebooks run from a clean
checkout with no network. See README.md beside this file for what each sample is and
where it comes from.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

KLINE_FILES = [
    f"binance/klines/alphakit_spot_1h_2021/{symbol}-1h-2021-{month}.csv"
    for symbol in ("BTCUSDT", "ETHUSDT")
    for month in ("02", "03")
]
TRADES_ZIP = "binance/trades/BTCUSD_PERP-aggTrades-2026-05-08.zip"


def klines(shared: Path) -> None:
    """Hourly spot klines, Feb-Mar 2021, BTCUSDT and ETHUSDT (two hours missing in each)."""
    out = HERE / "klines_1h_2021-02_03.csv.gz"
    with gzip.open(out, "wt", newline="", compresslevel=9) as sink:
        writer = csv.writer(sink)
        writer.writerow(["symbol", "open_time", "open", "high", "low", "close", "volume", "trades"])
        for name in KLINE_FILES:
            symbol = Path(name).name.split("-")[0]
            with open(shared / name, newline="") as source:
                for row in csv.reader(source):
                    open_time, o, h, low, c, volume, _close_time, _quote, trades = row[:9]
                    writer.writerow([symbol, open_time, o, h, low, c, volume, trades])
    print(f"wrote {out} ({out.stat().st_size} bytes)")


def trades(shared: Path) -> None:
    """A whole day of COIN-M BTCUSD_PERP aggregated trades: time, price, quantity."""
    out = HERE / "aggtrades_BTCUSD_PERP_2026-05-08.csv.gz"
    with zipfile.ZipFile(shared / TRADES_ZIP) as archive:
        (member,) = archive.namelist()
        with archive.open(member) as raw, gzip.open(out, "wt", newline="") as sink:
            reader = csv.DictReader(io.TextIOWrapper(raw, newline=""))
            writer = csv.writer(sink)
            writer.writerow(["transact_time", "price", "quantity"])
            for row in reader:
                writer.writerow([row["transact_time"], row["price"], row["quantity"]])
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data")
    klines(root)
    trades(root)
