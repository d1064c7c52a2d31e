"""Generated export files through `bulkshare export --verify`: a real export cut, edited, given
non-JSON lines, lines dropped or doubled, or a wrong trailer; and whole files forged with their
hashes recomputed. Whatever changed a task or the header is refused in one line with exit 2;
a file verified (exit 0) shows its header's text escaped.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.generated.harness import ENV, Served, check, run_cli, suite_settings, write_config
from tests.generated.tomltext import ODD_TEXT

# slow (`.ci/run` runs it with `pytest -m slow`): generated inputs through the real CLI
pytestmark = pytest.mark.slow

#: what `export --verify` may end with: verified, or refused
VERIFY_CODES = {0, 2}
#: lines that have no place in an export
STRAY_LINES = [
    b"",
    b"not json",
    b"[1, 2]",
    b'"text"',
    b"{}",
    b'{"id": "t-new", "name": "smuggled"}',
    b'{"trailer": true, "count": 0, "sha256": "' + b"0" * 64 + b'"}',
    b'{"format": "bulkshare-export/1"}',
    b"\xff\xfe\x00",
    b'{"id": "\x1b[2J"}',
]


@pytest.fixture(scope="module")
def original(served: Served, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real export of the hostile tenant (the simulator behind it): header, tasks, trailer."""
    root = tmp_path_factory.mktemp("export")
    served.reset()
    config = write_config(root / "bulkshare.toml", served.hostile.url)
    done = run_cli(["export", "--out", "e.jsonl", "--config", str(config)], root, ENV)
    assert done.code == 0, done.err
    return (root / "e.jsonl").read_bytes()


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")[:-1]


def _join(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


@st.composite
def edited(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with one or two edits of the kinds a damaged or tampered file shows."""
    for _ in range(draw(st.integers(1, 2))):
        lines = _lines(data)
        how = draw(st.sampled_from(["cut", "flip", "insert", "drop", "double", "trailer", "ends"]))
        if how == "cut":
            data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
        elif how == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
        elif how == "insert":
            lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(STRAY_LINES)))
            data = _join(lines)
        elif how in ("drop", "double") and lines:
            at = draw(st.integers(0, len(lines) - 1))
            lines[at : at + 1] = [] if how == "drop" else [lines[at], lines[at]]
            data = _join(lines)
        elif how == "trailer" and lines:
            lines[-1] = orjson.dumps(draw(_trailers(lines[-1])))
            data = _join(lines)
        elif how == "ends":
            data = draw(st.sampled_from([data.replace(b"\n", b"\r\n"), b"\xef\xbb\xbf" + data]))
    return data


def _trailers(line: bytes) -> st.SearchStrategy[Any]:
    try:
        trailer = orjson.loads(line)
    except orjson.JSONDecodeError:
        trailer = {}
    if not isinstance(trailer, dict):
        trailer = {}
    count = trailer.get("count", 0)
    count = count if isinstance(count, int) else 0
    changes: st.SearchStrategy[dict[str, Any]] = st.sampled_from(
        [
            {"count": count + 1},
            {"count": count - 1},
            {"count": -1},
            {"count": "40"},
            {"count": 1e300},
            {"sha256": "0" * 64},
            {"sha256": "xyz"},
            {"sha256": None},
            {"header_sha256": "f" * 64},
            {"trailer": False},
            {"id": "t1"},
        ]
    )
    base: dict[str, Any] = trailer
    return changes.map(lambda change: {**base, **change})


def _verify(path: Path, data: bytes) -> int:
    path.write_bytes(data)
    outcome = run_cli(["export", "--verify", str(path)], path.parent, ENV)
    check(outcome, VERIFY_CODES, "export files")
    return outcome.code


def _same_content(data: bytes, original: bytes) -> bool:
    """The header and every task line unchanged, and a trailer meaning the same."""
    lines, old = _lines(data), _lines(original)
    if lines[:-1] != old[:-1] or not data.endswith(b"\n"):
        return False
    try:
        return bool(orjson.loads(lines[-1]) == orjson.loads(old[-1]))
    except orjson.JSONDecodeError:
        return False


@suite_settings(260)
@given(data=st.data())
def test_damaged_exports_are_refused(tmp_path: Path, original: bytes, data: st.DataObject) -> None:
    """An export cut, edited, with stray or missing lines or a wrong trailer is refused in one
    line, exit 2; only a file whose tasks and header are unchanged verifies."""
    damaged = data.draw(edited(original))
    code = _verify(tmp_path / "damaged.jsonl", damaged)
    if damaged == original:
        assert code == 0
    elif not _same_content(damaged, original):
        assert code == 2


def _forged(header: dict[str, Any], tasks: list[dict[str, Any]], with_head: bool) -> bytes:
    head = orjson.dumps(header)
    body = _join([orjson.dumps(t) for t in tasks])
    trailer: dict[str, Any] = {"trailer": True, "count": len(tasks)}
    trailer["sha256"] = hashlib.sha256(body).hexdigest()
    if with_head:
        trailer["header_sha256"] = hashlib.sha256(head).hexdigest()
    return head + b"\n" + body + orjson.dumps(trailer) + b"\n"


HEADER = {
    "format": "bulkshare-export/1",
    "tenant": "h",
    "url": "https://acme.example",
    "simulated": False,
    "exported_at": "2026-01-01T00:00:00Z",
    "job": None,
    "where": None,
}


@suite_settings(100)
@given(
    field=st.sampled_from(["tenant", "url", "exported_at", "job", "where", "format"]),
    text=ODD_TEXT,
    names=st.lists(ODD_TEXT, max_size=3),
    with_head=st.booleans(),
)
def test_forged_exports_show_their_text_escaped(
    tmp_path: Path, field: str, text: str, names: list[str], with_head: bool
) -> None:
    """A forged file whose hashes add up (odd text in its header and tasks) verifies or is
    refused in one line; what it shows of its own text is escaped."""
    header = {**HEADER, field: text}
    tasks = [{"id": f"t{i}", "name": name} for i, name in enumerate(names)]
    _verify(tmp_path / "forged.jsonl", _forged(header, tasks, with_head))
