"""Structured Streaming's Python surface: ``DataStreamReader``, ``DataStreamWriter``,
``StreamingQuery`` and ``StreamingQueryManager``, with PySpark's names and behaviour."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Union

from ferrostream.errors import IllegalArgumentException, PySparkTypeError, StreamingQueryException
from ferrostream.sql.types import StructType, to_datatype

if TYPE_CHECKING:  # pragma: no cover
    from ferrostream.sql.dataframe import DataFrame
    from ferrostream.sql.session import SparkSession

__all__ = ["DataStreamReader", "DataStreamWriter", "StreamingQuery", "StreamingQueryManager"]

OptionValue = Union[str, int, float, bool, None]


def _option_text(value: OptionValue) -> str:
    """PySpark turns option values into strings; booleans become 'true' / 'false'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _schema_json(schema: Union[StructType, str]) -> Dict[str, Any]:
    data_type = to_datatype(schema)
    if not isinstance(data_type, StructType):
        raise PySparkTypeError(
            f"[NOT_STRUCT] A source schema must be a struct type, got {data_type.simpleString()}."
        )
    return data_type.jsonValue()


class DataStreamReader:
    """Opens a stream: ``spark.readStream.format("kafka").option(...).load()``."""

    def __init__(self, session: SparkSession, streaming: bool = True) -> None:
        self._session = session
        self._streaming = streaming
        self._format = "parquet"
        self._options: Dict[str, str] = {}
        self._schema: Optional[Dict[str, Any]] = None

    def format(self, source: str) -> DataStreamReader:
        """The source: kafka, json, csv, parquet, rate, memory."""
        self._format = source
        return self

    def option(self, key: str, value: OptionValue) -> DataStreamReader:
        """One option, as in PySpark (values become strings)."""
        self._options[key] = _option_text(value)
        return self

    def options(self, **options: OptionValue) -> DataStreamReader:
        """Several options."""
        for key, value in options.items():
            self.option(key, value)
        return self

    def schema(self, schema: Union[StructType, str]) -> DataStreamReader:
        """The schema of file sources, as a StructType or a DDL string."""
        self._schema = _schema_json(schema)
        return self

    def load(
        self, path: Optional[str] = None, format: Optional[str] = None, **options: OptionValue
    ) -> DataFrame:
        """Opens the source; a wrong option raises here."""
        from ferrostream.sql.dataframe import DataFrame

        if format is not None:
            self.format(format)
        self.options(**options)
        plan = {
            "node": "source",
            "format": self._format,
            "options": dict(self._options),
            "schema": self._schema,
            "path": path,
            "streaming": self._streaming,
        }
        return DataFrame(plan, self._session)

    def json(
        self, path: str, schema: Union[StructType, str, None] = None, **options: OptionValue
    ) -> DataFrame:
        """Newline-delimited JSON files in ``path``."""
        if schema is not None:
            self.schema(schema)
        return self.load(path, "json", **options)

    def csv(
        self, path: str, schema: Union[StructType, str, None] = None, **options: OptionValue
    ) -> DataFrame:
        """CSV files in ``path``."""
        if schema is not None:
            self.schema(schema)
        return self.load(path, "csv", **options)

    def parquet(self, path: str, **options: OptionValue) -> DataFrame:
        """Parquet files in ``path``."""
        return self.load(path, "parquet", **options)


class StreamingQuery:
    """A running query: ``q.processAllAvailable()``, ``q.lastProgress``, ``q.stop()``."""

    def __init__(self, inner: Any, session: SparkSession) -> None:
        self._inner = inner
        self._session = session

    @property
    def id(self) -> str:
        """The id that survives restarts from the same checkpoint."""
        return str(self._inner.id)

    @property
    def runId(self) -> str:
        """The id of this run."""
        return str(self._inner.run_id)

    @property
    def name(self) -> Optional[str]:
        """The query's name (``queryName``)."""
        return self._inner.name  # type: ignore[no-any-return]

    @property
    def isActive(self) -> bool:
        """Whether the query still runs."""
        return bool(self._inner.is_active)

    @property
    def status(self) -> Dict[str, Any]:
        """``{"message", "isDataAvailable", "isTriggerActive"}``."""
        message, available, active = self._inner.status()
        return {"message": message, "isDataAvailable": available, "isTriggerActive": active}

    @property
    def lastProgress(self) -> Optional[Dict[str, Any]]:
        """The last batch's progress with Spark's field names, or None."""
        text = self._inner.last_progress()
        return None if text is None else json.loads(text)

    @property
    def recentProgress(self) -> List[Dict[str, Any]]:
        """The last (up to 100) progress reports."""
        return [json.loads(text) for text in self._inner.recent_progress()]

    def awaitTermination(self, timeout: Optional[float] = None) -> Optional[bool]:
        """Waits for the end; with a timeout returns whether it ended. Raises if it failed."""
        if timeout is not None and timeout <= 0:
            raise IllegalArgumentException(f"timeout must be positive, got {timeout}")
        ended = self._inner.await_termination(timeout)
        return ended if timeout is not None else None

    def processAllAvailable(self) -> None:
        """Blocks until every row available now has been processed (for tests and notebooks)."""
        self._inner.process_all_available(None)

    def stop(self) -> None:
        """Stops the query and waits for its thread."""
        self._inner.stop()

    def exception(self) -> Optional[StreamingQueryException]:
        """The failure that ended the query, or None."""
        message = self._inner.exception()
        return None if message is None else StreamingQueryException(message)

    def explain(self, extended: bool = False) -> None:
        """Prints the query's id and state (plans are not printed yet)."""
        print(f"StreamingQuery {self.name or self.id}: {self.status['message']}")

    def __repr__(self) -> str:
        return f"<StreamingQuery {self.name or self.id} active={self.isActive}>"

    def _repr_html_(self) -> str:
        import html

        progress = self.lastProgress or {}
        watermark = (progress.get("eventTime") or {}).get("watermark", "")
        rows = [
            ("name", self.name or ""),
            ("id", self.id),
            ("status", self.status["message"]),
            ("active", str(self.isActive)),
            ("last batch", str(progress.get("batchId", ""))),
            ("input rows/s", f"{progress.get('inputRowsPerSecond', 0):.1f}"),
            ("processed rows/s", f"{progress.get('processedRowsPerSecond', 0):.1f}"),
            ("watermark", watermark),
        ]
        body = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows
        )
        return f"<table>{body}</table>"


class DataStreamWriter:
    """Starts a query: ``df.writeStream.format("memory").queryName("raw").start()``."""

    def __init__(self, df: DataFrame) -> None:
        self._df = df
        self._format = "memory"
        self._options: Dict[str, str] = {}
        self._mode = "append"
        self._trigger: Dict[str, Any] = {"kind": "default"}
        self._name: Optional[str] = None
        self._partition_by: List[str] = []
        self._foreach_batch: Any = None

    def format(self, source: str) -> DataStreamWriter:
        """The sink: memory, console, kafka, noop."""
        self._format = source
        return self

    def option(self, key: str, value: OptionValue) -> DataStreamWriter:
        """One option (``checkpointLocation``, ``numRows``, ``watermarkIdleTimeout``...)."""
        self._options[key] = _option_text(value)
        return self

    def options(self, **options: OptionValue) -> DataStreamWriter:
        """Several options."""
        for key, value in options.items():
            self.option(key, value)
        return self

    def outputMode(self, outputMode: str) -> DataStreamWriter:
        """``append``, ``update`` or ``complete``."""
        if outputMode.lower() not in ("append", "update", "complete"):
            raise IllegalArgumentException(
                f"Unknown output mode {outputMode}. Accepted output modes are 'append', "
                "'complete', 'update'"
            )
        self._mode = outputMode.lower()
        return self

    def queryName(self, queryName: str) -> DataStreamWriter:
        """The query's name; the memory sink's table name."""
        if not queryName or not queryName.strip():
            raise IllegalArgumentException("The query name must be a non-empty string")
        self._name = queryName
        return self

    def partitionBy(self, *cols: str) -> DataStreamWriter:
        """Hive-style output partitions of file sinks."""
        self._partition_by = (
            list(cols[0]) if len(cols) == 1 and isinstance(cols[0], list) else list(cols)
        )
        return self

    def trigger(
        self,
        processingTime: Optional[str] = None,
        once: Optional[bool] = None,
        continuous: Optional[str] = None,
        availableNow: Optional[bool] = None,
    ) -> DataStreamWriter:
        """``processingTime="10 seconds"``, ``once=True`` or ``availableNow=True``."""
        given = [x for x in (processingTime, once, continuous, availableNow) if x is not None]
        if len(given) != 1:
            raise IllegalArgumentException("Only one trigger can be set at a time.")
        if continuous is not None:
            raise IllegalArgumentException(
                "continuous triggers are not supported; use processingTime"
            )
        if processingTime is not None:
            if not isinstance(processingTime, str) or not processingTime.strip():
                raise IllegalArgumentException(
                    f"Value for processingTime must be a non empty string. Got: {processingTime}"
                )
            self._trigger = {"kind": "processing_time", "interval": processingTime}
        elif once:
            self._trigger = {"kind": "once"}
        elif availableNow:
            self._trigger = {"kind": "available_now"}
        else:
            raise IllegalArgumentException("Value for once/availableNow must be True.")
        return self

    def foreachBatch(self, func: Callable[[DataFrame, int], None]) -> DataStreamWriter:
        """Calls ``func(batch_df, batch_id)`` with every micro-batch's output.

        ``batch_df`` is a batch :class:`DataFrame` (``toPandas()``, ``toArrow()``, ``write``)
        valid while ``func`` runs. Every batch is passed, empty ones included. After a crash
        the batch that was not committed is passed again with the same ``batch_id``, so a
        function that writes idempotently by ``batch_id`` gives exactly-once output. If
        ``func`` raises, the query stops and ``exception()`` carries the Python traceback.

        Examples
        --------
        >>> def save(batch_df, batch_id):
        ...     batch_df.toPandas().to_csv(f"/tmp/out/{batch_id}.csv")
        >>> query = df.writeStream.foreachBatch(save).start()  # doctest: +SKIP
        """
        if not callable(func):
            raise PySparkTypeError(
                f"foreachBatch needs a function (batch_df, batch_id), got {type(func).__name__}"
            )
        self._foreach_batch = func
        self._format = "foreachBatch"
        return self

    def _batch_caller(self) -> Optional[Callable[[Any, int], None]]:
        """The function the engine calls: wraps each Arrow batch as a DataFrame for the user."""
        func = self._foreach_batch
        if func is None or self._format != "foreachBatch":
            return None
        from ferrostream.sql.dataframe import DataFrame

        session = self._df._session

        def call(table: Any, batch_id: int) -> None:
            data_id = session._inner.add_arrow(table)
            try:
                func(DataFrame({"node": "batch", "id": data_id}, session), batch_id)
            finally:
                session._inner.remove_arrow(data_id)

        return call

    def _writer_json(self) -> str:
        return json.dumps(
            {
                "format": self._format,
                "options": self._options,
                "output_mode": self._mode,
                "trigger": self._trigger,
                "query_name": self._name,
                "partition_by": self._partition_by,
            }
        )

    def start(self, path: Optional[str] = None, **options: OptionValue) -> StreamingQuery:
        """Starts the query; an invalid plan or option raises here."""
        self.options(**options)
        if path is not None:
            self._options["path"] = path
        inner = self._df._session._inner.start(
            self._df._json(), self._writer_json(), self._batch_caller()
        )
        return StreamingQuery(inner, self._df._session)

    def toTable(self, tableName: str, **options: OptionValue) -> StreamingQuery:
        """Writes to a memory table of that name."""
        return self.format("memory").queryName(tableName).options(**options).start()


class StreamingQueryManager:
    """``spark.streams``: the session's active queries."""

    def __init__(self, session: SparkSession) -> None:
        self._session = session

    @property
    def active(self) -> List[StreamingQuery]:
        """The queries still running."""
        return [StreamingQuery(q, self._session) for q in self._session._inner.active()]

    def get(self, id: str) -> Optional[StreamingQuery]:
        """An active query by id."""
        return next((q for q in self.active if q.id == id), None)

    def awaitAnyTermination(self, timeout: Optional[float] = None) -> Optional[bool]:
        """Waits until any active query ends."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for query in self.active:
                if query.awaitTermination(0.05):
                    return True if timeout is not None else None
            if not self.active:
                return True if timeout is not None else None
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def resetTerminated(self) -> None:
        """Forgets ended queries (they are forgotten already)."""
