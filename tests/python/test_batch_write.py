"""df.write to files: Spark's save modes, partitioned Parquet, JSON and CSV, each write one
committed batch of the folder's manifest, read back by spark.read."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from ferrostream.errors import AnalysisException, IllegalArgumentException
from ferrostream.sql import DataFrame, SparkSession
from ferrostream.sql import functions as F


def candles(spark: SparkSession, close: float) -> DataFrame:
    return spark.createDataFrame(
        pa.table({"symbol": ["BTCUSDT", "ETHUSDT"], "close": [close, close / 10]})
    )


def rows(spark: SparkSession, path: Path) -> list[tuple[str, float]]:
    table = spark.read.parquet(str(path)).toArrow()
    return sorted(zip(table.column("symbol").to_pylist(), table.column("close").to_pylist()))


def test_save_modes(spark: SparkSession, tmp_path: Path) -> None:
    out = tmp_path / "candles"
    candles(spark, 100.0).write.partitionBy("symbol").parquet(str(out))
    assert sorted(p.name for p in out.iterdir()) == [
        "_ferrostream_metadata",
        "symbol=BTCUSDT",
        "symbol=ETHUSDT",
    ]
    with pytest.raises(AnalysisException, match="already exists"):
        candles(spark, 1.0).write.parquet(str(out))
    candles(spark, 1.0).write.mode("ignore").parquet(str(out))
    assert rows(spark, out) == [("BTCUSDT", 100.0), ("ETHUSDT", 10.0)]
    candles(spark, 200.0).write.mode("append").partitionBy("symbol").parquet(str(out))
    assert rows(spark, out) == [
        ("BTCUSDT", 100.0),
        ("BTCUSDT", 200.0),
        ("ETHUSDT", 10.0),
        ("ETHUSDT", 20.0),
    ]
    candles(spark, 300.0).write.mode("overwrite").parquet(str(out))
    assert rows(spark, out) == [("BTCUSDT", 300.0), ("ETHUSDT", 30.0)]
    with pytest.raises(IllegalArgumentException, match="Unknown save mode: upsert"):
        candles(spark, 1.0).write.mode("upsert")


def test_json_and_csv(spark: SparkSession, tmp_path: Path) -> None:
    candles(spark, 100.0).write.json(str(tmp_path / "j"))
    back = spark.read.schema("symbol STRING, close DOUBLE").json(str(tmp_path / "j")).toArrow()
    assert sorted(back.column("close").to_pylist()) == [10.0, 100.0]
    candles(spark, 100.0).write.csv(str(tmp_path / "c"), header=True)
    (text,) = [p.read_text() for p in (tmp_path / "c").glob("*.csv")]
    assert text.splitlines() == ["symbol,close", "BTCUSDT,100.0", "ETHUSDT,10.0"]


def test_rows_keep_their_order_through_a_batch_frame(spark: SparkSession) -> None:
    """Many Arrow batches through projections and a filter come out in the order they went
    in: DataFusion must not split them between partitions and interleave them again (a
    Kafka write of ticks would otherwise scramble their event times)."""
    n = 200_000
    table = pa.table({"i": list(range(n)), "v": [f"x{i}" for i in range(n)]})
    df = spark.createDataFrame(table)
    assert df.toArrow()["i"].to_pylist() == list(range(n))
    out = df.select((F.col("i") * 2).alias("j"), "v").where(F.col("j") % 3 != 0).toArrow()
    assert out["j"].to_pylist() == [2 * i for i in range(n) if (2 * i) % 3 != 0]
