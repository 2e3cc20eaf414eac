"""ferrostream.sql.functions: the exact JSON trees of docs/plan-format.md."""

from __future__ import annotations

import doctest
from collections.abc import Callable
from typing import Any

import pytest

import ferrostream.sql.column
import ferrostream.sql.functions
import ferrostream.sql.types
from ferrostream.errors import ParseException, PySparkTypeError, PySparkValueError
from ferrostream.sql import functions as F
from ferrostream.sql.column import Column
from ferrostream.sql.types import DoubleType, IntegerType, StringType, StructField, StructType

TS = {"kind": "col", "name": "ts"}
PRICE = {"kind": "col", "name": "price"}
STAR = {"kind": "col", "name": "*"}


def call(name: str, *args: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {"kind": "call", "name": name, "args": list(args), "options": options}


def agg(name: str, *args: dict[str, Any], distinct: bool = False) -> dict[str, Any]:
    return {"kind": "agg", "name": name, "args": list(args), "distinct": distinct}


SCHEMA_JSON = {
    "type": "struct",
    "fields": [
        {"name": "symbol", "type": "string", "nullable": True, "metadata": {}},
        {"name": "price", "type": "double", "nullable": True, "metadata": {}},
    ],
}


@pytest.mark.parametrize(
    "module", [ferrostream.sql.types, ferrostream.sql.column, ferrostream.sql.functions]
)
def test_docstring_examples(module: Any) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0


def test_all_is_explicit_and_complete() -> None:
    names = set(F.__all__)
    assert len(names) == len(F.__all__)
    for name in names:
        assert callable(getattr(F, name)), name
    required = {
        "col", "column", "lit", "expr", "window", "session_window", "from_json", "to_json",
        "to_timestamp", "from_unixtime", "timestamp_millis", "timestamp_seconds",
        "timestamp_micros", "date_trunc", "current_timestamp", "first", "last", "min", "max",
        "sum", "count", "countDistinct", "count_distinct", "avg", "mean", "stddev",
        "stddev_samp", "max_by", "min_by", "round", "when", "coalesce", "concat", "upper",
        "lower", "abs", "sqrt", "length", "struct", "asc", "desc",
    }  # fmt: skip
    assert required <= names


# -- columns and literals ---------------------------------------------------------------------


def test_col_lit_expr() -> None:
    assert F.col("d.price")._expr == {"kind": "col", "name": "d.price"}
    assert F.column("*")._expr == STAR
    assert F.lit(1.5)._expr == {"kind": "lit", "value": 1.5}
    price = F.col("price")
    assert F.lit(price) is price
    assert F.expr("price * 2 AS p")._expr == {"kind": "sql", "text": "price * 2 AS p"}
    with pytest.raises(PySparkTypeError, match="`col` should be a str, got int"):
        F.col(1)  # type: ignore[arg-type]
    with pytest.raises(PySparkTypeError, match="`str` should be a str"):
        F.expr(F.col("a"))  # type: ignore[arg-type]


# -- event time -------------------------------------------------------------------------------


def test_window() -> None:
    assert F.window("ts", "10 minutes")._expr == call(
        "window", TS, duration="10 minutes", slide=None, start=None
    )
    assert F.window(F.col("ts"), "10 minutes", "5 minutes")._expr == call(
        "window", TS, duration="10 minutes", slide="5 minutes", start=None
    )
    assert F.window("ts", "1 hour", startTime="15 minutes")._expr == call(
        "window", TS, duration="1 hour", slide=None, start="15 minutes"
    )
    assert F.window("ts", "1 hour", "30 minutes", "15 minutes")._expr == call(
        "window", TS, duration="1 hour", slide="30 minutes", start="15 minutes"
    )


def test_window_argument_errors() -> None:
    with pytest.raises(PySparkTypeError, match="`windowDuration` should be a str, got int"):
        F.window("ts", 10)  # type: ignore[arg-type]
    with pytest.raises(PySparkTypeError, match="`slideDuration` should be a str"):
        F.window("ts", "10 minutes", 5)  # type: ignore[arg-type]
    with pytest.raises(PySparkTypeError, match="`timeColumn` should be a Column or str"):
        F.window(1, "10 minutes")  # type: ignore[arg-type]


def test_session_window() -> None:
    expected = call("session_window", TS, gap="5 minutes")
    assert F.session_window("ts", "5 minutes")._expr == expected
    assert F.session_window(F.col("ts"), F.lit("5 minutes"))._expr == expected
    with pytest.raises(PySparkTypeError, match="`gapDuration`"):
        F.session_window("ts", F.col("gap"))
    with pytest.raises(PySparkTypeError, match="`gapDuration`"):
        F.session_window("ts", 5)  # type: ignore[arg-type]


def test_time_functions() -> None:
    assert F.current_timestamp()._expr == call("current_timestamp")
    assert F.to_timestamp("ts")._expr == call("to_timestamp", TS)
    assert F.to_timestamp("ts", "yyyy-MM-dd HH:mm")._expr == call(
        "to_timestamp", TS, format="yyyy-MM-dd HH:mm"
    )
    assert F.from_unixtime("ts")._expr == call("from_unixtime", TS, format="yyyy-MM-dd HH:mm:ss")
    assert F.from_unixtime("ts", "yyyy")._expr == call("from_unixtime", TS, format="yyyy")
    assert F.timestamp_millis("ts")._expr == call("timestamp_millis", TS)
    assert F.timestamp_seconds("ts")._expr == call("timestamp_seconds", TS)
    assert F.timestamp_micros(F.col("ts"))._expr == call("timestamp_micros", TS)
    with pytest.raises(PySparkTypeError, match="`format` should be a str"):
        F.to_timestamp("ts", 1)  # type: ignore[arg-type]


def test_date_trunc_takes_the_unit_first() -> None:
    assert F.date_trunc("hour", "ts")._expr == call("date_trunc", TS, unit="hour")
    assert F.date_trunc("DAY", F.col("ts"))._expr == call("date_trunc", TS, unit="day")
    with pytest.raises(PySparkTypeError, match="`format` should be a str"):
        F.date_trunc(F.col("ts"), "hour")  # type: ignore[arg-type]


# -- JSON -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    [
        StructType([StructField("symbol", StringType()), StructField("price", DoubleType())]),
        StructType().add("symbol", StringType()).add("price", "double"),
        "symbol STRING, price DOUBLE",
        "symbol: string, price: double",
        "struct<symbol:string,price:double>",
        F.lit("symbol STRING, price DOUBLE"),
        StructType().add("symbol", "string").add("price", "double").json(),
    ],
)
def test_from_json_normalises_the_schema(schema: Any) -> None:
    assert F.from_json("value", schema)._expr == call(
        "from_json", {"kind": "col", "name": "value"}, schema=SCHEMA_JSON, options={}
    )


def test_from_json_other_types_and_options() -> None:
    column = F.from_json(F.col("value"), "array<int>", {"mode": "FAILFAST", "allowNaN": True})
    assert column._expr == call(
        "from_json",
        {"kind": "col", "name": "value"},
        schema={"type": "array", "elementType": "integer", "containsNull": True},
        options={"mode": "FAILFAST", "allowNaN": "true"},
    )
    assert F.from_json("v", IntegerType(), {"x": None, "n": 3})._expr["options"] == {
        "schema": "integer",
        "options": {"n": "3"},
    }


def test_from_json_errors() -> None:
    with pytest.raises(ParseException):
        F.from_json("value", "symbol STRNG")
    with pytest.raises(PySparkTypeError, match="`schema`"):
        F.from_json("value", 5)  # type: ignore[arg-type]
    with pytest.raises(PySparkTypeError, match="`schema`"):
        F.from_json("value", F.col("schema_column"))
    with pytest.raises(PySparkTypeError, match="`options` should be a dict"):
        F.from_json("value", "a INT", ["mode"])  # type: ignore[arg-type]


def test_to_json() -> None:
    packed = F.struct("symbol", "price")
    assert F.to_json(packed)._expr == call(
        "to_json", call("struct", {"kind": "col", "name": "symbol"}, PRICE)
    )
    assert F.to_json("d", {"timestampFormat": "yyyy"})._expr == call(
        "to_json", {"kind": "col", "name": "d"}, options={"timestampFormat": "yyyy"}
    )


# -- aggregates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "name"),
    [
        (F.min, "min"),
        (F.max, "max"),
        (F.sum, "sum"),
        (F.count, "count"),
        (F.avg, "avg"),
        (F.mean, "avg"),
        (F.stddev, "stddev"),
        (F.stddev_samp, "stddev"),
    ],
)
def test_one_column_aggregates(function: Callable[[Any], Column], name: str) -> None:
    assert function("price")._expr == agg(name, PRICE)
    assert function(F.col("price"))._expr == agg(name, PRICE)


def test_count_star() -> None:
    assert F.count("*")._expr == {
        "kind": "agg",
        "name": "count",
        "args": [{"kind": "col", "name": "*"}],
        "distinct": False,
    }


def test_count_distinct() -> None:
    symbol = {"kind": "col", "name": "symbol"}
    assert F.count_distinct("symbol")._expr == agg("count_distinct", symbol, distinct=True)
    # Several columns: one value per combination (null when any part is null), as the engine
    # counts one value; named as Spark names it.
    several = F.countDistinct("symbol", F.col("price"))._expr
    assert several["kind"] == "alias"
    assert several["name"] == "count(DISTINCT symbol, price)"
    assert several["expr"]["name"] == "count_distinct"
    assert len(several["expr"]["args"]) == 1


def test_first_and_last_take_ignorenulls() -> None:
    assert F.first("price")._expr == {**agg("first", PRICE), "options": {"ignorenulls": False}}
    assert F.last("price", ignorenulls=True)._expr == {
        **agg("last", PRICE),
        "options": {"ignorenulls": True},
    }
    with pytest.raises(PySparkTypeError, match="`ignorenulls` should be a bool"):
        F.first("price", "yes")  # type: ignore[arg-type]


def test_max_by_and_min_by() -> None:
    assert F.max_by("price", "ts")._expr == agg("max_by", PRICE, TS)
    assert F.min_by(F.col("price"), F.col("ts"))._expr == agg("min_by", PRICE, TS)


def test_aggregate_argument_errors() -> None:
    with pytest.raises(PySparkTypeError, match="`col` should be a Column or str, got int"):
        F.sum(1)  # type: ignore[arg-type]


# -- scalar functions -------------------------------------------------------------------------


def test_round() -> None:
    assert F.round("price")._expr == call("round", PRICE, scale=0)
    assert F.round(F.col("price"), 2)._expr == call("round", PRICE, scale=2)
    with pytest.raises(PySparkTypeError, match="`scale` should be an int"):
        F.round("price", 1.5)  # type: ignore[arg-type]


def test_when() -> None:
    assert F.when(F.col("price") > 1, "high")._expr == {
        "kind": "case",
        "branches": [
            [
                {"kind": "binary", "op": ">", "left": PRICE, "right": {"kind": "lit", "value": 1}},
                {"kind": "lit", "value": "high"},
            ]
        ],
        "otherwise": None,
    }
    with pytest.raises(PySparkTypeError, match="`condition` should be a Column, got str"):
        F.when("price > 1", 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["upper", "lower", "abs", "sqrt", "length"])
def test_one_argument_scalars(name: str) -> None:
    function = getattr(F, name)
    assert function("price")._expr == call(name, PRICE)
    assert function(F.col("price") * 2)._expr == call(
        name,
        {"kind": "binary", "op": "*", "left": PRICE, "right": {"kind": "lit", "value": 2}},
    )


def test_variadic_scalars() -> None:
    bid = {"kind": "col", "name": "bid"}
    zero = {"kind": "lit", "value": 0}
    assert F.coalesce("bid", F.col("price"), F.lit(0))._expr == call("coalesce", bid, PRICE, zero)
    assert F.concat("bid", F.lit("/"))._expr == call("concat", bid, {"kind": "lit", "value": "/"})
    assert F.struct("bid", "price")._expr == call("struct", bid, PRICE)
    assert F.struct(["bid", "price"])._expr == call("struct", bid, PRICE)
    with pytest.raises(PySparkValueError, match="At least one column"):
        F.coalesce()
    with pytest.raises(PySparkTypeError, match="`cols` should be a Column or str, got int"):
        F.concat("a", 1)  # type: ignore[arg-type]


def test_sort_functions() -> None:
    assert F.asc("price")._expr == {
        "kind": "sort",
        "expr": PRICE,
        "ascending": True,
        "nulls_first": True,
    }
    assert F.desc(F.col("price"))._expr == {
        "kind": "sort",
        "expr": PRICE,
        "ascending": False,
        "nulls_first": False,
    }


def test_a_streaming_aggregation_builds_one_tree() -> None:
    parsed = F.from_json(F.col("value").cast("string"), "symbol STRING, price DOUBLE, ts TIMESTAMP")
    keys = [F.window("ts", "1 minute"), F.col("symbol")]
    aggs = [F.first("price").alias("open"), F.max("price").alias("high"), F.count("*")]
    assert parsed._expr["args"] == [
        {"kind": "cast", "expr": {"kind": "col", "name": "value"}, "type": "string"}
    ]
    assert [k._expr["kind"] for k in keys] == ["call", "col"]
    assert aggs[0]._expr == {
        "kind": "alias",
        "expr": {**agg("first", PRICE), "options": {"ignorenulls": False}},
        "name": "open",
    }
    assert repr(aggs[2]) == "Column<'count(1)'>"
