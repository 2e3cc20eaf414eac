"""``ferrostream.sql``: the names of ``pyspark.sql`` that streaming pipelines use.

Change ``from pyspark.sql import SparkSession`` to ``from ferrostream.sql import SparkSession``
and the same code runs on ferrostream.
"""

from ferrostream.sql import functions, types
from ferrostream.sql.column import Column
from ferrostream.sql.dataframe import DataFrame, GroupedData
from ferrostream.sql.readwriter import DataFrameReader, DataFrameWriter
from ferrostream.sql.session import SparkSession
from ferrostream.sql.streaming import (
    DataStreamReader,
    DataStreamWriter,
    StreamingQuery,
    StreamingQueryManager,
)
from ferrostream.sql.types import Row

__all__ = [
    "Column",
    "DataFrame",
    "DataFrameReader",
    "DataFrameWriter",
    "DataStreamReader",
    "DataStreamWriter",
    "GroupedData",
    "Row",
    "SparkSession",
    "StreamingQuery",
    "StreamingQueryManager",
    "functions",
    "types",
]
