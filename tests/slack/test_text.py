"""Slack's text conventions and Block Kit limits, checked without a server."""

from __future__ import annotations

import json

import pytest

from bot.service import Answer, Source
from bot.slack import render
from bot.slack.charts import vote_bars
from bot.slack.text import clean_question, escape, mentions, origin_from_channel_type, vote_from_reaction
from storage import ChannelKind


@pytest.mark.parametrize(
    ("name", "vote"),
    [
        ("+1", True),
        ("thumbsup", True),
        ("+1::skin-tone-3", True),
        ("thumbsup::skin-tone-6", True),
        (":+1:", True),
        ("-1", False),
        ("thumbsdown", False),
        ("-1::skin-tone-2", False),
        ("thumbsdown::skin-tone-5", False),
        ("heart", None),
        ("+1-1", None),
        ("thumbsup_all", None),
        ("", None),
    ],
)
def test_votes_from_reaction_names(name: str, vote: bool | None) -> None:
    assert vote_from_reaction(name) is vote


def test_questions_are_cleaned_of_the_mention_links_and_escapes() -> None:
    text = "<@UBOT> what is <https://vpn.example.com|the portal> &amp; <mailto:it@example.com> for <!here>?"
    assert clean_question(text, "UBOT") == "what is the portal & mailto:it@example.com for @here?"
    assert clean_question("<@UBOT|tanya>   hi <@UOTHER>", "UBOT") == "hi <@UOTHER>"
    assert mentions("hey <@UBOT>", "UBOT") and not mentions("hey <@UBOTX>", "UBOT")
    assert not mentions("hey <@UBOT>", None)


def test_channel_types_map_to_origins() -> None:
    assert origin_from_channel_type("channel") is ChannelKind.public_channel
    assert origin_from_channel_type("group") is ChannelKind.private_channel
    assert origin_from_channel_type("mpim") is ChannelKind.private_channel
    assert origin_from_channel_type("im") is ChannelKind.direct_message
    assert origin_from_channel_type(None) is None


def _answer(text: str, **fields: object) -> Answer:
    values: dict = {
        "interaction_id": 7,
        "question": "q",
        "text": text,
        "sources": [
            Source(1, "d1", "VPN <guide>", "https://wiki.example.com/vpn", 0.9),
            Source(2, "d2", "Leave", "/srv/docs/leave.md", 0.5),
        ],
        "adapter": "tanya-v3",
        "generator": "smollm2",
        "found": True,
        "question_truncated": False,
        "seconds": 2.34,
    }
    values.update(fields)
    return Answer(**values)  # type: ignore[arg-type]


def test_model_output_cannot_ping_or_fake_links() -> None:
    blocks = render.answer_blocks(_answer("Ask <!channel> at <https://evil.example|the wiki> & more"))
    text = blocks[0]["text"]["text"]
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text and "&amp; more" in text
    sources = json.dumps(blocks[1])
    assert "<https://wiki.example.com/vpn|VPN &lt;guide&gt;>" in sources and "/srv/docs/leave.md" in sources
    assert "adapter `tanya-v3`" in blocks[-1]["elements"][0]["text"]


def test_long_answers_are_split_under_the_section_limit() -> None:
    blocks = render.answer_blocks(_answer("word " * 2000, notices=["Your question was cut."]))
    sections = [b for b in blocks if b["type"] == "section" and not b["text"]["text"].startswith("*Sources*")]
    assert len(sections) >= 4 and all(len(b["text"]["text"]) <= render.SECTION_LIMIT for b in sections)
    assert any(b["type"] == "context" and "cut" in json.dumps(b) for b in blocks)
    assert len(blocks) <= 50 and len(render.answer_fallback(_answer("x" * 10_000))) < 3000


def test_each_source_quotes_its_passage_escaped() -> None:
    sources = [
        Source(1, "d1", "VPN", "/srv/vpn.md", 0.9, excerpt="Start WireGuard & tell <!channel> nothing."),
        Source(2, "d2", "Leave", "/srv/leave.md", 0.5),
    ]
    text = render.sources_block(sources)["text"]["text"]  # type: ignore[index]
    assert text.splitlines() == [
        "*Sources*",
        "`1` *VPN* — _/srv/vpn.md_",
        ">Start WireGuard &amp; tell &lt;!channel&gt; nothing.",
        "`2` *Leave* — _/srv/leave.md_",
    ]


def test_quotes_give_way_before_sources_when_the_section_would_be_too_long() -> None:
    sources = [
        Source(n, f"d{n}", "t" * 150, "/srv/" + "p" * 195, 0.5, excerpt="word " * 100) for n in range(1, 11)
    ]
    text = render.sources_block(sources)["text"]["text"]  # type: ignore[index]
    assert len(text) <= render.SECTION_LIMIT
    assert text.count("\n>") == 0 and text.count("*ttt") == 8, "quotes go first, then the last sources"
    short = render.sources_block(sources[:3])["text"]["text"]  # type: ignore[index]
    assert short.count("\n>") == 3 and all(len(line) <= 201 for line in short.splitlines() if line[0] == ">")


def test_not_found_answers_list_no_sources() -> None:
    blocks = render.answer_blocks(_answer("I couldn't find anything.", found=False))
    assert not any("*Sources*" in json.dumps(b) for b in blocks)
    assert blocks[-2]["type"] == "actions"


def test_vote_bars_scale_to_the_busiest_day() -> None:
    chart = vote_bars([("2025-01-01", 0, 0), ("2025-01-02", 30, 10), ("2025-01-03", 2, 1)])
    lines = chart.splitlines()
    assert lines[0].startswith("01-01 ·") and lines[1].endswith("30↑ 10↓")
    assert lines[1].count("█") == 15 and lines[1].count("░") == 5
    assert escape("<a&b>") == "&lt;a&amp;b&gt;"
