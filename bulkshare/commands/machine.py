"""`--format json` of `apply`, `resume` and `undo`: how each run ended, as ONE JSON object on
stdout whatever ended it, so a CI step reads the run id and counts without parsing stderr.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import orjson

from bulkshare.commands.output import Output
from bulkshare.errors import UsageError, failure_of
from bulkshare.report import RunListing
from bulkshare.report.terminal import json_safe
from bulkshare.run import RunDir, Summary

__all__ = ["RunFormat", "RunResults"]


class RunFormat(StrEnum):
    """What `apply`, `resume` and `undo` print on stdout at the end."""

    TEXT = "text"  #: the summary, for people
    JSON = "json"  #: one JSON object, for programs


class RunResults:
    """The end of every run of one command, printed as one JSON object by `emit`.

    One tenant: its run's object (summary.json plus `state` and `error`), or nothing when no
    run was started. Several: `{"exit_code": worst, "runs": [one object per tenant]}`, where a
    tenant that started no run has `run_id` null.
    """

    def __init__(self, fmt: RunFormat = RunFormat.TEXT) -> None:
        self.fmt = fmt
        self._runs: dict[str, RunDir] = {}
        self._docs: dict[str, dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"<RunResults {self.fmt} runs={len(self._docs)}>"

    @property
    def machine(self) -> bool:
        """True when stdout is for a program: only the JSON object goes there."""
        return self.fmt is RunFormat.JSON

    def started(self, tenant: str, run_dir: RunDir) -> None:
        """A run directory exists for the tenant: whatever happens now, its object names it."""
        self._runs[tenant] = run_dir

    def finished(self, tenant: str, summary: Summary) -> None:
        doc = summary.to_json()
        self._docs[tenant] = {**doc, "state": "finished", "error": None}

    def failed(self, tenant: str, exc: BaseException) -> None:
        """The tenant's command ended with `exc`: its run (if any) as it stands, and the line."""
        failure = failure_of(exc)
        run_dir = self._runs.get(tenant)
        doc: dict[str, Any] = {"run_id": None, "tenant": tenant, "state": None}
        if run_dir is not None:
            doc.update(_as_it_stands(run_dir))
        self._docs[tenant] = {**doc, "exit_code": failure.exit_code, "error": failure.message}

    def emit(self, output: Output, tenants: int) -> None:
        """Print the one JSON object (with `--format json`, and if there is one to print)."""
        if not self.machine or not self._docs:
            return
        docs = list(self._docs.values())
        if tenants == 1:
            if docs[0]["run_id"] is None:
                return  # no run: the error line on stderr and the exit code tell it all
            output.result(_line(docs[0]))
            return
        worst = max(int(d["exit_code"]) for d in docs)
        output.result(_line({"exit_code": worst, "runs": docs}))


def _as_it_stands(run_dir: RunDir) -> dict[str, Any]:
    """The run's id, job, state and counts so far (pending included), from its files."""
    try:
        listing = RunListing.load(run_dir)
    except UsageError:  # its files cannot be read: the id is still worth printing
        return {"run_id": run_dir.run_id}
    doc = listing.to_json()
    doc.pop("exit_code", None)  # the command's, set by the caller
    return doc


def _line(doc: dict[str, Any]) -> str:
    # one line; characters JSON leaves raw (DEL, C1, bidi controls) escaped, as in the logs
    return json_safe(orjson.dumps(doc, default=str).decode())
