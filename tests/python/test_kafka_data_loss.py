"""Offsets removed by retention before the query read them: with failOnDataLoss (the default)
the query fails naming the topic, partition and offsets; with failOnDataLoss=false it warns,
skips them and goes on with what is left."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

from ferrostream.errors import StreamingQueryException
from ferrostream.kafka import create_topic
from ferrostream.sql import SparkSession
from log_records import wait_for_record

KAFKA_SH = Path(__file__).resolve().parents[2] / "scripts" / "kafka.sh"


def produce(spark: SparkSession, bootstrap: str, topic: str, values: list[str]) -> None:
    (
        spark.createDataFrame(pa.table({"value": values}))
        .write.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("topic", topic)
        .save()
    )


def delete_records_before(bootstrap: str, topic: str, offset: int, folder: Path) -> None:
    """What retention does: the log of partition 0 starts at `offset` from now on."""
    spec = folder / "delete.json"
    spec.write_text(
        json.dumps({"partitions": [{"topic": topic, "partition": 0, "offset": offset}]})
    )
    done = subprocess.run(
        [
            "bash",
            str(KAFKA_SH),
            "tool",
            "org.apache.kafka.tools.DeleteRecordsCommand",
            "--bootstrap-server",
            bootstrap,
            "--offset-json-file",
            str(spec),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def start(spark: SparkSession, bootstrap: str, topic: str, checkpoint: Path, **options: str):  # type: ignore[no-untyped-def]
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .options(**options)
        .load()
        .selectExpr("CAST(value AS STRING) AS value", "offset")
        .writeStream.foreachBatch(lambda df, _: seen.extend(df.toPandas()["offset"]))
        .option("checkpointLocation", str(checkpoint))
        .start()
    )


seen: list[int] = []


@pytest.mark.parametrize("fail_on_data_loss", [True, False])
def test_offsets_removed_before_they_were_read(
    spark: SparkSession,
    kafka_bootstrap: str,
    kafka_topic: str,
    tmp_path: Path,
    fail_on_data_loss: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="ferrostream")
    seen.clear()
    assert create_topic(kafka_bootstrap, kafka_topic, partitions=1)
    produce(spark, kafka_bootstrap, kafka_topic, [f"a{i}" for i in range(50)])
    checkpoint = tmp_path / "chk"
    q = start(spark, kafka_bootstrap, kafka_topic, checkpoint)
    q.processAllAvailable()
    q.stop()
    assert sorted(seen) == list(range(50))

    produce(spark, kafka_bootstrap, kafka_topic, [f"b{i}" for i in range(50)])
    delete_records_before(kafka_bootstrap, kafka_topic, 80, tmp_path)
    q = start(
        spark,
        kafka_bootstrap,
        kafka_topic,
        checkpoint,
        failOnDataLoss=str(fail_on_data_loss).lower(),
    )
    if fail_on_data_loss:
        with pytest.raises(StreamingQueryException) as raised:
            q.awaitTermination(60)
        message = str(raised.value)
        assert f"offsets 50..80 of {kafka_topic}-0 were removed" in message
        assert "failOnDataLoss=false" in message
        assert sorted(seen) == list(range(50))
    else:
        q.processAllAvailable()
        q.stop()
        assert q.exception() is None
        assert sorted(seen) == list(range(50)) + list(range(80, 100))
        # The warning reaches Python's logging (from the engine's log thread, a moment later).
        record = wait_for_record(caplog, f"skipping removed offsets 50..80 of {kafka_topic}-0")
        assert (record.name, record.levelno) == ("ferrostream.source.kafka", logging.WARNING)
