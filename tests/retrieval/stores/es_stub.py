"""A small stand-in for an Elasticsearch server on 127.0.0.1, for tests that cannot reach a real one.

It speaks enough of the REST API for the real `elasticsearch` client to create indexes, move aliases,
bulk-write, scroll and count, keeps the documents in memory (other searches match nothing), and records every request so that a test
can assert the exact bodies sent. Bulk requests can be scripted to fail (a whole request answered 429
or 503, or single documents rejected inside a 200 answer) to exercise retries. Searching by text or
vector is not emulated; the integration tests cover that against a real server.
"""

from __future__ import annotations

import copy
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class FakeElasticsearch:
    indices: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → {"mappings", "docs"}
    aliases: dict[str, str] = field(default_factory=dict)  # alias → index
    requests: list[Recorded] = field(default_factory=list)
    # One entry per coming bulk request: an int answers the whole request with that status; a pair
    # (status, n) rejects the first n documents of an otherwise successful answer.
    bulk_script: list[int | tuple[int, int]] = field(default_factory=list)
    # Called with each request before it is handled, under the stub's lock: a test can change the
    # stored documents "concurrently" at an exact point of the client's sequence.
    on_request: Callable[[Recorded], None] | None = None
    url: str = ""

    def __post_init__(self) -> None:
        self.lock = threading.Lock()

    # -- helpers for tests ---------------------------------------------------------------------

    def calls(self, method: str | None, suffix: str) -> list[Recorded]:
        """Recorded requests whose path ends with `suffix` (with `method`, or any for None)."""
        return [r for r in self.requests if method in (None, r.method) and r.path.endswith(suffix)]

    def docs(self, name: str) -> dict[str, dict[str, Any]]:
        return self.indices[self.aliases.get(name, name)]["docs"]

    def resolve(self, name: str) -> str | None:
        if name in self.aliases:
            return self.aliases[name]
        return name if name in self.indices else None

    # -- request handling ----------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], raw: bytes) -> tuple[int, Any]:
        body: Any = None
        if raw:
            text = raw.decode()
            if path.endswith("/_bulk"):
                body = [json.loads(line) for line in text.splitlines() if line.strip()]
            else:
                body = json.loads(text)
        with self.lock:
            recorded = Recorded(method, path, query, body)
            self.requests.append(recorded)
            if self.on_request is not None:
                self.on_request(recorded)
            parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/") if p]
            return self._route(method, parts, query, body)

    def _route(self, method: str, parts: list[str], query: dict[str, str], body: Any) -> tuple[int, Any]:
        if not parts:
            return 200, {"name": "stub", "version": {"number": "8.19.0"}, "tagline": "You Know, for Search"}
        if parts == ["_aliases"] and method == "POST":
            return self._aliases(body["actions"])
        if parts[0] == "_alias" and len(parts) == 2:
            index = self.aliases.get(parts[1])
            if index is None:
                return 404, {"error": f"alias [{parts[1]}] missing", "status": 404}
            return 200, {index: {"aliases": {parts[1]: {}}}}
        if parts[:2] == ["_search", "scroll"]:
            if method == "DELETE":
                return 200, {"succeeded": True, "num_freed": 1}
            return 200, {
                "_scroll_id": "done",
                "_shards": _SHARDS,
                "hits": {"total": {"value": 0}, "hits": []},
            }
        name = parts[0]
        action = parts[1] if len(parts) > 1 else None
        if action is None:
            return self._index_op(method, name, body)
        index = self.resolve(name)
        if action == "_bulk":
            return self._bulk(index or name, body)
        if index is None:
            return _missing(name)
        if action == "_mapping":
            return 200, {index: {"mappings": self.indices[index]["mappings"]}}
        if action == "_refresh":
            return 200, {"_shards": _SHARDS}
        if action == "_count":
            return 200, {"count": len(self.indices[index]["docs"]), "_shards": _SHARDS}
        if action == "_search" and "scroll" in query:
            return self._scroll(index, body or {})
        if action == "_search":  # filters, BM25 and kNN are not emulated: nothing matches
            return 200, {"_shards": _SHARDS, "hits": {"total": {"value": 0}, "hits": []}}
        return 400, {
            "error": {"type": "stub", "reason": f"the stub does not do {method} {action}"},
            "status": 400,
        }

    def _index_op(self, method: str, name: str, body: Any) -> tuple[int, Any]:
        if method == "HEAD":
            return (200 if self.resolve(name) else 404), None
        if method == "PUT":
            if name in self.indices or name in self.aliases:
                error = {
                    "type": "resource_already_exists_exception",
                    "reason": f"index [{name}] already exists",
                }
                return 400, {"error": error, "status": 400}
            self.indices[name] = {"mappings": copy.deepcopy((body or {}).get("mappings", {})), "docs": {}}
            return 200, {"acknowledged": True, "index": name}
        if method == "DELETE":
            if name not in self.indices:
                return _missing(name)
            del self.indices[name]
            self.aliases = {a: i for a, i in self.aliases.items() if i != name}
            return 200, {"acknowledged": True}
        return 400, {"error": "unsupported", "status": 400}

    def _aliases(self, actions: list[dict[str, Any]]) -> tuple[int, Any]:
        aliases, indices = dict(self.aliases), dict(self.indices)
        for entry in actions:
            ((kind, spec),) = entry.items()
            if kind == "add":
                if spec["index"] not in indices:
                    return _missing(spec["index"])
                aliases[spec["alias"]] = spec["index"]
            elif kind == "remove":
                if aliases.get(spec["alias"]) != spec["index"]:
                    return 404, {"error": f"aliases [{spec['alias']}] missing", "status": 404}
                del aliases[spec["alias"]]
            elif kind == "remove_index":
                if spec["index"] not in indices:
                    return _missing(spec["index"])
                del indices[spec["index"]]
        clash = set(aliases) & set(indices)
        if clash:
            return 400, {
                "error": f"an index exists with the same name as the alias {sorted(clash)}",
                "status": 400,
            }
        self.aliases, self.indices = aliases, indices
        return 200, {"acknowledged": True}

    def _bulk(self, default_index: str, lines: list[dict[str, Any]]) -> tuple[int, Any]:
        step = self.bulk_script.pop(0) if self.bulk_script else None
        if isinstance(step, int):
            reason = "rejected execution" if step == 429 else "no shard available"
            return step, {"error": {"type": "stub_failure", "reason": reason}, "status": step}
        rejected = step[1] if isinstance(step, tuple) else 0
        items = []
        i = 0
        while i < len(lines):
            ((op, meta),) = lines[i].items()
            source = lines[i + 1] if op in ("index", "create") else None
            i += 2 if source is not None else 1
            index = self.resolve(meta.get("_index", default_index)) or meta.get("_index", default_index)
            doc_id = meta["_id"]
            result: dict[str, Any] = {"_index": index, "_id": doc_id}
            if rejected and isinstance(step, tuple):
                rejected -= 1
                result.update(
                    status=step[0], error={"type": "es_rejected_execution_exception", "reason": "queue full"}
                )
            elif index not in self.indices:
                result.update(
                    status=404, error={"type": "index_not_found_exception", "reason": "no such index"}
                )
            elif op == "delete":
                existed = self.indices[index]["docs"].pop(doc_id, None) is not None
                result.update(status=200 if existed else 404, result="deleted" if existed else "not_found")
            elif op == "create" and doc_id in self.indices[index]["docs"]:
                result.update(
                    status=409, error={"type": "version_conflict_engine_exception", "reason": "exists"}
                )
            else:
                self.indices[index]["docs"][doc_id] = source
                result.update(status=201, result="created")
            items.append({op: result})
        errors = any(not 200 <= next(iter(item.values()))["status"] < 300 for item in items)
        return 200, {"took": 1, "errors": errors, "items": items}

    def _scroll(self, index: str, body: dict[str, Any]) -> tuple[int, Any]:
        docs = self.indices[index]["docs"]
        query = body.get("query", {"match_all": {}})
        ids = set(query["ids"]["values"]) if "ids" in query else None
        fields = body.get("_source")
        hits = []
        for doc_id, source in docs.items():
            if ids is not None and doc_id not in ids:
                continue
            shown = {k: v for k, v in source.items() if k in fields} if isinstance(fields, list) else source
            hits.append({"_index": index, "_id": doc_id, "_score": None, "_source": copy.deepcopy(shown)})
        return 200, {
            "_scroll_id": "s1",
            "_shards": _SHARDS,
            "hits": {"total": {"value": len(hits)}, "hits": hits},
        }


_SHARDS = {"total": 1, "successful": 1, "skipped": 0, "failed": 0}


def _missing(name: str) -> tuple[int, Any]:
    error = {"type": "index_not_found_exception", "reason": f"no such index [{name}]"}
    return 404, {"error": error, "status": 404}


def _handler(fake: FakeElasticsearch) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            query = dict(urllib.parse.parse_qsl(parsed.query))
            status, payload = fake.handle(self.command, parsed.path, query, raw)
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("X-Elastic-Product", "Elasticsearch")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

    return Handler


@pytest.fixture
def fake_es() -> Iterator[FakeElasticsearch]:
    fake = FakeElasticsearch()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
