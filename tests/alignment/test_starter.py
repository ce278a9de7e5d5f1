"""The starter adapter shipped in the package: installed once, active on a fresh install, the rollback floor."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from alignment import registry
from alignment.registry import RegistryError
from alignment.starter import MANIFEST_FILE, install_starter, packaged_starter
from storage import AdapterStatus, Database
from storage.stats import active_adapter
from tests.alignment.test_registry import add_version, stage_adapter, statuses

BASE = "gemma3-270m"


def package_starter(starters_dir: Path, *, name: str = "starter-test-v1") -> Path:
    """A starter folder as the package ships one: weights, config, card and manifest with the checksum."""
    staging = stage_adapter(starters_dir, seed=7)
    folder = starters_dir / BASE
    staging.rename(folder)
    (folder / "MODEL_CARD.md").write_text("# test starter\n")
    digest = registry.sha256_file(folder / registry.WEIGHTS_FILE)
    manifest = {"name": name, "base_model": BASE, "sha256": digest, "scores": {"en": {"f1": 1.0}}}
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    return folder


def test_the_shipped_gemma_starter_matches_its_checksum() -> None:
    shipped = packaged_starter(BASE)
    if shipped is None:
        pytest.skip("no starter adapter is packaged for gemma3-270m in this checkout")
    registry.verify_adapter(shipped.folder, shipped.sha256)
    assert (shipped.folder / "MODEL_CARD.md").is_file(), "the model card ships beside the weights"


def test_a_fresh_install_answers_with_the_starter_once(database: Database, tmp_path: Path) -> None:
    starters, adapters = tmp_path / "starters", tmp_path / "adapters"
    package_starter(starters)
    with database.session() as session:
        version = install_starter(session, adapters, BASE, starters_dir=starters)
        assert version is not None and version.status == AdapterStatus.active
        assert (version.lineage or {}).get("starter") is True
    with database.session() as session:
        again = install_starter(session, adapters, BASE, starters_dir=starters)
        assert again is not None and again.id == version.id, "installed once"
        active = active_adapter(session)
        assert active is not None and active.name == "starter-test-v1"
        registry.verify_adapter(Path(active.path), active.sha256)
        assert Path(active.path).parent == adapters and (Path(active.path) / "MODEL_CARD.md").is_file()
    with database.session() as session:
        assert install_starter(session, adapters, "smollm2-135m-instruct", starters_dir=starters) is None


def test_a_team_that_chose_an_adapter_keeps_it(database: Database, tmp_path: Path) -> None:
    starters, adapters = tmp_path / "starters", tmp_path / "adapters"
    package_starter(starters)
    team = add_version(database, adapters, "team-v1")
    with database.session() as session:
        registry.activate_version(session, team)
    with database.session() as session:
        version = install_starter(session, adapters, BASE, starters_dir=starters)
        assert version is not None and version.status == AdapterStatus.retired
    assert statuses(database) == {"starter-test-v1": "retired", "team-v1": "active"}


def test_an_upgrade_replaces_an_older_starter_but_never_a_team_choice(
    database: Database, tmp_path: Path
) -> None:
    adapters = tmp_path / "adapters"
    package_starter(tmp_path / "old", name="starter-test-v1")
    package_starter(tmp_path / "new", name="starter-test-v2")
    with database.session() as session:
        install_starter(session, adapters, BASE, starters_dir=tmp_path / "old")
    with database.session() as session:
        install_starter(session, adapters, BASE, starters_dir=tmp_path / "new")
    assert statuses(database) == {"starter-test-v1": "retired", "starter-test-v2": "active"}

    team = add_version(database, adapters, "team-v1")
    with database.session() as session:
        registry.activate_version(session, team)
    package_starter(tmp_path / "newer", name="starter-test-v3")
    with database.session() as session:
        install_starter(session, adapters, BASE, starters_dir=tmp_path / "newer")
    assert statuses(database)["team-v1"] == "active" and statuses(database)["starter-test-v3"] == "retired"


def test_a_corrupt_packaged_starter_is_refused_and_the_base_answers(
    database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    starters, adapters = tmp_path / "starters", tmp_path / "adapters"
    folder = package_starter(starters)
    weights = folder / registry.WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-8])
    with caplog.at_level(logging.WARNING), database.session() as session:
        assert install_starter(session, adapters, BASE, starters_dir=starters) is None
        assert active_adapter(session) is None
    refusals = [record.getMessage() for record in caplog.records if "starter" in record.getMessage()]
    assert len(refusals) == 1 and "sha256" in refusals[0] and "bare gemma3-270m answers" in refusals[0]


def test_rollback_stops_at_the_starter_unless_asked(database: Database, tmp_path: Path) -> None:
    starters, adapters = tmp_path / "starters", tmp_path / "adapters"
    package_starter(starters)
    with database.session() as session:
        install_starter(session, adapters, BASE, starters_dir=starters)
    team = add_version(database, adapters, "team-v1")
    with database.session() as session:
        registry.activate_version(session, team)
    with database.session() as session:
        result = registry.rollback(session)
    assert result.now_active == "starter-test-v1"
    with database.session() as session, pytest.raises(RegistryError, match="--below-starter"):
        registry.rollback(session)
    with database.session() as session:
        result = registry.rollback(session, below_starter=True)
    assert result.now_active is None
    assert statuses(database) == {"team-v1": "rejected", "starter-test-v1": "rejected"}


def test_rollback_reaches_a_starter_that_was_never_active(database: Database, tmp_path: Path) -> None:
    """A team that trained before upgrading: its first rollback lands on the starter, not the bare base."""
    starters, adapters = tmp_path / "starters", tmp_path / "adapters"
    team = add_version(database, adapters, "team-v1")
    with database.session() as session:
        registry.activate_version(session, team)
    package_starter(starters)
    with database.session() as session:
        install_starter(session, adapters, BASE, starters_dir=starters)
    with database.session() as session:
        assert registry.rollback(session).now_active == "starter-test-v1"
