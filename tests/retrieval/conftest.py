"""Fixtures for the retrieval tests: small real corpora in tmp_path and the Elasticsearch switch."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.config import RetrievalConfig
from tests.bot.fake_vllm import vllm  # noqa: F401  (the served-model tests)

SEEDS = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"
MOJIBAKE_SEED = SEEDS / "000_884e945130be7580.txt"

HANDBOOK = """# Expense policy

Employees book travel through the Travelwise portal. Hotel costs are reimbursed up to 150 euros per
night in Berlin and 120 euros elsewhere. Receipts must be uploaded within 30 days of the trip.
"""

ONCALL = """---
title: On-call rotation
---

The on-call engineer carries the pager for one week, from Monday 10:00 to the next Monday 10:00.
Pages are acknowledged within 15 minutes. Swap shifts in the #oncall channel and update PagerDuty.
"""

VPN_HTML = """<html><head><title>VPN setup guide</title></head><body>
<h1>Connecting to the office VPN</h1>
<p>Install the WireGuard client and import the profile sent by the IT desk. The VPN endpoint is
vpn.example.org on port 51820. Ask the IT desk for a new profile when your laptop is replaced.</p>
<p>Split tunnelling is disabled: all traffic goes through the office while the VPN is connected.</p>
</body></html>
"""

CUTI_TXT = """Cuti tahunan

Setiap karyawan mendapat 24 hari cuti tahunan. Pengajuan cuti dilakukan melalui portal HR paling
lambat dua minggu sebelumnya, dan atasan langsung harus menyetujuinya.
"""

PDF_LINES = [
    "Laptop refresh programme",
    "Laptops are replaced every four years by the IT desk.",
    "Old laptops are wiped and donated to local schools.",
]


def make_pdf(path: Path, lines: list[str], *, title: str | None = "Laptop refresh") -> Path:
    """Writes a real one-page PDF with reportlab."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=A4)
    if title:
        pdf.setTitle(title)
    y = 800
    for line in lines:
        pdf.drawString(72, y, line)
        y -= 18
    pdf.showPage()
    pdf.save()
    return path


@pytest.fixture
def docs_dir(tmp_path: Path) -> Path:
    """A small knowledge base: Markdown, plain text (Indonesian), HTML and PDF, one subfolder deep."""
    root = tmp_path / "docs"
    (root / "policies").mkdir(parents=True)
    (root / "policies" / "expenses.md").write_text(HANDBOOK, encoding="utf-8")
    (root / "oncall.md").write_text(ONCALL, encoding="utf-8")
    (root / "vpn.html").write_text(VPN_HTML, encoding="utf-8")
    (root / "cuti.txt").write_text(CUTI_TXT, encoding="utf-8")
    make_pdf(root / "laptops.pdf", PDF_LINES)
    (root / ".hidden").mkdir()
    (root / ".hidden" / "secret.md").write_text("# Hidden\n\nShould never be indexed.\n", encoding="utf-8")
    return root


@pytest.fixture
def config(tmp_path: Path) -> RetrievalConfig:
    """The embedded default with small chunks, so short test files still split."""
    return RetrievalConfig(data_dir=tmp_path / "home", split_length=60, split_overlap=10)


@pytest.fixture(scope="session")
def elasticsearch_url() -> str:
    url = os.environ.get("TANYA_TEST_ELASTICSEARCH_URL")
    if not url:
        pytest.skip("TANYA_TEST_ELASTICSEARCH_URL is not set: no Elasticsearch server to test against")
    return url


@pytest.fixture
def elasticsearch_config(elasticsearch_url: str, tmp_path: Path) -> Iterator[RetrievalConfig]:
    """A config pointing at a fresh index that is deleted afterwards."""
    config = RetrievalConfig(
        location=elasticsearch_url,
        data_dir=tmp_path / "home",
        index=f"tanya-test-{uuid.uuid4().hex[:10]}",
        split_length=60,
        split_overlap=10,
    )
    yield config
    from elasticsearch import Elasticsearch

    # The configured name is an alias; delete the physical indexes behind it (and a plain index of
    # that name) by their concrete names, since deleting by wildcard is refused by default.
    client = Elasticsearch(elasticsearch_url)
    names = set(client.indices.get(index=f"{config.index}*", expand_wildcards="all"))
    for name in sorted(names):
        client.indices.delete(index=name, ignore_unavailable=True)
    client.close()


# The bundled language model: converted checkpoint, warm generator, trained LoRA adapter.
# A stand-in Elasticsearch on loopback for the tests that need no real server.
from tests.retrieval.model_fixtures import (  # noqa: E402,F401
    local_generator,
    lora_adapter_dir,
)
from tests.retrieval.stores.es_stub import fake_es  # noqa: E402,F401
