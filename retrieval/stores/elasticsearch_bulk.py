"""Bulk writes to Elasticsearch that ride out a busy or restarting cluster.

Haystack's `ElasticsearchDocumentStore.write_documents` already sends one `_bulk` request per call
(`elasticsearch.helpers.bulk`), but it gives up on the first transient failure:

* a whole request answered 429 (too many requests), 502/503/504, or a dropped connection is retried
  by the client's transport at most `max_retries` times, immediately, with no pause for the cluster to
  recover;
* single documents rejected inside a successful `_bulk` answer (status 429 when the write queue is
  full, 503 while a shard relocates) are not retried at all; with the overwrite policy the store then
  fails on its own error handling (it looks up a "create" key that "index" actions do not have).

`bulk_write` adds what is missing: tenacity retries with exponential backoff and jitter, for the whole
request and for exactly the documents that were rejected transiently. Every other per-document error
(a mapping conflict, a vector of the wrong size) is permanent and reported at once, without retrying.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class WriteRetry:
    """How hard a bulk write tries before giving up; the defaults ride out about a minute of trouble."""

    attempts: int = 6
    initial_wait: float = 0.5
    max_wait: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.initial_wait < 0 or self.max_wait < self.initial_wait:
            raise ValueError("attempts must be at least 1 and 0 <= initial_wait <= max_wait")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WriteRetry:
        return cls(**data)


class TransientBulkError(RuntimeError):
    """Some documents of a bulk request were rejected with a retryable status."""

    def __init__(self, count: int, status: int, reason: str) -> None:
        super().__init__(f"{count} document(s) rejected with status {status}: {reason}")
        self.count = count
        self.status = status


class BulkWriteError(RuntimeError):
    """Documents were rejected for a reason retrying cannot fix; `errors` holds the bulk items."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        first = errors[0] if errors else {}
        reason = (
            first.get("error", {}).get("reason")
            if isinstance(first.get("error"), dict)
            else first.get("error")
        )
        super().__init__(f"{len(errors)} document(s) rejected, first {first.get('_id')!r}: {reason}")
        self.errors = errors


def is_transient(error: BaseException) -> bool:
    """True for failures that a later attempt can succeed after: overload, unavailability, lost connections."""
    from elasticsearch import ApiError, ConnectionError, ConnectionTimeout  # heavy

    if isinstance(error, TransientBulkError | ConnectionError | ConnectionTimeout):
        return True
    return isinstance(error, ApiError) and error.meta.status in TRANSIENT_STATUSES


def _item(error: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A bulk error is `{op_type: item}`; the op type is "index", "create", "update" or "delete"."""
    op_type, item = next(iter(error.items()))
    return op_type, item


def bulk_write(
    client: Any,
    actions: Iterable[dict[str, Any]],
    *,
    index: str,
    refresh: bool | str = "wait_for",
    retry: WriteRetry | None = None,
    ignore_conflicts: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[int, list[dict[str, Any]]]:
    """
    Sends `actions` (bulk helper actions with an `_id`) to `index` and retries what failed transiently.

    :param ignore_conflicts: treat "already exists" (409) as done, for the create-only policy `SKIP`.
    :param sleep: how to wait between attempts; tests pass a recorder instead of sleeping.
    :returns: (documents written, permanent per-document errors as `{op_type: item}` dicts). A delete of
        a document that is already gone counts as written.
    :raises TransientBulkError, ApiError, ConnectionError: the last transient failure, once the attempts
        are used up.
    """
    from elasticsearch import helpers  # heavy

    policy = retry or WriteRetry()
    pending = list(actions)
    written = 0
    permanent: list[dict[str, Any]] = []
    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait_exponential_jitter(initial=policy.initial_wait, max=policy.max_wait),
        retry=retry_if_exception(is_transient),
        reraise=True,
        sleep=sleep,
        before_sleep=_log_retry,
    )
    for attempt in retrying:
        with attempt:
            if not pending:
                break
            ok, errors = helpers.bulk(
                client, pending, index=index, refresh=refresh, raise_on_error=False, stats_only=False
            )
            written += ok
            retry_ids: set[str] = set()
            transient: tuple[int, str] | None = None
            for error in errors:  # type: ignore[union-attr]
                op_type, item = _item(error)
                status = int(item.get("status", 500))
                if op_type == "delete" and status == 404:
                    written += 1
                elif ignore_conflicts and status == 409:
                    continue
                elif status in TRANSIENT_STATUSES:
                    retry_ids.add(str(item.get("_id")))
                    transient = transient or (status, _reason(item))
                else:
                    permanent.append(error)
            if retry_ids:
                pending = [action for action in pending if str(action.get("_id")) in retry_ids]
                assert transient is not None
                raise TransientBulkError(len(retry_ids), *transient)
            pending = []
    return written, permanent


def _reason(item: dict[str, Any]) -> str:
    error = item.get("error")
    if isinstance(error, dict):
        return str(error.get("reason") or error.get("type") or "")
    return str(error or "")


def _log_retry(state: Any) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning(
        "Elasticsearch bulk write attempt %d failed (%s); retrying in %.1fs",
        state.attempt_number,
        error,
        wait,
    )
