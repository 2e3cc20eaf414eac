"""Column functions with PySpark's names and signatures (``pyspark.sql.functions``).

Each function builds an expression node (``docs/plan-format.md``); nothing is computed
until a query runs. Arguments that PySpark takes as "column name or Column" take both.

>>> from ferrostream.sql import functions as F
>>> F.sum(F.col("price") * F.col("qty")).alias("notional")
Column<'sum((price * qty)) AS notional'>
"""

from __future__ import annotations

from typing import Any

from ferrostream.errors import PySparkTypeError, PySparkValueError
from ferrostream.sql.column import (
    Column,
    ColumnOrName,
    Expr,
    _lit_expr,
    _to_expr,
    _to_value_expr,
)
from ferrostream.sql.types import DataType, to_datatype

__all__ = [
    "abs",
    "asc",
    "avg",
    "coalesce",
    "col",
    "column",
    "concat",
    "count",
    "countDistinct",
    "count_distinct",
    "current_timestamp",
    "date_trunc",
    "desc",
    "expr",
    "first",
    "from_json",
    "from_unixtime",
    "last",
    "length",
    "lit",
    "lower",
    "max",
    "max_by",
    "mean",
    "min",
    "min_by",
    "round",
    "session_window",
    "sqrt",
    "stddev",
    "stddev_samp",
    "struct",
    "sum",
    "timestamp_micros",
    "timestamp_millis",
    "timestamp_seconds",
    "to_json",
    "to_timestamp",
    "upper",
    "when",
    "window",
]


# -- helpers ----------------------------------------------------------------------------------


def _call(name: str, *args: Expr, **options: Any) -> Column:
    return Column({"kind": "call", "name": name, "args": list(args), "options": options})


def _agg(
    name: str, *cols: ColumnOrName, distinct: bool = False, options: dict[str, Any] | None = None
) -> Column:
    node: Expr = {
        "kind": "agg",
        "name": name,
        "args": [_to_expr(c) for c in cols],
        "distinct": distinct,
    }
    if options is not None:
        node["options"] = options
    return Column(node)


def _check_str(value: Any, argument: str) -> str:
    if not isinstance(value, str):
        raise PySparkTypeError(
            f"[NOT_STR] Argument `{argument}` should be a str, got {type(value).__name__}."
        )
    return value


def _check_bool(value: Any, argument: str) -> bool:
    if not isinstance(value, bool):
        raise PySparkTypeError(
            f"[NOT_BOOL] Argument `{argument}` should be a bool, got {type(value).__name__}."
        )
    return value


def _options_to_str(options: dict[str, Any] | None) -> dict[str, str]:
    """Option values as Spark reads them: bools as ``true``/``false``, None dropped."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise PySparkTypeError(
            f"[NOT_DICT] Argument `options` should be a dict, got {type(options).__name__}."
        )
    result: dict[str, str] = {}
    for key, value in options.items():
        if value is None:
            continue
        result[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    return result


def _string_of_lit(value: Column) -> str | None:
    """The text of a ``lit("...")`` column, or None for any other column."""
    node = value._expr
    if node.get("kind") == "lit" and "type" not in node and isinstance(node.get("value"), str):
        text: str = node["value"]
        return text
    return None


# -- columns and literals ---------------------------------------------------------------------


def col(col: str) -> Column:
    """A column by name; ``"d.price"`` names a struct field, ``"*"`` every column.

    Examples
    --------
    >>> col("price")
    Column<'price'>
    """
    return Column({"kind": "col", "name": _check_str(col, "col")})


column = col


def lit(col: Any) -> Column:
    """A literal value; a Column is returned unchanged.

    Takes None, bool, int, float, str, ``datetime.datetime``, ``datetime.date`` and
    ``decimal.Decimal``.

    Examples
    --------
    >>> lit(5)
    Column<'5'>
    >>> import datetime
    >>> lit(datetime.datetime(2024, 1, 2, 3, 4, 5))
    Column<'TIMESTAMP '2024-01-02T03:04:05''>
    """
    if isinstance(col, Column):
        return col
    return Column(_lit_expr(col, "col"))


def expr(str: str) -> Column:
    """A column from a SQL expression string.

    Examples
    --------
    >>> expr("price * qty AS notional")
    Column<'price * qty AS notional'>
    """
    return Column({"kind": "sql", "text": _check_str(str, "str")})


# -- event time -------------------------------------------------------------------------------


def window(
    timeColumn: ColumnOrName,
    windowDuration: str,
    slideDuration: str | None = None,
    startTime: str | None = None,
) -> Column:
    """Buckets rows into tumbling or sliding event-time windows.

    The result is a struct column ``window`` with ``start`` and ``end`` timestamps.

    Parameters
    ----------
    timeColumn : Column or str
        The event time (a timestamp column).
    windowDuration : str
        The window's length as a Spark interval string, e.g. ``"10 minutes"``.
    slideDuration : str, optional
        How far each window starts after the previous one; tumbling windows if omitted.
    startTime : str, optional
        The offset of window starts from 1970-01-01 00:00:00 UTC, e.g. ``"15 minutes"``.

    Examples
    --------
    >>> window("ts", "10 minutes", "5 minutes")
    Column<'window(ts, 10 minutes, 5 minutes)'>
    >>> # df.groupBy(window("ts", "1 minute"), "symbol").agg(last("price"))
    """
    duration = _check_str(windowDuration, "windowDuration")
    slide = None if slideDuration is None else _check_str(slideDuration, "slideDuration")
    start = None if startTime is None else _check_str(startTime, "startTime")
    return _call(
        "window",
        _to_expr(timeColumn, "timeColumn"),
        duration=duration,
        slide=slide,
        start=start,
    )


def session_window(timeColumn: ColumnOrName, gapDuration: Column | str) -> Column:
    """Groups rows into session windows that close after ``gapDuration`` without events.

    Parameters
    ----------
    timeColumn : Column or str
        The event time (a timestamp column).
    gapDuration : str or Column
        The inactivity gap as a Spark interval string (or ``lit`` of one), e.g. ``"5 minutes"``.

    Examples
    --------
    >>> session_window("ts", "5 minutes")
    Column<'session_window(ts, 5 minutes)'>
    """
    gap = _string_of_lit(gapDuration) if isinstance(gapDuration, Column) else gapDuration
    if not isinstance(gap, str):
        raise PySparkTypeError(
            "[NOT_COLUMN_OR_STR] Argument `gapDuration` should be a str or a lit() of a str "
            "(gaps computed per row are not supported), "
            f"got {type(gapDuration).__name__}."
        )
    return _call("session_window", _to_expr(timeColumn, "timeColumn"), gap=gap)


def current_timestamp() -> Column:
    """The time the current micro-batch started, the same for every row of it.

    Examples
    --------
    >>> current_timestamp()
    Column<'current_timestamp()'>
    """
    return _call("current_timestamp")


def to_timestamp(col: ColumnOrName, format: str | None = None) -> Column:
    """Parses a string column into a timestamp, with an optional Spark datetime pattern.

    Examples
    --------
    >>> to_timestamp("ts_text", "yyyy-MM-dd HH:mm:ss")
    Column<'to_timestamp(ts_text, yyyy-MM-dd HH:mm:ss)'>
    """
    if format is None:
        return _call("to_timestamp", _to_expr(col))
    return _call("to_timestamp", _to_expr(col), format=_check_str(format, "format"))


def from_unixtime(timestamp: ColumnOrName, format: str = "yyyy-MM-dd HH:mm:ss") -> Column:
    """Formats seconds since the Unix epoch as a string in the session time zone.

    Examples
    --------
    >>> from_unixtime("epoch")
    Column<'from_unixtime(epoch, yyyy-MM-dd HH:mm:ss)'>
    """
    return _call(
        "from_unixtime", _to_expr(timestamp, "timestamp"), format=_check_str(format, "format")
    )


def timestamp_millis(col: ColumnOrName) -> Column:
    """A timestamp from milliseconds since the Unix epoch.

    Examples
    --------
    >>> timestamp_millis("event_time_ms")
    Column<'timestamp_millis(event_time_ms)'>
    """
    return _call("timestamp_millis", _to_expr(col))


def timestamp_seconds(col: ColumnOrName) -> Column:
    """A timestamp from seconds since the Unix epoch.

    Examples
    --------
    >>> timestamp_seconds("epoch")
    Column<'timestamp_seconds(epoch)'>
    """
    return _call("timestamp_seconds", _to_expr(col))


def timestamp_micros(col: ColumnOrName) -> Column:
    """A timestamp from microseconds since the Unix epoch.

    Examples
    --------
    >>> timestamp_micros("event_time_us")
    Column<'timestamp_micros(event_time_us)'>
    """
    return _call("timestamp_micros", _to_expr(col))


def date_trunc(format: str, timestamp: ColumnOrName) -> Column:
    """Truncates a timestamp to a unit. Note the order: the unit comes first.

    Parameters
    ----------
    format : str
        The unit, case-insensitive: ``"year"``, ``"quarter"``, ``"month"``, ``"week"``,
        ``"day"``, ``"hour"``, ``"minute"``, ``"second"`` (and Spark's synonyms such as
        ``"yyyy"``, ``"mm"``, ``"dd"``).
    timestamp : Column or str
        The timestamp to truncate.

    Examples
    --------
    >>> date_trunc("HOUR", "ts")
    Column<'date_trunc(ts, hour)'>
    """
    unit = _check_str(format, "format").lower()
    return _call("date_trunc", _to_expr(timestamp, "timestamp"), unit=unit)


# -- JSON -------------------------------------------------------------------------------------


def from_json(
    col: ColumnOrName,
    schema: DataType | Column | str,
    options: dict[str, Any] | None = None,
) -> Column:
    """Parses a JSON string column into a struct (or array or map) of the given schema.

    Parameters
    ----------
    col : Column or str
        The JSON text.
    schema : DataType, str or Column
        A DataType, a DDL string (``"symbol STRING, price DOUBLE"``), Spark's JSON form of
        a type, or ``lit()`` of one of those strings.
    options : dict, optional
        Spark's JSON options, e.g. ``{"mode": "PERMISSIVE"}``.

    Examples
    --------
    >>> from_json("value", "symbol STRING, price DOUBLE")
    Column<'from_json(value, struct<symbol:string,price:double>)'>
    >>> # df.select(from_json(col("value").cast("string"), schema).alias("d")).select("d.*")
    """
    if isinstance(schema, Column):
        text = _string_of_lit(schema)
        if text is None:
            raise PySparkTypeError(
                "[NOT_COLUMN_OR_DATATYPE_OR_STR] Argument `schema` should be a DataType, a "
                "str or a lit() of a str (schemas computed per row are not supported), "
                "got a Column that is not a string literal."
            )
        data_type = to_datatype(text)
    elif isinstance(schema, (DataType, str)):
        data_type = to_datatype(schema)
    else:
        raise PySparkTypeError(
            "[NOT_COLUMN_OR_DATATYPE_OR_STR] Argument `schema` should be a Column, DataType "
            f"or str, got {type(schema).__name__}."
        )
    return _call(
        "from_json",
        _to_expr(col),
        schema=data_type.jsonValue(),
        options=_options_to_str(options),
    )


def to_json(col: ColumnOrName, options: dict[str, Any] | None = None) -> Column:
    """Turns a struct, array or map column into a JSON string.

    Examples
    --------
    >>> to_json(struct("symbol", "price"))
    Column<'to_json(struct(symbol, price))'>
    """
    extra = _options_to_str(options)
    if extra:
        return _call("to_json", _to_expr(col), options=extra)
    return _call("to_json", _to_expr(col))


# -- aggregates -------------------------------------------------------------------------------


def first(col: ColumnOrName, ignorenulls: bool = False) -> Column:
    """The first value of a group (in arrival order); skips nulls if ``ignorenulls``.

    Examples
    --------
    >>> first("price")
    Column<'first(price)'>
    """
    return _agg("first", col, options={"ignorenulls": _check_bool(ignorenulls, "ignorenulls")})


def last(col: ColumnOrName, ignorenulls: bool = False) -> Column:
    """The last value of a group (in arrival order); skips nulls if ``ignorenulls``.

    Examples
    --------
    >>> last("price", ignorenulls=True)
    Column<'last(price, true)'>
    """
    return _agg("last", col, options={"ignorenulls": _check_bool(ignorenulls, "ignorenulls")})


def min(col: ColumnOrName) -> Column:
    """The smallest value of a group.

    Examples
    --------
    >>> min("price")
    Column<'min(price)'>
    """
    return _agg("min", col)


def max(col: ColumnOrName) -> Column:
    """The largest value of a group.

    Examples
    --------
    >>> max("price")
    Column<'max(price)'>
    """
    return _agg("max", col)


def sum(col: ColumnOrName) -> Column:
    """The sum of a group's values.

    Examples
    --------
    >>> sum("qty")
    Column<'sum(qty)'>
    """
    return _agg("sum", col)


def count(col: ColumnOrName) -> Column:
    """The number of non-null values of a group; ``count("*")`` counts rows.

    Examples
    --------
    >>> count("*")
    Column<'count(1)'>
    """
    return _agg("count", col)


def count_distinct(col: ColumnOrName, *cols: ColumnOrName) -> Column:
    """The number of distinct non-null values (or combinations of values) of a group.

    Examples
    --------
    >>> count_distinct("symbol")
    Column<'count(DISTINCT symbol)'>
    """
    if not cols:
        return _agg("count_distinct", col, distinct=True)
    # Spark counts the distinct combinations in which no value is null. The engine counts one
    # value, so a combination becomes one value: its JSON text, null when any part is null.
    parts = [col, *cols]
    every_present = None
    for part in parts:
        present = (column(part) if isinstance(part, str) else part).isNotNull()
        every_present = present if every_present is None else every_present & present
    assert every_present is not None
    combined = when(every_present, to_json(struct(*parts)))
    label = ", ".join(p if isinstance(p, str) else str(p._expr.get("name", p)) for p in parts)
    counted = _agg("count_distinct", combined, distinct=True)
    return Column({"kind": "alias", "expr": counted._expr, "name": f"count(DISTINCT {label})"})


countDistinct = count_distinct


def avg(col: ColumnOrName) -> Column:
    """The mean of a group's values.

    Examples
    --------
    >>> avg("price")
    Column<'avg(price)'>
    """
    return _agg("avg", col)


mean = avg


def stddev(col: ColumnOrName) -> Column:
    """The sample standard deviation of a group's values (an alias of ``stddev_samp``).

    Examples
    --------
    >>> stddev("price")
    Column<'stddev(price)'>
    """
    return _agg("stddev", col)


stddev_samp = stddev


def max_by(col: ColumnOrName, ord: ColumnOrName) -> Column:
    """The value of ``col`` on the row where ``ord`` is largest.

    Examples
    --------
    >>> max_by("price", "ts")
    Column<'max_by(price, ts)'>
    """
    return _agg("max_by", col, ord)


def min_by(col: ColumnOrName, ord: ColumnOrName) -> Column:
    """The value of ``col`` on the row where ``ord`` is smallest.

    Examples
    --------
    >>> min_by("price", "ts")
    Column<'min_by(price, ts)'>
    """
    return _agg("min_by", col, ord)


# -- scalar functions -------------------------------------------------------------------------


def round(col: ColumnOrName, scale: int = 0) -> Column:
    """Rounds to ``scale`` decimal places, halves away from zero (HALF_UP).

    Examples
    --------
    >>> round("price", 2)
    Column<'round(price, 2)'>
    """
    if not isinstance(scale, int) or isinstance(scale, bool):
        raise PySparkTypeError(
            f"[NOT_INT] Argument `scale` should be an int, got {type(scale).__name__}."
        )
    return _call("round", _to_expr(col), scale=scale)


def when(condition: Column, value: Any) -> Column:
    """The first branch of a ``CASE WHEN``; chain ``.when()`` and ``.otherwise()``.

    Without ``otherwise``, rows that match no branch get null. ``value`` is a Column or a
    literal (a string is a literal here, not a column name).

    Examples
    --------
    >>> when(col("price") > 100, "high").otherwise("low")
    Column<'CASE WHEN (price > 100) THEN high ELSE low END'>
    """
    if not isinstance(condition, Column):
        raise PySparkTypeError(
            f"[NOT_COLUMN] Argument `condition` should be a Column, got {type(condition).__name__}."
        )
    return Column(
        {
            "kind": "case",
            "branches": [[condition._expr, _to_value_expr(value)]],
            "otherwise": None,
        }
    )


def _columns(cols: Any, name: str) -> list[Expr]:
    return [_to_expr(c, name) for c in cols]


def coalesce(*cols: ColumnOrName) -> Column:
    """The first non-null value among the columns.

    Examples
    --------
    >>> coalesce("bid", "last_price", lit(0.0))
    Column<'coalesce(bid, last_price, 0.0)'>
    """
    if not cols:
        raise PySparkValueError("[CANNOT_BE_EMPTY] At least one column must be specified.")
    return _call("coalesce", *_columns(cols, "cols"))


def concat(*cols: ColumnOrName) -> Column:
    """Concatenates string (or binary, or array) columns; null if any input is null.

    Examples
    --------
    >>> concat("base", lit("/"), "quote")
    Column<'concat(base, /, quote)'>
    """
    return _call("concat", *_columns(cols, "cols"))


def upper(col: ColumnOrName) -> Column:
    """Converts a string column to upper case.

    Examples
    --------
    >>> upper("symbol")
    Column<'upper(symbol)'>
    """
    return _call("upper", _to_expr(col))


def lower(col: ColumnOrName) -> Column:
    """Converts a string column to lower case.

    Examples
    --------
    >>> lower("symbol")
    Column<'lower(symbol)'>
    """
    return _call("lower", _to_expr(col))


def abs(col: ColumnOrName) -> Column:
    """The absolute value.

    Examples
    --------
    >>> abs(col("change"))
    Column<'abs(change)'>
    """
    return _call("abs", _to_expr(col))


def sqrt(col: ColumnOrName) -> Column:
    """The square root.

    Examples
    --------
    >>> sqrt("variance")
    Column<'sqrt(variance)'>
    """
    return _call("sqrt", _to_expr(col))


def length(col: ColumnOrName) -> Column:
    """The number of characters of a string (or bytes of a binary value).

    Examples
    --------
    >>> length("symbol")
    Column<'length(symbol)'>
    """
    return _call("length", _to_expr(col))


def struct(*cols: ColumnOrName | list[ColumnOrName]) -> Column:
    """A struct column of the given columns (or one list of them), named after them.

    Examples
    --------
    >>> struct("symbol", col("price").alias("p"))
    Column<'struct(symbol, price AS p)'>
    """
    items: Any = cols
    if len(cols) == 1 and isinstance(cols[0], (list, set)):
        items = cols[0]
    return _call("struct", *_columns(items, "cols"))


# -- sorting ----------------------------------------------------------------------------------


def asc(col: ColumnOrName) -> Column:
    """Ascending sort order of a column, nulls first.

    Examples
    --------
    >>> asc("ts")
    Column<'ts ASC NULLS FIRST'>
    """
    return Column(_to_expr(col)).asc()


def desc(col: ColumnOrName) -> Column:
    """Descending sort order of a column, nulls last.

    Examples
    --------
    >>> desc("ts")
    Column<'ts DESC NULLS LAST'>
    """
    return Column(_to_expr(col)).desc()
