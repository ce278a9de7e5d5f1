"""The image installs tanya from a wheel, not from the source tree. Build that wheel, check it carries the
files the code reads at run time, install it alone into a fresh environment and run it there: a wheel
without its migrations or its regression set fails here instead of in production.

No network: the wheel is built without build isolation (the project environment's setuptools) and
installed with --no-deps; its dependencies come from the project environment through a .pth file.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.deploy.helpers import REPO

PACKAGING_FILES = ("pyproject.toml", "README.md", "LICENSE")


def _run(
    argv: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: int = 120
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, argv))} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    )
    return result


def source_packages() -> list[str]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(
        path.name
        for path in REPO.iterdir()
        if path.is_dir() and (path / "__init__.py").is_file() and any(path.match(p) for p in patterns)
    )


def runtime_data_files() -> list[str]:
    """Every file in the packages that is not Python source: the code reads these at run time
    (Alembic's migration template, alignment/data/regression.jsonl, …)."""
    files = []
    for package in source_packages():
        for path in (REPO / package).rglob("*"):
            relative = path.relative_to(REPO)
            if path.is_file() and "__pycache__" not in relative.parts and path.suffix not in (".py", ".pyc"):
                files.append(relative.as_posix())
    return sorted(files)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a clean copy of the tree (a stale build/ folder in the checkout could
    otherwise smuggle in files the packaging configuration no longer ships)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    source.mkdir()
    for name in PACKAGING_FILES:
        shutil.copy2(REPO / name, source / name)
    for package in source_packages():
        shutil.copytree(
            REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    out = root / "dist"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--wheel-dir",
            str(out),
            str(source),
        ],
        cwd=root,
    )
    (built,) = out.glob("tanya-*.whl")
    return built


def test_the_wheel_carries_every_file_the_code_reads(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "tanya = bot.cli:app" in archive.read(entry_points).decode()
    missing = [name for name in runtime_data_files() if name not in names]
    assert not missing, (
        f"the wheel (and so the Docker image) lacks {missing}: add them to "
        "[tool.setuptools.package-data] in pyproject.toml"
    )
    migrations = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "storage/migrations").rglob("*.py"))
    assert migrations and set(migrations) <= names, "the Alembic migrations are not all in the wheel"


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment holding only the wheel; the dependencies resolve from this project's
    environment, listed after the new site-packages so that tanya itself is the wheel's copy."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=venv.parent)
    python = venv / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # Plain paths, not `import site; site.addsitedir(…)`: that would also run the project environment's
    # .pth files, among them the editable install that points back at the source tree.
    dependencies = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site_packages / "project-dependencies.pth").write_text("\n".join(sorted(dependencies)) + "\n")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            str(wheel),
        ],
        cwd=venv.parent,
    )
    return venv


def _environment(home: Path) -> dict[str, str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("TANYA_", "SLACK_", "PYTHON"))
    }
    environment.update(TANYA_HOME=str(home), PYTHONNOUSERSITE="1", HF_HUB_OFFLINE="1")
    return environment


def test_tanya_runs_from_the_installed_wheel(installed: Path, tmp_path: Path) -> None:
    environment = _environment(tmp_path / "home")
    # Imported from the new environment, not from the checkout, and the data files are where the code looks.
    probe = _run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import storage.database as d, alignment.regression as r; "
            "print(d.MIGRATIONS_DIR); print(r.REGRESSION_FILE.is_file())",
        ],
        cwd=tmp_path,
        env=environment,
    )
    migrations_dir, regression_found = probe.stdout.split()
    assert Path(migrations_dir).is_relative_to(installed), migrations_dir
    assert regression_found == "True", "alignment/data/regression.jsonl is not installed"

    help_text = _run([str(installed / "bin" / "tanya"), "--help"], cwd=tmp_path, env=environment).stdout
    assert "serve" in help_text and "worker" in help_text


def test_db_upgrade_runs_the_packaged_migrations(installed: Path, tmp_path: Path) -> None:
    database = tmp_path / "tanya.db"
    environment = {**_environment(tmp_path / "home"), "TANYA_DATABASE_URL": f"sqlite:///{database}"}
    tanya = str(installed / "bin" / "tanya")
    # rich wraps lines at the terminal width: compare with the whitespace collapsed.
    first = " ".join(_run([tanya, "db", "upgrade"], cwd=tmp_path, env=environment).stdout.split())
    assert "Upgraded" in first, first
    again = " ".join(_run([tanya, "db", "upgrade"], cwd=tmp_path, env=environment).stdout.split())
    assert "is up to date" in again, again
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"alembic_version", "adapter_versions", "training_jobs"} <= tables, tables
