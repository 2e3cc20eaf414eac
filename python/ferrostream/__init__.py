"""ferrostream: a stream-processing engine in Rust with the PySpark Structured Streaming API.

>>> from ferrostream.sql import SparkSession
>>> spark = SparkSession.builder.getOrCreate()
"""

from ferrostream._core import __version__

__all__ = ["__version__"]
