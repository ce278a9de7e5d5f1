"""Engine, sessions and schema upgrades for SQLite (the default) and PostgreSQL (production).

A CLI user should never have to run a migration by hand to try tanya, but an operator must stay in
control of a shared production database. So: a database with no tables at all is created on first
use; an existing SQLite file that is behind is upgraded in place (it belongs to one user); an existing
PostgreSQL schema that is behind is reported, and ``tanya db upgrade`` moves it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class DatabaseError(RuntimeError):
    """A database problem explained in one line a user can act on."""


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached or used just now (a server down, a
    connection cut, a file that cannot be opened), rather than a statement it refused: such work can be
    kept and applied later (``storage.spool``); an integrity error or a bug cannot."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
        return True
    return isinstance(exc, sqlalchemy.exc.TimeoutError)  # no connection free in the pool in time


def _describe(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite database {parsed.database or ':memory:'}"
    return f"{parsed.get_backend_name()} database at {parsed.render_as_string(hide_password=True)}"


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            # WAL lets the bot answer while the worker writes; foreign keys are off by default in SQLite.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    # A server that does not answer must fail fast: the work is spooled instead of hanging a listener.
    connect_args = {"connect_timeout": 5} if parsed.get_backend_name() == "postgresql" else {}
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=10, pool_timeout=10, connect_args=connect_args
    )


class Database:
    """One engine and session factory per process; cheap to pass around."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.description = _describe(url)
        try:
            self.engine = _make_engine(url)
        except (sqlalchemy.exc.ArgumentError, ModuleNotFoundError) as exc:
            raise DatabaseError(f"cannot use database URL {url!r}: {_first_line(exc)}") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @classmethod
    def open(cls, url: str, *, auto_upgrade: bool = True) -> Database:
        """Connect, check the schema and (per the module docstring) bring it up to date."""
        db = cls(url)
        if auto_upgrade:
            db.ensure_schema()
        else:
            db.check()
        return db

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any exception."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def check(self) -> None:
        """Raise DatabaseError with a one-line reason if the database cannot be used."""
        try:
            with self.engine.connect() as connection:
                inspect(connection).get_table_names()
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise DatabaseError(f"cannot use the {self.description}: {_first_line(exc)}") from exc

    def _alembic_config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return config

    def head_revision(self) -> str:
        heads = ScriptDirectory.from_config(self._alembic_config()).get_heads()
        return heads[0]

    def current_revision(self) -> str | None:
        try:
            with self.engine.connect() as connection:
                return MigrationContext.configure(connection).get_current_revision()
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise DatabaseError(f"cannot use the {self.description}: {_first_line(exc)}") from exc

    def upgrade(self, revision: str = "head") -> None:
        """Apply the bundled migrations; safe to run repeatedly and from several processes on PostgreSQL."""
        config = self._alembic_config()
        try:
            with self.engine.begin() as connection:
                if self.is_postgresql:
                    # Serialise concurrent upgrades (several replicas starting at once).
                    connection.exec_driver_sql("SELECT pg_advisory_xact_lock(724271001)")
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise DatabaseError(f"cannot upgrade the {self.description}: {_first_line(exc)}") from exc

    def ensure_schema(self) -> None:
        self.check()
        current = self.current_revision()
        head = self.head_revision()
        if current == head:
            return
        with self.engine.connect() as connection:
            has_tables = bool(inspect(connection).get_table_names())
        if current is None and has_tables:
            # Another process may have created the schema between the two looks (replicas starting together).
            current = self.current_revision()
            if current == head:
                return
        if current is None and has_tables:
            raise DatabaseError(
                f"the {self.description} already holds tables that tanya did not create; "
                "point TANYA_DATABASE_URL at an empty database"
            )
        if current is None or self.is_sqlite:
            log.info("upgrading %s from %s to %s", self.description, current or "empty", head)
            self.upgrade()
            return
        raise DatabaseError(
            f"the {self.description} schema is at revision {current} but this tanya needs {head}: "
            "run `tanya db upgrade`"
        )

    def dispose(self) -> None:
        self.engine.dispose()
