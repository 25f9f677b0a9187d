"""Creating tables when several processes may do it at the same moment.

SQLAlchemy's create_all checks which tables exist, then creates the others: two
processes starting together (two web workers, the web app and the action
server on one review database) both see a table missing and the second CREATE
fails with "already exists". Trying again is enough: the check then finds it.
"""
from __future__ import annotations

import logging
import time

import sqlalchemy as sa

log = logging.getLogger(__name__)

ATTEMPTS = 5


def create_tables(metadata: sa.MetaData, engine: sa.engine.Engine) -> None:
    """metadata.create_all(engine), tried again while another process creates the same tables
    (or holds the database locked); the last failure is raised."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            metadata.create_all(engine)
            return
        except sa.exc.DBAPIError as exc:
            if attempt == ATTEMPTS:
                raise
            log.info("creating tables failed (%s), another process may be at it; trying again",
                     exc.__class__.__name__)
            time.sleep(0.05 * attempt)
