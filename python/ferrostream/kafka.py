"""Kafka helpers that Spark leaves to other tools: creating a topic with N partitions."""

from __future__ import annotations

from ferrostream._core import create_topic as _create_topic

__all__ = ["create_topic"]


def create_topic(bootstrap: str, topic: str, partitions: int = 1, timeout: float = 30.0) -> bool:
    """Creates ``topic`` with ``partitions`` partitions unless it exists.

    Returns True when it was created.

    >>> create_topic("127.0.0.1:9092", "crypto-prices", partitions=2)
    True
    """
    return _create_topic(bootstrap, topic, partitions, timeout)
