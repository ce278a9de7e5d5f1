"""Training in a launched subprocess: the command line, the worker's side, and real launches on CPU.

`accelerate launch` and torchrun start the very module a GPU worker would run (`bot.train_launch`); here
they do on CPU, with one process, and with two (gloo), which exercises everything but the GPUs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from alignment.distributed import SINGLE, Processes
from alignment.launch import read_outcome
from alignment.registry import list_versions
from alignment.worker import Worker, WorkerConfig
from bot.training import launch_command, launcher_runner, parse_overrides
from storage import Database, JobStatus, TrainingJob
from storage.jobs import enqueue_job
from tests.alignment.seed import seed_good_feedback, wait_for
from tests.conftest import REPO_ROOT

FAKE_RUN = Path(__file__).with_name("fake_launched_run.py")
FAST = WorkerConfig(poll_seconds=0.01, heartbeat_seconds=0.05, schedule_minutes=0)
ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch"]


@pytest.fixture
def database(sqlite_url: str) -> Iterator[Database]:
    """SQLite only: the subject is the subprocess; the job queue runs on both databases elsewhere."""
    db = Database.open(sqlite_url)
    yield db
    db.dispose()


def _job(database: Database, job_id: int) -> TrainingJob:
    with database.session() as session:
        job = session.get(TrainingJob, job_id)
        assert job is not None
        return job


def _queue(database: Database) -> int:
    with database.session() as session:
        return enqueue_job(session, requested_by="U1")[0].id


def test_the_launch_command_appends_the_module_and_the_job() -> None:
    command = launch_command(
        "accelerate launch --config_file 'deploy/accelerate/ddp.yaml' --num_processes 4", 7, Path("/t/o.json")
    )
    assert command == [
        "accelerate",
        "launch",
        "--config_file",
        "deploy/accelerate/ddp.yaml",
        "--num_processes",
        "4",
        "-m",
        "bot.train_launch",
        "--job-id",
        "7",
        "--result",
        "/t/o.json",
    ]
    with pytest.raises(ValueError, match="empty"):
        launch_command("  ", 1, Path("x"))
    assert parse_overrides(["sft_max_steps=10", "target_modules=q_proj,v_proj", "quantize_4bit=false"]) == {
        "sft_max_steps": 10,
        "target_modules": "q_proj,v_proj",
        "quantize_4bit": False,
    }


def _accelerate_env(config: str) -> tuple[object, dict[str, str]]:
    """What `accelerate launch --config_file <config>` would set for its processes (no GPU needed)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    args = launch_command_parser().parse_args(
        ["--config_file", str(REPO_ROOT / config), "-m", "bot.train_launch"]
    )
    args, _, _ = _validate_launch_command(args)
    return args, prepare_multi_gpu_env(args)


def test_the_ddp_config_launches_one_process_per_gpu_in_bf16() -> None:
    args, env = _accelerate_env("deploy/accelerate/ddp.yaml")
    assert args.multi_gpu and not args.use_fsdp and args.num_processes == 2  # type: ignore[attr-defined]
    assert env["ACCELERATE_MIXED_PRECISION"] == "bf16" and "ACCELERATE_USE_FSDP" not in env


def test_the_fsdp_config_sets_what_qlora_under_fsdp_needs() -> None:
    _, env = _accelerate_env("deploy/accelerate/fsdp.yaml")
    assert env["ACCELERATE_USE_FSDP"] == "true" and env["FSDP_VERSION"] == "1"
    assert env["FSDP_STATE_DICT_TYPE"] == "FULL_STATE_DICT"  # else the Trainer writes no adapter file
    assert env["FSDP_USE_ORIG_PARAMS"] == "false" and env["FSDP_AUTO_WRAP_POLICY"] == "TRANSFORMER_BASED_WRAP"
    assert env["FSDP_CPU_RAM_EFFICIENT_LOADING"] == "true" and env["FSDP_SYNC_MODULE_STATES"] == "true"


def test_a_single_process_needs_no_collectives() -> None:
    assert SINGLE.is_main and not SINGLE.launched and SINGLE.share({"x": 1}) == {"x": 1}
    assert SINGLE.cuda_device_map() == {"": 0}
    assert Processes(count=4, index=2, local_index=2).cuda_device_map() == {"": 2}
    assert Processes(count=4, index=1, local_index=1, sharding="fsdp").cuda_device_map() is None
    with pytest.raises(ValueError, match="sharding"):
        Processes(sharding="zero")


def test_the_worker_runs_a_job_in_the_launched_process(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = _queue(database)
    release = tmp_path / "release"
    monkeypatch.setenv("TANYA_TEST_RELEASE", str(release))  # the launched run inherits the environment
    worker = Worker(database, launcher_runner(f"{sys.executable} {FAKE_RUN} ok"), FAST)
    thread = threading.Thread(target=worker.run_once)
    thread.start()
    try:

        def running_in_sft() -> bool:
            job = _job(database, job_id)
            return (
                job.status == JobStatus.running
                and (job.metrics or {}).get("progress", {}).get("stage") == "sft"
            )

        wait_for(running_in_sft, timeout=60, what="the launched run's progress to reach the job row")
    finally:
        release.touch()
        thread.join(60)
    job = _job(database, job_id)
    assert job.status == JobStatus.succeeded and job.error is None
    assert (
        job.metrics["outcome"] == "promoted"
        and job.metrics["message"] == f"Adapter tanya-job{job_id} is now active."
    )
    assert job.adapter_id is None and job.lineage == {"train": {"votes": [1, 2]}}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("fail", "training subprocess exited with status 3: RuntimeError: CUDA out of memory"),
        ("silent", "training subprocess ended without writing its outcome"),
    ],
)
def test_a_failed_launch_fails_the_job_with_its_reason(database: Database, mode: str, expected: str) -> None:
    job_id = _queue(database)
    finished = Worker(database, launcher_runner(f"{sys.executable} {FAKE_RUN} {mode}"), FAST).run_once()
    assert finished is not None and finished.status == JobStatus.failed
    job = _job(database, job_id)
    assert job.status == JobStatus.failed and job.error is not None
    assert job.error.startswith(f"LaunchError: {expected}")


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux's")
def test_a_killed_worker_takes_its_launched_run_with_it(tmp_path: Path) -> None:
    pidfile = tmp_path / "run.pid"
    worker_code = (
        "import sys, types\n"
        "from bot.training import launcher_runner\n"
        "launcher_runner(sys.argv[1])(types.SimpleNamespace(id=1), lambda record: None)\n"
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", worker_code, f"{sys.executable} {FAKE_RUN} hang"],
        env={**os.environ, "TANYA_TEST_PIDFILE": str(pidfile)},
        cwd=REPO_ROOT,
    )
    try:
        run_pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text(), timeout=60, what="the run"))
        worker.kill()  # SIGKILL: no handler of the worker's runs
        worker.wait(30)

        def gone() -> bool:  # exited (a zombie waiting for init to reap it counts)
            try:
                stat = Path(f"/proc/{run_pid}/stat").read_text()
            except FileNotFoundError:
                return True
            return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")

        wait_for(gone, timeout=30, what="the launched run to stop with its worker")
    finally:
        worker.kill()


def test_tanya_worker_uses_the_launcher_setting(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    url = f"sqlite:///{home / 'tanya.db'}"
    db = Database.open(url)
    job_id = _queue(db)
    environment = {
        **os.environ,
        "TANYA_HOME": str(home),
        "TANYA_DATABASE_URL": url,
        "TANYA_TRAIN_LAUNCHER": f"{sys.executable} {FAKE_RUN} fail",
        "TANYA_TRAIN_SCHEDULE_MINUTES": "0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot", "worker", "--once"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (
        f"training job #{job_id} failed: LaunchError: training subprocess exited with status 3"
        in result.stderr
    )
    job = _job(db, job_id)
    assert job.status == JobStatus.failed and "CUDA out of memory" in (job.error or "")
    assert not (home / "models").exists()  # the worker itself loaded no model
    db.dispose()


def test_accelerate_launch_runs_the_entry_point() -> None:
    result = subprocess.run(
        [*ACCELERATE, "--cpu", "--num_processes", "1", "-m", "bot.train_launch", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: python -m bot.train_launch" in result.stdout and "--dry-run" in result.stdout


def _launch_env(tmp_path: Path, checkpoint_dir: Path) -> tuple[dict[str, str], Database]:
    url = f"sqlite:///{tmp_path / 'tanya.db'}"
    db = Database.open(url)
    seed_good_feedback(db)
    environment = {
        **os.environ,
        "TANYA_HOME": str(tmp_path / "home"),
        "TANYA_DATABASE_URL": url,
        "TANYA_GENERATOR": str(checkpoint_dir),  # the converted bundled model, trained as the base
        "TANYA_TRAIN_DEVICE": "cpu",
    }
    return environment, db


@pytest.mark.model
def test_a_dry_run_through_accelerate_builds_the_datasets_and_plan(
    tmp_path: Path, checkpoint_dir: Path
) -> None:
    environment, db = _launch_env(tmp_path, checkpoint_dir)
    result = subprocess.run(
        [
            *ACCELERATE,
            "--cpu",
            "--num_processes",
            "1",
            "-m",
            "bot.train_launch",
            "--dry-run",
            "--set",
            "min_sft_rows=4",
        ],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO_ROOT,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (summary,) = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert summary["plan"]["stages"] == ["sft", "dpo"] and summary["data"]["train"]["sft"] > 0
    assert (summary["processes"], summary["sharding"], summary["device"]) == (1, "none", "cpu")
    assert not (tmp_path / "home" / "adapters").exists()  # nothing trained, nothing written
    db.dispose()


@pytest.mark.model
def test_two_processes_train_one_adapter_and_register_it_once(tmp_path: Path, checkpoint_dir: Path) -> None:
    """torchrun with two CPU processes (gloo): DDP as on two GPUs, with a handful of steps."""
    environment, db = _launch_env(tmp_path, checkpoint_dir)
    outcome_file = tmp_path / "outcome.json"
    tiny = ["min_sft_rows=4", "sft_max_steps=2", "preference_max_steps=1", "lora_r=4", "batch_size=1"]
    tiny += ["max_length=320", "max_eval_rows=2"]
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "bot.train_launch"]
        + ["--result", str(outcome_file)]
        + [arg for item in tiny for arg in ("--set", item)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO_ROOT,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    progress = [line for line in result.stdout.splitlines() if line.startswith("tanya-progress ")]
    begins = [line for line in progress if '"event": "begin"' in line]
    assert len(begins) == 2  # sft and dpo, reported by the main process only
    outcome = read_outcome(outcome_file)
    assert outcome.status in ("promoted", "rejected") and outcome.adapter_path is not None
    assert outcome.metrics["training"]["steps"] == {"sft": 2, "dpo": 1}
    with db.session() as session:
        (version,) = list_versions(session)
    assert version.name == outcome.adapter_name
    adapters = tmp_path / "home" / "adapters"
    assert [p.name for p in adapters.iterdir()] == [outcome.adapter_name]  # no staging folder left behind
    assert (outcome.adapter_path / "adapter_model.safetensors").is_file()
    db.dispose()
