from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from storage import Database, DatabaseError
from storage.models import ALL_TABLES, Base


def test_open_creates_schema_on_empty_database(database_url: str) -> None:
    db = Database.open(database_url)
    with db.engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
    assert set(ALL_TABLES) <= tables
    assert db.current_revision() == db.head_revision()
    db.dispose()


def test_migrations_match_the_models(database: Database) -> None:
    """A model change without a migration must fail here, not in production."""
    with database.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent(database: Database) -> None:
    database.upgrade()
    database.upgrade()
    assert database.current_revision() == database.head_revision()


def test_a_file_that_is_not_a_database_is_reported_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    content = b"these are my notes, not a database\n" * 200
    path.write_bytes(content)
    with pytest.raises(DatabaseError) as excinfo:
        Database.open(f"sqlite:///{path}")
    message = str(excinfo.value)
    assert "\n" not in message
    assert "not a database" in message
    assert path.read_bytes() == content


def test_unreachable_server_is_one_clear_line() -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    with pytest.raises(DatabaseError) as excinfo:
        Database.open("postgresql+psycopg://nobody@127.0.0.1:1/tanya")
    assert "\n" not in str(excinfo.value)
    assert "127.0.0.1:1" in str(excinfo.value)


def test_bad_url_is_reported() -> None:
    with pytest.raises(DatabaseError, match="cannot use database URL"):
        Database("nosuchdb://x")


def test_foreign_tables_are_not_touched(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    with db.engine.begin() as connection:
        connection.execute(text("CREATE TABLE accounts (id INTEGER PRIMARY KEY)"))
    with pytest.raises(DatabaseError, match="did not create"):
        db.ensure_schema()


@pytest.mark.postgres
def test_postgres_schema_behind_asks_for_db_upgrade(postgres_url: str) -> None:
    db = Database(postgres_url)
    db.upgrade()
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    with pytest.raises(DatabaseError, match="tanya db upgrade"):
        db.ensure_schema()
    db.dispose()


def test_data_survives_reopening(database_url: str) -> None:
    from storage.interactions import NewInteraction, record_interaction

    db = Database.open(database_url)
    with db.session() as session:
        record_interaction(session, NewInteraction(question="q", answer="a", prompt="p", generator="g"))
    db.dispose()
    db = Database.open(database_url)
    with db.session() as session:
        assert session.execute(text("SELECT count(*) FROM interactions")).scalar_one() == 1
    db.dispose()


def test_a_schema_created_by_another_process_meanwhile_is_accepted(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replicas starting together: this process saw no schema, another created it before the table look."""
    Database.open(database_url).dispose()  # the other process's schema, committed
    database = Database(database_url)
    looks = iter([None])  # the first look happened before the other process committed

    real = Database.current_revision
    monkeypatch.setattr(Database, "current_revision", lambda self: next(looks, real(self)))
    try:
        database.ensure_schema()  # must neither raise "tables tanya did not create" nor migrate again
        assert real(database) == database.head_revision()
    finally:
        database.dispose()
