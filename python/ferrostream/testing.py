"""Test helpers: ``MemoryStream``, Spark's in-memory stream for tests and notebooks."""

from __future__ import annotations

from typing import Any, Iterable, Union

from ferrostream.sql.dataframe import DataFrame
from ferrostream.sql.session import SparkSession, _to_arrow
from ferrostream.sql.types import StructType, to_datatype

__all__ = ["MemoryStream"]


class MemoryStream:
    """A stream fed from Python: each ``addData`` call becomes new input.

    >>> stream = MemoryStream(spark, "symbol STRING, price DOUBLE")
    >>> stream.addData([("BTCUSDT", 84569.37)])
    >>> stream.toDF().isStreaming
    True
    """

    def __init__(self, session: SparkSession, schema: Union[StructType, str]) -> None:
        data_type = to_datatype(schema)
        if not isinstance(data_type, StructType):
            raise TypeError("MemoryStream needs a struct schema")
        import json

        self._session = session
        self._schema = data_type
        self._id, self._inner = session._inner.memory_stream(json.dumps(data_type.jsonValue()))

    def addData(self, data: Union[Iterable[Any], Any]) -> int:
        """Appends rows (tuples, dicts, pandas or pyarrow); returns the offset after them."""
        return int(self._inner.add(_to_arrow(data, self._schema)))

    def toDF(self) -> DataFrame:
        """The stream as a streaming DataFrame."""
        plan = {
            "node": "source",
            "format": "memory",
            "options": {"id": str(self._id)},
            "schema": None,
            "path": None,
            "streaming": True,
        }
        return DataFrame(plan, self._session)
