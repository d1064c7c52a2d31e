"""The files of one run under `<state_dir>/runs/<run-id>/`, and `run.json`, the run's state.

`RunMeta` is the one reader and writer of `run.json`; nothing else touches it by key.
"""

from __future__ import annotations

import gc
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from bulkshare import safefile
from bulkshare.errors import RunFileError, UsageError
from bulkshare.run.checkpoint import Checkpoint
from bulkshare.run.records import ChangeRecord, read_changes

__all__ = ["RUN_ID", "RunDir", "RunMeta", "RunState", "check_run_id", "new_run_id", "run_names"]

#: the shape of a run id (what `new_run_id` makes): one path segment, never `.` or `..`
RUN_ID = re.compile(r"[A-Za-z0-9._-]+")
#: the most run.json may hold (it is a few hundred bytes)
_META_LIMIT = 1 << 20


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


def check_run_id(run_id: str) -> str:
    """`run_id` if it has the shape of one; UsageError otherwise (a path is not a run id)."""
    if not RUN_ID.fullmatch(run_id) or run_id in (".", ".."):
        raise UsageError(
            f"{run_id!r} is not a run id (letters, digits, '.', '_' and '-' only; "
            "no path): see `bulkshare runs`"
        )
    return run_id


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
        #: the recorded change indices, and the state of the log they were read from
        self._recorded: tuple[tuple[int, int, int], frozenset[int]] | None = None

    def __repr__(self) -> str:
        return f"<RunDir {self.root}>"

    @classmethod
    def create(cls, state_dir: Path, run_id: str) -> RunDir:
        runs = state_dir / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        root = runs / check_run_id(run_id)
        try:
            root.mkdir()  # an entry of that name, a symlink included, is refused
        except FileExistsError:
            raise RunFileError(f"{root}: already exists; refusing to reuse it") from None
        return cls(root)

    @classmethod
    def find(cls, state_dir: Path, run_id: str) -> RunDir:
        """The run named by its id, by a unique prefix of it, or `last`; UsageError otherwise."""
        runs = state_dir / "runs"
        root = runs / _resolve(runs, check_run_id(run_id))
        _check_inside(runs, root)
        return cls(root)

    def meta(self) -> RunMeta:
        """The run's `run.json`."""
        try:
            data = safefile.read_regular(self.meta_path, _META_LIMIT, follow=False)
        except UsageError as exc:
            raise RunFileError(str(exc)) from None
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise RunFileError(f"{self.meta_path}: malformed JSON: {exc}") from None
        return RunMeta.from_json(doc, self.meta_path)

    def write_meta(self, meta: RunMeta) -> None:
        """Replace `run.json` whole (atomically, never through a planted symlink)."""
        safefile.write_atomic(
            self.meta_path, orjson.dumps(meta.to_json(), option=orjson.OPT_INDENT_2)
        )

    def update_meta(self, **changes: Any) -> RunMeta:
        """Change some fields of `run.json`; the new meta."""
        meta = replace(self.meta(), **changes)
        self.write_meta(meta)
        return meta

    def changes(self) -> list[ChangeRecord]:
        """Every change record, read while the audit chain is checked; RunFileError if broken.

        A run that says it finished must end with its run-end record (truncation shows).
        """
        found: list[ChangeRecord] = []
        # the records are kept and hold no cycles: with the collector paused the read does not
        # rescan a heap that only grows (Plan.read does the same)
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._read_changes(found.append)
        finally:
            if collecting:
                gc.enable()
        return found

    def recorded(self) -> frozenset[int]:
        """Indices of the changes the audit log records (its chain checked, see `changes`).

        Kept while the log is unchanged, so checking a run before resuming it and resuming it
        read the log once.
        """
        key = _file_key(self.audit)
        if self._recorded is None or self._recorded[0] != key:
            indices: set[int] = set()
            self._read_changes(lambda record: indices.add(record.index))
            self._recorded = (key, frozenset(indices))
        return self._recorded[1]

    def _read_changes(self, on_change: Callable[[ChangeRecord], None]) -> None:
        try:
            safefile.refuse_links(self.audit)  # read through a symlink, it could be anything
        except UsageError as exc:
            raise RunFileError(str(exc)) from None
        read_changes(
            self.audit,
            on_change,
            finished=self.meta().state is RunState.FINISHED,
            mark=Checkpoint.saved_mark(self.checkpoint),
        )


def _file_key(path: Path) -> tuple[int, int, int]:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return (0, -1, 0)
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def run_names(runs: Path) -> list[str]:
    """The run directories under `runs` (real directories with a run.json), oldest first."""
    if not runs.is_dir():
        return []
    return sorted(
        d.name
        for d in runs.iterdir()
        if RUN_ID.fullmatch(d.name) and not d.is_symlink() and (d / "run.json").is_file()
    )


def _resolve(runs: Path, run_id: str) -> str:
    """The directory name `run_id` stands for: itself, the newest run for `last`, or a prefix."""
    if (runs / run_id / "run.json").is_file():
        return run_id
    names = run_names(runs)
    if run_id == "last" and names:
        return max(names, key=lambda name: (_started(runs / name), name))
    matches = [n for n in names if n.startswith(run_id)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        shown = ", ".join(matches[:3]) + (", ..." if len(matches) > 3 else "")
        raise UsageError(f"run id {run_id!r} is ambiguous: {len(matches)} runs start so ({shown})")
    raise UsageError(f"no run {run_id!r} under {runs}")


def _started(root: Path) -> str:
    """When a run started (its run.json), for `last`: ids of one second sort by job, not time."""
    try:
        return RunDir(root).meta().started
    except UsageError:
        return ""


def _check_inside(runs: Path, root: Path) -> None:
    """UsageError unless `root` is a real directory directly inside `runs` (no symlink out)."""
    if root.is_symlink() or root.resolve().parent != runs.resolve():
        raise UsageError(f"{root}: not a run directory inside {runs} (a symlink?); refusing it")
