"""The first vertical slice: ticks into a 2-partition Kafka topic, read back by a streaming
query into a memory table, queried as Arrow. Run it against a broker:

    python examples/kafka_to_memory.py --bootstrap 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import json
import time
import uuid

import pyarrow as pa

from ferrostream.kafka import create_topic
from ferrostream.sql import SparkSession
from ferrostream.sql import functions as F


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--ticks", type=int, default=10_000)
    args = parser.parse_args()

    spark = SparkSession.builder.appName("ferrostream-slice").getOrCreate()
    topic = f"crypto-prices-{uuid.uuid4().hex[:8]}"
    create_topic(args.bootstrap, topic, partitions=2)

    start = int(time.time() * 1000)
    ticks = [
        {
            "key": symbol,
            "value": json.dumps(
                {"symbol": symbol, "price": 100.0 + i % 7, "volume": 1.0, "event_time": start + i}
            ),
        }
        for i in range(args.ticks)
        for symbol in (["BTCUSDT", "ETHUSDT"][i % 2],)
    ]
    (
        spark.createDataFrame(pa.Table.from_pylist(ticks))
        .write.format("kafka")
        .option("kafka.bootstrap.servers", args.bootstrap)
        .option("topic", topic)
        .save()
    )

    df = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", args.bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .load()
    )
    q = df.writeStream.format("memory").queryName("raw").start()
    q.processAllAvailable()
    table = spark.table("raw").toArrow()
    q.stop()

    print(f"read {table.num_rows} messages from {topic}; schema:")
    spark.table("raw").printSchema()
    spark.table("raw").select(
        F.col("key").cast("string").alias("key"),
        F.col("value").cast("string").alias("value"),
        "partition",
        "offset",
    ).show(5, truncate=False)


if __name__ == "__main__":
    main()
