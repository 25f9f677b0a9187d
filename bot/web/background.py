"""Periodic work that every web worker schedules, done by one process at a time.

Each worker process runs the same schedules (retention purge, review
maintenance), starting together. The work is idempotent, but two processes
doing it at the same moment would race: both deleting the same batches, or
both finding the same abandoned conversation before either recorded it. A
non-blocking lock on a file in VAR_DIR lets one process do each round; the
others skip that round. Replicas on other machines have their own VAR_DIR:
there the work itself must tolerate a concurrent run.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)


@contextlib.contextmanager
def alone(var_dir: Path, name: str) -> Iterator[bool]:
    """True while this process holds VAR_DIR/<name>.lock; False when another process holds it."""
    var_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(var_dir / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.debug("%s: another worker is doing it; skipped here", name)
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
