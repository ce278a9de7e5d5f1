"""Persistence for interactions, feedback, training jobs and adapter versions (SQLAlchemy 2.0)."""

from storage.database import Database, DatabaseError
from storage.models import (
    AdapterStatus,
    AdapterVersion,
    ChannelKind,
    Correction,
    Interaction,
    JobStatus,
    ProcessedEvent,
    TrainingJob,
    Vote,
)

__all__ = [
    "AdapterStatus",
    "AdapterVersion",
    "ChannelKind",
    "Correction",
    "Database",
    "DatabaseError",
    "Interaction",
    "JobStatus",
    "ProcessedEvent",
    "TrainingJob",
    "Vote",
]
