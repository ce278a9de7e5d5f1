"""A run's report (plot + summary) and posting it to Slack with files_upload_v2 (against the emulator)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient

from alignment.config import AlignmentConfig
from alignment.gate import decide
from alignment.progress import TrainingLog
from alignment.report import write_report
from bot.slack.reports import post_run_report
from tests.slack.emulator import BOT_TOKEN, SlackEmulator


class _Emulator(SlackEmulator):
    """The shared emulator plus conversations.open, which a DM to an admin needs."""

    def _api_conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "channel": {"id": f"D{args['users']}"}}


def _report(folder: Path) -> Path:
    log = TrainingLog(folder / "training_log.jsonl")
    for step, loss in enumerate([2.0, 1.5, 1.1], 1):
        log.write({"stage": "sft", "step": step, "loss": loss})
    for step, margin in enumerate([0.0, 0.3], 1):
        log.write(
            {
                "stage": "dpo",
                "step": step,
                "loss": 0.69 - margin / 2,
                "rewards/margins": margin,
                "rewards/accuracies": step / 2,
            }
        )
    gate = decide(
        {"answer_nll": 1.2, "regression_nll": 1.4, "pair_accuracy": 0.5},
        {"answer_nll": 0.9, "regression_nll": 1.3, "pair_accuracy": 0.75},
        AlignmentConfig(),
        baseline="tanya-old",
    )
    summary = {
        "adapter": folder.name,
        "outcome": "passed the gate",
        "base_model": "smollm2-135m-instruct",
        "plan": {"stages": ["sft", "dpo"], "reason": "20 pairs ≥ 16: DPO"},
        "data": {
            "train": {"sft": 30, "dpo": 20, "kto": 3},
            "eval": {"sft": 6, "dpo": 4, "kto": 1},
            "excluded": {"private": 2},
        },
        "training": {"steps": {"sft": 3, "dpo": 2}, "seconds": {"sft": 10.0, "dpo": 8.0}},
        "gate": gate.as_dict(),
    }
    write_report(folder, summary, log)
    return folder


def test_the_report_has_a_plot_and_a_summary_old_vs_new(tmp_path: Path) -> None:
    folder = _report(tmp_path / "tanya-new")
    assert (folder / "report.png").read_bytes()[:4] == b"\x89PNG"
    markdown = (folder / "summary.md").read_text()
    assert "| held-out answer loss ↓ | 1.2000 | 0.9000 |" in markdown
    assert "Decision: **promote**" in markdown and "2 answers from private channels" in markdown
    assert json.loads((folder / "summary.json").read_text())["gate"]["baseline"] == "tanya-old"


@pytest.mark.parametrize("target", [{"channel": "CADMIN"}, {"user": "UADMIN"}])
def test_post_run_report_uploads_the_plot_with_the_summary(tmp_path: Path, target: dict[str, str]) -> None:
    folder = _report(tmp_path / "tanya-new")
    with _Emulator() as slack:
        client = WebClient(token=BOT_TOKEN, base_url=slack.api_url)
        response = post_run_report(client, folder, **target)
        assert response["ok"]
        (complete,) = slack.calls_to("files.completeUploadExternal")
        expected_channel = target.get("channel") or "DUADMIN"
        assert complete.args["channel_id"] == expected_channel
        comment = complete.args["initial_comment"]
        assert comment.startswith("*tanya-new: passed the gate*") and "```" in comment and "**" not in comment
        (uploaded,) = slack.uploads.values()
        assert uploaded == (folder / "report.png").read_bytes()
        files = complete.args["files"]
        files = json.loads(files) if isinstance(files, str) else files
        assert "passed the gate" in files[0]["title"]


def test_post_run_report_needs_a_plot_and_one_destination(tmp_path: Path) -> None:
    client = WebClient(token=BOT_TOKEN, base_url="http://127.0.0.1:9/api/")
    with pytest.raises(FileNotFoundError):
        post_run_report(client, tmp_path, channel="C1")
    with pytest.raises(ValueError):
        post_run_report(client, tmp_path, channel="C1", user="U1")
