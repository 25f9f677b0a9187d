"""Tables created by two processes at the same moment: the one that loses the race
tries again instead of failing (seen as "table review_tags already exists")."""
import threading

import pytest
import sqlalchemy as sa

from bot import review, users
from bot.schema import ATTEMPTS, create_tables


def other_process_creates_first(metadata, table_name, url):
    """Between create_all's check and its CREATE, another connection (another
    process, in production) creates the table: the CREATE then fails."""
    other = sa.create_engine(url)
    table = metadata.tables[table_name]
    done = []

    @sa.event.listens_for(table, "before_create")
    def race(target, connection, **kw):
        if not done:
            done.append(True)
            target.create(other)

    return done, lambda: (sa.event.remove(table, "before_create", race), other.dispose())


def test_stock_create_all_fails_when_another_process_wins_the_race(tmp_path):
    url = f"sqlite:///{tmp_path / 'review.db'}"
    done, undo = other_process_creates_first(review.metadata, "review_tags", url)
    try:
        with pytest.raises(sa.exc.OperationalError, match="already exists"):
            review.metadata.create_all(sa.create_engine(url))
    finally:
        undo()
    assert done


def test_the_review_store_comes_up_when_another_process_creates_its_tables(tmp_path):
    url = f"sqlite:///{tmp_path / 'review.db'}"
    done, undo = other_process_creates_first(review.metadata, "review_tags", url)
    try:
        store = review.ReviewStore(url)
        assert store.record("unanswered", "citizen-1", "明天天气怎么样", intent="nlu_fallback", confidence=0.2)
    finally:
        undo()
    assert done
    assert [r["question"] for r in store.items()] == ["明天天气怎么样"]
    assert "review_tags" in sa.inspect(store.engine).get_table_names()


def test_the_account_store_comes_up_when_another_process_creates_its_table(tmp_path):
    url = f"sqlite:///{tmp_path / 'users.db'}"
    done, undo = other_process_creates_first(users.metadata, "staff_users", url)
    try:
        accounts = users.StaffStore(url)
        accounts.ensure_schema()
    finally:
        undo()
    assert done and "staff_users" in sa.inspect(accounts.engine).get_table_names()


def test_a_lasting_failure_is_raised_after_the_last_attempt(tmp_path):
    metadata = sa.MetaData()
    sa.Table("t", metadata, sa.Column("id", sa.Integer, primary_key=True))
    calls = []

    @sa.event.listens_for(metadata, "before_create")
    def always_fails(target, connection, **kw):
        calls.append(1)
        connection.exec_driver_sql("SELECT * FROM no_such_table")

    with pytest.raises(sa.exc.OperationalError, match="no_such_table"):
        create_tables(metadata, sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}"))
    assert len(calls) == ATTEMPTS


def test_threads_of_one_process_create_the_review_tables_once(tmp_path):
    store = review.ReviewStore(f"sqlite:///{tmp_path / 'review.db'}")
    errors = []
    start = threading.Barrier(8)

    def read():
        start.wait()
        try:
            store.items()
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
