"""The local spool: durable, ordered, one item per key, and readable by a new process."""

from __future__ import annotations

from pathlib import Path

from storage.spool import Spool


def test_items_keep_their_order_and_key_and_survive_reopening(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    assert spool.put("event:1", "reaction", {"n": 1})
    assert spool.put("event:2", "question", {"n": 2})
    assert not spool.put("event:1", "reaction", {"n": 99}), "the same delivery is one item"
    spool.close()
    reopened = Spool(tmp_path / "spool.sqlite3")
    items = reopened.waiting()
    assert [(item.key, item.payload["n"]) for item in items] == [("event:1", 1), ("event:2", 2)]
    assert reopened.contains("event:2") and reopened.depth() == 2
    reopened.done(items[0].id)
    reopened.failed(items[1].id, "boom", dead=True)
    assert reopened.depth() == 0 and reopened.dead() == 1 and not reopened.contains("event:2")
