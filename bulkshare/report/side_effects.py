"""A run's side effects in words: how a task read back after its write differs from what the
plan expected (`run.judge.side_effects`), and the re-enable that may have followed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

__all__ = ["side_effect_texts"]


def side_effect_texts(
    effects: Sequence[Mapping[str, Any]], reenable: Mapping[str, Any] | None = None
) -> list[str]:
    """A read-back's side effects in words, the re-enable that followed included."""
    texts = [_side_effect_text(e) for e in effects]
    if reenable is not None:
        if reenable.get("outcome") == "applied":
            texts.append("enabled again (keep_enabled)")
        else:
            texts.append(f"enabling again failed: {_text(reenable.get('error'))}")
    return texts


def _side_effect_text(effect: Mapping[str, Any]) -> str:
    name, expected, observed = effect.get("field"), effect.get("expected"), effect.get("observed")
    if name == "enabled" and expected is True and observed is False:
        return "disabled by the service (expected enabled)"
    if name == "enabled" and expected is False and observed is True:
        return "left enabled (the plan expected the service might disable it)"
    if name == "taskErrors" and isinstance(observed, list):
        return f"new task errors: {', '.join(map(_text, observed))}"
    return f"{_text(name)} reads back {_short(observed)} (expected {_short(expected)})"


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _short(value: Any, width: int = 40) -> str:
    text = "-" if value is None else _text(value)
    return text if len(text) <= width else text[: width - 1] + "…"
