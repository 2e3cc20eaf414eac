"""Exceptions under PySpark's names (``pyspark.errors``).

Code written for PySpark catches ``AnalysisException`` or ``StreamingQueryException``;
the same ``except`` clauses work here once the import is changed.

The classes the engine raises (``PySparkException`` and the four under it) are declared once
in the Rust extension, so an error coming out of Rust is an instance of exactly these
classes. The extension must define all five or none: if ``ferrostream._core`` is missing
(a source checkout before ``maturin develop``) or lacks any of them, pure-Python
definitions with the same names and hierarchy stand in. ``PySparkTypeError`` and
``PySparkValueError`` are raised only by the Python package's argument checks, so they are
always defined here.
"""

from __future__ import annotations

__all__ = [
    "AnalysisException",
    "IllegalArgumentException",
    "ParseException",
    "PySparkException",
    "PySparkTypeError",
    "PySparkValueError",
    "StreamingQueryException",
]

try:
    from ferrostream._core import (  # type: ignore[attr-defined, import-not-found, unused-ignore]
        AnalysisException,
        IllegalArgumentException,
        ParseException,
        PySparkException,
        StreamingQueryException,
    )
except ImportError:

    class PySparkException(Exception):  # type: ignore[no-redef, unused-ignore]
        """Base class of every error ferrostream raises on purpose."""

    class AnalysisException(PySparkException):  # type: ignore[no-redef, misc, unused-ignore]
        """A query is invalid: an unknown column, a type mismatch, an unsupported plan."""

    class ParseException(AnalysisException):  # type: ignore[no-redef, misc, unused-ignore]
        """A SQL text, DDL schema string or data type string could not be parsed."""

    class IllegalArgumentException(PySparkException):  # type: ignore[no-redef, misc, unused-ignore]
        """An argument or option has a value that is not allowed."""

    class StreamingQueryException(PySparkException):  # type: ignore[no-redef, misc, unused-ignore]
        """A streaming query stopped because of an error; the message names the cause."""


class PySparkTypeError(PySparkException, TypeError):  # type: ignore[misc, unused-ignore]
    """An argument has the wrong type, e.g. an int where a Column or column name is expected."""


class PySparkValueError(PySparkException, ValueError):  # type: ignore[misc, unused-ignore]
    """An argument has the right type but a value that cannot be used."""
