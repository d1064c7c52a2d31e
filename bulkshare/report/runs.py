"""Runs read back from their directories: one run with every change's outcome (`RunReport`),
and the list of runs (`list_runs`); finished, interrupted and running runs all report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulkshare.audit import read_records
from bulkshare.copy.progress import ID_MAP_FILE, read_id_map
from bulkshare.errors import UsageError
from bulkshare.plan import Plan
from bulkshare.report.model import PENDING, Row
from bulkshare.run import ChangeRecord, RunDir, RunMeta, RunState, Summary
from bulkshare.run.files import run_names
from bulkshare.run.lockfile import run_is_live
from bulkshare.run.records import is_failure

__all__ = ["DEAD", "RunListing", "RunReport", "list_runs", "shown_state"]

#: the state shown for a run that run.json says is running, but no live lock lease names
DEAD = "dead"


def shown_state(run_dir: RunDir, meta: RunMeta) -> str:
    """The run's state as people should read it: `dead` for a running run no live lease holds.

    run.json keeps `running` (its process died without a word); the lock's lease tells.
    """
    if meta.state is not RunState.RUNNING:
        return meta.state.value
    state_dir = run_dir.root.parent.parent
    return meta.state.value if run_is_live(state_dir, meta.tenant, meta.job, meta.run_id) else DEAD


@dataclass(frozen=True)
class RunReport:
    """One run read back from its directory: meta, summary and every change with its outcome."""

    run_id: str
    tenant: str
    job: str
    #: planned, running, interrupted or finished, as run.json says; `dead` for a running run
    #: whose lease has lapsed
    state: str
    meta: RunMeta
    summary: Summary | None  #: summary.json, once the run has finished
    rows: tuple[Row, ...]
    #: audit records of failures, conflicts and non-delete changes that found no task
    problem_records: tuple[ChangeRecord, ...]
    plan: Plan | None = None  #: the run's plan.json: who planned it, for which tenant URL
    #: a copy run's id-map.csv: (source id, created id), as the copy runner wrote it
    id_map: tuple[tuple[str, str], ...] = ()

    @classmethod
    def load(cls, run_dir: RunDir) -> RunReport:
        """Read a run; a planned change with no audit record yet shows as PENDING.

        The audit chain is checked as it is read: RunFileError if it is broken or cut short.
        """
        meta = run_dir.meta()
        records = {r.index: r for r in run_dir.changes()}
        plan = Plan.read(run_dir.plan)
        rows = tuple(Row.of(i, c, records.get(i)) for i, c in enumerate(plan.changes))
        return cls(
            run_dir.run_id,
            meta.tenant,
            meta.job,
            shown_state(run_dir, meta),
            meta,
            Summary.read(run_dir.summary),
            rows,
            tuple(r for r in records.values() if is_failure(r.outcome.value, r.method)),
            plan,
            tuple(read_id_map(run_dir.root / ID_MAP_FILE)) if plan.copy is not None else (),
        )

    def by_outcome(self) -> dict[str, int]:
        """Changes per outcome, pending included."""
        return dict(Counter(str(r.outcome) for r in self.rows))

    def by_action(self) -> dict[str, dict[str, int]]:
        """Changes per action, then per outcome."""
        table: dict[str, Counter[str]] = {}
        for r in self.rows:
            table.setdefault(r.action, Counter())[str(r.outcome)] += 1
        return {action: dict(c) for action, c in table.items()}

    @property
    def problems(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.is_problem)

    def to_json(self) -> dict[str, Any]:
        """What `show --format json` prints: meta, summary, problems, then every change."""
        return {
            "run": self.meta.to_json(),
            "state": self.state,
            "summary": None if self.summary is None else self.summary.to_json(),
            "problems": [r.to_json() for r in self.problem_records],
            "side_effects": [_side_effect_json(r) for r in self.rows if r.side_effects],
            "counts": self.by_outcome(),
            "by_action": self.by_action(),
            "changes": [r.to_json() for r in self.rows],
            **({"id_map": [list(p) for p in self.id_map]} if self.plan and self.plan.copy else {}),
        }


def _side_effect_json(row: Row) -> dict[str, Any]:
    return {
        "index": row.index,
        "task_id": row.task_id,
        "name": row.name,
        "action": row.action,
        "side_effects": list(row.side_effects),
        "observed": None if row.observed is None else dict(row.observed),
    }


@dataclass(frozen=True)
class RunListing:
    """One line of `runs`: which run, where, when, how it stands."""

    run_id: str
    job: str
    tenant: str
    started: str
    state: str
    exit_code: int | None
    planned: int | None  #: changes in the plan, when known without reading it
    counts: Mapping[str, int]  #: outcomes so far; PENDING for what is left of an unfinished run

    @classmethod
    def load(cls, run_dir: RunDir) -> RunListing:
        meta = run_dir.meta()
        summary = Summary.read(run_dir.summary)
        planned, counts = (
            _progress(run_dir) if summary is None else (summary.planned, dict(summary.counts))
        )
        return cls(
            run_dir.run_id,
            meta.job,
            meta.tenant,
            meta.started,
            shown_state(run_dir, meta),
            meta.exit_code,
            planned,
            counts,
        )

    def counts_text(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "none"

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "job": self.job,
            "tenant": self.tenant,
            "started": self.started,
            "state": self.state,
            "exit_code": self.exit_code,
            "planned": self.planned,
            "counts": dict(self.counts),
        }


def _progress(run_dir: RunDir) -> tuple[int | None, dict[str, int]]:
    """Counts of an unfinished run from its audit log; the run-start record says what is planned."""
    planned: int | None = None
    counts: Counter[str] = Counter()
    for r in read_records(run_dir.audit) if run_dir.audit.exists() else ():
        if r.get("event") == "run-start" and isinstance(r.get("planned"), int):
            planned = r["planned"]
    for change in run_dir.changes():
        counts[change.outcome.value] += 1
    if planned is not None and planned > counts.total():
        counts[PENDING] = planned - counts.total()
    return planned, dict(counts)


def list_runs(state_dir: Path, warn: Callable[[str], None] | None = None) -> list[RunListing]:
    """Every run under `<state_dir>/runs`, oldest first (run ids start with their UTC time).

    A run whose files cannot be read (a corrupt run.json or summary.json, a broken audit
    chain) is left out, with one `warn` line naming it; the others are still listed.
    """
    root = state_dir / "runs"
    found: list[RunListing] = []
    for name in run_names(root):
        try:
            found.append(RunListing.load(RunDir(root / name)))
        except UsageError as exc:
            if warn is not None:
                warn(f"warning: run {name} skipped: {exc}")
    return found
