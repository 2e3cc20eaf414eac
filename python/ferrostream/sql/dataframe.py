"""``DataFrame`` and ``GroupedData``: PySpark's fluent API over a plan tree.

A DataFrame holds a plan (``docs/plan-format.md``, "Plans") and its session. Every method
returns a new DataFrame; the Rust core checks each step's schema at once, so a wrong
column fails at the call that names it, as in PySpark. No rows pass through Python: results
cross as Arrow through the PyCapsule interface.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

from ferrostream.errors import PySparkTypeError
from ferrostream.sql.column import Column, _to_expr
from ferrostream.sql.types import Row, StructType

if TYPE_CHECKING:  # pragma: no cover
    import pandas
    import pyarrow

    from ferrostream.sql.readwriter import DataFrameWriter
    from ferrostream.sql.session import SparkSession
    from ferrostream.sql.streaming import DataStreamWriter

__all__ = ["DataFrame", "GroupedData"]

Plan = Dict[str, Any]
ColumnOrName = Union[Column, str]


def _columns(cols: Sequence[Any]) -> List[Any]:
    """PySpark accepts ``f(a, b)`` and ``f([a, b])``."""
    if len(cols) == 1 and isinstance(cols[0], (list, tuple)):
        return list(cols[0])
    return list(cols)


class DataFrame:
    """A distributed collection of rows under named columns, batch or streaming.

    >>> df = spark.readStream.format("kafka").option("subscribe", "ticks").load()
    >>> df.selectExpr("CAST(value AS STRING) AS json").isStreaming
    True
    """

    def __init__(self, plan: Plan, session: SparkSession) -> None:
        self._plan = plan
        self._session = session
        self._schema: Optional[StructType] = None
        # Fail now, at the call that made this frame, if the plan is wrong.
        self._schema = self._resolve_schema()

    def _json(self) -> str:
        return json.dumps(self._plan)

    def _resolve_schema(self) -> StructType:
        schema = StructType.fromJson(json.loads(self._session._inner.schema(self._json())))
        return schema

    def _derive(self, node: str, **fields: Any) -> DataFrame:
        return DataFrame({"node": node, "input": self._plan, **fields}, self._session)

    # -- schema -------------------------------------------------------------------------------

    @property
    def schema(self) -> StructType:
        """The schema as a :class:`StructType`.

        >>> df.schema.names
        ['key', 'value', 'topic', 'partition', 'offset', 'timestamp', 'timestampType']
        """
        assert self._schema is not None
        return self._schema

    @property
    def columns(self) -> List[str]:
        """Column names, in order."""
        return self.schema.names

    @property
    def dtypes(self) -> List[Tuple[str, str]]:
        """``(name, type)`` pairs in Spark's short type names."""
        return [(f.name, f.dataType.simpleString()) for f in self.schema.fields]

    @property
    def isStreaming(self) -> bool:
        """Whether the frame reads a stream (write it with :attr:`writeStream`)."""
        return _is_streaming(self._plan)

    def printSchema(self) -> None:
        """Prints the schema as a tree, as PySpark does."""
        print(
            self.schema.treeString() if hasattr(self.schema, "treeString") else _tree(self.schema)
        )

    def __getitem__(self, item: Union[str, int]) -> Column:
        name = self.columns[item] if isinstance(item, int) else item
        return Column({"kind": "col", "name": name})

    def __getattr__(self, name: str) -> Column:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._schema is not None and name in self._schema.names:
            return Column({"kind": "col", "name": name})
        raise AttributeError(f"'DataFrame' object has no attribute '{name}'")

    # -- transformations ----------------------------------------------------------------------

    def select(self, *cols: Union[ColumnOrName, List[ColumnOrName]]) -> DataFrame:
        """Projects expressions; ``"*"`` and ``"struct.*"`` expand.

        >>> df.select("symbol", (col("price") * 2).alias("double"))
        """
        return self._derive("project", exprs=[_to_expr(c) for c in _columns(cols)])

    def selectExpr(self, *expr: Union[str, List[str]]) -> DataFrame:
        """Projects SQL expressions: ``df.selectExpr("CAST(value AS STRING) AS json")``."""
        return self._derive("project", exprs=[_sql_expr(e) for e in _columns(expr)])

    def withColumn(self, colName: str, col: Column) -> DataFrame:
        """Adds or replaces a column: ``df.withColumn("ts", timestamp_millis("event_time"))``."""
        if not isinstance(col, Column):
            raise PySparkTypeError(
                f"[NOT_COLUMN] Argument `col` should be a Column, got {type(col).__name__}."
            )
        return self._derive("with_column", name=colName, expr=col._expr)

    def withColumnRenamed(self, existing: str, new: str) -> DataFrame:
        """Renames a column (a no-op when it does not exist, as in PySpark)."""
        return self._derive("rename", existing=existing, new=new)

    def drop(self, *cols: ColumnOrName) -> DataFrame:
        """Drops columns by name (absent names are ignored)."""
        names = [c if isinstance(c, str) else c._expr.get("name", "") for c in cols]
        return self._derive("drop", columns=names)

    def filter(self, condition: ColumnOrName) -> DataFrame:
        """Keeps rows where the condition holds: ``df.filter(col("price") > 0)``."""
        if isinstance(condition, str):
            return self._derive("filter", condition={"kind": "sql", "text": condition})
        return self._derive("filter", condition=_to_expr(condition, "condition"))

    where = filter

    def withWatermark(self, eventTime: str, delayThreshold: str) -> DataFrame:
        """Declares how late rows of ``eventTime`` may be: ``df.withWatermark("ts", "1 hour")``."""
        return self._derive("watermark", column=eventTime, delay=delayThreshold)

    def groupBy(self, *cols: Union[ColumnOrName, List[ColumnOrName]]) -> GroupedData:
        """Groups by columns or ``window(...)``; finish with :meth:`GroupedData.agg`.

        >>> df.groupBy(window("ts", "1 hour"), "symbol").agg(first("price").alias("open"))
        """
        return GroupedData(self, [_to_expr(c) for c in _columns(cols)])

    groupby = groupBy

    def agg(self, *exprs: Column) -> DataFrame:
        """Aggregates the whole frame: ``df.agg(count("*"))``."""
        return self.groupBy().agg(*exprs)

    def dropDuplicates(self, subset: Optional[List[str]] = None) -> DataFrame:
        """Drops duplicate rows (by ``subset`` columns, keeping the first row of each).

        >>> df.dropDuplicates(["symbol", "event_time"])
        """
        if self.isStreaming:
            return self._derive("dedup", columns=subset)
        # A batch frame: a grouping by the key columns, the first row's other values.
        from ferrostream.sql import functions as F

        keys = list(subset) if subset else list(self.columns)
        unknown = [k for k in keys if k not in self.columns]
        if unknown:
            return self._derive("dedup", columns=subset)  # the engine names the column
        others = [c for c in self.columns if c not in keys]
        if others:
            grouped = self.groupBy(*keys).agg(*[F.first(c).alias(c) for c in others])
            return grouped.select(*[F.col(c) for c in self.columns])
        marker = "__ferrostream_rows"
        return self.groupBy(*keys).agg(F.count("*").alias(marker)).drop(marker)

    drop_duplicates = dropDuplicates

    def union(self, other: DataFrame) -> DataFrame:
        """Rows of both frames, matched by position."""
        return self._derive("union", other=other._plan)

    unionAll = union

    def orderBy(self, *cols: Union[ColumnOrName, List[ColumnOrName]], **kwargs: Any) -> DataFrame:
        """Sorts rows: ``df.orderBy(col("ts").desc())``."""
        ascending = kwargs.get("ascending", True)
        keys = []
        for c in _columns(cols):
            expr = _to_expr(c)
            if expr.get("kind") != "sort":
                expr = {
                    "kind": "sort",
                    "expr": expr,
                    "ascending": bool(ascending),
                    "nulls_first": bool(ascending),
                }
            keys.append(expr)
        return self._derive("sort", keys=keys)

    sort = orderBy

    def limit(self, num: int) -> DataFrame:
        """The first ``num`` rows."""
        return self._derive("limit", n=int(num))

    def alias(self, alias: str) -> DataFrame:
        """Returns the frame (aliases qualify columns in joins, which are not supported yet)."""
        return self

    # -- actions ------------------------------------------------------------------------------

    def _collect_arrow(self) -> pyarrow.Table:
        import pyarrow as pa

        return pa.RecordBatchReader.from_stream(
            self._session._inner.collect(self._json())
        ).read_all()

    def toArrow(self) -> pyarrow.Table:
        """The rows as a ``pyarrow.Table`` (a consistent snapshot for memory tables)."""
        return self._collect_arrow()

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The Arrow PyCapsule stream interface: ``pyarrow.table(df)``, Polars, DuckDB."""
        return self._session._inner.collect(self._json()).__arrow_c_stream__(requested_schema)

    def toPandas(self) -> pandas.DataFrame:
        """The rows as pandas (timestamps stay timezone-aware UTC)."""
        return self._collect_arrow().to_pandas()

    def collect(self) -> List[Row]:
        """The rows as :class:`Row` objects."""
        table = self._collect_arrow()
        names = table.column_names
        columns = [
            [_python_value(v, column.type) for v in column.to_pylist()] for column in table.columns
        ]
        return [Row(**dict(zip(names, values))) for values in zip(*columns)]

    def count(self) -> int:
        """The number of rows (counted in the engine: pyarrow is not needed, or loaded)."""
        return self._session._inner.count(self._json())

    def first(self) -> Optional[Row]:
        """The first row, or None."""
        rows = self.limit(1).collect()
        return rows[0] if rows else None

    def head(self, n: Optional[int] = None) -> Union[Optional[Row], List[Row]]:
        """The first row, or the first ``n`` rows."""
        return self.first() if n is None else self.limit(n).collect()

    def take(self, num: int) -> List[Row]:
        """The first ``num`` rows."""
        return self.limit(num).collect()

    def show(self, n: int = 20, truncate: Union[bool, int] = True, vertical: bool = False) -> None:
        """Prints the first ``n`` rows as Spark's text table."""
        width = 20 if truncate is True else (0 if truncate is False else int(truncate))
        # PySpark prints showString's text with print(), so a blank line follows the table.
        print(self._session._inner.show_string(self._json(), n, width))

    def createOrReplaceTempView(self, name: str) -> None:
        """Registers the frame as a view for :meth:`SparkSession.sql` and ``table()``."""
        self._session._inner.create_view(name, self._json())

    # -- writers ------------------------------------------------------------------------------

    @property
    def writeStream(self) -> DataStreamWriter:
        """The writer that starts a streaming query."""
        from ferrostream.sql.streaming import DataStreamWriter

        return DataStreamWriter(self)

    @property
    def write(self) -> DataFrameWriter:
        """The batch writer (``df.write.format("kafka")...save()``)."""
        from ferrostream.sql.readwriter import DataFrameWriter

        return DataFrameWriter(self)

    # -- display ------------------------------------------------------------------------------

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}: {dtype}" for name, dtype in self.dtypes)
        return f"DataFrame[{fields}]"

    def _repr_html_(self) -> str:
        import html

        header = "".join(f"<th>{html.escape(n)}: {html.escape(t)}</th>" for n, t in self.dtypes)
        if self.isStreaming:
            return f"<table><tr>{header}</tr></table><p>streaming DataFrame: start it with writeStream</p>"
        table = self.limit(20)._collect_arrow()
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
            for row in zip(*[c.to_pylist() for c in table.columns])
        )
        return f"<table><tr>{header}</tr>{rows}</table>"


class GroupedData:
    """The result of :meth:`DataFrame.groupBy`; :meth:`agg` makes a DataFrame."""

    def __init__(self, df: DataFrame, keys: List[Dict[str, Any]]) -> None:
        self._df = df
        self._keys = keys

    def agg(self, *exprs: Union[Column, Dict[str, str]]) -> DataFrame:
        """Aggregates each group.

        >>> df.groupBy("symbol").agg(max("price").alias("high"), count("*").alias("ticks"))
        """
        aggs: List[Dict[str, Any]] = []
        for expr in exprs:
            if isinstance(expr, dict):
                aggs.extend(
                    {
                        "kind": "agg",
                        "name": fn,
                        "args": [{"kind": "col", "name": c}],
                        "distinct": False,
                    }
                    for c, fn in expr.items()
                )
            elif isinstance(expr, Column):
                aggs.append(expr._expr)
            else:
                raise PySparkTypeError(
                    f"[NOT_COLUMN] Argument `exprs` should be Columns, got {type(expr).__name__}."
                )
        return self._df._derive("aggregate", keys=self._keys, aggs=aggs)

    def count(self) -> DataFrame:
        """Rows per group, as a column ``count``."""
        star = {
            "kind": "agg",
            "name": "count",
            "args": [{"kind": "col", "name": "*"}],
            "distinct": False,
        }
        return self.agg(Column({"kind": "alias", "expr": star, "name": "count"}))

    def _simple(self, name: str, cols: Sequence[str]) -> DataFrame:
        return self.agg(
            *[
                Column(
                    {
                        "kind": "agg",
                        "name": name,
                        "args": [{"kind": "col", "name": c}],
                        "distinct": False,
                    }
                )
                for c in cols
            ]
        )

    def sum(self, *cols: str) -> DataFrame:
        """Sums of columns per group."""
        return self._simple("sum", cols)

    def avg(self, *cols: str) -> DataFrame:
        """Means of columns per group."""
        return self._simple("avg", cols)

    mean = avg

    def min(self, *cols: str) -> DataFrame:
        """Minimums per group."""
        return self._simple("min", cols)

    def max(self, *cols: str) -> DataFrame:
        """Maximums per group."""
        return self._simple("max", cols)


_ALIAS = re.compile(r"(?is)^(.*\S)\s+AS\s+(`[^`]+`|[A-Za-z_][A-Za-z0-9_]*)\s*$")


def _sql_expr(text: str) -> Dict[str, Any]:
    """A ``selectExpr`` string; a trailing ``AS name`` names the column, as in Spark."""
    match = _ALIAS.match(text)
    if match and _balanced(match.group(1)):
        name = match.group(2).strip("`")
        return {"kind": "alias", "expr": {"kind": "sql", "text": match.group(1)}, "name": name}
    return {"kind": "sql", "text": text}


def _balanced(text: str) -> bool:
    """Whether parentheses and quotes close, so a trailing AS is not inside a CAST(... AS t)."""
    depth, quote = 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"`":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0 and not quote


def _python_value(value: Any, arrow_type: Any) -> Any:
    """A value as PySpark's ``collect`` gives it: structs as :class:`Row`, maps as dicts."""
    import pyarrow as pa

    if value is None:
        return None
    if pa.types.is_struct(arrow_type):
        return Row(
            **{
                arrow_type.field(i).name: _python_value(
                    value.get(arrow_type.field(i).name), arrow_type.field(i).type
                )
                for i in range(arrow_type.num_fields)
            }
        )
    if pa.types.is_map(arrow_type):
        return {
            _python_value(k, arrow_type.key_type): _python_value(v, arrow_type.item_type)
            for k, v in value
        }
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return [_python_value(v, arrow_type.value_type) for v in value]
    return value


def _is_streaming(plan: Plan) -> bool:
    if plan.get("node") == "source":
        return bool(plan.get("streaming"))
    return any(_is_streaming(plan[k]) for k in ("input", "other") if k in plan)


def _tree(schema: StructType) -> str:
    lines = ["root"]
    for field in schema.fields:
        lines.append(
            f" |-- {field.name}: {field.dataType.typeName()} (nullable = {str(field.nullable).lower()})"
        )
    return "\n".join(lines)
