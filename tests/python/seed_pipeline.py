"""The seed's pipeline as a program tests run (and kill) in a subprocess.

Kafka ticks → from_json → 1-hour watermark → hourly and daily OHLC → Parquet partitioned by
symbol, one checkpoint per query. ``--available-now`` reads to the end of the topic and
exits; without it the queries run until the process is killed.

    python seed_pipeline.py BOOTSTRAP TOPIC OUT_DIR [--available-now] [--max-offsets N]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ferrostream.sql import DataFrame, SparkSession
from ferrostream.sql import functions as F

TICK_SCHEMA = (
    "symbol STRING, price DOUBLE, volume DOUBLE, quote_volume DOUBLE, price_change DOUBLE, "
    "price_change_percent DOUBLE, high DOUBLE, low DOUBLE, open DOUBLE, "
    "weighted_avg_price DOUBLE, trade_count LONG, event_time LONG"
)
WINDOWS = {"hourly": "1 hour", "daily": "1 day"}


def ticks(spark: SparkSession, bootstrap: str, topic: str, max_offsets: int) -> DataFrame:
    """The tick stream with its event time, behind a 1-hour watermark."""
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", max_offsets)
        .load()
        .select(F.from_json(F.col("value").cast("string"), TICK_SCHEMA).alias("t"))
        .select("t.*")
        .withColumn("event_timestamp", F.timestamp_millis("event_time"))
        .withWatermark("event_timestamp", "1 hour")
    )


def candles(stream: DataFrame, duration: str) -> DataFrame:
    """OHLC candles of one window length."""
    return (
        stream.groupBy(F.window("event_timestamp", duration), "symbol")
        .agg(
            F.first("price").alias("open"),
            F.max("price").alias("high"),
            F.min("price").alias("low"),
            F.last("price").alias("close"),
            F.sum("volume").alias("volume"),
            F.count("*").alias("ticks"),
        )
        .select(
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            "symbol",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "ticks",
        )
    )


def start(args: Any) -> list[Any]:
    spark = SparkSession.builder.appName("seed-pipeline").getOrCreate()
    stream = ticks(spark, args.bootstrap, args.topic, args.max_offsets)
    out = Path(args.out)
    queries = []
    for name, duration in WINDOWS.items():
        writer = (
            candles(stream, duration)
            .writeStream.format("parquet")
            .queryName(name)
            .outputMode("append")
            .partitionBy("symbol")
            .option("checkpointLocation", str(out / "checkpoints" / name))
        )
        if args.available_now:
            writer = writer.trigger(availableNow=True)
        queries.append(writer.start(str(out / name)))
    return queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("out")
    parser.add_argument("--available-now", action="store_true")
    parser.add_argument("--max-offsets", type=int, default=5_000)
    args = parser.parse_args()
    for query in start(args):
        query.awaitTermination()


if __name__ == "__main__":
    main()
