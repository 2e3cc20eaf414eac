"""Fixtures of the differential suite: one PySpark session (``local[2]``, the Kafka connector
on ``spark.jars``) and ferrostream's session, each wrapped as an :class:`engines.Engine`.

The PySpark session is started once for the whole suite and stopped at its end: a JVM start
costs 10-20 s on two busy cores, so sharing it keeps the suite to a few minutes.
"""

from __future__ import annotations

import os
import time
from typing import Any, Iterator

import pytest
from engines import Engine, spark_jars_classpath


@pytest.fixture(scope="session")
def pyspark_engine() -> Iterator[Engine]:
    """PySpark 3.5 in ``local[2]`` with UTC everywhere (ferrostream has no session time zone)."""
    pyspark_sql = pytest.importorskip(
        "pyspark.sql", reason="pyspark is not installed (scripts/pyspark.sh installs it)"
    )
    from pyspark.sql import functions, types

    # Python turns Spark's timestamps into naive datetimes in the process's zone.
    os.environ["TZ"] = "UTC"
    time.tzset()
    spark: Any = (
        pyspark_sql.SparkSession.builder.master("local[2]")
        .appName("ferrostream-differential")
        .config("spark.jars", spark_jars_classpath())
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC -XX:TieredStopAtLevel=1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.streaming.forceDeleteTempCheckpointLocation", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    yield Engine("pyspark", spark, pyspark_sql, functions, types)
    spark.stop()


@pytest.fixture(scope="session")
def ferro_engine(spark: Any) -> Engine:
    """ferrostream, on the suite-wide session of tests/python/conftest.py."""
    import ferrostream.sql as ferro_sql
    from ferrostream.sql import functions, types

    return Engine("ferrostream", spark, ferro_sql, functions, types)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """py4j leaves its gateway sockets to the garbage collector; the ResourceWarning that
    reports it (turned into an error by ``filterwarnings = error``) is PySpark's, not ours."""
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.filterwarnings("ignore::ResourceWarning"))
            item.add_marker(
                pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
            )
