"""Batch reading and writing: ``spark.read`` and ``df.write``, with PySpark's names."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Dict, Optional

from ferrostream.sql.streaming import DataStreamReader, OptionValue, _option_text

if TYPE_CHECKING:  # pragma: no cover
    from ferrostream.sql.dataframe import DataFrame
    from ferrostream.sql.session import SparkSession

__all__ = ["DataFrameReader", "DataFrameWriter"]


class DataFrameReader(DataStreamReader):
    """``spark.read``: the same formats and options as ``readStream``, read once."""

    def __init__(self, session: SparkSession) -> None:
        super().__init__(session, streaming=False)

    def table(self, tableName: str) -> DataFrame:
        """A memory table or view."""
        return self._session.table(tableName)


class DataFrameWriter:
    """``df.write.format("kafka").option("topic", "t").save()``."""

    def __init__(self, df: DataFrame) -> None:
        self._df = df
        self._format = "parquet"
        self._options: Dict[str, str] = {}
        self._mode = "append"

    def format(self, source: str) -> DataFrameWriter:
        """The sink format: kafka, console."""
        self._format = source
        return self

    def option(self, key: str, value: OptionValue) -> DataFrameWriter:
        """One option."""
        self._options[key] = _option_text(value)
        return self

    def options(self, **options: OptionValue) -> DataFrameWriter:
        """Several options."""
        for key, value in options.items():
            self.option(key, value)
        return self

    def mode(self, saveMode: str) -> DataFrameWriter:
        """Only ``append`` is supported."""
        self._mode = saveMode
        return self

    def save(
        self, path: Optional[str] = None, format: Optional[str] = None, **options: OptionValue
    ) -> None:
        """Writes the rows once."""
        if format is not None:
            self._format = format
        self.options(**options)
        if path is not None:
            self._options["path"] = path
        writer = {"format": self._format, "options": self._options, "output_mode": "append"}
        self._df._session._inner.write(self._df._json(), json.dumps(writer))
