"""Batch DataFrame operations on the same rows in PySpark 3.5 and ferrostream: each case is
one function of (engine, frame) written once; the resulting tables must be equal."""

from __future__ import annotations

import contextlib
import io
from typing import Any, Callable, Dict, List

import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed (scripts/pyspark.sh installs it)")

import pipelines as P  # noqa: E402
from engines import Engine, assert_same, table_of  # noqa: E402

SCHEMA = P.TICK_FIELDS + ", note STRING, maybe DOUBLE"


def tick_rows() -> List[tuple]:
    """Ticks of every symbol plus exact duplicates and nulls in the optional columns."""
    rows = []
    for index, tick in enumerate(t for batch in P.tick_batches(seed=3, batches=4) for t in batch):
        note = None if index % 3 == 0 else f"n{index % 4}"
        maybe = None if index % 2 == 0 else tick["price"] / 4
        rows.append(tuple(tick.values()) + (note, maybe))
    return rows


Case = Callable[[Engine, Any], Any]


def ts(engine: Engine) -> Any:
    return engine.F.timestamp_millis(engine.F.col("event_time"))


CASES: Dict[str, Case] = {
    "select_withColumn": lambda e, df: df.select(
        "symbol", (e.F.col("price") * 2).alias("double_price"), "volume"
    ).withColumn("volume_plus", e.F.col("volume") + 1),
    "selectExpr_cast": lambda e, df: df.selectExpr(
        "symbol", "CAST(price AS INT) AS price_int", "trade_count % 7 AS bucket"
    ),
    "filter_and_or": lambda e, df: df.filter(
        ((e.F.col("price") > 1000) & (e.F.col("symbol") != "ETHUSDT")) | e.F.col("note").isNull()
    ).select("symbol", "price", "note"),
    "where_string": lambda e, df: df.where("price_change < 0").select("symbol", "price_change"),
    "groupBy_agg": lambda e, df: df.groupBy("symbol").agg(
        e.F.min("price").alias("low"),
        e.F.max("price").alias("high"),
        e.F.sum("volume").alias("volume"),
        e.F.count("*").alias("rows"),
        e.F.count("note").alias("notes"),
        e.F.avg("price").alias("avg_price"),
        e.F.countDistinct("note").alias("distinct_notes"),
    ),
    "groupBy_two_keys_sum_long": lambda e, df: df.groupBy("symbol", "note").agg(
        e.F.sum("trade_count").alias("trades"), e.F.max_by("price", "event_time").alias("latest")
    ),
    "orderBy_limit": lambda e, df: (
        df.orderBy(e.F.col("event_time").desc(), "symbol").limit(5).select("symbol", "event_time")
    ),
    "union": lambda e, df: df.select("symbol", "price").union(
        df.filter(e.F.col("price") < 200).select("symbol", "price")
    ),
    "dropDuplicates": lambda e, df: df.dropDuplicates(),
    "dropDuplicates_subset": lambda e, df: df.dropDuplicates(["symbol", "note"]).select(
        "symbol", "note"
    ),
    "countDistinct": lambda e, df: df.agg(
        e.F.countDistinct("symbol").alias("symbols"),
        e.F.countDistinct("symbol", "note").alias("pairs"),
    ),
    "when_otherwise": lambda e, df: df.select(
        "symbol",
        e.F.when(e.F.col("price_change") > 0, "up")
        .when(e.F.col("price_change") < 0, "down")
        .otherwise("flat")
        .alias("direction"),
        e.F.when(e.F.col("note") == "n1", 1).alias("no_otherwise"),
    ),
    "coalesce": lambda e, df: df.select(
        e.F.coalesce(e.F.col("maybe"), e.F.lit(0.0)).alias("maybe_or_zero"),
        e.F.coalesce(e.F.col("note"), e.F.col("symbol")).alias("label"),
    ),
    "concat_upper_lower": lambda e, df: df.select(
        e.F.concat(e.F.col("symbol"), e.F.lit("-"), e.F.col("note")).alias("with_null"),
        e.F.concat(e.F.lower("symbol"), e.F.lit(":"), e.F.col("trade_count").cast("string")).alias(
            "key"
        ),
        e.F.upper(e.F.col("note")).alias("upper_note"),
    ),
    "round": lambda e, df: df.select(
        e.F.round("price_change_percent", 1).alias("pct1"),
        e.F.round(e.F.col("price") / 3, 2).alias("third"),
        e.F.round(e.F.col("volume") * 10).alias("tenth"),
        e.F.round(e.F.lit(2.675), 2).alias("half_up"),
        e.F.round(e.F.lit(-0.5)).alias("minus_half"),
    ),
    "timestamp_millis_date_trunc": lambda e, df: df.select(
        ts(e).alias("ts"),
        e.F.date_trunc("hour", ts(e)).alias("hour"),
        e.F.date_trunc("day", ts(e)).alias("day"),
        e.F.date_trunc("minute", ts(e)).alias("minute"),
        e.F.date_trunc("month", ts(e)).alias("month"),
    ),
    "from_unixtime": lambda e, df: df.select(
        e.F.from_unixtime((e.F.col("event_time") / 1000).cast("long")).alias("text"),
        e.F.from_unixtime((e.F.col("event_time") / 1000).cast("long"), "yyyy-MM-dd HH:mm").alias(
            "minutes"
        ),
    ),
    "to_json": lambda e, df: df.select(
        e.F.to_json(e.F.struct("symbol", "price", "trade_count", "note")).alias("json"),
        e.F.to_json(e.F.struct(ts(e).alias("ts"))).alias("json_ts"),
    ),
    "to_timestamp": lambda e, df: df.select(
        e.F.to_timestamp(e.F.from_unixtime((e.F.col("event_time") / 1000).cast("long"))).alias(
            "parsed"
        )
    ),
    "window_batch": lambda e, df: df.groupBy(e.F.window(ts(e), "1 hour"), "symbol").agg(
        e.F.count("*").alias("ticks")
    ),
}


@pytest.fixture(scope="module")
def frames(pyspark_engine: Engine, ferro_engine: Engine) -> Dict[str, Any]:
    rows = tick_rows()
    return {
        engine.name: engine.spark.createDataFrame(rows, SCHEMA)
        for engine in (pyspark_engine, ferro_engine)
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_batch_operation(
    pyspark_engine: Engine, ferro_engine: Engine, frames: Dict[str, Any], case: str
) -> None:
    build = CASES[case]
    spark_table = table_of(build(pyspark_engine, frames["pyspark"]))
    ours = table_of(build(ferro_engine, frames["ferrostream"]))
    assert spark_table[1], "the case selects some rows"
    assert_same(spark_table, ours, case)


def test_sql_over_temp_view(
    pyspark_engine: Engine, ferro_engine: Engine, frames: Dict[str, Any]
) -> None:
    """spark.sql over a temp view, in SQL both dialects read the same way."""
    query = (
        "SELECT symbol, COUNT(*) AS ticks, MAX(price) AS high, SUM(volume) AS volume "
        "FROM diff_ticks WHERE price > 100 GROUP BY symbol HAVING COUNT(*) > 1"
    )
    tables = []
    for engine in (pyspark_engine, ferro_engine):
        frames[engine.name].createOrReplaceTempView("diff_ticks")
        tables.append(table_of(engine.spark.sql(query)))
    assert_same(*tables)


def test_show_prints_the_same_table(
    pyspark_engine: Engine, ferro_engine: Engine, frames: Dict[str, Any]
) -> None:
    """show() (and so the console sink's batches) prints Spark's text table."""
    printed = []
    for engine in (pyspark_engine, ferro_engine):
        df = (
            frames[engine.name]
            .orderBy("event_time", "symbol", "price")
            .select("symbol", "price", "volume", "note", "maybe", ts(engine).alias("ts"))
        )
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            df.show(5)
            df.show(3, truncate=False)
        printed.append(out.getvalue())
    assert printed[1] == printed[0]


def test_stddev_agrees_to_rounding(
    pyspark_engine: Engine, ferro_engine: Engine, frames: Dict[str, Any]
) -> None:
    """stddev is a sum of rounded terms: Spark's own result depends on how rows are split
    into partitions, so the engines agree to 12 significant digits, not to the bit."""
    tables = [
        table_of(frames[e.name].groupBy("symbol").agg(e.F.stddev("price").alias("sd")))
        for e in (pyspark_engine, ferro_engine)
    ]
    assert tables[1][0] == tables[0][0]
    assert [r[0] for r in tables[1][1]] == [r[0] for r in tables[0][1]]
    assert [r[1] for r in tables[1][1]] == pytest.approx([r[1] for r in tables[0][1]], rel=1e-12)
