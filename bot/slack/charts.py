"""Text charts for Slack, which has no chart block: a monospaced bar per day reads well enough."""

from __future__ import annotations

from collections.abc import Sequence

WIDTH = 20


def vote_bars(days: Sequence[tuple[str, int, int]], width: int = WIDTH) -> str:
    """One line per day: ``MM-DD ███░░ 3↑ 2↓`` (█ = 👍, ░ = 👎), scaled to the busiest day."""
    if not days:
        return "(no days)"
    busiest = max((up + down for _, up, down in days), default=0)
    scale = width / busiest if busiest > width else 1.0
    lines = []
    for day, up, down in days:
        up_bar = "█" * round(up * scale) if up else ""
        down_bar = "░" * round(down * scale) if down else ""
        bar = (up_bar + down_bar) or "·"
        lines.append(f"{day[5:]} {bar:<{width}} {up}↑ {down}↓")
    return "\n".join(lines)


def helpful_share(up: int, down: int) -> str:
    total = up + down
    return "no votes yet" if not total else f"{100 * up / total:.0f}% helpful ({up} 👍, {down} 👎)"
