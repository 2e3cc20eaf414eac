"""The two engines the differential suite runs, behind one small interface.

An :class:`Engine` carries a session and the modules a pipeline is written against
(``sql``, ``functions`` as ``F``, ``types`` as ``T``): ``pyspark.sql`` for PySpark 3.5,
``ferrostream.sql`` for ours. The pipeline functions in :mod:`pipelines` take an engine and
never name either package, so the code under test is literally the same.

Results are compared as *tables*: the schema in Spark's short type names and the rows,
normalised (timestamps to naive UTC, nested rows to tuples) and sorted.
"""

from __future__ import annotations

import datetime as dt
import itertools
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[3]
PYSPARK_SH = REPO / "scripts" / "pyspark.sh"
# The slowest PySpark batch on 2 busy cores takes seconds; a query that needs this long hangs.
QUERY_TIMEOUT_S = 240.0

Table = Tuple[List[Tuple[str, str]], List[Tuple[Any, ...]]]
_names = itertools.count()


@dataclass(frozen=True)
class Engine:
    """One engine: its session and the ``pyspark.sql``-shaped modules to build frames with."""

    name: str
    spark: Any
    sql: ModuleType
    F: ModuleType
    T: ModuleType

    @property
    def is_pyspark(self) -> bool:
        return self.name == "pyspark"

    def unique(self, prefix: str) -> str:
        """A query / table name no other query of the suite uses."""
        return f"{prefix}_{self.name}_{next(_names)}"


def spark_jars_classpath() -> str:
    """The Kafka connector's jars as ``spark.jars`` takes them (fetched once, then cached)."""
    done = subprocess.run(
        [str(PYSPARK_SH), "classpath"], capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{PYSPARK_SH} classpath failed:\n{done.stderr}")
    return done.stdout.strip()


def normalise(value: Any) -> Any:
    """One value in a form both engines' Python values reduce to."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value
    if isinstance(value, tuple):  # Row in both packages
        return tuple(normalise(v) for v in value)
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return value


def rows_of(df: Any) -> List[Tuple[Any, ...]]:
    """The frame's rows, normalised and sorted (so partitioning and arrival order do not count)."""
    rows = [normalise(tuple(r)) for r in df.collect()]
    return sorted(rows, key=repr)


def table_of(df: Any) -> Table:
    """Schema (names and Spark type names) and sorted rows."""
    return [(n, t) for n, t in df.dtypes], rows_of(df)


def assert_same(spark_table: Table, ours: Table, what: str = "") -> None:
    """Both engines gave the same table; the assertion message shows the first difference."""
    label = f" ({what})" if what else ""
    assert ours[0] == spark_table[0], f"schemas differ{label}"
    spark_rows, our_rows = spark_table[1], ours[1]
    only_spark = [r for r in spark_rows if r not in our_rows]
    only_ours = [r for r in our_rows if r not in spark_rows]
    assert our_rows == spark_rows, (
        f"rows differ{label}: {len(spark_rows)} from PySpark, {len(our_rows)} from ferrostream; "
        f"only in PySpark: {only_spark[:5]}; only in ferrostream: {only_ours[:5]}"
    )


def run_stream(
    engine: Engine,
    df: Any,
    *,
    mode: str,
    trigger: Dict[str, Any],
    sink: str = "memory",
    checkpoint: Optional[Path] = None,
    path: Optional[Path] = None,
    partition_by: Sequence[str] = (),
    name: Optional[str] = None,
) -> Tuple[Optional[str], List[Dict[str, Any]]]:
    """Runs a streaming query to the end of its input; returns the memory table's name (for
    the memory sink) and the progress of every batch."""
    name = name or engine.unique("q")
    writer = df.writeStream.format(sink).outputMode(mode).trigger(**trigger)
    if sink == "memory":
        writer = writer.queryName(name)
    if checkpoint is not None:
        writer = writer.option("checkpointLocation", str(checkpoint))
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    query = writer.start(str(path)) if path is not None else writer.start()
    try:
        if "processingTime" in trigger:
            query.processAllAvailable()
        else:
            deadline = time.monotonic() + QUERY_TIMEOUT_S
            while query.isActive and time.monotonic() < deadline:
                query.awaitTermination(1)
            assert not query.isActive, f"{engine.name}: {trigger} query did not end"
        exception = query.exception()
        assert exception is None, f"{engine.name}: query failed: {exception}"
        progress = list(query.recentProgress)
    finally:
        query.stop()
    return (name if sink == "memory" else None), progress


def data_batches(progress: List[Dict[str, Any]]) -> int:
    """How many batches read input rows."""
    return sum(1 for p in progress if p.get("numInputRows", 0) > 0)
