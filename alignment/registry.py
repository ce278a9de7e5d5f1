"""The adapter registry: trained adapters on disk under ``TANYA_HOME/adapters`` and their rows in SQL.

A running bot loads whatever adapter the database marks active, so two rules keep a broken adapter
from ever answering anyone:

* files first, row second: an adapter is written to a hidden staging folder, every file is fsynced,
  and the folder is renamed into place in one step; only then is a row inserted, with the sha256 of
  ``adapter_model.safetensors``. A crash leaves an orphaned folder, never a row pointing at half a file.
* verify before activating: the folder must exist, hold its config, and hash to the recorded sha256.
  The bot checks the same again before it loads an adapter (see ``verify_adapter``).

Activation and rollback change statuses in one transaction (serialised by an advisory lock on
PostgreSQL), so exactly one adapter, or none, is active at any moment.

These are the functions the CLI and the Slack admin commands call: ``list_versions``,
``activate_version``, ``rollback``, ``reject_version``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from storage.models import AdapterStatus, AdapterVersion, utcnow
from storage.stats import active_adapter

WEIGHTS_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
STAGING_PREFIX = ".staging-"
_REGISTRY_LOCK = 724271002  # pg_advisory_xact_lock key; storage uses 724271001 for migrations


class AdapterIntegrityError(RuntimeError):
    """An adapter's files are missing, incomplete, or not the ones that were registered."""


class RegistryError(LookupError):
    """An operation on the registry that cannot be done (unknown id, nothing to roll back to)."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_adapter(path: Path, sha256: str | None) -> None:
    """Raise ``AdapterIntegrityError`` unless ``path`` holds a complete adapter with the recorded hash."""
    path = Path(path)
    weights, config = path / WEIGHTS_FILE, path / CONFIG_FILE
    if not weights.is_file() or not config.is_file():
        raise AdapterIntegrityError(
            f"{path} is not a complete adapter (missing {WEIGHTS_FILE} or {CONFIG_FILE})"
        )
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AdapterIntegrityError(f"{path / CONFIG_FILE} is unreadable: {exc}") from exc
    if not sha256:
        raise AdapterIntegrityError(f"{path} has no recorded sha256; refusing an unverifiable adapter")
    actual = sha256_file(weights)
    if actual != sha256:
        raise AdapterIntegrityError(
            f"{weights} does not match its registered sha256 ({actual[:12]}… ≠ {sha256[:12]}…): corrupt or replaced"
        )


def _fsync_tree(folder: Path) -> None:
    for item in sorted(folder.rglob("*")):
        if item.is_file():
            with item.open("rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def staging_dir(adapters_dir: Path) -> Path:
    """A fresh hidden folder to write a new adapter into; the process id marks whose it is."""
    adapters_dir.mkdir(parents=True, exist_ok=True)
    folder = adapters_dir / f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    return folder


def clean_stale_staging(adapters_dir: Path) -> int:
    """Remove staging folders left by processes that no longer exist (a killed worker)."""
    removed = 0
    for folder in adapters_dir.glob(f"{STAGING_PREFIX}*"):
        try:
            pid = int(folder.name[len(STAGING_PREFIX) :].split("-", 1)[0])
        except ValueError:
            continue
        if not pid_alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def publish(staging: Path, adapters_dir: Path, name: str) -> tuple[Path, str]:
    """Make a staged adapter final: fsync, hash, rename into ``adapters_dir/name``. Returns (path, sha256)."""
    if not (staging / WEIGHTS_FILE).is_file():
        raise AdapterIntegrityError(f"{staging} holds no {WEIGHTS_FILE}")
    _fsync_tree(staging)
    digest = sha256_file(staging / WEIGHTS_FILE)
    target = adapters_dir / name
    if target.exists():
        raise AdapterIntegrityError(f"{target} already exists")
    os.rename(staging, target)
    _fsync_dir(adapters_dir)
    return target, digest


def register(
    session: Session,
    *,
    name: str,
    path: Path,
    sha256: str,
    base_model: str,
    metrics: dict[str, Any],
    lineage: dict[str, Any],
    parent_id: int | None,
) -> AdapterVersion:
    version = AdapterVersion(
        name=name,
        base_model=base_model,
        path=str(path),
        sha256=sha256,
        status=AdapterStatus.candidate,
        metrics=metrics,
        lineage=lineage,
        parent_id=parent_id,
    )
    session.add(version)
    session.flush()
    return version


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _REGISTRY_LOCK})


def list_versions(session: Session) -> list[AdapterVersion]:
    return list(session.scalars(select(AdapterVersion).order_by(AdapterVersion.id.desc())))


def get_version(session: Session, version_id: int) -> AdapterVersion:
    version = session.get(AdapterVersion, version_id)
    if version is None:
        raise RegistryError(f"there is no adapter with id {version_id}")
    return version


def activate_version(session: Session, version_id: int) -> AdapterVersion:
    """Verify the files, then make this version the only active one (the previous one is retired)."""
    _lock(session)
    version = get_version(session, version_id)
    verify_adapter(Path(version.path), version.sha256)
    if version.status == AdapterStatus.active:
        return version
    now = utcnow()
    for current in session.scalars(
        select(AdapterVersion).where(AdapterVersion.status == AdapterStatus.active)
    ):
        current.status = AdapterStatus.retired
    version.status = AdapterStatus.active
    version.activated_at = now
    session.flush()
    return version


def reject_version(session: Session, version_id: int, *, reason: str) -> AdapterVersion:
    version = get_version(session, version_id)
    version.status = AdapterStatus.rejected
    version.metrics = {**(version.metrics or {}), "rejected_reason": reason}
    session.flush()
    return version


@dataclass(frozen=True)
class RollbackResult:
    """What a rollback retired and which adapter answers now."""

    rolled_back: str
    now_active: str | None  # None: the base model answers again


def _is_starter(version: AdapterVersion) -> bool:
    return bool((version.lineage or {}).get("starter"))


def rollback(session: Session, *, below_starter: bool = False) -> RollbackResult:
    """Take the active adapter out of service (marked rejected) and re-activate the one before it.

    "The one before" is the most recently activated retired version whose files still verify; with
    none, the starter adapter shipped with the base model (``alignment.starter``) if there is one, else
    the base model answers. Marking the rolled-back version rejected keeps a second rollback from
    bouncing back to it. The starter is the floor: rolling it back too takes ``below_starter``.
    """
    _lock(session)
    current = active_adapter(session)
    if current is None:
        raise RegistryError("no adapter is active; the base model is already answering")
    if _is_starter(current) and not below_starter:
        raise RegistryError(
            f"{current.name} is the starter adapter, the floor for rollbacks; going below it, to the "
            "untrained base model (which writes poor answers), takes `tanya adapters rollback --below-starter`"
        )
    previous_candidates = session.scalars(
        select(AdapterVersion)
        .where(
            AdapterVersion.status == AdapterStatus.retired,
            AdapterVersion.activated_at.is_not(None),
            AdapterVersion.id != current.id,
        )
        .order_by(AdapterVersion.activated_at.desc(), AdapterVersion.id.desc())
    )
    target = None
    for candidate in previous_candidates:
        try:
            verify_adapter(Path(candidate.path), candidate.sha256)
        except AdapterIntegrityError:
            continue
        target = candidate
        break
    if target is None and not below_starter:
        for starter in session.scalars(
            select(AdapterVersion).where(
                AdapterVersion.status == AdapterStatus.retired, AdapterVersion.id != current.id
            )
        ):
            if _is_starter(starter):
                try:
                    verify_adapter(Path(starter.path), starter.sha256)
                except AdapterIntegrityError:
                    continue
                target = starter
                break
    current.status = AdapterStatus.rejected
    current.metrics = {**(current.metrics or {}), "rolled_back_at": utcnow().isoformat()}
    if target is not None:
        target.status = AdapterStatus.active
        target.activated_at = utcnow()
    session.flush()
    return RollbackResult(rolled_back=current.name, now_active=target.name if target else None)
