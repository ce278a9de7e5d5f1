"""Fixtures shared by every test folder: isolated data dirs and databases on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
# The tests that only need *a* language model run the bundled SmolLM2, half the default Gemma's size and
# with a 49k rather than a 262k vocabulary, so that the suite's many few-step trainings and answers stay
# fast. The default itself (Gemma 3 270M with its starter adapter) is what tests/bot/test_starter_default.py
# and tests/alignment/test_gemma_base.py run, with TANYA_GENERATOR unset or set to it.
TEST_GENERATOR = "smollm2-135m-instruct"
os.environ.setdefault("TANYA_GENERATOR", TEST_GENERATOR)

POSTGRES_ADMIN_URL = os.environ.get(
    "TANYA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_ROOT.parent / "shared"


def _postgres_unavailable_reason() -> str | None:
    try:
        engine = create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL at {make_url(POSTGRES_ADMIN_URL).render_as_string()} is unreachable: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    reason = _postgres_unavailable_reason()
    if reason:
        pytest.skip(reason)
    return POSTGRES_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A brand-new, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"tanya_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tanya.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def database(database_url: str):  # type: ignore[no-untyped-def]
    from storage import Database

    db = Database.open(database_url)
    yield db
    db.dispose()


@pytest.fixture
def tanya_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


# -- the bundled language model, shared by every folder's tests ---------------------------------------


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the bundled model is converted: TANYA_TEST_MODEL_CACHE, else a folder next to pytest's
    temporary folders that outlives one run, so that conversion (20-40 s) happens once per machine."""
    configured = os.environ.get("TANYA_TEST_MODEL_CACHE")
    path = Path(configured) if configured else tmp_path_factory.getbasetemp().parent / "tanya-model-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def checkpoint_dir(model_cache: Path) -> Path:
    """The test model (SmolLM2, see TEST_GENERATOR) as a transformers checkpoint, converted on first use."""
    from retrieval.generation.checkpoint import ensure_checkpoint  # lazy: most tests need no model

    return ensure_checkpoint(model_cache, TEST_GENERATOR)
