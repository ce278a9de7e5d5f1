"""Full re-training runs on the bundled SmolLM2 (a handful of CPU steps each).

1. Good feedback → SFT then DPO → the gate promotes → a registered, active adapter that changes answers.
2. A batch of 👍 on a wrong canned answer → the candidate is better on its own held-out copies of the
   mistake but worse on the regression set → rejected, kept with its metrics; the active adapter stays.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alignment import registry
from alignment.pipeline import NOT_ENOUGH_FEEDBACK, PROMOTED, REFUSED, REJECTED, RunOutcome, RunPaths, retrain
from storage import AdapterStatus, AdapterVersion, Database
from storage.stats import active_adapter
from tests.alignment.conftest import tiny_config
from tests.alignment.seed import answers_before_and_after, ask, seed_good_feedback, seed_poisoned_feedback

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def promoted(
    tmp_path_factory: pytest.TempPathFactory, checkpoint_dir: Path
) -> tuple[Database, RunOutcome, Path]:
    home = tmp_path_factory.mktemp("promote")
    database = Database.open(f"sqlite:///{home / 'tanya.db'}")
    seed_good_feedback(database)
    outcome = retrain(
        database, tiny_config(), RunPaths(checkpoint_dir, home / "adapters"), job_id=None, show_progress=False
    )
    yield database, outcome, home
    database.dispose()


def test_good_feedback_trains_sft_then_dpo_and_is_promoted(
    promoted: tuple[Database, RunOutcome, Path], checkpoint_dir: Path
) -> None:
    database, outcome, home = promoted
    assert outcome.status == PROMOTED, outcome.message
    assert outcome.metrics["plan"] == ["sft", "dpo"]
    assert outcome.metrics["training"]["steps"] == {"sft": 3, "dpo": 2}
    gate = outcome.metrics["gate"]
    assert gate["promote"] and gate["baseline"] == "base model"
    assert gate["new"]["answer_nll"] < gate["old"]["answer_nll"] - 0.02
    assert gate["new"]["regression_nll"] <= gate["old"]["regression_nll"]
    assert gate["new"]["reward_margin"] > 0
    # The gate also let the base model and the candidate write answers to the held-out corrections'
    # prompts; this feedback holds out too few of them to decide on, so the F1 guard only reports.
    assert 0.0 <= gate["old"]["answer_f1"] <= 100.0 and "answer_exact" in gate["new"]
    assert gate["new"]["answer_count"] < tiny_config().gate_min_written_answers
    assert "stage_choice" not in gate
    assert "held-out written answers" in {check["name"] for check in gate["checks"]}

    with database.session() as session:
        version = active_adapter(session)
        assert version is not None and version.id == outcome.adapter_id
        assert version.status == AdapterStatus.active and version.base_model == "smollm2-135m-instruct"
        assert version.metrics["gate"]["promote"] is True
        assert version.lineage["train"]["votes"] and version.lineage["eval"]["interactions"]
        base_digest = version.lineage["base"]["sha256"]
        path, sha256 = Path(version.path), version.sha256
    assert path.parent == home / "adapters"
    registry.verify_adapter(path, sha256)
    # The adapter names its base, so that no other base (same shapes or not) will load it.
    from retrieval.generation.base_identity import identify_checkpoint, recorded_identity

    assert recorded_identity(path) == identify_checkpoint(checkpoint_dir)
    assert base_digest == identify_checkpoint(checkpoint_dir).digest
    assert not [item for item in path.parent.iterdir() if item.name.startswith(".")], "staging left behind"


def test_the_run_leaves_a_plot_summary_and_training_log(promoted: tuple[Database, RunOutcome, Path]) -> None:
    _, outcome, _ = promoted
    folder = outcome.adapter_path
    assert folder is not None
    assert (folder / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["gate"]["promote"] and summary["plan"]["stages"] == ["sft", "dpo"]
    assert "| held-out answer loss ↓ |" in (folder / "summary.md").read_text()
    records = [json.loads(line) for line in (folder / "training_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r.get("stage") == "sft" and "loss" in r] == [1, 2, 3]
    assert any("rewards/margins" in r for r in records if r.get("stage") == "dpo")


def test_the_promoted_adapter_changes_the_answers(
    promoted: tuple[Database, RunOutcome, Path], checkpoint_dir: Path
) -> None:
    _, outcome, _ = promoted
    base, tuned = answers_before_and_after(checkpoint_dir, outcome.adapter_name, outcome.adapter_path)
    assert tuned.meta["adapter"] == outcome.adapter_name
    assert tuned.text != base.text


def test_a_poisoned_batch_of_thumbs_up_is_rejected(
    promoted: tuple[Database, RunOutcome, Path], tmp_path: Path, checkpoint_dir: Path
) -> None:
    _, good, _ = promoted
    database = Database.open(f"sqlite:///{tmp_path / 'tanya.db'}")
    try:
        seed_poisoned_feedback(database)
        # The team's current, good adapter is active; the poisoned run is compared against it.
        adapters = tmp_path / "adapters"
        adapters.mkdir()
        staging = registry.staging_dir(adapters)
        for item in good.adapter_path.iterdir():  # type: ignore[union-attr]
            (staging / item.name).write_bytes(item.read_bytes())
        path, digest = registry.publish(staging, adapters, "team-adapter")
        with database.session() as session:
            version = registry.register(
                session,
                name="team-adapter",
                path=path,
                sha256=digest,
                base_model="smollm2-135m-instruct",
                metrics={},
                lineage={},
                parent_id=None,
            )
            registry.activate_version(session, version.id)
            active_id = version.id

        outcome = retrain(database, tiny_config(), RunPaths(checkpoint_dir, adapters), show_progress=False)

        assert outcome.status == REJECTED, outcome.message
        gate = outcome.metrics["gate"]
        assert gate["baseline"] == "team-adapter"
        checks = {check["name"]: check["passed"] for check in gate["checks"]}
        assert checks["regression set"] is False
        assert gate["new"]["regression_nll"] > gate["old"]["regression_nll"]
        with database.session() as session:
            assert active_adapter(session).id == active_id  # type: ignore[union-attr]
            rejected = session.get(AdapterVersion, outcome.adapter_id)
            assert rejected is not None and rejected.status == AdapterStatus.rejected
            assert rejected.metrics["gate"]["new"]["regression_nll"] == gate["new"]["regression_nll"]
            assert "regression" in rejected.metrics["rejected_reason"]
        assert (outcome.adapter_path / "report.png").is_file()  # type: ignore[operator]
    finally:
        database.dispose()


def test_too_little_feedback_ends_as_not_enough_feedback(tmp_path: Path, checkpoint_dir: Path) -> None:
    database = Database.open(f"sqlite:///{tmp_path / 'tanya.db'}")
    try:
        ask(database, "Only question?", "Only answer.", up=1)
        outcome = retrain(
            database, tiny_config(), RunPaths(checkpoint_dir, tmp_path / "adapters"), show_progress=False
        )
        assert outcome.status == NOT_ENOUGH_FEEDBACK
        assert outcome.message.startswith("Not enough feedback yet")
        assert outcome.adapter_id is None and not (tmp_path / "adapters").exists()
    finally:
        database.dispose()


def test_an_adapter_the_model_server_would_refuse_is_not_registered(
    tmp_path: Path, checkpoint_dir: Path
) -> None:
    """With answers from vLLM (served_max_lora_rank set), rank 4 — not one of vLLM's ranks — is refused
    after training and before the gate: no row, no adapter folder, and the reason in the message."""
    database = Database.open(f"sqlite:///{tmp_path / 'tanya.db'}")
    try:
        seed_good_feedback(database)
        config = tiny_config(served_max_lora_rank=16, lora_r=4, preference_max_steps=1, sft_max_steps=1)
        outcome = retrain(
            database, config, RunPaths(checkpoint_dir, tmp_path / "adapters"), show_progress=False
        )
        assert outcome.status == REFUSED, outcome.message
        assert "rank 4 is not one of vLLM's LoRA ranks" in outcome.message
        with database.session() as session:
            assert session.query(AdapterVersion).count() == 0
        assert not [p for p in (tmp_path / "adapters").iterdir() if not p.name.startswith(".")]
    finally:
        database.dispose()
