"""Batch reading and writing: ``spark.read`` and ``df.write``, with PySpark's names."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Dict, List, Optional, Union

from ferrostream.errors import IllegalArgumentException
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
    """``df.write``: writes a batch frame once.

    >>> df.write.mode("overwrite").partitionBy("symbol").parquet("/data/candles")
    >>> df.write.format("kafka").option("topic", "t").save()  # doctest: +SKIP
    """

    _MODES = ("append", "overwrite", "error", "errorifexists", "ignore", "default")

    def __init__(self, df: DataFrame) -> None:
        self._df = df
        self._format = "parquet"
        self._options: Dict[str, str] = {}
        self._mode = "errorifexists"
        self._partition_by: List[str] = []

    def format(self, source: str) -> DataFrameWriter:
        """The sink format: parquet (default), json, csv, kafka, console."""
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

    def mode(self, saveMode: Optional[str]) -> DataFrameWriter:
        """Spark's save mode for files: ``errorifexists`` (default), ``append``,
        ``overwrite`` or ``ignore``."""
        mode = (saveMode or "errorifexists").lower()
        if mode not in self._MODES:
            raise IllegalArgumentException(
                f"Unknown save mode: {saveMode}. Accepted save modes are 'overwrite', "
                "'append', 'ignore', 'error', 'errorifexists', 'default'."
            )
        self._mode = mode
        return self

    def partitionBy(self, *cols: Union[str, List[str]]) -> DataFrameWriter:
        """Hive-style folders by these columns (``symbol=BTCUSDT/``)."""
        names: List[str] = []
        for col in cols:
            names.extend([col] if isinstance(col, str) else col)
        self._partition_by = names
        return self

    def save(
        self,
        path: Optional[str] = None,
        format: Optional[str] = None,
        mode: Optional[str] = None,
        partitionBy: Optional[Union[str, List[str]]] = None,
        **options: OptionValue,
    ) -> None:
        """Writes the rows once. A file write is one more committed batch of the folder's
        manifest, read back whole by ``spark.read``."""
        if format is not None:
            self._format = format
        if mode is not None:
            self.mode(mode)
        if partitionBy is not None:
            self.partitionBy(partitionBy)
        self.options(**options)
        if path is not None:
            self._options["path"] = path
        writer = {
            "format": self._format,
            "options": self._options,
            "output_mode": "append",
            "partition_by": self._partition_by,
            "save_mode": self._mode,
        }
        self._df._session._inner.write(self._df._json(), json.dumps(writer))

    def parquet(
        self,
        path: str,
        mode: Optional[str] = None,
        partitionBy: Optional[Union[str, List[str]]] = None,
        compression: Optional[str] = None,
    ) -> None:
        """Writes Parquet files (snappy, as Spark, unless ``compression`` says otherwise)."""
        if compression is not None:
            self.option("compression", compression)
        self.save(path, "parquet", mode, partitionBy)

    def json(
        self,
        path: str,
        mode: Optional[str] = None,
        partitionBy: Optional[Union[str, List[str]]] = None,
    ) -> None:
        """Writes newline-delimited JSON files."""
        self.save(path, "json", mode, partitionBy)

    def csv(
        self,
        path: str,
        mode: Optional[str] = None,
        partitionBy: Optional[Union[str, List[str]]] = None,
        header: Optional[bool] = None,
    ) -> None:
        """Writes CSV files (a header line with ``header=True``)."""
        if header is not None:
            self.option("header", header)
        self.save(path, "csv", mode, partitionBy)
