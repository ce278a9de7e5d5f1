"""The adapter registry: atomic publication, sha256 verification, activation and rollback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alignment import registry
from alignment.registry import AdapterIntegrityError, RegistryError
from storage import AdapterStatus, Database
from storage.stats import active_adapter
from tests.alignment.seed import activate, register_staged


def stage_adapter(adapters_dir: Path, seed: int) -> Path:
    """A staged adapter folder in the layout peft writes (tiny tensors; the registry only hashes them)."""
    import torch
    from safetensors.torch import save_file

    staging = registry.staging_dir(adapters_dir)
    generator = torch.Generator().manual_seed(seed)
    save_file(
        {"base_model.model.layer.lora_A.weight": torch.randn(4, 8, generator=generator)},
        str(staging / registry.WEIGHTS_FILE),
    )
    (staging / registry.CONFIG_FILE).write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    return staging


def add_version(database: Database, adapters_dir: Path, name: str, seed: int = 0) -> int:
    return register_staged(database, stage_adapter(adapters_dir, seed), adapters_dir, name)


def statuses(database: Database) -> dict[str, str]:
    with database.session() as session:
        return {version.name: str(version.status) for version in registry.list_versions(session)}


def test_publish_is_a_rename_of_a_complete_folder(tmp_path: Path) -> None:
    staging = stage_adapter(tmp_path, seed=1)
    assert staging.name.startswith(f".staging-{os.getpid()}-")
    path, digest = registry.publish(staging, tmp_path, "v1")
    assert path == tmp_path / "v1" and not staging.exists()
    assert digest == registry.sha256_file(path / registry.WEIGHTS_FILE)
    registry.verify_adapter(path, digest)
    with pytest.raises(AdapterIntegrityError, match="already exists"):
        registry.publish(stage_adapter(tmp_path, seed=2), tmp_path, "v1")


def test_verify_refuses_missing_truncated_or_replaced_weights(tmp_path: Path) -> None:
    path, digest = registry.publish(stage_adapter(tmp_path, seed=1), tmp_path, "v1")
    weights = path / registry.WEIGHTS_FILE
    original = weights.read_bytes()
    weights.write_bytes(original[: len(original) // 2])
    with pytest.raises(AdapterIntegrityError, match="sha256"):
        registry.verify_adapter(path, digest)
    weights.write_bytes(original)
    registry.verify_adapter(path, digest)
    with pytest.raises(AdapterIntegrityError, match="no recorded sha256"):
        registry.verify_adapter(path, None)
    weights.unlink()
    with pytest.raises(AdapterIntegrityError, match="not a complete adapter"):
        registry.verify_adapter(path, digest)


def test_stale_staging_folders_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    leftover = tmp_path / f"{registry.STAGING_PREFIX}{int(dead.stdout)}-abcd1234"
    leftover.mkdir()
    mine = registry.staging_dir(tmp_path)
    assert registry.clean_stale_staging(tmp_path) == 1
    assert not leftover.exists() and mine.exists()


def test_activation_keeps_exactly_one_active_and_refuses_corrupt_files(
    database: Database, tmp_path: Path
) -> None:
    first = add_version(database, tmp_path, "v1", seed=1)
    second = add_version(database, tmp_path, "v2", seed=2)
    assert statuses(database) == {"v1": "candidate", "v2": "candidate"}
    activate(database, first)
    activate(database, second)
    assert statuses(database) == {"v1": "retired", "v2": "active"}

    third = add_version(database, tmp_path, "v3", seed=3)
    weights = tmp_path / "v3" / registry.WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-10])  # half-written / corrupted after registration
    with pytest.raises(AdapterIntegrityError), database.session() as session:
        registry.activate_version(session, third)
    assert statuses(database)["v2"] == "active" and statuses(database)["v3"] == "candidate"

    with pytest.raises(RegistryError), database.session() as session:
        registry.activate_version(session, 999)


def test_rollback_walks_back_through_activations_to_the_base_model(
    database: Database, tmp_path: Path
) -> None:
    ids = [add_version(database, tmp_path, f"v{n}", seed=n) for n in (1, 2, 3)]
    for version_id in ids:
        activate(database, version_id)
    # v2's files went missing: rollback skips it rather than activating a broken adapter.
    (tmp_path / "v2" / registry.WEIGHTS_FILE).unlink()

    with database.session() as session:
        result = registry.rollback(session)
    assert (result.rolled_back, result.now_active) == ("v3", "v1")
    assert statuses(database) == {"v1": "active", "v2": "retired", "v3": "rejected"}

    with database.session() as session:
        result = registry.rollback(session)
    assert (result.rolled_back, result.now_active) == ("v1", None)
    with database.session() as session:
        assert active_adapter(session) is None
        with pytest.raises(RegistryError, match="no adapter is active"):
            registry.rollback(session)

    activate(database, ids[2])  # an admin may re-activate a rolled-back version explicitly
    with database.session() as session:
        current = active_adapter(session)
        assert current is not None and current.name == "v3" and current.status == AdapterStatus.active


def test_reject_keeps_the_reason(database: Database, tmp_path: Path) -> None:
    version_id = add_version(database, tmp_path, "v1")
    with database.session() as session:
        registry.reject_version(session, version_id, reason="regression loss worse")
    with database.session() as session:
        (version,) = registry.list_versions(session)
        assert version.status == AdapterStatus.rejected
        assert version.metrics["rejected_reason"] == "regression loss worse"
