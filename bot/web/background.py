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
import logging
from pathlib import Path
from typing import Iterator

from ..filelock import file_lock

log = logging.getLogger(__name__)


@contextlib.contextmanager
def alone(var_dir: Path, name: str) -> Iterator[bool]:
    """True while this process holds VAR_DIR/<name>.lock; False when another process holds it."""
    with file_lock(var_dir / f"{name}.lock", blocking=False) as held:
        if not held:
            log.debug("%s: another worker is doing it; skipped here", name)
        yield held
