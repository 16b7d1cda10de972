"""The SDK's own log files, rotated.

breeze-connect opens ``logs/apiLogs.log`` and ``logs/websocketLogs.log`` with plain
``FileHandler``s at DEBUG when it is imported, so they grow without bound on a long-lived
worker. After the import each is replaced by a size-rotated handler on the same file.
"""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler

SDK_LOGGERS = ("APILogger", "WebsocketLogger")
MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 3


def rotate_sdk_logs(
    loggers: tuple[str, ...] = SDK_LOGGERS, max_bytes: int = MAX_BYTES, backups: int = BACKUPS
) -> list[str]:
    """Swap the loggers' plain file handlers for rotating ones; returns the files."""
    rotated = []
    for name in loggers:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is not logging.FileHandler:
                continue
            replacement = RotatingFileHandler(
                handler.baseFilename, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
            )
            replacement.setFormatter(handler.formatter)
            replacement.setLevel(handler.level)
            logger.removeHandler(handler)
            handler.close()
            logger.addHandler(replacement)
            rotated.append(handler.baseFilename)
    return rotated
