"""Kafka headers both ways: the sink writes a `headers` column, the source returns it with
`includeHeaders`, in Spark's type array<struct<key: string, value: binary>>."""

from __future__ import annotations

import pyarrow as pa

from ferrostream.kafka import create_topic
from ferrostream.sql import SparkSession

HEADER = pa.struct([("key", pa.string()), ("value", pa.binary())])


def test_headers_round_trip(spark: SparkSession, kafka_bootstrap: str, kafka_topic: str) -> None:
    assert create_topic(kafka_bootstrap, kafka_topic, partitions=1)
    rows = pa.table(
        {
            "value": ["a", "b", "c"],
            "headers": pa.array(
                [
                    [{"key": "source", "value": b"binance"}, {"key": "v", "value": None}],
                    [],
                    [{"key": "source", "value": b"replay"}],
                ],
                pa.list_(HEADER),
            ),
        }
    )
    (
        spark.createDataFrame(rows)
        .write.format("kafka")
        .option("kafka.bootstrap.servers", kafka_bootstrap)
        .option("topic", kafka_topic)
        .save()
    )

    def read(include: bool) -> pa.Table:
        return (
            spark.read.format("kafka")
            .option("kafka.bootstrap.servers", kafka_bootstrap)
            .option("subscribe", kafka_topic)
            .option("includeHeaders", include)
            .load()
            .toArrow()
        )

    plain = read(False)
    assert "headers" not in plain.column_names
    table = read(True)
    assert table.schema.field("headers").type.value_type == HEADER
    by_value = dict(zip(table.column("value").to_pylist(), table.column("headers").to_pylist()))
    assert by_value == {
        b"a": [{"key": "source", "value": b"binance"}, {"key": "v", "value": None}],
        b"b": [],
        b"c": [{"key": "source", "value": b"replay"}],
    }
