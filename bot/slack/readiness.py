"""Readiness of what an answer needs besides the database: the document store and the generator.

``/readyz`` must turn 503 when tanya could not answer a question now — Elasticsearch or the
OpenAI-compatible generation server gone, or the models not loaded yet — so a load balancer sends
Slack's requests to a replica that can. Checks never load anything themselves (a probe must not start a
model load), and a remote check waits at most ``timeout`` seconds.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from bot.service import Tanya

OK = "ok"
NOT_LOADED = "not loaded"


def _loaded(service: Tanya, name: str) -> Any | None:
    """A lazily built component if it was built already (``cached_property`` keeps it in ``__dict__``)."""
    return vars(service).get(name)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def document_store_status(service: Tanya) -> str:
    store = _loaded(service, "document_store")
    if store is None:
        return NOT_LOADED
    try:
        store.count_documents()  # a request to Elasticsearch; free for the embedded store
    except Exception as exc:
        return f"unavailable: {_first_line(exc)}"
    return OK


def generator_status(service: Tanya, *, timeout: float = 2.0) -> str:
    if _loaded(service, "generator") is None:
        return NOT_LOADED
    base = service.settings.generator
    if not base.startswith(("http://", "https://")):
        return OK  # the bundled model is in this process: loaded is ready
    from retrieval.generation.served import with_v1  # heavy

    base = with_v1(base.strip())  # a URL without a path means its /v1, as for answers
    request = urllib.request.Request(base + "/models", method="GET")
    key = service.settings.generator_api_key
    if key is not None:
        request.add_header("Authorization", f"Bearer {key.get_secret_value()}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        return f"unavailable: {_first_line(exc)}"
    return OK if status == 200 else f"unavailable: HTTP {status} from {base}/models"


def component_status(service: Tanya) -> dict[str, str]:
    """``{"document_store": "ok", "generator": "ok"}``, or what is wrong with each."""
    return {"document_store": document_store_status(service), "generator": generator_status(service)}
