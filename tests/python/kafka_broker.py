"""A real Kafka broker for the tests.

Uses the broker named by ``FERROSTREAM_KAFKA_BOOTSTRAP`` when set (CI starts one up
front with ``scripts/kafka.sh start``), else starts one with that script and stops it
when the test process exits. Free of pytest, so scripts and notebooks can use it too.

With several pytest worker processes (pytest-xdist), start the broker before pytest
and export ``FERROSTREAM_KAFKA_BOOTSTRAP``: otherwise the worker that started the
broker stops it when that worker finishes, under the feet of the others.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import subprocess
import uuid
from pathlib import Path

__all__ = ["BOOTSTRAP_ENV", "ensure_broker", "unique_topic"]

BOOTSTRAP_ENV = "FERROSTREAM_KAFKA_BOOTSTRAP"
"""Environment variable naming an already running broker, as ``host:port``."""

_KAFKA_SH = Path(__file__).resolve().parents[2] / "scripts" / "kafka.sh"
# A cold start first downloads the broker's jars from Maven Central.
_TIMEOUT_S = 600
_TOPIC_PREFIX = re.compile(r"[A-Za-z0-9._-]{1,200}")


def ensure_broker() -> str:
    """Return the bootstrap address (``host:port``) of a running broker.

    Starts one with ``scripts/kafka.sh`` if neither the environment variable nor an
    earlier ``scripts/kafka.sh start`` provides one. Only a broker started here is
    stopped when the Python process exits.
    """
    from_env = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if from_env:
        return from_env
    return _local_broker()


def unique_topic(prefix: str = "test") -> str:
    """Return a topic name no other test uses, such as ``test-1a2b3c4d``.

    Tests share one broker, so each test writes to its own topic instead of cleaning
    up after itself.
    """
    if not _TOPIC_PREFIX.fullmatch(prefix):
        raise ValueError(
            f"topic prefix {prefix!r} must be 1-200 characters of letters, digits, '.', '_' or '-'"
        )
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@functools.cache
def _local_broker() -> str:
    status = _kafka_sh("status")
    if status.returncode == 0:
        return status.stdout.strip()

    started = _kafka_sh("start")
    if started.returncode != 0:
        raise RuntimeError(
            f"{_KAFKA_SH} start failed (exit {started.returncode}); to use a broker "
            f"that is already running, set {BOOTSTRAP_ENV}.\n{started.stderr}"
        )
    atexit.register(_stop_broker)
    return started.stdout.strip()


def _kafka_sh(command: str) -> subprocess.CompletedProcess[str]:
    if not _KAFKA_SH.is_file():
        raise RuntimeError(f"{_KAFKA_SH} not found; set {BOOTSTRAP_ENV} to a running broker")
    return subprocess.run(
        [str(_KAFKA_SH), command],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S,
        check=False,
    )


def _stop_broker() -> None:
    _kafka_sh("stop")
    _local_broker.cache_clear()
