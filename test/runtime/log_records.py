"""What a module logs, caught on its own logger: pytest's caplog listens on the root logger, which
sees nothing once `launch` is imported in the process (as under colcon test), since loggers made
after that do not propagate."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class _RecordList(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def records_of(logger: logging.Logger) -> Iterator[list[logging.LogRecord]]:
    """The INFO-and-above records `logger` emits while the block runs."""
    handler = _RecordList()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
