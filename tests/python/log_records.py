"""Waiting for a record of the engine's log thread, which hands records to Python's
`logging` a moment after the event."""

from __future__ import annotations

import logging
import time

import pytest


def wait_for_record(
    caplog: pytest.LogCaptureFixture, text: str, timeout_s: float = 10
) -> logging.LogRecord:
    """The first captured record whose message contains `text`, waiting up to `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = next((r for r in caplog.records if text in r.getMessage()), None)
        if found is not None:
            return found
        assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
        time.sleep(0.05)
