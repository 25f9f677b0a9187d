"""Background rounds (retention purge, review maintenance) across machines: with a
PostgreSQL database, one process of the whole cluster does each round, whatever
machine (VAR_DIR) it runs on; a process that dies releases its round."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from bench.stack import PG_BIN, Postgres, free_port
from bot.config import ROOT
from bot.web.background import advisory_key, alone


@pytest.fixture(scope="module")
def pg_url():
    if PG_BIN is None:
        pytest.fail("PostgreSQL is not installed: `make setup` installs it")
    with Postgres() as pg:
        yield pg.url


@pytest.fixture
def machines(tmp_path, pg_url):
    """Two machines: each its own VAR_DIR and its own engine (pool) on the shared database."""
    engines = [sa.create_engine(pg_url, future=True), sa.create_engine(pg_url, future=True)]
    yield [(tmp_path / "a", engines[0]), (tmp_path / "b", engines[1])]
    for engine in engines:
        engine.dispose()


def advisory_locks(url: str) -> int:
    engine = sa.create_engine(url, future=True)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar()
    finally:
        engine.dispose()


def test_one_process_of_the_cluster_does_each_round(machines, pg_url):
    (dir_a, engine_a), (dir_b, engine_b) = machines
    with alone(dir_a, "retention", engine_a) as first:
        assert first
        with alone(dir_b, "retention", engine_b) as other_machine:
            assert other_machine is False
        with alone(dir_b, "review-maintenance", engine_b) as different_work:
            assert different_work
        assert advisory_locks(pg_url) == 1
    assert advisory_locks(pg_url) == 0        # released, not left on a pooled connection
    with alone(dir_b, "retention", engine_b) as next_round:
        assert next_round


def test_a_process_that_dies_releases_its_round(machines, pg_url, tmp_path):
    (dir_a, engine_a), _ = machines
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; import sqlalchemy as sa\n"
                               "from bot.web.background import alone\n"
                               f"with alone(Path({str(tmp_path / 'c')!r}), 'retention', sa.create_engine({pg_url!r}))"
                               " as mine:\n    print(mine, flush=True); time.sleep(120)"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = holder.stdout.readline().strip()
        if line != "True":
            holder.wait(10)
            pytest.fail(f"the holder process said {line!r}: {holder.stderr.read()[-2000:]}")
        with alone(dir_a, "retention", engine_a) as mine:
            assert mine is False
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        for _ in range(50):          # the server ends the session when it sees the socket close
            with alone(dir_a, "retention", engine_a) as mine:
                if mine:
                    break
            time.sleep(0.1)
        assert mine
    finally:
        holder.kill()
        holder.wait(10)


def test_an_unreachable_database_skips_the_round_without_failing(tmp_path):
    engine = sa.create_engine(f"postgresql://rasa@127.0.0.1:{free_port()}/rasa", future=True,
                              connect_args={"connect_timeout": 2})
    with alone(tmp_path, "retention", engine) as mine:
        assert mine is False


def test_sqlite_keeps_to_the_machines_file_lock(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'review.db'}", future=True)
    with alone(tmp_path, "retention", engine) as first:
        assert first
        with alone(tmp_path, "retention", engine) as same_machine:
            assert same_machine is False


def test_each_kind_of_work_has_its_own_stable_key():
    keys = {advisory_key(name) for name in ("retention", "review-maintenance")}
    assert len(keys) == 2 and all(-2**63 <= k < 2**63 for k in keys)
    assert advisory_key("retention") == advisory_key("retention")
