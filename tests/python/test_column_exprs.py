"""Column expressions: the exact JSON trees of docs/plan-format.md, and PySpark's errors."""

from __future__ import annotations

import datetime
import decimal
import json
import operator
from typing import Any

import pytest

from ferrostream.errors import (
    IllegalArgumentException,
    ParseException,
    PySparkTypeError,
    PySparkValueError,
)
from ferrostream.sql.column import Column, _lit_expr, _to_expr
from ferrostream.sql.functions import col, lit, when
from ferrostream.sql.types import ArrayType, DecimalType, StringType, StructField, StructType

PRICE = {"kind": "col", "name": "price"}
QTY = {"kind": "col", "name": "qty"}


def lit_node(value: Any, data_type: Any = None) -> dict[str, Any]:
    node: dict[str, Any] = {"kind": "lit", "value": value}
    if data_type is not None:
        node["type"] = data_type
    return node


def binary(op: str, left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "binary", "op": op, "left": left, "right": right}


# -- operators --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "op"),
    [
        (col("price") + 1, "+"),
        (col("price") - 1, "-"),
        (col("price") * 1, "*"),
        (col("price") / 1, "/"),
        (col("price") % 1, "%"),
        (col("price") == 1, "=="),
        (col("price") != 1, "!="),
        (col("price") < 1, "<"),
        (col("price") <= 1, "<="),
        (col("price") > 1, ">"),
        (col("price") >= 1, ">="),
        (col("price").eqNullSafe(1), "<=>"),
    ],
)
def test_binary_operators_with_a_literal(column: Column, op: str) -> None:
    assert column._expr == binary(op, PRICE, lit_node(1))


def test_operators_between_columns() -> None:
    assert (col("price") * col("qty"))._expr == binary("*", PRICE, QTY)
    condition = (col("price") > 1) & (col("qty") < 2) | ~col("flag")
    assert condition._expr == binary(
        "or",
        binary("and", binary(">", PRICE, lit_node(1)), binary("<", QTY, lit_node(2))),
        {"kind": "unary", "op": "not", "expr": {"kind": "col", "name": "flag"}},
    )
    assert (-col("price"))._expr == {"kind": "unary", "op": "neg", "expr": PRICE}


def test_reflected_operators_follow_pyspark() -> None:
    # Commutative ones keep the column on the left, as PySpark's __radd__ does.
    assert (1 + col("price"))._expr == binary("+", PRICE, lit_node(1))
    assert (2 * col("price"))._expr == binary("*", PRICE, lit_node(2))
    assert (1 - col("price"))._expr == binary("-", lit_node(1), PRICE)
    assert (1 / col("price"))._expr == binary("/", lit_node(1), PRICE)
    assert (7 % col("price"))._expr == binary("%", lit_node(7), PRICE)
    assert (True & col("flag"))._expr == binary(
        "and", {"kind": "col", "name": "flag"}, lit_node(True)
    )
    assert (False | col("flag"))._expr == binary(
        "or", {"kind": "col", "name": "flag"}, lit_node(False)
    )
    # Python turns `1 < c` into `c > 1`.
    assert (1 < col("price"))._expr == binary(">", PRICE, lit_node(1))
    reflected: Any = 1 == col("price")  # int.__eq__ gives way to Column.__eq__
    assert reflected._expr == binary("==", PRICE, lit_node(1))


def test_strings_on_the_right_of_operators_are_literals() -> None:
    assert (col("symbol") == "BTC")._expr == binary(
        "==", {"kind": "col", "name": "symbol"}, lit_node("BTC")
    )
    assert operator.eq(col("a"), None)._expr == binary(
        "==", {"kind": "col", "name": "a"}, lit_node(None)
    )


def test_column_is_not_a_bool() -> None:
    with pytest.raises(ValueError, match=r"Cannot convert column into bool: please use '&'"):
        bool(col("a"))
    with pytest.raises(PySparkValueError):
        col("a") and col("b")
    with pytest.raises(ValueError, match="Cannot convert column into bool"):
        1 < col("a") < 2  # noqa: B015


def test_column_is_unhashable_and_not_iterable() -> None:
    with pytest.raises(TypeError, match="unhashable"):
        hash(col("a"))
    with pytest.raises(TypeError, match="Column is not iterable"):
        list(col("a"))
    with pytest.raises(ValueError, match="Cannot apply 'in' operator against a column"):
        1 in col("a")  # noqa: B015


# -- literals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, lit_node(None)),
        (True, lit_node(True)),
        (3, lit_node(3)),
        (2**40, lit_node(2**40)),
        (-(2**63), lit_node(-(2**63))),
        (1.5, lit_node(1.5)),
        ("BTC", lit_node("BTC")),
        (float("nan"), lit_node("NaN", "double")),
        (float("inf"), lit_node("Infinity", "double")),
        (float("-inf"), lit_node("-Infinity", "double")),
        (
            datetime.datetime(2024, 1, 2, 3, 4, 5, 123456),
            lit_node("2024-01-02T03:04:05.123456", "timestamp"),
        ),
        (
            datetime.datetime(
                2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),
            lit_node("2024-01-02T03:04:05+02:00", "timestamp"),
        ),
        (datetime.date(2024, 1, 2), lit_node("2024-01-02", "date")),
        # Spark's type of a decimal literal: its digits and its scale.
        (decimal.Decimal("1.23"), lit_node("1.23", "decimal(3,2)")),
        (decimal.Decimal("-123.4500"), lit_node("-123.4500", "decimal(7,4)")),
        (decimal.Decimal("0.01"), lit_node("0.01", "decimal(2,2)")),
        (decimal.Decimal(42), lit_node("42", "decimal(2,0)")),
        (decimal.Decimal("1E+3"), lit_node("1000", "decimal(4,0)")),
    ],
)
def test_literals(value: Any, expected: dict[str, Any]) -> None:
    assert _lit_expr(value) == expected
    assert lit(value)._expr == expected
    assert (col("x") == value)._expr["right"] == expected


def test_literal_errors_name_the_argument() -> None:
    with pytest.raises(PySparkTypeError, match=r"Argument `col` should be a Column or a literal"):
        lit(object())
    with pytest.raises(PySparkTypeError, match=r"Argument `value` .* got list"):
        col("x") + [1, 2]
    with pytest.raises(PySparkValueError, match="bigint"):
        lit(2**63)
    with pytest.raises(PySparkValueError, match="finite"):
        lit(decimal.Decimal("NaN"))
    with pytest.raises(PySparkValueError, match="at most 38"):
        lit(decimal.Decimal("1" * 39))


def test_trees_are_json_and_never_mutated() -> None:
    base = col("price")
    first = base + 1
    second = base * 2
    assert base._expr == PRICE
    assert first._expr["left"] is base._expr
    assert second._expr == binary("*", PRICE, lit_node(2))
    case = when(col("x") > 0, 1)
    longer = case.when(col("x") < 0, -1)
    assert len(case._expr["branches"]) == 1
    assert len(longer._expr["branches"]) == 2
    text = json.dumps((longer.otherwise(lit(datetime.date(2024, 1, 1))))._expr)
    assert json.loads(text)["otherwise"] == lit_node("2024-01-01", "date")


# -- naming and casting -----------------------------------------------------------------------


def test_alias_and_name() -> None:
    expected = {"kind": "alias", "expr": PRICE, "name": "p"}
    assert col("price").alias("p")._expr == expected
    assert col("price").name("p")._expr == expected
    with pytest.raises(PySparkValueError, match="exactly one name"):
        col("price").alias("a", "b")
    with pytest.raises(PySparkValueError, match="metadata"):
        col("price").alias("a", metadata={"x": 1})
    with pytest.raises(PySparkTypeError, match="`alias` should be a str, got int"):
        col("price").alias(1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("string", "string"),
        ("int", "integer"),
        ("INTEGER", "integer"),
        ("bigint", "long"),
        ("double", "double"),
        ("timestamp", "timestamp"),
        ("decimal(10,2)", "decimal(10,2)"),
        ("array<string>", {"type": "array", "elementType": "string", "containsNull": True}),
        (StringType(), "string"),
        (DecimalType(5, 1), "decimal(5,1)"),
        (
            StructType([StructField("a", ArrayType(StringType()))]),
            {
                "type": "struct",
                "fields": [
                    {
                        "name": "a",
                        "type": {"type": "array", "elementType": "string", "containsNull": True},
                        "nullable": True,
                        "metadata": {},
                    }
                ],
            },
        ),
    ],
)
def test_cast(target: Any, expected: Any) -> None:
    assert col("price").cast(target)._expr == {"kind": "cast", "expr": PRICE, "type": expected}
    assert col("price").astype(target)._expr == {"kind": "cast", "expr": PRICE, "type": expected}


def test_cast_errors() -> None:
    with pytest.raises(PySparkTypeError, match="`dataType` should be a DataType or str, got int"):
        col("price").cast(1)  # type: ignore[arg-type]
    with pytest.raises(ParseException):
        col("price").cast("money")
    # A cast takes one type, not a field list (PySpark's JVM parser says the same).
    with pytest.raises(ParseException):
        col("price").cast("a int")


# -- predicates -------------------------------------------------------------------------------


def test_null_checks() -> None:
    assert col("price").isNull()._expr == {"kind": "unary", "op": "is_null", "expr": PRICE}
    assert col("price").isNotNull()._expr == {"kind": "unary", "op": "is_not_null", "expr": PRICE}


def test_isin() -> None:
    symbol = {"kind": "col", "name": "symbol"}
    expected = {"kind": "in", "expr": symbol, "values": [lit_node("BTC"), lit_node("ETH")]}
    assert col("symbol").isin("BTC", "ETH")._expr == expected
    assert col("symbol").isin(["BTC", "ETH"])._expr == expected
    assert col("price").isin(1, col("qty"))._expr == {
        "kind": "in",
        "expr": PRICE,
        "values": [lit_node(1), QTY],
    }
    assert col("price").isin([])._expr == {"kind": "in", "expr": PRICE, "values": []}


def test_between_is_two_comparisons() -> None:
    assert col("price").between(1, 10)._expr == binary(
        "and", binary(">=", PRICE, lit_node(1)), binary("<=", PRICE, lit_node(10))
    )


@pytest.mark.parametrize("method", ["contains", "startswith", "endswith", "like"])
def test_string_predicates_are_calls(method: str) -> None:
    column = getattr(col("symbol"), method)("BT%")
    assert column._expr == {
        "kind": "call",
        "name": method,
        "args": [{"kind": "col", "name": "symbol"}, lit_node("BT%")],
        "options": {},
    }


def test_string_predicate_with_a_column() -> None:
    assert col("a").contains(col("b"))._expr["args"][1] == {"kind": "col", "name": "b"}
    with pytest.raises(PySparkTypeError, match="`other` should be a str"):
        col("a").like(col("b"))  # type: ignore[arg-type]


# -- struct fields ----------------------------------------------------------------------------


def test_struct_fields() -> None:
    expected = {"kind": "field", "expr": {"kind": "col", "name": "d"}, "name": "price"}
    assert col("d").getField("price")._expr == expected
    assert col("d").getItem("price")._expr == expected
    assert col("d")["price"]._expr == expected
    assert col("d").price._expr == expected
    nested = col("d").quote.bid
    assert nested._expr == {"kind": "field", "expr": {**expected, "name": "quote"}, "name": "bid"}


def test_struct_field_errors() -> None:
    with pytest.raises(AttributeError):
        col("d")._private  # noqa: B018
    with pytest.raises(AttributeError):
        col("d").__array__  # noqa: B018
    with pytest.raises(PySparkTypeError, match="`key` should be a str"):
        col("d")[0]
    with pytest.raises(PySparkValueError, match="Slicing"):
        col("d")[1:2]
    with pytest.raises(PySparkTypeError, match="`name` should be a str"):
        col("d").getField(1)  # type: ignore[arg-type]


# -- sorting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "ascending", "nulls_first"),
    [
        ("asc", True, True),
        ("asc_nulls_first", True, True),
        ("asc_nulls_last", True, False),
        ("desc", False, False),
        ("desc_nulls_first", False, True),
        ("desc_nulls_last", False, False),
    ],
)
def test_sort_orders(method: str, ascending: bool, nulls_first: bool) -> None:
    assert getattr(col("price"), method)()._expr == {
        "kind": "sort",
        "expr": PRICE,
        "ascending": ascending,
        "nulls_first": nulls_first,
    }


# -- CASE WHEN --------------------------------------------------------------------------------


def test_when_chain() -> None:
    x = {"kind": "col", "name": "x"}
    column = when(col("x") > 0, "up").when(col("x") < 0, col("down")).otherwise("flat")
    assert column._expr == {
        "kind": "case",
        "branches": [
            [binary(">", x, lit_node(0)), lit_node("up")],
            [binary("<", x, lit_node(0)), {"kind": "col", "name": "down"}],
        ],
        "otherwise": lit_node("flat"),
    }
    assert when(col("x") > 0, 1)._expr["otherwise"] is None
    # otherwise(None) is an explicit null, and closes the chain as in PySpark.
    closed = when(col("x") > 0, 1).otherwise(None)
    assert closed._expr["otherwise"] == lit_node(None)
    with pytest.raises(IllegalArgumentException, match="once otherwise"):
        closed.when(col("x") < 0, 2)


def test_when_errors() -> None:
    with pytest.raises(IllegalArgumentException, match="previously generated by when"):
        col("x").when(col("x") > 0, 1)
    with pytest.raises(IllegalArgumentException, match="previously generated by when"):
        col("x").otherwise(1)
    with pytest.raises(IllegalArgumentException, match="only be applied once"):
        when(col("x") > 0, 1).otherwise(0).otherwise(2)
    with pytest.raises(IllegalArgumentException):
        when(col("x") > 0, 1).alias("y").when(col("x") < 0, 2)
    with pytest.raises(PySparkTypeError, match="`condition` should be a Column, got str"):
        when(col("x") > 0, 1).when("x > 0", 2)  # type: ignore[arg-type]


# -- helpers and repr -------------------------------------------------------------------------


def test_to_expr() -> None:
    assert _to_expr("price") == PRICE
    assert _to_expr("*") == {"kind": "col", "name": "*"}
    assert _to_expr(col("price") + 1) == binary("+", PRICE, lit_node(1))
    with pytest.raises(
        PySparkTypeError, match=r"Argument `col` should be a Column or str, got int"
    ):
        _to_expr(1)
    with pytest.raises(PySparkTypeError, match=r"Argument `condition` should be a Column or str"):
        _to_expr(None, "condition")


def test_column_needs_an_expression() -> None:
    with pytest.raises(PySparkTypeError, match="expression dict"):
        Column("price")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("column", "text"),
    [
        (col("price"), "price"),
        (col("price") + 1, "(price + 1)"),
        (col("a") == "x", "(a = x)"),
        ((col("a") > 1) & (col("b") < 2), "((a > 1) AND (b < 2))"),
        (~col("flag") | col("other"), "((NOT flag) OR other)"),
        (-col("a"), "(- a)"),
        (col("a").isNull(), "(a IS NULL)"),
        (col("a").alias("b"), "a AS b"),
        (col("a").cast("bigint"), "CAST(a AS BIGINT)"),
        (col("a").cast("array<int>"), "CAST(a AS ARRAY<INT>)"),
        (col("a").cast("struct<x: int>"), "CAST(a AS STRUCT<x: INT>)"),
        (col("a").isin(1, 2), "(a IN (1, 2))"),
        (col("d").price, "d.price"),
        (col("a").desc(), "a DESC NULLS LAST"),
        (lit(None), "NULL"),
        (lit(True), "true"),
        (lit(datetime.date(2024, 1, 2)), "DATE '2024-01-02'"),
        (when(col("a") > 1, 1), "CASE WHEN (a > 1) THEN 1 END"),
    ],
)
def test_repr(column: Column, text: str) -> None:
    assert repr(column) == f"Column<'{text}'>"
