"""Fixtures shared by the pytest suite."""

from __future__ import annotations

import pytest

from kafka_broker import ensure_broker, unique_topic


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Bootstrap address (``127.0.0.1:PORT``) of the broker from scripts/kafka.sh."""
    return ensure_broker()


@pytest.fixture
def kafka_topic() -> str:
    """A topic name no other test uses, such as ``test-1a2b3c4d``; tests create it."""
    return unique_topic("test")


@pytest.fixture(scope="session")
def spark():  # type: ignore[no-untyped-def]
    """The session, with every query stopped after each test module."""
    from ferrostream.sql import SparkSession

    session = SparkSession.builder.appName("tests").getOrCreate()
    yield session
    session.stop()
