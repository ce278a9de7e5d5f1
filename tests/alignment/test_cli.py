"""`tanya retrain`, `tanya adapters list|activate|rollback` as a user runs them (real subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alignment import registry
from storage import Database, JobStatus, TrainingJob
from tests.alignment.seed import ask
from tests.alignment.test_registry import add_version


def tanya(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TANYA_HOME": str(home), "TANYA_TRAIN_DEVICE": "cpu", "COLUMNS": "200"}
    env.pop("TANYA_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def test_adapters_list_activate_and_rollback(home: Path) -> None:
    database = Database.open(f"sqlite:///{home / 'tanya.db'}")
    adapters = home / "adapters"
    first = add_version(database, adapters, "tanya-first", seed=1)
    second = add_version(database, adapters, "tanya-second", seed=2)
    database.dispose()

    listed = tanya(home, "adapters", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(row["id"], row["status"]) for row in json.loads(listed.stdout)] == [
        (second, "candidate"),
        (first, "candidate"),
    ]

    assert tanya(home, "adapters", "activate", str(first)).returncode == 0
    result = tanya(home, "adapters", "activate", str(second))
    assert result.returncode == 0 and "tanya-second" in result.stdout
    table = tanya(home, "adapters", "list").stdout
    assert "tanya-second" in table and "active" in table and "retired" in table

    missing = tanya(home, "adapters", "activate", "999")
    assert missing.returncode == 2 and "no adapter with id 999" in missing.stderr

    rolled = tanya(home, "adapters", "rollback")
    assert rolled.returncode == 0 and "Rolled back tanya-second; tanya-first answers" in rolled.stdout

    weights = adapters / "tanya-second" / registry.WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-1])
    refused = tanya(home, "adapters", "activate", str(second))
    assert refused.returncode == 1 and "refused" in refused.stderr and "Traceback" not in refused.stderr
    rows = {
        row["name"]: row["status"] for row in json.loads(tanya(home, "adapters", "list", "--json").stdout)
    }
    assert rows == {"tanya-first": "active", "tanya-second": "rejected"}


@pytest.mark.model
def test_retrain_queues_one_job_and_wait_reports_not_enough_feedback(
    home: Path, checkpoint_dir: Path
) -> None:
    (home / "models").mkdir()
    (home / "models" / checkpoint_dir.name).symlink_to(checkpoint_dir, target_is_directory=True)
    database = Database.open(f"sqlite:///{home / 'tanya.db'}")
    ask(database, "One question?", "One answer.", up=1)

    first = tanya(home, "retrain")
    assert first.returncode == 0, first.stderr
    assert "Queued training job #1." in first.stdout
    again = tanya(home, "retrain")
    assert "Training job #1 is already queued" in again.stdout

    waited = tanya(home, "retrain", "--wait")
    assert waited.returncode == 0, waited.stderr
    assert "Not enough feedback yet: 1 training answers, need 8" in waited.stdout
    with database.session() as session:
        job = session.get(TrainingJob, 1)
        assert job is not None and job.status == JobStatus.succeeded
        assert job.metrics["outcome"] == "not_enough_feedback"
        assert job.metrics["data"]["train"]["sft"] + job.metrics["data"]["eval"]["sft"] == 1
    database.dispose()


def test_retrain_set_records_overrides_on_the_job_and_refuses_unknown_ones(home: Path) -> None:
    refused = tanya(home, "retrain", "--set", "sft_epochs=2", "--set", "no_such_option=1")
    assert refused.returncode == 2
    assert "no_such_option" in refused.stderr
    invalid = tanya(home, "retrain", "--set", "eval_fraction=1.5")
    assert invalid.returncode == 2 and "eval_fraction" in invalid.stderr

    queued = tanya(home, "retrain", "--set", "sft_epochs=2", "--set", "beta=0.2")
    assert queued.returncode == 0, queued.stderr
    database = Database.open(f"sqlite:///{home / 'tanya.db'}")
    try:
        with database.session() as session:
            jobs = session.query(TrainingJob).all()
            assert len(jobs) == 1  # the refused attempts queued nothing
            assert jobs[0].config == {"training": {"sft_epochs": 2, "beta": 0.2}}
    finally:
        database.dispose()
