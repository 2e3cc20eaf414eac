"""Where ferrostream differs from PySpark 3.5 by design (docs/user-guide.md, "Where we differ
from Spark"), pinned row by row so a change on either side shows up here."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed (scripts/pyspark.sh installs it)")

import pipelines as P  # noqa: E402
from engines import Engine, run_stream, table_of  # noqa: E402

H = P.HOUR_MS


def tick(symbol: str, event_ms: int, price: float) -> Dict[str, Any]:
    row = P.make_tick(__import__("random").Random(event_ms), symbol, event_ms)
    row["price"] = price
    return row


def hourly_counts(
    engine: Engine, folder: Path, tmp_path: Path, trigger: Dict[str, Any]
) -> List[Any]:
    ticks = P.with_event_time(engine, P.file_ticks(engine, folder))
    candles = P.ohlc(engine, ticks, "1 hour").select(
        engine.F.col("window.start").alias("start"), "symbol", "ticks", "high"
    )
    name, _ = run_stream(
        engine, candles, mode="append", trigger=trigger, checkpoint=tmp_path / engine.name
    )
    return table_of(engine.spark.table(name))[1]


def test_late_row_judged_by_previous_batch_watermark(
    pyspark_engine: Engine, ferro_engine: Engine, tmp_path: Path
) -> None:
    """Batch 2 brings a row for the 02:00-03:00 window. The watermark was 01:00 after batch 0
    and 04:00 after batch 1. We drop the row (window end 03:00 <= 04:00, the documented rule);
    Spark 3.5, running batches back to back, judges batch 2 by batch 0's watermark and keeps it."""
    base = P.BASE_MS
    folder = tmp_path / "ticks"
    P.write_tick_files(
        folder,
        [
            [tick("BTCUSDT", base + 2 * H + 10 * 60_000, 100.0)],  # max 02:10, wm 01:10
            [tick("BTCUSDT", base + 5 * H + 10 * 60_000, 101.0)],  # max 05:10, wm 04:10
            [tick("BTCUSDT", base + 2 * H + 40 * 60_000, 999.0)],  # window ends 03:00
            [tick("BTCUSDT", base + 9 * H, 102.0)],  # closes the 05:00 window
        ],
    )
    spark_rows = hourly_counts(pyspark_engine, folder, tmp_path, {"availableNow": True})
    ours = hourly_counts(ferro_engine, folder, tmp_path, {"availableNow": True})
    at_two = P.BASE_MS // 1000 + 2 * 3600
    spark_two = [r for r in spark_rows if int(r[0].replace(tzinfo=None).timestamp()) == at_two]
    assert [r[1:] for r in spark_two] == [("BTCUSDT", 2, 999.0)], "Spark keeps the late row"
    our_two = [r for r in ours if int(r[0].timestamp()) == at_two]
    assert [r[1:] for r in our_two] == [("BTCUSDT", 1, 100.0)], "we drop it"
    assert [r for r in spark_rows if r not in spark_two] == [r for r in ours if r not in our_two]


def test_windows_closed_by_the_last_batch_are_emitted_in_it(
    pyspark_engine: Engine, ferro_engine: Engine, tmp_path: Path
) -> None:
    """trigger(once=True), append: the one batch moves the watermark past some windows' end.
    We emit them in that batch; Spark emits nothing until a next batch runs."""
    folder = tmp_path / "ticks"
    ticks = [t for rows in P.tick_batches(seed=7, batches=3) for t in rows]
    P.write_tick_files(folder, [ticks])
    spark_rows = hourly_counts(pyspark_engine, folder, tmp_path, {"once": True})
    ours = hourly_counts(ferro_engine, folder, tmp_path, {"once": True})
    assert spark_rows == []
    watermark = max(t["event_time"] for t in ticks) - P.WATERMARK_DELAY_MS
    closed = sorted(
        {
            (P.window_end(t["event_time"], H) - H, t["symbol"])
            for t in ticks
            if P.window_end(t["event_time"], H) <= watermark
        }
    )
    assert len(closed) >= 3
    assert sorted((int(r[0].timestamp() * 1000), r[1]) for r in ours) == closed
