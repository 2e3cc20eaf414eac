"""The engine's log records reach Python's `logging` (loggers under `ferrostream`), where a
Spark user would see WARN lines: here, librdkafka's for a broker that refuses connections.
(An engine module's own warning, offsets skipped with failOnDataLoss=false, is checked in
test_kafka_data_loss.py.)"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ferrostream.errors import PySparkException
from ferrostream.sql import SparkSession
from log_records import wait_for_record

# Nothing listens on port 1: the connection is refused at once.
NOBODY = "127.0.0.1:1"
REFUSED = f"Connect to ipv4#{NOBODY} failed"


def start_unreachable(spark: SparkSession) -> None:
    """Starts a query on a broker nobody runs: `start` fails asking for metadata."""
    (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", NOBODY)
        .option("subscribe", "nowhere")
        .option("kafkaConsumer.pollTimeoutMs", "300")
        .load()
        .writeStream.format("noop")
        .start()
    )


def test_a_refused_connection_is_logged_under_ferrostream(
    spark: SparkSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ferrostream")
    with pytest.raises(PySparkException, match=f"brokers at {NOBODY}"):
        start_unreachable(spark)
    record = wait_for_record(caplog, REFUSED)
    assert record.name == "ferrostream.librdkafka"
    assert record.levelno >= logging.WARNING


def test_warnings_show_on_stderr_by_default_and_exit_is_clean() -> None:
    """No logging configured: Python's last-resort handler prints WARNING records, as Spark
    prints its WARN lines; the interpreter then exits cleanly, the log thread stopped."""
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from ferrostream.sql import SparkSession
        from test_logging import start_unreachable
        try:
            start_unreachable(SparkSession.builder.getOrCreate())
        except Exception as error:
            print("raised", error)
        time.sleep(1)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"raised kafka source: fetching metadata from the brokers at {NOBODY}" in done.stdout
    assert REFUSED in done.stderr


def test_reading_to_the_end_of_a_topic_logs_nothing(
    spark: SparkSession,
    kafka_bootstrap: str,
    kafka_topic: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Partition ends are how the source knows it has read everything: not errors, and
    nothing a user should see, also when the query's clients close with one pending."""
    import pyarrow as pa

    from ferrostream.kafka import create_topic

    caplog.set_level(logging.INFO, logger="ferrostream")
    assert create_topic(kafka_bootstrap, kafka_topic, partitions=2)
    (
        spark.createDataFrame(pa.table({"value": [f"v{i}" for i in range(1000)]}))
        .write.format("kafka")
        .option("kafka.bootstrap.servers", kafka_bootstrap)
        .option("topic", kafka_topic)
        .save()
    )
    query = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", kafka_bootstrap)
        .option("subscribe", kafka_topic)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", "300")
        .load()
        .writeStream.format("memory")
        .queryName("to_the_end")
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination(60)
    assert spark.table("to_the_end").count() == 1000
    query.stop()
    time.sleep(1.5)  # the log thread hands records on a moment later
    # (The write's idempotent producer may warn about a broker still starting: not this.)
    ends = [r.getMessage() for r in caplog.records if "PartitionEOF" in r.getMessage()]
    assert ends == []
