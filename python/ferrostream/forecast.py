"""Prophet forecasts of hourly OHLC candles, from a finished table or a running query.

Install the extra first: ``pip install ferrostream[forecast]`` (Prophet, pandas, matplotlib).

Candles come in any of the shapes a pipeline produces, with the columns ``window``
(``struct<start, end>``, as ``groupBy(window(...))`` makes it) or ``window_start``,
``symbol``, ``close`` and optionally ``volume``:

- a batch ferrostream :class:`~ferrostream.sql.DataFrame`;
- the name of a memory table (read through the active :class:`~ferrostream.sql.SparkSession`,
  so it can be called while the query that fills the table runs);
- a Parquet folder written by the Parquet sink (read with ``spark.read.parquet``, so only the
  files the sink's manifest commits are read);
- a ``pyarrow.Table`` or a ``pandas.DataFrame``.

Each symbol becomes Prophet's frame: ``ds`` is the window start as a naive UTC timestamp, ``y``
the close. When a window appears more than once (an ``update``-mode memory table appends every
changed version of a window), the last row wins.

**Gaps.** A missing hour (an exchange outage, a quiet hour with no trade) is never filled in:
no interpolated or carried-forward price is invented. Prophet fits ``y`` as a function of time
and needs no regular grid, so by default (``gaps="skip"``) it is fitted on the hours that
exist, and the gaps are reported (:func:`find_gaps`, and ``attrs["gaps"]`` on the result);
``gaps="raise"`` refuses to fit a series with holes. :func:`backtest` skips the hours without
an actual close when it scores a forecast, and says how many it scored (``n``).

>>> from ferrostream.forecast import forecast_hourly, backtest
>>> forecast_hourly("crypto_hourly", horizon=24).head(2)  # doctest: +SKIP
    symbol                  ds          yhat    yhat_lower    yhat_upper
0  BTCUSDT 2021-04-01 00:00:00  58921.37...  57867.10...  60012.55...
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

if TYPE_CHECKING:  # pragma: no cover
    import pandas
    import pyarrow
    from matplotlib.figure import Figure

    from ferrostream.sql.dataframe import DataFrame

__all__ = [
    "CandleGapError",
    "LiveForecast",
    "backtest",
    "find_gaps",
    "forecast_hourly",
    "plot_candles",
    "plot_forecast",
    "prophet_frame",
]

Candles = Union["DataFrame", str, "os.PathLike[str]", "pyarrow.Table", "pandas.DataFrame", Any]
"""Anything :func:`prophet_frame` reads: see the module's documentation."""

HOUR = 3600
_GAP_POLICIES = ("skip", "raise")
_INSTALL_HINT = "install the forecast extra: pip install 'ferrostream[forecast]'"


class CandleGapError(ValueError):
    """Raised with ``gaps="raise"`` when a symbol's hourly candles have missing hours."""


# -- reading candles ---------------------------------------------------------------------------


def prophet_frame(candles: Candles, symbol: Optional[str] = None) -> pandas.DataFrame:
    """Hourly candles as Prophet's long frame: ``symbol``, ``ds``, ``y`` (and ``volume``).

    ``ds`` is the window start as a naive UTC timestamp, ``y`` the close. Rows are sorted by
    symbol then ``ds``; when a window appears several times the last row wins (an ``update``
    memory table keeps every version of a window). Rows with a null close are dropped, so the
    hour counts as missing (:func:`find_gaps` reports it).

    Parameters
    ----------
    candles : DataFrame, str, path, pyarrow.Table or pandas.DataFrame
        The candles: see the module's documentation.
    symbol : str, optional
        Keep only this symbol.

    Examples
    --------
    >>> prophet_frame("crypto_hourly", symbol="BTCUSDT").columns.tolist()  # doctest: +SKIP
    ['symbol', 'ds', 'y', 'volume']
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    table = _load(candles)
    names = table.column_names
    starts = _window_starts(table)
    for required in ("symbol", "close"):
        if required not in names:
            raise ValueError(
                f"candles have no `{required}` column; columns are {names}. "
                "Expected `window` (or `window_start`), `symbol`, `close`, optional `volume`."
            )
    columns: Dict[str, Any] = {
        "symbol": table["symbol"].cast(pa.string()),
        "ds": starts,
        "y": table["close"].cast(pa.float64()),
    }
    if "volume" in names:
        columns["volume"] = table["volume"].cast(pa.float64())
    frame = pa.table(columns)
    if symbol is not None:
        frame = frame.filter(pc.equal(frame["symbol"], symbol))
    out = frame.to_pandas()
    out["ds"] = pd.to_datetime(out["ds"], utc=True).dt.tz_localize(None)
    out = out.drop_duplicates(subset=["symbol", "ds"], keep="last")
    out = out[out["y"].notna()]
    return out.sort_values(["symbol", "ds"], kind="stable").reset_index(drop=True)


def _load(candles: Candles) -> pyarrow.Table:
    """Any supported input as a pyarrow Table."""
    import pyarrow as pa

    from ferrostream.sql.dataframe import DataFrame

    if isinstance(candles, DataFrame):
        if candles.isStreaming:
            raise ValueError(
                "a streaming DataFrame has no rows to forecast yet: write it to a memory table "
                "(writeStream.format('memory').queryName('hourly')) and pass the table's name, "
                "or use LiveForecast with foreachBatch"
            )
        return candles.toArrow()
    if isinstance(candles, pa.Table):
        return candles
    if isinstance(candles, (str, os.PathLike)):
        return _load_named(os.fspath(candles))
    if type(candles).__module__.startswith("pandas"):
        return pa.Table.from_pandas(candles, preserve_index=False)
    if hasattr(candles, "toArrow"):  # a foreachBatch micro-batch or another DataFrame-like
        return pa.table(candles.toArrow())
    if hasattr(candles, "__arrow_c_stream__"):
        return pa.table(candles)
    raise TypeError(
        "candles must be a ferrostream DataFrame, a memory table's name, a Parquet path, a "
        f"pyarrow.Table or a pandas.DataFrame, got {type(candles).__name__}"
    )


def _load_named(name: str) -> pyarrow.Table:
    """A Parquet folder or file when ``name`` exists on disk, else a memory table."""
    from ferrostream.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    if os.path.exists(name):
        return spark.read.parquet(name).toArrow()
    if os.sep in name or name.endswith(".parquet"):
        raise FileNotFoundError(f"no Parquet folder or file at {name!r}")
    return spark.table(name).toArrow()


def _window_starts(table: pyarrow.Table) -> pyarrow.ChunkedArray:
    """Window starts as UTC timestamps, checked to be whole, one-hour windows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = table.column_names
    ends = None
    if "window" in names and pa.types.is_struct(table.schema.field("window").type):
        window = table["window"].combine_chunks()
        starts, ends = pc.struct_field(window, "start"), pc.struct_field(window, "end")
    elif "window_start" in names:
        starts = table["window_start"]
        if "window_end" in names:
            ends = table["window_end"]
    else:
        raise ValueError(
            f"candles have no `window` struct or `window_start` column; columns are {names}"
        )
    if not pa.types.is_timestamp(starts.type):
        raise ValueError(f"window start must be a timestamp, got {starts.type}")
    starts = _as_utc(starts)
    micros = pc.cast(starts, pa.int64()).to_numpy(zero_copy_only=False)
    if (micros % (HOUR * 1_000_000) != 0).any():
        raise ValueError(
            "these are not hourly candles: some window starts are not on the hour "
            "(use window(col, '1 hour'))"
        )
    if ends is not None:
        end_micros = pc.cast(_as_utc(ends), pa.int64()).to_numpy(zero_copy_only=False)
        if (end_micros - micros != HOUR * 1_000_000).any():
            raise ValueError(
                "these are not hourly candles: some windows are not one hour long "
                "(use window(col, '1 hour'))"
            )
    return starts


def _as_utc(values: Any) -> Any:
    import pyarrow as pa

    return values.cast(pa.timestamp("us", tz=values.type.tz or "UTC"))


def find_gaps(candles: Candles, symbol: Optional[str] = None) -> pandas.DataFrame:
    """The missing hours of each symbol's series, one row per run of missing hours.

    A gap is an hour between a symbol's first and last candle with no candle (or a null close):
    an exchange outage, a quiet hour without trades, or a window the watermark dropped.

    Returns
    -------
    pandas.DataFrame
        ``symbol``, ``first_missing``, ``last_missing`` (naive UTC window starts, inclusive)
        and ``missing_hours``; empty when every series is complete.

    Examples
    --------
    >>> find_gaps("crypto_hourly")  # doctest: +SKIP
        symbol       first_missing        last_missing  missing_hours
    0  BTCUSDT 2021-02-11 04:00:00 2021-02-11 04:00:00              1
    """
    return _gaps(_frame(candles, symbol))


def _frame(candles: Candles, symbol: Optional[str]) -> pandas.DataFrame:
    """Prophet's frame for ``candles``, which may be one already (from LiveForecast)."""
    if not _is_prophet_frame(candles):
        return prophet_frame(candles, symbol)
    frame: pandas.DataFrame = candles
    return frame if symbol is None else frame[frame["symbol"] == symbol]


def _is_prophet_frame(value: Any) -> bool:
    return type(value).__module__.startswith("pandas") and {"symbol", "ds", "y"} <= set(
        getattr(value, "columns", [])
    )


def _gaps(frame: pandas.DataFrame) -> pandas.DataFrame:
    import pandas as pd

    rows: List[Dict[str, Any]] = []
    hour = pd.Timedelta(hours=1)
    for name, series in frame.groupby("symbol", sort=True):
        ds = series["ds"]
        step = ds.diff()
        for index in step.index[step > hour]:
            after = ds[index]
            before = after - step[index]
            rows.append(
                {
                    "symbol": name,
                    "first_missing": before + hour,
                    "last_missing": after - hour,
                    "missing_hours": int(step[index] / hour) - 1,
                }
            )
    columns = ["symbol", "first_missing", "last_missing", "missing_hours"]
    return pd.DataFrame(rows, columns=columns)


def _check_gaps(frame: pandas.DataFrame, gaps: str) -> pandas.DataFrame:
    if gaps not in _GAP_POLICIES:
        raise ValueError(f"gaps must be one of {list(_GAP_POLICIES)}, got {gaps!r}")
    found = _gaps(frame)
    if gaps == "raise" and len(found):
        first = found.iloc[0]
        raise CandleGapError(
            f"{int(found['missing_hours'].sum())} hour(s) missing in {len(found)} gap(s); first: "
            f"{first['symbol']} {first['first_missing']} .. {first['last_missing']} (UTC). "
            "Pass gaps='skip' to fit on the hours that exist."
        )
    return found


# -- Prophet -----------------------------------------------------------------------------------


def _prophet_class() -> Any:
    """Imports Prophet on first use, so ``import ferrostream`` never needs it."""
    # Prophet logs an error at import when plotly (its optional interactive plots) is absent.
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            # tqdm (through cmdstanpy) warns at import when ipywidgets is absent.
            warnings.filterwarnings("ignore", message="IProgress not found")
            from prophet import Prophet
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(f"ferrostream.forecast needs Prophet: {_INSTALL_HINT}") from err
    return Prophet


class _BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hides cmdstanpy's per-fit INFO lines and Prophet's own deprecation warnings (it calls
    pandas APIs that newer pandas deprecates); the user's warnings and logs are untouched."""
    quiet = _BelowWarning()
    loggers = [logging.getLogger(name) for name in ("cmdstanpy", "prophet")]
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"prophet(\.|$)")
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)


@dataclass
class _Fit:
    predict: Callable[[pandas.DataFrame], pandas.DataFrame]
    seconds: float


def _fit(
    history: pandas.DataFrame,
    volume_regressor: bool,
    interval_width: float,
    prophet_options: Optional[Dict[str, Any]] = None,
    seed: int = 0,
) -> _Fit:
    """Fits one symbol's series and returns a function from future ``ds`` to predictions."""
    import numpy as np

    prophet = _prophet_class()
    if len(history) < 2:
        raise ValueError(
            f"symbol {history['symbol'].iloc[0] if len(history) else '?'} has {len(history)} "
            "candle(s); Prophet needs at least 2 (and two days or more to learn the daily cycle)"
        )
    frame = history[["ds", "y"]].copy()
    recent_volume: Any = 0.0
    if volume_regressor:
        if "volume" not in history or history["volume"].isna().all():
            raise ValueError("volume_regressor=True needs a `volume` column")
        frame["volume"] = history["volume"].fillna(0.0).to_numpy()
        recent_volume = float(frame["volume"].tail(24).mean())
    started = time.perf_counter()
    with _quiet():
        # Hourly candles span days or weeks: daily and weekly cycles are worth fitting when
        # there is enough history (Prophet's "auto"), a yearly one never is.
        options: Dict[str, Any] = {"yearly_seasonality": False, "interval_width": interval_width}
        options.update(prophet_options or {})
        model = prophet(**options)
        if volume_regressor:
            model.add_regressor("volume")
        # The interval comes from sampling the trend's future changes: a fixed seed makes the
        # same candles give the same yhat_lower / yhat_upper.
        np.random.seed(seed)
        model.fit(frame)
    seconds = time.perf_counter() - started

    def predict(future: pandas.DataFrame) -> pandas.DataFrame:
        future = future[["ds"]].copy()
        if volume_regressor:
            # Future volume is unknown: assume the mean of the last 24 candles.
            future["volume"] = recent_volume
        with _quiet():
            np.random.seed(seed)
            out = model.predict(future)
        return out[["ds", "yhat", "yhat_lower", "yhat_upper"]]

    return _Fit(predict=predict, seconds=seconds)


def forecast_hourly(
    candles: Candles,
    horizon: int = 24,
    symbol: Optional[str] = None,
    *,
    gaps: str = "skip",
    volume_regressor: bool = False,
    interval_width: float = 0.8,
    history_hours: Optional[int] = None,
    prophet_options: Optional[Dict[str, Any]] = None,
) -> pandas.DataFrame:
    """Forecasts each symbol's hourly close ``horizon`` hours past its last candle.

    Fits one Prophet model per symbol (``ds`` = window start in naive UTC, ``y`` = close) and
    predicts the hours after the symbol's last candle. Missing hours are not filled in: see
    ``gaps``.

    Parameters
    ----------
    candles : DataFrame, str, path, pyarrow.Table or pandas.DataFrame
        Hourly OHLC: a batch DataFrame, a memory table's name, a Parquet sink's folder, Arrow or
        pandas, with ``window`` (or ``window_start``), ``symbol``, ``close``, optional ``volume``.
    horizon : int
        How many hours to forecast.
    symbol : str, optional
        Forecast only this symbol (default: every symbol).
    gaps : {"skip", "raise"}
        ``"skip"`` fits on the hours that exist (Prophet needs no regular grid) and lists the
        gaps in ``result.attrs["gaps"]``; ``"raise"`` raises :class:`CandleGapError`.
    volume_regressor : bool
        Add volume as an extra regressor. The future's volume is unknown, so it is taken as the
        mean of the symbol's last 24 candles.
    interval_width : float
        Coverage of ``yhat_lower`` .. ``yhat_upper`` (0.8 is Prophet's default).
    history_hours : int, optional
        Fit on the last this many hours of each series only (faster; adapts to recent regimes).
    prophet_options : dict, optional
        Extra arguments for ``prophet.Prophet`` (``changepoint_prior_scale``, ...); the
        defaults are Prophet's, with ``yearly_seasonality=False``.

    Returns
    -------
    pandas.DataFrame
        ``symbol``, ``ds`` (naive UTC), ``yhat``, ``yhat_lower``, ``yhat_upper``: ``horizon``
        rows per symbol. ``attrs["gaps"]`` lists the gaps found (as :func:`find_gaps` rows) and
        ``attrs["fit_seconds"]`` the time spent fitting per symbol.

    Examples
    --------
    >>> fc = forecast_hourly("crypto_hourly", horizon=24, symbol="BTCUSDT")  # doctest: +SKIP
    >>> fc.columns.tolist()  # doctest: +SKIP
    ['symbol', 'ds', 'yhat', 'yhat_lower', 'yhat_upper']
    >>> spark.createDataFrame(fc).show(3)  # back into ferrostream  # doctest: +SKIP
    """
    import pandas as pd

    if horizon < 1:
        raise ValueError(f"horizon must be at least 1 hour, got {horizon}")
    frame = _frame(candles, symbol)
    if frame.empty:
        raise ValueError(
            f"no candles for symbol {symbol!r}" if symbol is not None else "no candles to forecast"
        )
    found = _check_gaps(frame, gaps)
    results = []
    fit_seconds: Dict[str, float] = {}
    for name, series in frame.groupby("symbol", sort=True):
        if history_hours is not None:
            series = series[
                series["ds"] > series["ds"].iloc[-1] - pd.Timedelta(hours=history_hours)
            ]
        fit = _fit(series, volume_regressor, interval_width, prophet_options)
        fit_seconds[str(name)] = fit.seconds
        future = pd.DataFrame(
            {"ds": pd.date_range(series["ds"].iloc[-1], periods=horizon + 1, freq="h")[1:]}
        )
        predicted = fit.predict(future)
        predicted.insert(0, "symbol", name)
        results.append(predicted)
    out = pd.concat(results, ignore_index=True)
    out.attrs["gaps"] = found.to_dict("records")
    out.attrs["fit_seconds"] = fit_seconds
    return out


# -- backtest ----------------------------------------------------------------------------------


def backtest(
    candles: Candles,
    horizon: int = 24,
    folds: int = 5,
    symbol: Optional[str] = None,
    *,
    volume_regressor: bool = False,
    interval_width: float = 0.8,
    history_hours: Optional[int] = None,
    prophet_options: Optional[Dict[str, Any]] = None,
) -> pandas.DataFrame:
    """Rolling-origin evaluation of :func:`forecast_hourly` beside a naive last-value forecast.

    The series is cut at ``folds`` origins, ``horizon`` hours apart, the last one ``horizon``
    hours before the last candle. For each origin the model is fitted on the candles up to it
    and forecasts the next ``horizon`` hours; the naive baseline predicts the last close at or
    before the origin for every hour. Step ``h`` is scored against the actual close ``h`` hours
    after the origin; an hour without a candle (a gap) is left out of the scores, never filled.

    Parameters
    ----------
    candles : DataFrame, str, path, pyarrow.Table or pandas.DataFrame
        Hourly OHLC, as for :func:`forecast_hourly`.
    horizon : int
        Hours forecast from each origin.
    folds : int
        Number of origins.
    symbol : str, optional
        Evaluate only this symbol.
    volume_regressor, interval_width, history_hours, prophet_options
        As for :func:`forecast_hourly`.

    Returns
    -------
    pandas.DataFrame
        One row per symbol and ``step`` (1 .. ``horizon``, hours after the origin): ``n`` (folds
        scored at that step), ``mae``, ``mape`` (percent), ``rmse`` of the model and
        ``naive_mae``, ``naive_mape``, ``naive_rmse`` of the baseline. ``attrs["coverage"]``
        maps each symbol to the share of actual closes inside the forecast interval.

    Examples
    --------
    >>> scores = backtest("crypto_hourly", horizon=24, folds=5)  # doctest: +SKIP
    >>> scores.groupby("symbol")[["mae", "naive_mae"]].mean()  # doctest: +SKIP
    """
    if horizon < 1 or folds < 1:
        raise ValueError(f"horizon and folds must be at least 1, got {horizon} and {folds}")
    frame = _frame(candles, symbol)
    if frame.empty:
        raise ValueError("no candles to backtest")

    def prophet_forecaster(train: pandas.DataFrame, future: pandas.DataFrame) -> pandas.DataFrame:
        if history_hours is not None:
            train = train.tail(history_hours)
        return _fit(train, volume_regressor, interval_width, prophet_options).predict(future)

    return _backtest(frame, horizon, folds, prophet_forecaster)


Forecaster = Callable[["pandas.DataFrame", "pandas.DataFrame"], "pandas.DataFrame"]


def _backtest(
    frame: pandas.DataFrame, horizon: int, folds: int, forecaster: Forecaster
) -> pandas.DataFrame:
    """The rolling-origin loop, with the model passed in (tests give it a known one)."""
    import numpy as np
    import pandas as pd

    hour = pd.Timedelta(hours=1)
    rows: List[Dict[str, Any]] = []
    coverage: Dict[str, float] = {}
    for name, series in frame.groupby("symbol", sort=True):
        actual = series.set_index("ds")["y"]
        last = series["ds"].iloc[-1]
        errors: Dict[int, List[Sequence[float]]] = {step: [] for step in range(1, horizon + 1)}
        inside = scored = 0
        for fold in range(folds):
            origin = last - (folds - fold) * horizon * hour
            train = series[series["ds"] <= origin]
            if len(train) < 2:
                raise ValueError(
                    f"symbol {name}: fold {fold + 1} of {folds} has {len(train)} candle(s) to "
                    f"train on; use fewer folds or a shorter horizon (the series has "
                    f"{len(series)} candles)"
                )
            future = pd.DataFrame({"ds": [origin + step * hour for step in range(1, horizon + 1)]})
            predicted = forecaster(train, future).set_index("ds")
            naive = float(train["y"].iloc[-1])
            for step, ds in enumerate(future["ds"], start=1):
                if ds not in actual.index:
                    continue  # a gap: nothing to score against
                y = float(actual[ds])
                yhat = float(predicted.at[ds, "yhat"])
                errors[step].append((y, yhat, naive))
                scored += 1
                lower, upper = predicted.at[ds, "yhat_lower"], predicted.at[ds, "yhat_upper"]
                inside += int(lower <= y <= upper)
        coverage[str(name)] = inside / scored if scored else math.nan
        for step, triples in errors.items():
            values = np.array(triples, dtype=float).reshape(-1, 3)
            actuals, model_values, naive_values = values[:, 0], values[:, 1], values[:, 2]
            rows.append(
                {"symbol": name, "step": step, "n": len(values)}
                | _scores("", actuals, model_values)
                | _scores("naive_", actuals, naive_values)
            )
    out = pd.DataFrame(rows)
    out.attrs["coverage"] = coverage
    return out


def _scores(prefix: str, y: Any, yhat: Any) -> Dict[str, float]:
    import numpy as np

    if len(y) == 0:
        return {f"{prefix}mae": math.nan, f"{prefix}mape": math.nan, f"{prefix}rmse": math.nan}
    error = yhat - y
    return {
        f"{prefix}mae": float(np.mean(np.abs(error))),
        f"{prefix}mape": float(np.mean(np.abs(error) / np.abs(y)) * 100.0),
        f"{prefix}rmse": float(np.sqrt(np.mean(error**2))),
    }


# -- refits from a running query ---------------------------------------------------------------


class LiveForecast:
    """Keeps a forecast fresh while a streaming query runs, without stopping it.

    Pass it to ``writeStream.foreachBatch``: every micro-batch of candles is merged into the
    candles seen so far (by symbol and window, so a replayed batch or an updated window
    replaces the earlier row), and the model is refitted every ``every`` batches. Call
    :meth:`refit` to fit on demand between batches. The fit runs in the query's batch (about
    half a second per symbol for a few thousand candles); raise ``every`` to amortise it.

    Parameters
    ----------
    horizon, symbol, gaps, volume_regressor, interval_width, history_hours, prophet_options
        As for :func:`forecast_hourly`.
    every : int
        Refit after every this many batches that brought candles.
    on_forecast : callable, optional
        Called as ``on_forecast(forecast, batch_id)`` after each refit from a batch.

    Examples
    --------
    >>> live = LiveForecast(horizon=24, every=6)  # doctest: +SKIP
    >>> q = (hourly.writeStream.foreachBatch(live)
    ...      .option("checkpointLocation", "/tmp/chk").start())  # doctest: +SKIP
    >>> live.forecast.tail(3)  # doctest: +SKIP
    """

    def __init__(
        self,
        horizon: int = 24,
        symbol: Optional[str] = None,
        every: int = 1,
        *,
        gaps: str = "skip",
        volume_regressor: bool = False,
        interval_width: float = 0.8,
        history_hours: Optional[int] = None,
        prophet_options: Optional[Dict[str, Any]] = None,
        on_forecast: Optional[Callable[[pandas.DataFrame, int], None]] = None,
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1 batch, got {every}")
        if gaps not in _GAP_POLICIES:
            raise ValueError(f"gaps must be one of {list(_GAP_POLICIES)}, got {gaps!r}")
        self.horizon = horizon
        self.symbol = symbol
        self.every = every
        self.gaps = gaps
        self.volume_regressor = volume_regressor
        self.interval_width = interval_width
        self.history_hours = history_hours
        self.prophet_options = prophet_options
        self.on_forecast = on_forecast
        self.forecast: Optional[pandas.DataFrame] = None
        """The latest forecast (``forecast_hourly``'s table), or None before the first fit."""
        self.batches_seen = 0
        """Batches that brought at least one candle."""
        self.fits = 0
        """How many times the model was fitted."""
        self.last_batch_id: Optional[int] = None
        self._candles: Optional[pandas.DataFrame] = None

    @property
    def candles(self) -> pandas.DataFrame:
        """The candles seen so far as Prophet's frame (``symbol``, ``ds``, ``y``...)."""
        import pandas as pd

        if self._candles is None:
            return pd.DataFrame(columns=["symbol", "ds", "y"])
        return self._candles

    def update(self, candles: Candles) -> int:
        """Merges new candles (a later version of a window replaces the earlier one); returns
        how many rows came in."""
        import pandas as pd

        new = prophet_frame(candles, self.symbol)
        if new.empty:
            return 0
        merged = new if self._candles is None else pd.concat([self._candles, new])
        merged = merged.drop_duplicates(subset=["symbol", "ds"], keep="last")
        self._candles = merged.sort_values(["symbol", "ds"], kind="stable").reset_index(drop=True)
        return len(new)

    def refit(self) -> pandas.DataFrame:
        """Fits on every candle seen so far and returns (and keeps) the new forecast."""
        if self._candles is None:
            raise ValueError("no candles yet: nothing to fit")
        self.forecast = forecast_hourly(
            self._candles,
            self.horizon,
            self.symbol,
            gaps=self.gaps,
            volume_regressor=self.volume_regressor,
            interval_width=self.interval_width,
            history_hours=self.history_hours,
            prophet_options=self.prophet_options,
        )
        self.fits += 1
        return self.forecast

    def __call__(self, batch: Any, batch_id: int) -> None:
        """The ``foreachBatch`` function: ``fn(batch_df, batch_id)``."""
        self.last_batch_id = batch_id
        if self.update(batch) == 0:
            return
        self.batches_seen += 1
        if self.batches_seen % self.every == 0:
            forecast = self.refit()
            if self.on_forecast is not None:
                self.on_forecast(forecast, batch_id)


# -- plots -------------------------------------------------------------------------------------


def _ohlc_frame(candles: Candles, symbol: Optional[str]) -> pandas.DataFrame:
    """Open/high/low/close per window start (naive UTC) for one symbol."""
    import pandas as pd

    table = _load(candles)
    frame = prophet_frame(table, symbol)
    names = table.column_names
    missing = [c for c in ("open", "high", "low") if c not in names]
    if missing:
        raise ValueError(f"a candlestick chart needs {missing}; columns are {names}")
    full = table.select([c for c in ("symbol", "open", "high", "low", "close") if c in names])
    ohlc = full.append_column("ds", _window_starts(table)).to_pandas()
    ohlc["ds"] = pd.to_datetime(ohlc["ds"], utc=True).dt.tz_localize(None)
    ohlc = ohlc.drop_duplicates(subset=["symbol", "ds"], keep="last")
    names_found = sorted(frame["symbol"].unique())
    if symbol is None:
        if len(names_found) != 1:
            raise ValueError(f"several symbols {names_found}: pass symbol=")
        symbol = names_found[0]
    ohlc = ohlc[ohlc["symbol"] == symbol]
    return ohlc.sort_values("ds").reset_index(drop=True)


def _figure(title: str) -> tuple[Figure, Any]:
    try:
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(f"plots need matplotlib: {_INSTALL_HINT}") from err
    # A Figure without pyplot: no global state, no GUI backend, safe in a query's thread.
    figure = Figure(figsize=(11, 4.5), dpi=100, layout="constrained")
    axes = figure.subplots()
    axes.set_title(title)
    axes.set_ylabel("price")
    axes.grid(True, alpha=0.3)
    return figure, axes


def _draw_candles(axes: Any, ohlc: pandas.DataFrame) -> None:
    import matplotlib.dates as mdates
    import numpy as np

    x = ohlc["ds"].to_numpy() + np.timedelta64(30, "m")  # centre each body in its hour
    up = (ohlc["close"] >= ohlc["open"]).to_numpy()
    colour = np.where(up, "#26a69a", "#ef5350")
    axes.vlines(x, ohlc["low"], ohlc["high"], colors=colour, linewidth=0.8)
    bottom = np.minimum(ohlc["open"], ohlc["close"])
    height = np.maximum(np.abs(ohlc["close"] - ohlc["open"]), 1e-9)
    axes.bar(x, height, bottom=bottom, width=np.timedelta64(42, "m"), color=colour, linewidth=0)
    gaps = _gaps(ohlc.rename(columns={"close": "y"}))
    for index, gap in enumerate(gaps.itertuples()):
        axes.axvspan(
            gap.first_missing,
            gap.last_missing + np.timedelta64(1, "h"),
            color="0.85",
            label="missing hours" if index == 0 else None,
        )
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def plot_candles(
    candles: Candles,
    path: Union[str, os.PathLike[str], None] = None,
    symbol: Optional[str] = None,
    last_hours: Optional[int] = None,
) -> Figure:
    """A candlestick chart of hourly OHLC, with missing hours shaded; saved as PNG at ``path``.

    Examples
    --------
    >>> plot_candles("crypto_hourly", "btc.png", symbol="BTCUSDT", last_hours=72)  # doctest: +SKIP
    """
    import pandas as pd

    ohlc = _ohlc_frame(candles, symbol)
    if last_hours is not None and len(ohlc):
        ohlc = ohlc[ohlc["ds"] > ohlc["ds"].iloc[-1] - pd.Timedelta(hours=last_hours)]
    name = ohlc["symbol"].iloc[0] if len(ohlc) else symbol
    figure, axes = _figure(f"{name} hourly candles (UTC)")
    _draw_candles(axes, ohlc)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper left")
    if path is not None:
        figure.savefig(os.fspath(path), format="png")
    return figure


def plot_forecast(
    candles: Candles,
    forecast: pandas.DataFrame,
    path: Union[str, os.PathLike[str], None] = None,
    symbol: Optional[str] = None,
    last_hours: Optional[int] = 120,
) -> Figure:
    """The last candles and the forecast with its interval; saved as PNG at ``path``.

    Examples
    --------
    >>> fc = forecast_hourly("crypto_hourly", symbol="BTCUSDT")  # doctest: +SKIP
    >>> plot_forecast("crypto_hourly", fc, "forecast.png", symbol="BTCUSDT")  # doctest: +SKIP
    """
    import numpy as np
    import pandas as pd

    ohlc = _ohlc_frame(candles, symbol)
    name = ohlc["symbol"].iloc[0] if len(ohlc) else symbol
    if last_hours is not None and len(ohlc):
        ohlc = ohlc[ohlc["ds"] > ohlc["ds"].iloc[-1] - pd.Timedelta(hours=last_hours)]
    predicted = forecast[forecast["symbol"] == name]
    if predicted.empty:
        raise ValueError(f"the forecast has no rows for {name!r}")
    figure, axes = _figure(f"{name}: hourly close and {len(predicted)}-hour Prophet forecast")
    _draw_candles(axes, ohlc)
    x = pd.to_datetime(predicted["ds"]).to_numpy() + np.timedelta64(30, "m")
    axes.fill_between(
        x,
        predicted["yhat_lower"],
        predicted["yhat_upper"],
        color="#1f77b4",
        alpha=0.2,
        label="forecast interval",
    )
    axes.plot(x, predicted["yhat"], color="#1f77b4", linewidth=1.5, label="forecast (yhat)")
    axes.legend(loc="upper left")
    if path is not None:
        figure.savefig(os.fspath(path), format="png")
    return figure
