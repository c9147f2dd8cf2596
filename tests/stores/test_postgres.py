"""The PostgreSQL store against a real server: its start-up checks (the table, the rights, an
unreachable server, the table's name) and claims of overlapping events under concurrency."""

from __future__ import annotations

import uuid

import pytest

import hubsig
import hubsig.wsgi
from hubsig import ConfigurationError
from hubsig._dedupe import Claim
from tests.conftest import fresh_table
from tests.stores import SECRET


def test_a_postgres_table_that_is_not_hubsigs_fails_start_up(postgres_url: str) -> None:
    import psycopg

    from hubsig.stores.postgres import PostgresStore

    table = fresh_table()
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(f"CREATE TABLE {table} (key integer PRIMARY KEY, payload jsonb)")
    with pytest.raises(ConfigurationError, match="not hubsig's"):
        hubsig.webhook(secret=SECRET, store=PostgresStore(postgres_url, table=table))(
            lambda payload: None
        )


def test_a_postgres_user_without_rights_on_the_table_fails_start_up(postgres_url: str) -> None:
    import psycopg

    from hubsig.stores.postgres import PostgresStore

    table, role = fresh_table(), f"r{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(f"CREATE ROLE {role} LOGIN")
        PostgresStore(postgres_url, table=table).check()  # the owner creates it
    limited = psycopg.conninfo.make_conninfo(postgres_url, user=role)
    try:
        with pytest.raises(ConfigurationError, match="may not SELECT"):
            PostgresStore(limited, table=table).check()
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute(f"DROP TABLE {table}")
            db.execute(f"DROP ROLE {role}")


def test_an_unreachable_postgres_fails_start_up_without_echoing_its_password() -> None:
    pytest.importorskip("psycopg")
    from hubsig.stores.postgres import PostgresStore

    store = PostgresStore("postgresql://u:hunter2secret@127.0.0.1:1/db", connect_timeout=1)
    assert "hunter2secret" not in repr(store)
    with pytest.raises(ConfigurationError, match="cannot connect") as refused:
        hubsig.webhook(secret=SECRET, store=store)(lambda payload: None)
    assert "hunter2secret" not in str(refused.value)


def test_a_table_name_that_is_not_an_identifier_is_refused() -> None:
    pytest.importorskip("psycopg")
    from hubsig.stores.postgres import PostgresStore

    with pytest.raises(ConfigurationError, match="identifier"):
        PostgresStore("postgresql://127.0.0.1/db", table="events; DROP TABLE users")


def test_postgres_claims_of_overlapping_events_do_not_fail_on_deadlocks(postgres_url: str) -> None:
    import random
    import threading

    from hubsig.stores.postgres import PostgresStore

    store = PostgresStore(postgres_url, table=fresh_table())
    store.check()
    failures: list[BaseException] = []
    keys = [f"k{i}" for i in range(30)]

    def churn(seed: int) -> None:
        rng = random.Random(seed)
        token = f"t{seed}"
        try:
            for _ in range(40):
                chosen = rng.sample(keys, 8)
                verdicts = store.claim(chosen, 60, token)
                won = [k for k, v in zip(chosen, verdicts, strict=True) if v is Claim.CLAIMED]
                store.release(won, token)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=churn, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    assert failures == []
