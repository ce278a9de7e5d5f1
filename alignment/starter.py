"""The starter adapter shipped inside the package: what a fresh install answers with.

A bundled base model may come with a LoRA adapter trained by ``benchmarks/build_starter.py`` on public QA
training data, so that the first answer a team reads is grounded and cited rather than the base model's
noise. It lives in ``alignment/starters/<base model>/`` beside its model card, and ``starter.json`` there
names it and records the sha256 of its weights.

``install_starter`` puts it in the registry like any trained adapter (copied under ``adapters_dir``,
then a row), once: the row's ``lineage`` says ``{"starter": true}``. It is made active when no adapter
was ever active, or when the active one is an older starter (an upgrade brought a better one), so a
team's choice is never overridden. After that it is an ordinary version:
``tanya adapters list`` shows it, rollback can go back to it, and ``registry.rollback`` stops there
unless asked to go below it. A packaged file that does not match its checksum is refused with one
WARNING line, and the bare base model answers.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alignment import registry
from alignment.config import AlignmentConfig
from storage.models import AdapterStatus, AdapterVersion

log = logging.getLogger(__name__)

STARTERS_DIR = Path(__file__).resolve().parent / "starters"
MANIFEST_FILE = "starter.json"
CARD_FILE = "MODEL_CARD.md"


@dataclass(frozen=True)
class PackagedStarter:
    """A starter adapter as shipped: its folder, its registry name and the checksum of its weights."""

    folder: Path
    name: str
    base_model: str
    sha256: str
    scores: dict[str, Any]

    @classmethod
    def load(cls, folder: Path) -> PackagedStarter:
        manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
        return cls(
            folder=folder,
            name=str(manifest["name"]),
            base_model=str(manifest["base_model"]),
            sha256=str(manifest["sha256"]),
            scores=dict(manifest.get("scores") or {}),
        )


def packaged_starter(base_model: str, starters_dir: Path = STARTERS_DIR) -> PackagedStarter | None:
    """The starter shipped for this bundled base model, or None when there is none."""
    folder = starters_dir / base_model
    if not (folder / MANIFEST_FILE).is_file():
        return None
    return PackagedStarter.load(folder)


def starting_adapter(
    config: AlignmentConfig, base_model: Path, *, starters_dir: Path = STARTERS_DIR
) -> AlignmentConfig:
    """`config` with `initial_adapter` set to the shipped starter when retrains start from it.

    Only the packaged copy whose checksum holds is used; without one the run trains a fresh adapter
    and says why in the log, rather than failing the retrain.
    """
    if config.start_from != "starter" or config.initial_adapter:
        return config
    starter = packaged_starter(base_model.name, starters_dir)
    if starter is None:  # most bases ship none: nothing to continue from, nothing to warn about
        log.info("no starter adapter ships for %s: training a fresh adapter", base_model.name)
        return config
    try:
        registry.verify_adapter(starter.folder, starter.sha256)
    except registry.AdapterIntegrityError as exc:
        log.warning("the starter adapter is refused (%s): training a fresh adapter", exc)
        return config
    return replace(config, initial_adapter=str(starter.folder))


def install_starter(
    session: Session, adapters_dir: Path, base_model: str, *, starters_dir: Path = STARTERS_DIR
) -> AdapterVersion | None:
    """Register the packaged starter for ``base_model`` once, and activate it on a fresh install.

    Returns its row (new or already there), or None when there is no starter for this base or its file
    is corrupt. Safe to call from several processes at once: the name is unique, and a loser of that
    race finds the winner's row.
    """
    starter = packaged_starter(base_model, starters_dir)
    if starter is None:
        return None
    existing = session.scalars(select(AdapterVersion).where(AdapterVersion.name == starter.name)).first()
    if existing is not None:
        return existing
    try:
        registry.verify_adapter(starter.folder, starter.sha256)
    except registry.AdapterIntegrityError as exc:
        log.warning("the packaged starter adapter is refused (%s): the bare %s answers", exc, base_model)
        return None
    target = adapters_dir / starter.name
    if not (target / registry.WEIGHTS_FILE).is_file():
        staging = registry.staging_dir(adapters_dir)
        for name in (registry.WEIGHTS_FILE, registry.CONFIG_FILE, CARD_FILE):
            if (starter.folder / name).is_file():
                shutil.copy2(starter.folder / name, staging / name)
        if target.exists():  # a half-copied folder of a killed earlier attempt
            shutil.rmtree(target)
        registry.publish(staging, adapters_dir, starter.name)
    ever_active = session.scalars(
        select(AdapterVersion.id).where(AdapterVersion.activated_at.is_not(None))
    ).first()
    current = session.scalars(
        select(AdapterVersion).where(AdapterVersion.status == AdapterStatus.active)
    ).first()
    # An upgrade that ships a newer starter replaces the older one where it still answers: nobody chose
    # it. A team's own adapter, or the bare model chosen by rolling back below the starter, stays.
    replaces_starter = current is not None and bool((current.lineage or {}).get("starter"))
    try:
        with session.begin_nested():
            version = registry.register(
                session,
                name=starter.name,
                path=target,
                sha256=starter.sha256,
                base_model=base_model,
                metrics={"starter": starter.scores},
                lineage={"starter": True, "trained_by": "benchmarks/build_starter.py"},
                parent_id=None,
            )
    except IntegrityError:
        return session.scalars(select(AdapterVersion).where(AdapterVersion.name == starter.name)).one()
    if ever_active is None or replaces_starter:
        registry.activate_version(session, version.id)
        log.info(
            "the starter adapter %s answers (%s)",
            starter.name,
            f"replacing the older starter {current.name}"
            if replaces_starter and current
            else "a fresh install",
        )
    else:
        version.status = AdapterStatus.retired  # available to roll back to, never imposed
    session.flush()
    return version
