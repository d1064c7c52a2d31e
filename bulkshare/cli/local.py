"""The parsers of the commands that read only local files (`runs`, `show`, `unlock`, `audit`)
and of `sim`, which serves a tenant of its own.
"""

from __future__ import annotations

from bulkshare.cli.options import Parser, Sub, add_report_options, command, since
from bulkshare.report.runs import DEAD
from bulkshare.run import RunState

#: what `runs --state` takes: the states run.json records, and the shown state `dead`
RUN_STATES = (*(s.value for s in RunState), DEAD)

__all__ = ["add_commands"]


def add_commands(sub: Sub[Parser], common: Parser) -> None:
    """Add `runs`, `show`, `unlock`, `audit` and `sim`, in the order `--help` lists them."""
    for add in (_add_runs, _add_show, _add_unlock, _add_audit, _add_sim):
        add(sub, common)


def _add_runs(sub: Sub[Parser], common: Parser) -> None:
    p = command(
        sub,
        common,
        "runs",
        "list runs, oldest first, with state and counts",
        "bulkshare runs --job disable-orphaned --state interrupted --since 3d",
    )
    p.add_argument(
        "--format", choices=("table", "json"), default="table", help="output (default table)"
    )
    p.add_argument("--job", metavar="NAME", help="only the runs of this job (its [job] name)")
    p.add_argument("--tenant", metavar="NAME", help="only the runs on this tenant of the config")
    p.add_argument(
        "--state",
        choices=RUN_STATES,
        help="only runs in this state (dead: running, but no live process holds its lease)",
    )
    p.add_argument(
        "--since",
        type=since,
        metavar="WHEN",
        help="only runs started at or after WHEN: an ISO date or time (UTC unless it says), "
        "or an age: 30m, 2h, 3d, 1w",
    )


def _add_show(sub: Sub[Parser], common: Parser) -> None:
    p = command(
        sub,
        common,
        "show",
        "one run: counts per action and outcome, failures and conflicts",
        "bulkshare show 20261201T081500Z-disable-orphaned-prod-3f9a --report run.html",
    )
    p.add_argument("run_id", metavar="RUN_ID", help="the run to show (id, unique prefix or `last`)")
    add_report_options(p)


def _add_unlock(sub: Sub[Parser], common: Parser) -> None:
    p = command(
        sub,
        common,
        "unlock",
        "name who holds a job's lock; remove it if its run is gone (its lease lapsed)",
        "bulkshare unlock prod disable-orphaned",
    )
    p.add_argument("tenant", metavar="TENANT", help="the tenant of the config the lock is for")
    p.add_argument("job", metavar="JOB", help="the job name (the [job] name, not the file)")
    p.add_argument(
        "--force",
        action="store_true",
        help="remove it even if its lease is live (that run then stops, resumable)",
    )


def _add_audit(sub: Sub[Parser], common: Parser) -> None:
    p = command(
        sub,
        common,
        "audit",
        "audit log tools",
        "bulkshare audit verify 20261201T081500Z-disable-orphaned-prod-3f9a",
    )
    audit_sub = p.add_subparsers(
        dest="audit_command", metavar="SUBCOMMAND", required=True, parser_class=Parser
    )
    v = command(
        audit_sub,
        common,
        "verify",
        "verify a run's hash chain",
        "bulkshare audit verify .bulkshare/runs/RUN_ID/audit.jsonl",
    )
    v.add_argument(
        "target", metavar="RUN_ID|PATH", help="run id, run directory or audit.jsonl path"
    )


def _add_sim(sub: Sub[Parser], common: Parser) -> None:
    from bulkshare.sim.flags import add_arguments

    p = command(
        sub,
        common,
        "sim",
        "serve a simulated tenant on a local port",
        "bulkshare sim --port 8080 --tasks 5000 --api-key demo-key",
    )
    add_arguments(p)  # the simulator's own flags, each with its help line
