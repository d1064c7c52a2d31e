"""The files of one run under `<state_dir>/runs/<run-id>/`, and `run.json`, the run's state.

`RunMeta` is the one reader and writer of `run.json`; nothing else touches it by key.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from bulkshare.errors import RunFileError, UsageError

__all__ = ["RunDir", "RunMeta", "RunState", "new_run_id"]


class RunState(StrEnum):
    """Where a run stands, as `run.json` records it."""

    PLANNED = "planned"  # its directory and plan are written; nothing sent yet
    RUNNING = "running"  # a process is sending its changes
    INTERRUPTED = "interrupted"  # stopped early (signal, crash seen on restart); resumable
    FINISHED = "finished"  # every change has its audit record; summary.json is written


def new_run_id(job: str, tenant: str) -> str:
    """A sortable, unique run id: UTC time, job, tenant, random suffix."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{job}-{tenant}-{secrets.token_hex(2)}"


@dataclass(frozen=True, slots=True)
class RunMeta:
    """`run.json`: what the run is, how it was started, and how it stands."""

    run_id: str
    tenant: str
    job: str
    started: str  #: UTC RFC 3339, when the run directory was made
    state: RunState = RunState.PLANNED
    target: str = ""  #: what `apply` was given: a job file, a plan file, or `undo:<run>`
    verify: bool = True  #: tasks are re-read before each write
    concurrency: int = 16  #: requests in flight; `resume` keeps it
    kind: str = "apply"
    pid: int | None = None  #: the process that last ran it
    exit_code: int | None = None  #: once finished
    ended: str | None = None  #: once finished
    #: 429s seen by the earlier processes of this run (a resumed run adds its own)
    throttled: int = 0
    #: the user id of the caller that started the run (`/users/me`); the planner is in plan.json
    applied_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["state"] = self.state.value
        return doc

    @classmethod
    def from_json(cls, doc: Any, where: Path) -> RunMeta:
        """Read a `run.json` document; RunFileError naming the file when it is not one."""
        if not isinstance(doc, dict):
            raise RunFileError(f"{where}: not a run file (expected a JSON object)")
        try:
            return cls(
                run_id=_text(doc, "run_id"),
                tenant=_text(doc, "tenant"),
                job=_text(doc, "job"),
                started=_text(doc, "started"),
                state=RunState(doc.get("state", RunState.PLANNED.value)),
                target=str(doc.get("target") or ""),
                verify=bool(doc.get("verify", True)),
                concurrency=_count(doc, "concurrency", 16),
                kind=str(doc.get("kind") or "apply"),
                pid=_optional_int(doc, "pid"),
                exit_code=_optional_int(doc, "exit_code"),
                ended=None if doc.get("ended") is None else str(doc["ended"]),
                throttled=_count(doc, "throttled", 0),
                applied_by=_optional_text(doc, "applied_by"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RunFileError(f"{where}: malformed run file: {exc}") from None


def _text(doc: Mapping[str, Any], key: str) -> str:
    value = doc[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} must be a string")
    return value


def _optional_text(doc: Mapping[str, Any], key: str) -> str | None:
    return None if doc.get(key) is None else _text(doc, key)


def _optional_int(doc: Mapping[str, Any], key: str) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key} must be an integer")
    return value


def _count(doc: Mapping[str, Any], key: str, default: int) -> int:
    value = _optional_int(doc, key)
    return default if value is None else value


class RunDir:
    """The files of one run under `<state_dir>/runs/<run-id>/`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.run_id = root.name
        self.plan = root / "plan.json"
        self.audit = root / "audit.jsonl"
        self.summary = root / "summary.json"
        self.checkpoint = root / "checkpoint.sqlite"
        self.meta_path = root / "run.json"

    def __repr__(self) -> str:
        return f"<RunDir {self.root}>"

    @classmethod
    def create(cls, state_dir: Path, run_id: str) -> RunDir:
        root = state_dir / "runs" / run_id
        root.mkdir(parents=True, exist_ok=False)
        return cls(root)

    @classmethod
    def find(cls, state_dir: Path, run_id: str) -> RunDir:
        root = state_dir / "runs" / run_id
        if not (root / "run.json").is_file():
            raise UsageError(f"no run {run_id!r} under {state_dir / 'runs'}")
        return cls(root)

    def meta(self) -> RunMeta:
        """The run's `run.json`."""
        try:
            doc = orjson.loads(self.meta_path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise RunFileError(f"{self.meta_path}: malformed JSON: {exc}") from None
        return RunMeta.from_json(doc, self.meta_path)

    def write_meta(self, meta: RunMeta) -> None:
        """Replace `run.json` whole (atomically)."""
        tmp = self.meta_path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(meta.to_json(), option=orjson.OPT_INDENT_2))
        tmp.replace(self.meta_path)

    def update_meta(self, **changes: Any) -> RunMeta:
        """Change some fields of `run.json`; the new meta."""
        meta = replace(self.meta(), **changes)
        self.write_meta(meta)
        return meta
