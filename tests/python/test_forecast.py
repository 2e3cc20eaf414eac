"""ferrostream.forecast: Prophet on series whose answer is known, the backtest's scores against
hand-computed ones, gaps reported and never filled, every input shape (memory table, Parquet
sink folder, DataFrame, Arrow, pandas), and refits from a running query."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("prophet")

from ferrostream.forecast import (
    CandleGapError,
    LiveForecast,
    backtest,
    find_gaps,
    forecast_hourly,
    plot_candles,
    plot_forecast,
    prophet_frame,
)
from ferrostream.sql import SparkSession
from ferrostream.sql import functions as F
from ferrostream.testing import MemoryStream

HOUR_MS = 3_600_000
BASE = pd.Timestamp("2021-02-01 00:00:00")
BASE_MS = 1_612_137_600_000  # BASE in ms since the epoch
NOISE = 0.2
TICKS = "symbol STRING, price DOUBLE, volume DOUBLE, event_time LONG"


def linear_candles(
    hours: int, slopes: Dict[str, float], missing: Optional[List[int]] = None
) -> pd.DataFrame:
    """Hourly candles with close = 1000 + slope * hour + small seeded noise, as
    ``window_start`` (UTC) rows. (Noise-free lines send Prophet's optimiser into slow,
    degenerate fits; real closes are never exact lines.)"""
    rows = []
    for index, (symbol, slope) in enumerate(slopes.items()):
        noise = np.random.default_rng(index).normal(0.0, NOISE, hours)
        for hour in range(hours):
            if hour in (missing or []):
                continue
            close = 1000.0 + slope * hour + noise[hour]
            rows.append(
                {
                    "window_start": (BASE + pd.Timedelta(hours=hour)).tz_localize("UTC"),
                    "symbol": symbol,
                    "open": close - slope,
                    "high": close + 1,
                    "low": close - slope - 1,
                    "close": close,
                    "volume": 10.0,
                }
            )
    return pd.DataFrame(rows)


def with_window_struct(frame: pd.DataFrame) -> pa.Table:
    """The same candles with Spark's ``window: struct<start, end>`` column."""
    starts = pa.array(frame["window_start"], pa.timestamp("us", tz="UTC"))
    ends = pa.array(frame["window_start"] + pd.Timedelta(hours=1), pa.timestamp("us", tz="UTC"))
    window = pa.StructArray.from_arrays([starts, ends], names=["start", "end"])
    rest = pa.Table.from_pandas(frame.drop(columns=["window_start"]), preserve_index=False)
    return rest.add_column(0, "window", window)


def test_forecast_continues_a_known_trend() -> None:
    candles = linear_candles(24 * 6, {"UP": 2.0, "DOWN": -1.5})
    forecast = forecast_hourly(candles, horizon=12)

    assert forecast.columns.tolist() == ["symbol", "ds", "yhat", "yhat_lower", "yhat_upper"]
    assert sorted(forecast["symbol"].unique()) == ["DOWN", "UP"]
    for symbol, slope in (("UP", 2.0), ("DOWN", -1.5)):
        rows = forecast[forecast["symbol"] == symbol].reset_index(drop=True)
        # The horizon starts the hour after the last candle, on the hourly grid, naive UTC.
        expected_ds = [BASE + pd.Timedelta(hours=24 * 6 + h) for h in range(12)]
        assert rows["ds"].tolist() == expected_ds
        assert rows["ds"].dt.tz is None
        truth = 1000.0 + slope * (24 * 6 + rows.index.to_numpy())
        assert (abs(rows["yhat"] - truth) < 5 * NOISE).all(), rows["yhat"] - truth
        assert (rows["yhat_lower"] <= rows["yhat"]).all()
        assert (rows["yhat"] <= rows["yhat_upper"]).all()
    assert forecast.attrs["gaps"] == []
    assert set(forecast.attrs["fit_seconds"]) == {"UP", "DOWN"}


def test_backtest_scores_against_a_hand_computed_baseline() -> None:
    # close ~ 1000 + 2h. From an origin o the naive forecast of step s is y(o), off by about
    # 2s; a model that follows the trend is off by about the noise.
    hours, horizon, folds = 24 * 5, 3, 2
    candles = linear_candles(hours, {"LIN": 2.0})
    y = candles["close"].tolist()
    scores = backtest(candles, horizon=horizon, folds=folds)

    assert scores["step"].tolist() == [1, 2, 3]
    assert scores["n"].tolist() == [2, 2, 2]
    last = hours - 1
    origins = [last - horizon * (folds - fold) for fold in range(folds)]
    assert origins == [113, 116]
    for step in (1, 2, 3):
        row = scores[scores["step"] == step].iloc[0]
        errors = [y[o + step] - y[o] for o in origins]
        assert row["naive_mae"] == pytest.approx(sum(abs(e) for e in errors) / 2)
        assert row["naive_rmse"] == pytest.approx((sum(e * e for e in errors) / 2) ** 0.5)
        assert row["naive_mape"] == pytest.approx(
            sum(abs(e) / y[o + step] for e, o in zip(errors, origins)) / 2 * 100
        )
        assert row["mae"] < 4 * NOISE < 2.0 * step - 4 * NOISE < row["naive_mae"]
    assert 0.3 <= scores.attrs["coverage"]["LIN"] <= 1.0


def test_backtest_leaves_missing_hours_out_of_the_scores() -> None:
    # The last hour (119) is missing: only the second fold could score step 3, and it can't.
    candles = linear_candles(24 * 5 + 1, {"LIN": 2.0}, missing=[119])
    scores = backtest(candles, horizon=3, folds=2)
    # last candle is hour 120: origins 114 and 117; hour 119 is step 2 of the second fold.
    assert scores.set_index("step")["n"].to_dict() == {1: 2, 2: 1, 3: 2}


def test_backtest_with_too_little_history_says_what_to_change() -> None:
    with pytest.raises(ValueError, match="fewer folds"):
        backtest(linear_candles(10, {"LIN": 1.0}), horizon=5, folds=3)


def test_gaps_are_reported_and_never_filled() -> None:
    candles = linear_candles(72, {"BTC": 1.0, "ETH": 1.0}, missing=[5, 30, 31, 32])

    gaps = find_gaps(candles)
    assert gaps.to_dict("records") == [
        {
            "symbol": symbol,
            "first_missing": BASE + pd.Timedelta(hours=first),
            "last_missing": BASE + pd.Timedelta(hours=last),
            "missing_hours": last - first + 1,
        }
        for symbol in ("BTC", "ETH")
        for first, last in ((5, 5), (30, 32))
    ]
    frame = prophet_frame(candles, symbol="BTC")
    assert len(frame) == 72 - 4, "no row is invented for a missing hour"
    assert not frame["ds"].isin([BASE + pd.Timedelta(hours=h) for h in (5, 30, 31, 32)]).any()

    forecast = forecast_hourly(candles, horizon=2, symbol="BTC")
    assert [g["missing_hours"] for g in forecast.attrs["gaps"]] == [1, 3]
    with pytest.raises(CandleGapError, match=r"4 hour\(s\) missing in 2 gap\(s\); first: BTC"):
        forecast_hourly(candles, horizon=2, symbol="BTC", gaps="raise")
    with pytest.raises(ValueError, match="gaps must be one of"):
        forecast_hourly(candles, gaps="interpolate")


def test_candles_that_are_not_hourly_are_refused() -> None:
    candles = linear_candles(48, {"BTC": 1.0})
    candles["window_start"] = candles["window_start"] + pd.Timedelta(minutes=15)
    with pytest.raises(ValueError, match="not on the hour"):
        prophet_frame(candles)
    daily = with_window_struct(linear_candles(4, {"BTC": 1.0}))
    ends = pc_add_days(daily)
    with pytest.raises(ValueError, match="not one hour long"):
        prophet_frame(ends)
    with pytest.raises(ValueError, match="no `close` column"):
        prophet_frame(linear_candles(4, {"BTC": 1.0}).drop(columns=["close"]))


def pc_add_days(table: pa.Table) -> pa.Table:
    window = table["window"].combine_chunks()
    starts = window.field("start")
    ends = pa.array(starts.to_pandas() + pd.Timedelta(days=1), pa.timestamp("us", tz="UTC"))
    fixed = pa.StructArray.from_arrays([starts, ends], names=["start", "end"])
    return table.set_column(0, "window", fixed)


def test_every_input_shape_gives_the_same_frame(spark: SparkSession, tmp_path: Path) -> None:
    candles = linear_candles(6, {"BTC": 1.0, "ETH": 3.0})
    expected = prophet_frame(candles)
    assert expected["ds"].tolist()[:2] == [BASE, BASE + pd.Timedelta(hours=1)]

    as_arrow = with_window_struct(candles)
    as_frame = spark.createDataFrame(as_arrow)
    as_frame.createOrReplaceTempView("forecast_candles_view")
    for shape in (as_arrow, as_arrow.to_pandas(), as_frame, "forecast_candles_view"):
        pd.testing.assert_frame_equal(prophet_frame(shape), expected)

    with pytest.raises(ValueError, match="streaming DataFrame"):
        prophet_frame(MemoryStream(spark, TICKS).toDF())
    with pytest.raises(FileNotFoundError):
        prophet_frame(str(tmp_path / "nowhere"))
    with pytest.raises(TypeError, match="got int"):
        prophet_frame(42)


def hourly_ohlc(ticks: Any) -> Any:
    return (
        ticks.withColumn("event_timestamp", F.timestamp_millis("event_time"))
        .withWatermark("event_timestamp", "1 hour")
        .groupBy(F.window("event_timestamp", "1 hour"), "symbol")
        .agg(
            F.first("price").alias("open"),
            F.max("price").alias("high"),
            F.min("price").alias("low"),
            F.last("price").alias("close"),
            F.sum("volume").alias("volume"),
        )
    )


def test_memory_table_keeps_the_last_version_of_each_window(spark: SparkSession) -> None:
    # update mode appends each changed version of a window to the memory table.
    stream = MemoryStream(spark, TICKS)
    query = (
        hourly_ohlc(stream.toDF())
        .writeStream.format("memory")
        .queryName("forecast_updates")
        .outputMode("update")
        .start()
    )
    try:
        stream.addData([("BTC", 1.0, 1.0, BASE_MS), ("BTC", 2.0, 1.0, BASE_MS + 10)])
        query.processAllAvailable()
        stream.addData([("BTC", 3.0, 1.0, BASE_MS + 20), ("BTC", 5.0, 1.0, BASE_MS + HOUR_MS)])
        query.processAllAvailable()
        assert spark.table("forecast_updates").count() == 3, "hour 0 twice, hour 1 once"
        # Read while the query runs: the on-demand path.
        frame = prophet_frame("forecast_updates")
    finally:
        query.stop()
    assert frame[["ds", "y", "volume"]].values.tolist() == [
        [BASE, 3.0, 3.0],
        [BASE + pd.Timedelta(hours=1), 5.0, 1.0],
    ]


def write_ticks(folder: Path, name: str, rows: List[Dict[str, Any]]) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_parquet_sink_folder_is_read_through_its_manifest(
    spark: SparkSession, tmp_path: Path
) -> None:
    source, out = tmp_path / "ticks", tmp_path / "hourly"
    rows = [
        {"symbol": s, "price": 100.0 + h, "volume": 1.0, "event_time": BASE_MS + h * HOUR_MS + 5}
        for h in range(30)
        for s in ("BTC", "ETH")
    ]
    write_ticks(source, "ticks.json", rows)
    query = (
        hourly_ohlc(spark.readStream.schema(TICKS).json(str(source)))
        .writeStream.format("parquet")
        .option("checkpointLocation", str(tmp_path / "chk"))
        .partitionBy("symbol")
        .outputMode("append")
        .start(str(out))
    )
    query.processAllAvailable()
    query.stop()
    # A leftover file the manifest does not name (as a crash mid-batch leaves) is not read.
    committed = sorted((out / "symbol=BTC").glob("*.parquet"))[0]
    leftover = pq.read_table(committed)
    leftover = leftover.set_column(
        leftover.schema.get_field_index("close"), "close", pa.array([-1.0] * len(leftover))
    )
    pq.write_table(leftover, out / "symbol=BTC" / "part-99999-leftover.parquet")

    frame = prophet_frame(str(out))
    # Watermark = hour 29 - 1 h: hours 0..27 are closed and written (append mode).
    assert sorted(frame["symbol"].unique()) == ["BTC", "ETH"]
    assert frame.groupby("symbol").size().to_dict() == {"BTC": 28, "ETH": 28}
    assert frame["y"].tolist()[:3] == [100.0, 101.0, 102.0]
    assert (frame["y"] > 0).all(), "the leftover file was read"
    forecast = forecast_hourly(out, horizon=3, symbol="ETH")
    assert forecast["ds"].tolist()[0] == BASE + pd.Timedelta(hours=28)


def test_live_forecast_refits_every_n_batches() -> None:
    candles = with_window_struct(linear_candles(24 * 4, {"BTC": 1.0}))
    seen: List[int] = []
    live = LiveForecast(horizon=6, every=2, on_forecast=lambda fc, batch_id: seen.append(batch_id))
    chunks = [candles.slice(0, 48), candles.slice(48, 24), candles.slice(72, 24)]

    live(chunks[0], 0)
    assert live.forecast is None and live.fits == 0
    live(candles.slice(0, 0), 1)  # an empty batch is not counted
    live(chunks[1], 2)
    assert live.fits == 1 and seen == [2]
    first = live.forecast
    assert first is not None
    assert first["ds"].iloc[0] == BASE + pd.Timedelta(hours=72)

    live(chunks[1], 2)  # a replayed batch (after a restart) changes nothing
    assert len(live.candles) == 72
    live(chunks[2], 3)
    assert live.fits == 2 and seen == [2, 3] and len(live.candles) == 96
    on_demand = live.refit()
    assert live.fits == 3
    assert on_demand["ds"].iloc[0] == BASE + pd.Timedelta(hours=96)
    assert live.last_batch_id == 3


def test_live_forecast_through_foreach_batch(spark: SparkSession, tmp_path: Path) -> None:
    stream = MemoryStream(spark, TICKS)
    live = LiveForecast(horizon=3, every=2)
    writer = hourly_ohlc(stream.toDF()).writeStream.outputMode("append").foreachBatch(live)
    query = writer.option("checkpointLocation", str(tmp_path / "chk")).start()
    try:
        for day in range(3):
            stream.addData(
                [
                    ("BTC", 100.0 + h, 1.0, BASE_MS + h * HOUR_MS)
                    for h in range(24 * day, 24 * (day + 1) + 1)
                ]
            )
            query.processAllAvailable()
        assert query.isActive
    finally:
        query.stop()
    # The last tick is at hour 72, so the watermark is 71:00 and append has emitted the hours
    # that ended by then: 0..70. Refits after every 2nd batch that brought candles.
    # Batches with candles: hours 0..22, 23..46, 47..70; the refit ran after the second.
    assert len(live.candles) == 71
    assert (live.batches_seen, live.fits) == (3, 1)
    assert live.forecast is not None
    assert live.forecast["ds"].iloc[0] == BASE + pd.Timedelta(hours=47)
    latest = live.refit()  # on demand, after the query
    assert latest["ds"].iloc[0] == BASE + pd.Timedelta(hours=71)
    assert latest["yhat"].iloc[0] == pytest.approx(100.0 + 71, abs=2.0)


def test_plots_are_written_as_png(tmp_path: Path) -> None:
    candles = linear_candles(48, {"BTC": 1.0, "ETH": 1.0}, missing=[20])
    plot_candles(candles, tmp_path / "candles.png", symbol="BTC", last_hours=36)
    forecast = forecast_hourly(candles, horizon=6, symbol="BTC")
    plot_forecast(candles, forecast, tmp_path / "forecast.png", symbol="BTC")
    for name in ("candles.png", "forecast.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000
    with pytest.raises(ValueError, match="several symbols"):
        plot_candles(candles)
