"""``Column``: one expression tree, built with PySpark's operators and methods.

A Column evaluates nothing. It holds one JSON-compatible dict (``docs/plan-format.md``,
"Expressions") that the Rust core validates against the input schema and lowers to
DataFusion. Every operator returns a new Column; trees are never changed in place, so
sub-trees can be shared.
"""

from __future__ import annotations

import datetime
import decimal
import math
from collections.abc import Iterator
from typing import Any, ClassVar, NoReturn, Union

from ferrostream.errors import IllegalArgumentException, PySparkTypeError, PySparkValueError
from ferrostream.sql.types import (
    ArrayType,
    DataType,
    MapType,
    StructType,
    _parse_data_type,
    to_datatype,
)

__all__ = ["Column"]

#: One expression node, as the plan format describes it.
Expr = dict[str, Any]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_MAX_DECIMAL_PRECISION = 38


class Column:
    """A column expression: a column by name, a literal, or an expression of other columns.

    Columns are made by :func:`~ferrostream.sql.functions.col`,
    :func:`~ferrostream.sql.functions.lit`, ``df["name"]`` and the functions module, and
    combined with Python operators. Python values on either side of an operator become
    literals.

    >>> from ferrostream.sql.functions import col
    >>> (col("price") * 2 > 100) & col("symbol").isin("BTC", "ETH")
    Column<'(((price * 2) > 100) AND (symbol IN (BTC, ETH)))'>
    """

    __slots__ = ("_expr",)

    # Like PySpark's Column: == builds an expression, so columns cannot be hashed.
    __hash__: ClassVar[None]  # type: ignore[assignment]

    def __init__(self, expr: Expr) -> None:
        if not isinstance(expr, dict) or "kind" not in expr:
            raise PySparkTypeError(
                "[NOT_EXPRESSION] Argument `expr` should be an expression dict with a "
                f"'kind', got {type(expr).__name__}."
            )
        self._expr: Expr = expr

    # -- operators ---------------------------------------------------------------------

    def _binary(self, op: str, other: Any) -> Column:
        return Column(
            {"kind": "binary", "op": op, "left": self._expr, "right": _to_value_expr(other)}
        )

    def _reversed(self, op: str, other: Any) -> Column:
        return Column(
            {"kind": "binary", "op": op, "left": _to_value_expr(other), "right": self._expr}
        )

    def __add__(self, other: Any) -> Column:
        return self._binary("+", other)

    def __sub__(self, other: Any) -> Column:
        return self._binary("-", other)

    def __mul__(self, other: Any) -> Column:
        return self._binary("*", other)

    def __truediv__(self, other: Any) -> Column:
        return self._binary("/", other)

    def __mod__(self, other: Any) -> Column:
        return self._binary("%", other)

    # As in PySpark, a reflected commutative operator keeps the column on the left:
    # ``1 + col("a")`` is ``(a + 1)``.
    def __radd__(self, other: Any) -> Column:
        return self._binary("+", other)

    def __rmul__(self, other: Any) -> Column:
        return self._binary("*", other)

    def __rsub__(self, other: Any) -> Column:
        return self._reversed("-", other)

    def __rtruediv__(self, other: Any) -> Column:
        return self._reversed("/", other)

    def __rmod__(self, other: Any) -> Column:
        return self._reversed("%", other)

    def __eq__(self, other: object) -> Column:  # type: ignore[override]
        return self._binary("==", other)

    def __ne__(self, other: object) -> Column:  # type: ignore[override]
        return self._binary("!=", other)

    def __lt__(self, other: Any) -> Column:
        return self._binary("<", other)

    def __le__(self, other: Any) -> Column:
        return self._binary("<=", other)

    def __gt__(self, other: Any) -> Column:
        return self._binary(">", other)

    def __ge__(self, other: Any) -> Column:
        return self._binary(">=", other)

    def __and__(self, other: Any) -> Column:
        return self._binary("and", other)

    def __or__(self, other: Any) -> Column:
        return self._binary("or", other)

    def __rand__(self, other: Any) -> Column:
        return self._binary("and", other)

    def __ror__(self, other: Any) -> Column:
        return self._binary("or", other)

    def __invert__(self) -> Column:
        return Column({"kind": "unary", "op": "not", "expr": self._expr})

    def __neg__(self) -> Column:
        return Column({"kind": "unary", "op": "neg", "expr": self._expr})

    def eqNullSafe(self, other: Any) -> Column:
        """Equality that treats two nulls as equal and never returns null (SQL ``<=>``).

        >>> from ferrostream.sql.functions import col
        >>> col("a").eqNullSafe(None)
        Column<'(a <=> NULL)'>
        """
        return self._binary("<=>", other)

    def __bool__(self) -> NoReturn:
        raise PySparkValueError(
            "[CANNOT_CONVERT_COLUMN_INTO_BOOL] Cannot convert column into bool: please use "
            "'&' for 'and', '|' for 'or', '~' for 'not' when building DataFrame boolean "
            "expressions."
        )

    __nonzero__ = __bool__

    def __contains__(self, item: Any) -> NoReturn:
        raise PySparkValueError(
            "[CANNOT_APPLY_IN_FOR_COLUMN] Cannot apply 'in' operator against a column: "
            "please use 'contains' in a string column or 'array_contains' function for an "
            "array column."
        )

    def __iter__(self) -> Iterator[Any]:
        raise PySparkTypeError("[NOT_ITERABLE] Column is not iterable.")

    # -- naming and types --------------------------------------------------------------

    def alias(self, *alias: str, **kwargs: Any) -> Column:
        """Names the column, as SQL's ``AS``.

        >>> from ferrostream.sql.functions import col
        >>> (col("price") * 2).alias("double_price")
        Column<'(price * 2) AS double_price'>
        """
        metadata = kwargs.pop("metadata", None)
        if kwargs:
            raise PySparkTypeError(
                "[UNEXPECTED_KWARGS] alias() takes only the keyword argument `metadata`, "
                f"got {sorted(kwargs)}."
            )
        if metadata is not None:
            raise PySparkValueError(
                "[UNSUPPORTED_OPERATION] alias(metadata=...) is not supported by ferrostream."
            )
        if len(alias) != 1:
            raise PySparkValueError(
                "[UNSUPPORTED_OPERATION] alias() takes exactly one name; ferrostream has no "
                f"multi-column aliases, got {len(alias)} names."
            )
        name = alias[0]
        if not isinstance(name, str):
            raise PySparkTypeError(
                f"[NOT_STR] Argument `alias` should be a str, got {type(name).__name__}."
            )
        return Column({"kind": "alias", "expr": self._expr, "name": name})

    name = alias

    def cast(self, dataType: DataType | str) -> Column:
        """Converts the column to another type, given as a DataType or a DDL type string.

        >>> from ferrostream.sql.functions import col
        >>> col("value").cast("string")
        Column<'CAST(value AS STRING)'>
        >>> col("price").cast("decimal(10,2)")._expr["type"]
        'decimal(10,2)'
        """
        if isinstance(dataType, DataType):
            data_type = to_datatype(dataType)
        elif isinstance(dataType, str):
            data_type = _parse_data_type(dataType)
        else:
            raise PySparkTypeError(
                "[NOT_DATATYPE_OR_STR] Argument `dataType` should be a DataType or str, "
                f"got {type(dataType).__name__}."
            )
        return Column({"kind": "cast", "expr": self._expr, "type": data_type.jsonValue()})

    astype = cast

    # -- predicates ----------------------------------------------------------------------

    def isNull(self) -> Column:
        """True where the value is null.

        >>> from ferrostream.sql.functions import col
        >>> col("price").isNull()
        Column<'(price IS NULL)'>
        """
        return Column({"kind": "unary", "op": "is_null", "expr": self._expr})

    def isNotNull(self) -> Column:
        """True where the value is not null.

        >>> from ferrostream.sql.functions import col
        >>> col("price").isNotNull()
        Column<'(price IS NOT NULL)'>
        """
        return Column({"kind": "unary", "op": "is_not_null", "expr": self._expr})

    def isin(self, *cols: Any) -> Column:
        """True where the value is one of the arguments (values or Columns, or one list).

        >>> from ferrostream.sql.functions import col
        >>> col("symbol").isin(["BTC", "ETH"])
        Column<'(symbol IN (BTC, ETH))'>
        """
        values: Any = cols
        if len(cols) == 1 and isinstance(cols[0], (list, set)):
            values = cols[0]
        return Column(
            {"kind": "in", "expr": self._expr, "values": [_to_value_expr(v) for v in values]}
        )

    def between(self, lowerBound: Any, upperBound: Any) -> Column:
        """True where ``lowerBound <= value <= upperBound``.

        >>> from ferrostream.sql.functions import col
        >>> col("price").between(1, 10)
        Column<'((price >= 1) AND (price <= 10))'>
        """
        lower: Column = self >= lowerBound
        upper: Column = self <= upperBound
        return lower & upper

    def _string_call(self, name: str, other: Any) -> Column:
        return Column(
            {
                "kind": "call",
                "name": name,
                "args": [self._expr, _to_value_expr(other)],
                "options": {},
            }
        )

    def contains(self, other: Any) -> Column:
        """True where the string contains ``other`` (a string or a Column).

        >>> from ferrostream.sql.functions import col
        >>> col("symbol").contains("USD")
        Column<'contains(symbol, USD)'>
        """
        return self._string_call("contains", other)

    def startswith(self, other: Any) -> Column:
        """True where the string starts with ``other`` (a string or a Column, not a regex).

        >>> from ferrostream.sql.functions import col
        >>> col("symbol").startswith("BTC")
        Column<'startswith(symbol, BTC)'>
        """
        return self._string_call("startswith", other)

    def endswith(self, other: Any) -> Column:
        """True where the string ends with ``other`` (a string or a Column, not a regex).

        >>> from ferrostream.sql.functions import col
        >>> col("symbol").endswith("USDT")
        Column<'endswith(symbol, USDT)'>
        """
        return self._string_call("endswith", other)

    def like(self, other: str) -> Column:
        """SQL ``LIKE``: ``%`` matches any text, ``_`` one character.

        >>> from ferrostream.sql.functions import col
        >>> col("symbol").like("BTC%")
        Column<'like(symbol, BTC%)'>
        """
        if not isinstance(other, str):
            raise PySparkTypeError(
                f"[NOT_STR] Argument `other` should be a str, got {type(other).__name__}."
            )
        return self._string_call("like", other)

    # -- struct fields -------------------------------------------------------------------

    def getField(self, name: str) -> Column:
        """The field ``name`` of a struct column.

        >>> from ferrostream.sql.functions import col
        >>> col("data").getField("price")
        Column<'data.price'>
        """
        if not isinstance(name, str):
            raise PySparkTypeError(
                f"[NOT_STR] Argument `name` should be a str, got {type(name).__name__}."
            )
        return Column({"kind": "field", "expr": self._expr, "name": name})

    def getItem(self, key: str) -> Column:
        """The field ``key`` of a struct column (or the value under a string key of a map).

        Array indexes and non-string map keys are not supported yet.

        >>> from ferrostream.sql.functions import col
        >>> col("data").getItem("price")
        Column<'data.price'>
        """
        if not isinstance(key, str):
            raise PySparkTypeError(
                "[NOT_STR] Argument `key` should be a str (a struct field or map key); "
                f"array indexes are not supported yet, got {type(key).__name__}."
            )
        return self.getField(key)

    def __getitem__(self, k: Any) -> Column:
        if isinstance(k, slice):
            raise PySparkValueError(
                "[UNSUPPORTED_OPERATION] Slicing a Column (substr) is not supported by ferrostream."
            )
        return self.getItem(k)

    def __getattr__(self, item: str) -> Column:
        if item.startswith("_"):
            raise AttributeError(item)
        return self[item]

    # -- sorting -------------------------------------------------------------------------

    def _sort(self, ascending: bool, nulls_first: bool) -> Column:
        return Column(
            {"kind": "sort", "expr": self._expr, "ascending": ascending, "nulls_first": nulls_first}
        )

    def asc(self) -> Column:
        """Ascending order, nulls first.

        >>> from ferrostream.sql.functions import col
        >>> col("price").asc()
        Column<'price ASC NULLS FIRST'>
        """
        return self._sort(True, True)

    def asc_nulls_first(self) -> Column:
        """Ascending order, nulls first."""
        return self._sort(True, True)

    def asc_nulls_last(self) -> Column:
        """Ascending order, nulls last."""
        return self._sort(True, False)

    def desc(self) -> Column:
        """Descending order, nulls last.

        >>> from ferrostream.sql.functions import col
        >>> col("price").desc()
        Column<'price DESC NULLS LAST'>
        """
        return self._sort(False, False)

    def desc_nulls_first(self) -> Column:
        """Descending order, nulls first."""
        return self._sort(False, True)

    def desc_nulls_last(self) -> Column:
        """Descending order, nulls last."""
        return self._sort(False, False)

    # -- CASE WHEN -----------------------------------------------------------------------

    def when(self, condition: Column, value: Any) -> Column:
        """Adds a branch to a column made by :func:`~ferrostream.sql.functions.when`.

        >>> from ferrostream.sql.functions import col, when
        >>> when(col("x") > 0, "up").when(col("x") < 0, "down").otherwise("flat")
        Column<'CASE WHEN (x > 0) THEN up WHEN (x < 0) THEN down ELSE flat END'>
        """
        if not isinstance(condition, Column):
            raise PySparkTypeError(
                "[NOT_COLUMN] Argument `condition` should be a Column, "
                f"got {type(condition).__name__}."
            )
        if self._expr["kind"] != "case":
            raise IllegalArgumentException(
                "when() can only be applied on a Column previously generated by when() function"
            )
        if self._expr["otherwise"] is not None:
            raise IllegalArgumentException("when() cannot be applied once otherwise() is applied")
        branch = [condition._expr, _to_value_expr(value)]
        return Column(
            {"kind": "case", "branches": [*self._expr["branches"], branch], "otherwise": None}
        )

    def otherwise(self, value: Any) -> Column:
        """The value where no branch of a ``when`` column matches (null if never called).

        >>> from ferrostream.sql.functions import col, when
        >>> when(col("x") > 0, 1).otherwise(0)
        Column<'CASE WHEN (x > 0) THEN 1 ELSE 0 END'>
        """
        if self._expr["kind"] != "case":
            raise IllegalArgumentException(
                "otherwise() can only be applied on a Column previously generated by when()"
            )
        if self._expr["otherwise"] is not None:
            raise IllegalArgumentException(
                "otherwise() can only be applied once on a Column previously generated by when()"
            )
        return Column(
            {
                "kind": "case",
                "branches": self._expr["branches"],
                "otherwise": _to_value_expr(value),
            }
        )

    def __repr__(self) -> str:
        return f"Column<'{_render(self._expr)}'>"


# Union, not |: the alias is evaluated at run time, and Python 3.9 has no `X | Y`.
ColumnOrName = Union[Column, str]  # noqa: UP007, RUF100


# -- building expressions -------------------------------------------------------------------


def _lit_expr(value: Any, argument: str = "col") -> Expr:
    """A ``lit`` node for a Python scalar.

    Values JSON carries as they are (None, bool, int, float, str) have no ``type``: the
    core gives them Spark's types (int if it fits 32 bits, else bigint; double; string;
    boolean; null). Others are strings with a ``type``: datetimes (ISO 8601, naive ones
    read in the session time zone), dates, decimals and non-finite floats.
    """
    if value is None or isinstance(value, (bool, str)):
        return {"kind": "lit", "value": value}
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise PySparkValueError(
                f"[VALUE_OUT_OF_BOUNDS] Value for `{argument}` must be between {_INT64_MIN} "
                f"and {_INT64_MAX} (a bigint), got {value}; use a decimal.Decimal instead."
            )
        return {"kind": "lit", "value": value}
    if isinstance(value, float):
        if math.isfinite(value):
            return {"kind": "lit", "value": value}
        text = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return {"kind": "lit", "value": text, "type": "double"}
    if isinstance(value, datetime.datetime):
        return {"kind": "lit", "value": value.isoformat(), "type": "timestamp"}
    if isinstance(value, datetime.date):
        return {"kind": "lit", "value": value.isoformat(), "type": "date"}
    if isinstance(value, decimal.Decimal):
        return _decimal_lit(value, argument)
    raise PySparkTypeError(
        f"[UNSUPPORTED_LITERAL] Argument `{argument}` should be a Column or a literal "
        "(None, bool, int, float, str, datetime.datetime, datetime.date, decimal.Decimal), "
        f"got {type(value).__name__}."
    )


def _decimal_lit(value: decimal.Decimal, argument: str) -> Expr:
    if not value.is_finite():
        raise PySparkValueError(
            f"[VALUE_NOT_FINITE] Value for `{argument}` must be a finite decimal, got {value}."
        )
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite decimals have an int exponent
    if exponent > 0:
        # Spark does not allow a negative scale: 1E+3 is 1000 with scale 0.
        scale = 0
        precision = len(digits) + exponent
    else:
        scale = -exponent
        precision = max(len(digits), scale)
    if precision > _MAX_DECIMAL_PRECISION:
        raise PySparkValueError(
            f"[VALUE_OUT_OF_BOUNDS] Value for `{argument}` has {precision} digits; Spark "
            f"decimals hold at most {_MAX_DECIMAL_PRECISION}, got {value}."
        )
    return {
        "kind": "lit",
        "value": format(value, "f"),
        "type": f"decimal({precision},{scale})",
    }


def _to_expr(col: Any, argument: str = "col") -> Expr:
    """The expression of a Column, or a ``col`` node for a column name."""
    if isinstance(col, Column):
        return col._expr
    if isinstance(col, str):
        return {"kind": "col", "name": col}
    raise PySparkTypeError(
        f"[NOT_COLUMN_OR_STR] Argument `{argument}` should be a Column or str, "
        f"got {type(col).__name__}."
    )


def _to_value_expr(value: Any, argument: str = "value") -> Expr:
    """The expression of a Column, or a ``lit`` node for anything else (strings included)."""
    if isinstance(value, Column):
        return value._expr
    return _lit_expr(value, argument)


# -- rendering, for repr ----------------------------------------------------------------------

_BINARY_OPS = {"==": "=", "and": "AND", "or": "OR"}


def _render(expr: Any) -> str:
    """A readable, Spark-like rendering of an expression tree."""
    if not isinstance(expr, dict):
        return _render_value(expr)
    kind = expr.get("kind")
    if kind == "col":
        return str(expr["name"])
    if kind == "lit":
        return _render_lit(expr)
    if kind == "alias":
        return f"{_render(expr['expr'])} AS {expr['name']}"
    if kind == "cast":
        target = _type_sql(to_datatype(expr["type"]))
        return f"CAST({_render(expr['expr'])} AS {target})"
    if kind == "binary":
        op = _BINARY_OPS.get(expr["op"], expr["op"])
        return f"({_render(expr['left'])} {op} {_render(expr['right'])})"
    if kind == "unary":
        inner = _render(expr["expr"])
        op = expr["op"]
        if op == "not":
            return f"(NOT {inner})"
        if op == "neg":
            return f"(- {inner})"
        if op == "is_null":
            return f"({inner} IS NULL)"
        if op == "is_not_null":
            return f"({inner} IS NOT NULL)"
        return f"{op}({inner})"
    if kind == "field":
        return f"{_render(expr['expr'])}.{expr['name']}"
    if kind == "in":
        values = ", ".join(_render(v) for v in expr["values"])
        return f"({_render(expr['expr'])} IN ({values}))"
    if kind == "case":
        parts = ["CASE"]
        for condition, value in expr["branches"]:
            parts.append(f"WHEN {_render(condition)} THEN {_render(value)}")
        if expr.get("otherwise") is not None:
            parts.append(f"ELSE {_render(expr['otherwise'])}")
        parts.append("END")
        return " ".join(parts)
    if kind == "call":
        return _render_function(expr)
    if kind == "agg":
        args = expr["args"]
        if args == [{"kind": "col", "name": "*"}]:
            inner = "1"
        else:
            inner = ", ".join(_render(a) for a in args)
        if expr.get("distinct"):
            inner = "DISTINCT " + inner
        if (expr.get("options") or {}).get("ignorenulls"):
            inner += ", true"
        name = "count" if expr["name"] == "count_distinct" else expr["name"]
        return f"{name}({inner})"
    if kind == "sql":
        return str(expr["text"])
    if kind == "sort":
        order = "ASC" if expr["ascending"] else "DESC"
        nulls = "FIRST" if expr["nulls_first"] else "LAST"
        return f"{_render(expr['expr'])} {order} NULLS {nulls}"
    return repr(expr)


def _render_function(expr: Expr) -> str:
    parts: list[str] = [_render(a) for a in expr.get("args", [])]
    for key, value in (expr.get("options") or {}).items():
        if value is None or value == {}:
            continue
        if key == "schema":
            parts.append(to_datatype(value).simpleString())
        else:
            parts.append(_render_value(value))
    return f"{expr['name']}({', '.join(parts)})"


def _render_lit(expr: Expr) -> str:
    value = expr["value"]
    data_type = expr.get("type")
    if data_type == "timestamp":
        return f"TIMESTAMP '{value}'"
    if data_type == "date":
        return f"DATE '{value}'"
    return _render_value(value)


def _render_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        entries = ", ".join(f"{k}, {_render_value(v)}" for k, v in value.items())
        return f"map({entries})"
    return str(value)


def _type_sql(data_type: DataType) -> str:
    """A type as Spark's SQL prints it: ``INT``, ``ARRAY<STRING>``, ``STRUCT<a: INT>``."""
    if isinstance(data_type, ArrayType):
        return f"ARRAY<{_type_sql(data_type.elementType)}>"
    if isinstance(data_type, MapType):
        return f"MAP<{_type_sql(data_type.keyType)}, {_type_sql(data_type.valueType)}>"
    if isinstance(data_type, StructType):
        fields = ", ".join(f"{f.name}: {_type_sql(f.dataType)}" for f in data_type.fields)
        return f"STRUCT<{fields}>"
    return data_type.simpleString().upper()
