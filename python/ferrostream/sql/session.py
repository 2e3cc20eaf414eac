"""``SparkSession``: the entry point, with PySpark's builder, readers, tables and SQL."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Union

from ferrostream._core import Session as _Session
from ferrostream.errors import PySparkTypeError
from ferrostream.sql.dataframe import DataFrame
from ferrostream.sql.readwriter import DataFrameReader
from ferrostream.sql.streaming import DataStreamReader, StreamingQueryManager
from ferrostream.sql.types import StructType, to_datatype

if TYPE_CHECKING:  # pragma: no cover
    import pandas
    import pyarrow

__all__ = ["SparkSession"]


class RuntimeConfig:
    """``spark.conf``: session settings such as ``spark.sql.streaming.checkpointLocation``."""

    def __init__(self, session: SparkSession) -> None:
        self._session = session

    def set(self, key: str, value: Any) -> None:
        """Sets a value."""
        self._session._inner.set_config(key, str(value))

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        """A value, or ``default``."""
        value = self._session._inner.get_config(key)
        return default if value is None else value


class SparkSession:
    """The entry point: ``SparkSession.builder.appName("crypto").getOrCreate()``.

    >>> spark = SparkSession.builder.getOrCreate()
    >>> spark.readStream.format("kafka")
    """

    _active: Optional[SparkSession] = None
    _lock = threading.Lock()

    class Builder:
        """Builds or returns the session; ``master`` and most configs are accepted and kept."""

        def __init__(self) -> None:
            self._options: Dict[str, str] = {}

        def appName(self, name: str) -> SparkSession.Builder:
            """The application's name."""
            self._options["spark.app.name"] = name
            return self

        def master(self, master: str) -> SparkSession.Builder:
            """Accepted for compatibility; ferrostream runs in this process."""
            self._options["spark.master"] = master
            return self

        def config(
            self, key: Optional[str] = None, value: Any = None, conf: Any = None
        ) -> SparkSession.Builder:
            """A setting (``spark.jars.packages`` and other JVM settings are ignored)."""
            if key is not None:
                self._options[key] = str(value)
            return self

        def enableHiveSupport(self) -> SparkSession.Builder:
            """Accepted for compatibility."""
            return self

        def getOrCreate(self) -> SparkSession:
            """The active session, or a new one."""
            with SparkSession._lock:
                if SparkSession._active is None:
                    SparkSession._active = SparkSession()
                session = SparkSession._active
            for key, value in self._options.items():
                session.conf.set(key, value)
            return session

    builder: SparkSession.Builder

    def __init__(self) -> None:
        self._inner = _Session()
        self.conf = RuntimeConfig(self)

    @classmethod
    def getActiveSession(cls) -> Optional[SparkSession]:
        """The active session, if one was created."""
        return cls._active

    @property
    def readStream(self) -> DataStreamReader:
        """Opens streams: ``spark.readStream.format("kafka")...load()``."""
        return DataStreamReader(self, streaming=True)

    @property
    def read(self) -> DataFrameReader:
        """Reads batches: ``spark.read.format("kafka")...load()``."""
        return DataFrameReader(self)

    @property
    def streams(self) -> StreamingQueryManager:
        """The session's queries."""
        return StreamingQueryManager(self)

    @property
    def version(self) -> str:
        """ferrostream's version."""
        from ferrostream import __version__

        return __version__

    def table(self, tableName: str) -> DataFrame:
        """A memory table or view; each action reads a consistent snapshot."""
        return DataFrame({"node": "table", "name": tableName}, self)

    def sql(self, sqlQuery: str) -> DataFrame:
        """Runs SQL over memory tables and views (DataFusion's dialect)."""
        return DataFrame({"node": "batch", "id": self._inner.sql(sqlQuery)}, self)

    def createDataFrame(
        self,
        data: Union[pandas.DataFrame, pyarrow.Table, Iterable[Any]],
        schema: Union[StructType, str, List[str], None] = None,
    ) -> DataFrame:
        """A batch frame from pandas, pyarrow, or a list of rows (tuples, dicts, Rows)."""
        import pyarrow as pa

        table = _to_arrow(data, schema)
        if not isinstance(table, pa.Table):
            raise PySparkTypeError(f"cannot make a DataFrame from {type(data).__name__}")
        return DataFrame({"node": "batch", "id": self._inner.add_arrow(table)}, self)

    def range(self, start: int, end: Optional[int] = None, step: int = 1) -> DataFrame:
        """A frame with one ``id`` column."""
        import pyarrow as pa

        if end is None:
            start, end = 0, start
        return self.createDataFrame(pa.table({"id": pa.array(range(start, end, step), pa.int64())}))

    def stop(self) -> None:
        """Stops every query of the session."""
        self._inner.stop()
        with SparkSession._lock:
            if SparkSession._active is self:
                SparkSession._active = None

    def __enter__(self) -> SparkSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


SparkSession.builder = SparkSession.Builder()


def _to_arrow(data: Any, schema: Union[StructType, str, List[str], None]) -> Any:
    import pyarrow as pa

    arrow_schema = None
    names: Optional[List[str]] = None
    if isinstance(schema, list):
        names = schema
    elif schema is not None:
        data_type = to_datatype(schema)
        if not isinstance(data_type, StructType):
            raise PySparkTypeError("createDataFrame: schema must be a struct type")
        arrow_schema = _to_arrow_schema(data_type)
    if isinstance(data, pa.Table):
        return data.cast(arrow_schema) if arrow_schema is not None else data
    if hasattr(data, "__arrow_c_stream__") and not hasattr(data, "iloc"):
        return pa.table(data)
    if type(data).__module__.startswith("pandas"):
        return pa.Table.from_pandas(data, schema=arrow_schema, preserve_index=False)
    rows = list(data)
    if arrow_schema is not None:
        names = arrow_schema.names
    if rows and isinstance(rows[0], dict):
        columns = {k: [r.get(k) for r in rows] for k in rows[0]}
    else:
        if names is None:
            names = (
                list(
                    getattr(rows[0], "__fields__", None)
                    or [f"_{i + 1}" for i in range(len(rows[0]))]
                )
                if rows
                else []
            )
        columns = {n: [tuple(r)[i] for r in rows] for i, n in enumerate(names)}
    if arrow_schema is not None:
        return pa.table(columns, schema=arrow_schema)
    return pa.table(columns)


def _to_arrow_schema(schema: StructType) -> Any:
    import pyarrow as pa

    return pa.schema([pa.field(f.name, _arrow_type(f.dataType), f.nullable) for f in schema.fields])


def _arrow_type(data_type: Any) -> Any:
    import pyarrow as pa

    from ferrostream.sql import types as t

    simple = {
        t.StringType: pa.string(),
        t.DoubleType: pa.float64(),
        t.FloatType: pa.float32(),
        t.LongType: pa.int64(),
        t.IntegerType: pa.int32(),
        t.ShortType: pa.int16(),
        t.ByteType: pa.int8(),
        t.BooleanType: pa.bool_(),
        t.BinaryType: pa.binary(),
        t.TimestampType: pa.timestamp("us", tz="UTC"),
        t.DateType: pa.date32(),
        t.NullType: pa.null(),
    }
    for kind, arrow in simple.items():
        if isinstance(data_type, kind):
            return arrow
    if isinstance(data_type, t.DecimalType):
        return pa.decimal128(data_type.precision, data_type.scale)
    if isinstance(data_type, t.ArrayType):
        return pa.list_(_arrow_type(data_type.elementType))
    if isinstance(data_type, t.MapType):
        return pa.map_(_arrow_type(data_type.keyType), _arrow_type(data_type.valueType))
    if isinstance(data_type, StructType):
        return pa.struct(
            [pa.field(f.name, _arrow_type(f.dataType), f.nullable) for f in data_type.fields]
        )
    raise PySparkTypeError(f"unsupported type {data_type!r}")
