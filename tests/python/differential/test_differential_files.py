"""The seed's streaming queries over JSON tick files (maxFilesPerTrigger=1, so both engines cut
the same micro-batches), run by PySpark 3.5 and by ferrostream: the tables must be equal.

Covers the seed's four queries (hourly and daily OHLC to Parquet, the console monitor's
projection, the crypto_daily_stats memory table) in append (with watermark), update and
complete modes, under processingTime, availableNow and once triggers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed (scripts/pyspark.sh installs it)")

import pipelines as P  # noqa: E402
from engines import (  # noqa: E402
    Engine,
    Table,
    assert_same,
    normalise,
    rows_of,
    run_stream,
    table_of,
)

PROCESSING_TIME = {"processingTime": "100 milliseconds"}
AVAILABLE_NOW = {"availableNow": True}
ONCE = {"once": True}


@pytest.fixture(scope="module")
def ordered_ticks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ticks where every row either engine keeps arrives in event order (first/last agree)."""
    folder = tmp_path_factory.mktemp("ordered") / "ticks"
    P.write_tick_files(folder, P.tick_batches(seed=5, ordered=True))
    return folder


@pytest.fixture(scope="module")
def shuffled_ticks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ticks out of order inside each batch, duplicates across batches, late rows."""
    folder = tmp_path_factory.mktemp("shuffled") / "ticks"
    P.write_tick_files(folder, P.tick_batches(seed=11, ordered=False))
    return folder


@pytest.fixture(scope="module")
def dedup_ticks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shuffled ticks whose late rows both rules judge alike for a row's own event time too
    (deduplication drops a late row by its event time, not by its window's end)."""
    folder = tmp_path_factory.mktemp("dedup") / "ticks"
    sizes = (P.HOUR_MS, P.DAY_MS, 1)  # a 1 ms "window" ends right after the row itself
    P.write_tick_files(folder, P.tick_batches(seed=11, ordered=False, window_sizes=sizes))
    return folder


def memory_table(
    engine: Engine,
    build: Callable[[Engine], Any],
    mode: str,
    trigger: Dict[str, Any],
    checkpoint: Path,
) -> Table:
    name, progress = run_stream(
        engine, build(engine), mode=mode, trigger=trigger, checkpoint=checkpoint
    )
    return table_of(engine.spark.table(name))


def both(
    pyspark_engine: Engine,
    ferro_engine: Engine,
    build: Callable[[Engine], Any],
    mode: str,
    trigger: Dict[str, Any],
    tmp_path: Path,
) -> List[Table]:
    return [
        memory_table(engine, build, mode, trigger, tmp_path / engine.name)
        for engine in (pyspark_engine, ferro_engine)
    ]


def parquet_table(folder: Path) -> Table:
    """A Parquet folder read with pyarrow (Hive partitions), timestamps as naive UTC."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    table = ds.dataset(str(folder), format="parquet", partitioning="hive").to_table()
    columns = []
    for column in table.columns:
        if pa.types.is_timestamp(column.type):
            # Spark writes INT96 (read as naive ns), ferrostream INT64 micros in UTC.
            column = column.cast(pa.timestamp("us", tz="UTC"))
        elif pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        columns.append(column)
    table = pa.table(columns, names=table.column_names)
    names = [(n, str(table.schema.field(n).type)) for n in table.column_names]
    rows = [normalise(tuple(r.values())) for r in table.to_pylist()]
    return names, sorted(rows, key=repr)


@pytest.mark.parametrize("duration", ["1 hour", "1 day"])
def test_ohlc_append_memory_processing_time(
    pyspark_engine: Engine, ferro_engine: Engine, ordered_ticks: Path, tmp_path: Path, duration: str
) -> None:
    def build(engine: Engine) -> Any:
        ticks = P.with_event_time(engine, P.file_ticks(engine, ordered_ticks))
        return P.ohlc(engine, ticks, duration)

    spark_table, ours = both(
        pyspark_engine, ferro_engine, build, "append", PROCESSING_TIME, tmp_path
    )
    assert spark_table[1], "the input closes some windows"
    assert_same(spark_table, ours)


@pytest.mark.parametrize("duration", ["1 hour", "1 day"])
def test_ohlc_append_memory_shuffled_available_now(
    pyspark_engine: Engine,
    ferro_engine: Engine,
    shuffled_ticks: Path,
    tmp_path: Path,
    duration: str,
) -> None:
    """Out of order, duplicated and late rows: every column but the arrival-order ones."""

    def build(engine: Engine) -> Any:
        ticks = P.with_event_time(engine, P.file_ticks(engine, shuffled_ticks))
        return P.without_open_close(engine, P.ohlc(engine, ticks, duration))

    spark_table, ours = both(pyspark_engine, ferro_engine, build, "append", AVAILABLE_NOW, tmp_path)
    assert spark_table[1]
    assert_same(spark_table, ours)


@pytest.mark.parametrize(
    ("name", "duration", "trigger"),
    [("hourly", "1 hour", PROCESSING_TIME), ("daily", "1 day", AVAILABLE_NOW)],
    ids=["hourly-processingTime", "daily-availableNow"],
)
def test_ohlc_append_parquet(
    pyspark_engine: Engine,
    ferro_engine: Engine,
    ordered_ticks: Path,
    tmp_path: Path,
    name: str,
    duration: str,
    trigger: Dict[str, Any],
) -> None:
    """The seed's hourly and daily Parquet queries, partitioned by symbol, read back with
    pyarrow; PySpark also reads ferrostream's folder back to the same rows."""
    outputs = {}
    for engine in (pyspark_engine, ferro_engine):
        ticks = P.with_event_time(engine, P.file_ticks(engine, ordered_ticks))
        out = tmp_path / engine.name / name
        run_stream(
            engine,
            P.ohlc(engine, ticks, duration, flat=True),
            mode="append",
            trigger=trigger,
            sink="parquet",
            checkpoint=tmp_path / engine.name / "checkpoint",
            path=out,
            partition_by=["symbol"],
        )
        outputs[engine.name] = out
    spark_table = parquet_table(outputs["pyspark"])
    ours = parquet_table(outputs["ferrostream"])
    assert spark_table[1]
    assert_same(spark_table, ours, "parquet")
    read_by_spark = pyspark_engine.spark.read.parquet(str(outputs["ferrostream"]))
    spark_own = pyspark_engine.spark.read.parquet(str(outputs["pyspark"]))
    assert rows_of(read_by_spark.select(*spark_own.columns)) == rows_of(spark_own)


@pytest.mark.parametrize("duration", ["1 hour"])
def test_ohlc_update_memory(
    pyspark_engine: Engine,
    ferro_engine: Engine,
    shuffled_ticks: Path,
    tmp_path: Path,
    duration: str,
) -> None:
    """Update mode: every changed candle of every batch (the memory sink appends versions)."""

    def build(engine: Engine) -> Any:
        ticks = P.with_event_time(engine, P.file_ticks(engine, shuffled_ticks))
        return P.without_open_close(engine, P.ohlc(engine, ticks, duration))

    spark_table, ours = both(
        pyspark_engine, ferro_engine, build, "update", PROCESSING_TIME, tmp_path
    )
    assert len(spark_table[1]) > 14
    assert_same(spark_table, ours)


def test_ohlc_update_memory_ordered_open_close(
    pyspark_engine: Engine, ferro_engine: Engine, ordered_ticks: Path, tmp_path: Path
) -> None:
    def build(engine: Engine) -> Any:
        ticks = P.with_event_time(engine, P.file_ticks(engine, ordered_ticks))
        return P.ohlc(engine, ticks, "1 hour")

    spark_table, ours = both(pyspark_engine, ferro_engine, build, "update", AVAILABLE_NOW, tmp_path)
    assert_same(spark_table, ours)


@pytest.mark.parametrize(
    "trigger",
    [PROCESSING_TIME, AVAILABLE_NOW, ONCE],
    ids=["processingTime", "availableNow", "once"],
)
def test_daily_stats_complete_memory(
    pyspark_engine: Engine,
    ferro_engine: Engine,
    shuffled_ticks: Path,
    tmp_path: Path,
    trigger: Dict[str, Any],
) -> None:
    """The seed's crypto_daily_stats memory table (complete mode, per symbol)."""

    def build(engine: Engine) -> Any:
        return P.daily_stats(
            engine, P.with_event_time(engine, P.file_ticks(engine, shuffled_ticks))
        )

    spark_table, ours = both(pyspark_engine, ferro_engine, build, "complete", trigger, tmp_path)
    assert len(spark_table[1]) == len(P.SYMBOLS)
    assert_same(spark_table, ours)


def test_ohlc_complete_memory(
    pyspark_engine: Engine, ferro_engine: Engine, shuffled_ticks: Path, tmp_path: Path
) -> None:
    """Complete mode over windows with a watermark: the whole result table."""

    def build(engine: Engine) -> Any:
        ticks = P.with_event_time(engine, P.file_ticks(engine, shuffled_ticks))
        return P.without_open_close(engine, P.ohlc(engine, ticks, "1 hour"))

    spark_table, ours = both(
        pyspark_engine, ferro_engine, build, "complete", PROCESSING_TIME, tmp_path
    )
    assert_same(spark_table, ours)


@pytest.mark.parametrize("trigger", [PROCESSING_TIME, ONCE], ids=["processingTime", "once"])
def test_console_projection_append(
    pyspark_engine: Engine,
    ferro_engine: Engine,
    shuffled_ticks: Path,
    tmp_path: Path,
    trigger: Dict[str, Any],
) -> None:
    """The seed's console monitor (a projection, append, no state): late rows are kept."""

    def build(engine: Engine) -> Any:
        return P.console_view(
            engine, P.with_event_time(engine, P.file_ticks(engine, shuffled_ticks))
        )

    spark_table, ours = both(pyspark_engine, ferro_engine, build, "append", trigger, tmp_path)
    assert_same(spark_table, ours)


def test_files_appearing_while_running(
    pyspark_engine: Engine, ferro_engine: Engine, tmp_path: Path
) -> None:
    """Files written while the queries run (the engines idle between the two halves)."""
    batches = P.tick_batches(seed=23, ordered=True, batches=10)
    folder = tmp_path / "ticks"
    P.write_tick_files(folder, batches[:5])
    queries = {}
    for engine in (pyspark_engine, ferro_engine):
        ticks = P.with_event_time(engine, P.file_ticks(engine, folder))
        name = engine.unique("appearing")
        queries[engine.name] = (
            (
                P.ohlc(engine, ticks, "1 hour")
                .writeStream.format("memory")
                .queryName(name)
                .outputMode("append")
                .option("checkpointLocation", str(tmp_path / engine.name))
                .trigger(**PROCESSING_TIME)
                .start()
            ),
            name,
        )
    try:
        for query, _ in queries.values():
            query.processAllAvailable()
        P.write_tick_files(folder, batches[5:], start=5)
        for query, _ in queries.values():
            query.processAllAvailable()
    finally:
        for query, _ in queries.values():
            query.stop()
    spark_table = table_of(pyspark_engine.spark.table(queries["pyspark"][1]))
    ours = table_of(ferro_engine.spark.table(queries["ferrostream"][1]))
    assert spark_table[1]
    assert_same(spark_table, ours)


def test_stream_drop_duplicates_with_watermark(
    pyspark_engine: Engine, ferro_engine: Engine, dedup_ticks: Path, tmp_path: Path
) -> None:
    """The ticks carry exact duplicates: dropped on (symbol, event_time) within the watermark."""

    def build(engine: Engine) -> Any:
        ticks = P.with_event_time(engine, P.file_ticks(engine, dedup_ticks))
        return ticks.dropDuplicates(["symbol", "event_timestamp"]).select(
            "symbol", "event_timestamp", "price"
        )

    ours = memory_table(ferro_engine, build, "append", AVAILABLE_NOW, tmp_path / "ferrostream")
    spark_table = memory_table(pyspark_engine, build, "append", AVAILABLE_NOW, tmp_path / "pyspark")
    assert_same(spark_table, ours)
