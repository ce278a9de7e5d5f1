"""A `tanya worker` killed with SIGKILL in the middle of training: the active adapter is untouched, and
the next worker to start marks the job failed and clears the half-written adapter folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from alignment import registry
from storage import Database, JobStatus, TrainingJob
from storage.jobs import enqueue_job
from storage.models import AdapterStatus
from storage.stats import active_adapter
from tests.alignment.conftest import AdapterFactory
from tests.alignment.seed import seed_good_feedback, wait_for

pytestmark = pytest.mark.model


def _environment(home: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "TANYA_HOME": str(home),
        "TANYA_TRAIN_DEVICE": "cpu",
        "TANYA_TRAIN_MIN_ANSWERS": "2",
        "TANYA_TRAIN_SCHEDULE_MINUTES": "0",
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("TANYA_DATABASE_URL", None)
    return env


def test_a_worker_killed_mid_run_leaves_the_active_adapter_and_a_failed_job(
    tmp_path: Path, checkpoint_dir: Path, make_adapter: AdapterFactory
) -> None:
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / checkpoint_dir.name).symlink_to(checkpoint_dir, target_is_directory=True)
    adapters = home / "adapters"
    database = Database.open(f"sqlite:///{home / 'tanya.db'}")
    try:
        seed_good_feedback(database)
        staging = registry.staging_dir(adapters)
        make_adapter(staging, seed=7)
        path, digest = registry.publish(staging, adapters, "in-service")
        with database.session() as session:
            version = registry.register(
                session,
                name="in-service",
                path=path,
                sha256=digest,
                base_model=checkpoint_dir.name,
                metrics={},
                lineage={},
                parent_id=None,
            )
            registry.activate_version(session, version.id)
            active_id = version.id
            # Long enough that it is certainly still training when killed.
            job_id = enqueue_job(
                session, requested_by="test", config={"training": {"sft_max_steps": 500, "max_length": 320}}
            )[0].id

        worker = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker", "--once"],
            env=_environment(home),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:

            def training() -> bool:
                if worker.poll() is not None:
                    raise AssertionError(
                        f"the worker exited early: {worker.stderr.read() if worker.stderr else ''}"
                    )
                with database.session() as session:
                    job = session.get(TrainingJob, job_id)
                    progress = (job.metrics or {}).get("progress", {}) if job else {}
                    return bool(job and job.status == JobStatus.running and progress.get("stage") == "sft")

            wait_for(training, timeout=300, interval=0.2, what="the worker to start SFT")
            staged = [item for item in adapters.iterdir() if item.name.startswith(registry.STAGING_PREFIX)]
            assert staged, "the run should be writing into a staging folder"
            os.kill(worker.pid, signal.SIGKILL)
            assert worker.wait(60) == -signal.SIGKILL
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()

        # Killed: the job still says running, the active adapter is the same row and the same bytes.
        with database.session() as session:
            job = session.get(TrainingJob, job_id)
            assert job is not None and job.status == JobStatus.running
            current = active_adapter(session)
            assert current is not None and current.id == active_id and current.status == AdapterStatus.active
        registry.verify_adapter(path, digest)

        # The next worker to start fails the abandoned job (its process is gone) and cleans up.
        again = subprocess.run(
            [sys.executable, "-m", "bot", "worker", "--once"],
            env=_environment(home),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert again.returncode == 0, again.stderr
        with database.session() as session:
            job = session.get(TrainingJob, job_id)
            assert job is not None and job.status == JobStatus.failed
            assert "worker stopped before finishing" in (job.error or "")
            current = active_adapter(session)
            assert current is not None and current.id == active_id
        assert not [item for item in adapters.iterdir() if item.name.startswith(registry.STAGING_PREFIX)]
        assert sorted(item.name for item in adapters.iterdir()) == ["in-service"]
    finally:
        database.dispose()
