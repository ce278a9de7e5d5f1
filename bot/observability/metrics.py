"""The bot's Prometheus metrics, defined once per process.

They live in their own ``CollectorRegistry`` rather than prometheus_client's global one: a test
process creates many apps and services, and module-level metrics registered once can be shared by all
of them without "duplicated timeseries" errors; the registry also holds nothing a library might
register behind tanya's back. ``storage`` and ``retrieval`` never import this module — the bot layer
measures around the calls it makes into them (see ``docs/observability.md`` for every name).

Label values are always chosen by tanya's code (or cut short and taken from a small, fixed set that
Slack defines), so no label can grow without bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

# Retrieval takes milliseconds, a CPU answer up to half a minute, a slow Slack round trip seconds.
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)

OUTCOMES = ("answered", "not_found", "error", "invalid")
STAGES = ("retrieval", "generation", "total")
VOTE_SOURCES = ("reaction", "button", "cli")

EVENTS = Counter(
    "tanya_slack_events",
    "Requests from Slack that passed verification, by event or payload type.",
    ["type"],
    registry=REGISTRY,
)
RETRIED_DELIVERIES = Counter(
    "tanya_slack_retried_deliveries",
    "Deliveries Slack marked as retries (X-Slack-Retry-Num > 0): it thought an earlier one went unanswered.",
    registry=REGISTRY,
)
DUPLICATES = Counter(
    "tanya_slack_duplicates_suppressed",
    "Deliveries dropped because another delivery (in any process) had claimed the same key in SQL.",
    ["kind"],
    registry=REGISTRY,
)
SLACK_API_ERRORS = Counter(
    "tanya_slack_api_errors",
    "Slack Web API calls that failed after any retries, by method and Slack's error code.",
    ["method", "error"],
    registry=REGISTRY,
)
SLACK_API_RETRIES = Counter(
    "tanya_slack_api_retries",
    "Slack Web API requests repeated by the client: rate limited (429), server error (5xx), connection.",
    ["reason"],
    registry=REGISTRY,
)
ANSWERS = Counter(
    "tanya_answers",
    "Questions handled, by outcome: answered, not_found (nothing relevant retrieved), error, invalid.",
    ["outcome"],
    registry=REGISTRY,
)
ANSWER_SECONDS = Histogram(
    "tanya_answer_duration_seconds",
    "Time to answer one question inside tanya, by stage: retrieval, generation, total.",
    ["stage"],
    buckets=SECONDS_BUCKETS,
    registry=REGISTRY,
)
SLACK_ANSWER_SECONDS = Histogram(
    "tanya_slack_answer_duration_seconds",
    "From claiming a question in Slack to its finished answer in the thread, waiting for a worker included.",
    buckets=SECONDS_BUCKETS,
    registry=REGISTRY,
)
ANSWERS_IN_FLIGHT = Gauge(
    "tanya_slack_answers_in_flight",
    "Slack questions claimed and not yet finished (queued for the answer pool or being generated).",
    registry=REGISTRY,
)
GAVE_WAY_SECONDS = Counter(
    "tanya_slack_gave_way_seconds",
    "Seconds lazy work and local generation waited for acknowledgements in flight (bot.slack.priority).",
    registry=REGISTRY,
)
VOTES = Counter(
    "tanya_votes",
    "Votes cast or changed, by direction (up/down) and where they came from (reaction/button/cli).",
    ["direction", "source"],
    registry=REGISTRY,
)
VOTES_WITHDRAWN = Counter("tanya_votes_withdrawn", "Votes taken back.", registry=REGISTRY)
UNDELIVERED = Counter(
    "tanya_slack_undelivered_answers",
    "Questions whose answer could not be posted to Slack, by stage: placeholder (nothing posted) or answer.",
    ["stage"],
    registry=REGISTRY,
)
STALE_REACTIONS = Counter(
    "tanya_slack_stale_reactions",
    "Reaction events ignored because a newer event (by event_ts) for that person, answer and emoji was applied.",
    registry=REGISTRY,
)
CORRECTIONS = Counter(
    "tanya_corrections",
    "Corrections written, by where they came from (slack_thread, slack_modal, cli).",
    ["source"],
    registry=REGISTRY,
)
SPOOL_KINDS = ("interaction", "reaction", "question", "finish")
SPOOLED = Counter(
    "tanya_spooled",
    "Acknowledged work kept in the local spool because the database was unavailable, by kind.",
    ["kind"],
    registry=REGISTRY,
)
SPOOL_APPLIED = Counter(
    "tanya_spool_applied",
    "Spooled work applied to the database once it was back, by kind.",
    ["kind"],
    registry=REGISTRY,
)
SPOOL_DEAD = Counter(
    "tanya_spool_dead",
    "Spooled items set aside after repeated failures that were not an outage (kept in the spool file).",
    registry=REGISTRY,
)
SPOOL_DEPTH = Gauge(
    "tanya_spool_depth",
    "Items in the local spool waiting for the database (0 when it is healthy).",
    registry=REGISTRY,
)
CLAIMS_RESUMED = Counter(
    "tanya_claims_resumed",
    "Answers taken over after their claim's lease ran out unfinished (a process died), by how: retry, scan.",
    ["how"],
    registry=REGISTRY,
)
ACTIVE_ADAPTER = Info(
    "tanya_active_adapter",
    "The LoRA adapter this process answered its latest question with ('base' for none).",
    registry=REGISTRY,
)

# Series that exist from the start read 0 instead of missing, so rate() and alerts work at once.
for _outcome in OUTCOMES:
    ANSWERS.labels(outcome=_outcome)
for _stage in STAGES:
    ANSWER_SECONDS.labels(stage=_stage)
for _direction in ("up", "down"):
    for _source in VOTE_SOURCES:
        VOTES.labels(direction=_direction, source=_source)
for _kind in ("event", "answer"):
    DUPLICATES.labels(kind=_kind)
for _stage in ("placeholder", "answer"):
    UNDELIVERED.labels(stage=_stage)
for _kind in SPOOL_KINDS:
    SPOOLED.labels(kind=_kind)
    SPOOL_APPLIED.labels(kind=_kind)
for _how in ("retry", "scan"):
    CLAIMS_RESUMED.labels(how=_how)


def label(value: object, limit: int = 48) -> str:
    """A label value that cannot grow without bound, whatever a payload contains."""
    text = str(value or "unknown")
    return text[:limit]


def set_active_adapter(name: str | None) -> None:
    ACTIVE_ADAPTER.info({"version": label(name or "base", 128)})


def observe_answer(outcome: str, timings: dict[str, float], seconds: float) -> None:
    """One finished ``Tanya.ask``: the outcome, and the time of each stage that actually ran."""
    ANSWERS.labels(outcome=outcome).inc()
    ANSWER_SECONDS.labels(stage="total").observe(seconds)
    if "retrieval" in timings:
        ANSWER_SECONDS.labels(stage="retrieval").observe(timings["retrieval"])
    if outcome == "answered" and "generation" in timings:
        ANSWER_SECONDS.labels(stage="generation").observe(timings["generation"])


@contextmanager
def counting_failures(invalid: tuple[type[BaseException], ...]) -> Iterator[None]:
    """Count an answer that raised: ``invalid`` for the asker's mistakes, ``error`` for everything else."""
    try:
        yield
    except invalid:
        ANSWERS.labels(outcome="invalid").inc()
        raise
    except Exception:
        ANSWERS.labels(outcome="error").inc()
        raise


def exposition() -> tuple[bytes, str]:
    """The current values in Prometheus' text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
