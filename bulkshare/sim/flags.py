"""The flags of `bulkshare sim`, each with its help line; `command.from_args` makes of them
the tenant to serve and its SimConfig.

Every command's parser adds these flags, so this module imports no more of the simulator than
its defaults need (not the tenant model, not the server).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from bulkshare.sim.config import DEFAULT_ROLES, DEMO_SEED, DEMO_TASKS
from bulkshare.sim.rules import MAX_START_AGE_DAYS, Answer, LinkStyle

__all__ = ["YES_NO", "add_arguments"]

#: the words of a yes/no flag and what each means
YES_NO = {"yes": True, "no": False}
_ANSWERS = tuple(a.value for a in Answer)


def _number(kind: Callable[[str], Any], low: float, what: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if not low <= value < float("inf"):  # refuses nan too
            raise argparse.ArgumentTypeError(what)
        return value

    return parse


_COUNT = _number(int, 0, "must be zero or more")
_POSITIVE = _number(int, 1, "must be a positive integer")
_SECONDS = _number(float, 1e-9, "must be a positive number of seconds")
_FRACTION = _number(float, 0.0, "must be a number from 0 to 1")


def _fraction(text: str) -> float:
    value: float = _FRACTION(text)
    if value > 1.0:
        raise argparse.ArgumentTypeError("must be a number from 0 to 1")
    return value


def _age(text: str) -> int | None:
    if text == "none":
        return None
    value: int = _COUNT(text)
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Every flag of `bulkshare sim`, each with its help line."""
    _add_tenant(p)
    _add_limits(p)
    _add_identity(p)
    _add_rules(p)


def _add_tenant(p: argparse.ArgumentParser) -> None:
    add = p.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--port", type=_COUNT, default=8080, help="port (0 picks a free one)")
    add("--tasks", type=_COUNT, default=DEMO_TASKS, help="tasks to seed (default 1000)")
    add(
        "--seed",
        type=int,
        default=DEMO_SEED,
        help="random seed of the seeded tenant: another seed is another tenant (ids, apps)",
    )
    add(
        "--data",
        metavar="FILE",
        help='load the tenant from {"sharingTasks": [...], "users": [...], "apps": [...]}',
    )
    add(
        "--fault-rate",
        type=_fraction,
        default=0.0,
        help="share of write requests answered by a fault (503 before, 500 or a drop after)",
    )
    add("--latency-ms", type=_COUNT, default=0, help="delay added to every answer")
    add(
        "--deleting-phase",
        action="store_true",
        help="DELETE first puts a task in DELETING, as the real service can",
    )


def _add_limits(p: argparse.ArgumentParser) -> None:
    add = p.add_argument
    add("--tier1-per-minute", type=_POSITIVE, default=1000, help="tier 1 limit (GETs)")
    add("--tier2-per-minute", type=_POSITIVE, default=100, help="tier 2 limit (writes)")
    add("--window-s", type=_SECONDS, default=300.0, help="the limits' counting window")
    add(
        "--tenant-users",
        type=_POSITIVE,
        metavar="N",
        help="add the tenant-wide limit per tier, over all identities: "
        "floor(per-user limit x N x 0.5)",
    )
    add(
        "--pace-window-s",
        type=_SECONDS,
        metavar="S",
        help="also hold each identity to its per-minute rate over any S seconds "
        "(a service that does not let the window be spent in one burst; e.g. 60)",
    )


def _add_identity(p: argparse.ArgumentParser) -> None:
    add = p.add_argument
    add("--api-key", help="the one bearer token accepted (default: any non-empty token)")
    add("--client-id", help="the one OAuth client accepted at /oauth/token")
    add("--client-secret", help="that client's secret")
    add("--token-ttl-s", type=_SECONDS, default=21600.0, help="lifetime of issued tokens")
    add(
        "--caller-id",
        metavar="USER_ID",
        help="the user every identity acts as (default: the tenant's admin user)",
    )
    add(
        "--caller-roles",
        metavar="ROLE,...",
        default=",".join(DEFAULT_ROLES),
        help="the caller's roles (default TenantAdmin; without TenantAdmin or AnalyticsAdmin "
        'the caller sees only its own tasks; "" for none)',
    )


def _add_rules(p: argparse.ArgumentParser) -> None:
    add = p.add_argument
    add(
        "--owner-change-disables",
        choices=tuple(YES_NO),
        default="yes",
        help="whether a PATCH changing the owner disables the task unless it also enables it "
        "(default yes)",
    )
    add(
        "--owner-change-clears-errors",
        choices=tuple(YES_NO),
        default="yes",
        help="whether a new active owner clears ORPHAN / OWNER_DISABLED at once (default yes)",
    )
    add(
        "--unknown-owner",
        choices=_ANSWERS,
        default=Answer.BAD_REQUEST.value,
        help="answer to PATCH /ownerId naming no user: 400 (default), 404, or accept",
    )
    add(
        "--deleting-patch",
        choices=_ANSWERS,
        default=Answer.NOT_FOUND.value,
        help="answer to PATCH of a task in DELETING: 404 (default), 400, or accept",
    )
    add(
        "--deleting-execute",
        choices=_ANSWERS,
        default=Answer.NOT_FOUND.value,
        help="answer to execute of a task in DELETING: 404 (default), 400, or accept",
    )
    add(
        "--any-app",
        action="store_true",
        help="accept templates naming apps the tenant does not have (default: 400)",
    )
    add(
        "--max-start-age-days",
        type=_age,
        default=MAX_START_AGE_DAYS,
        metavar="N|none",
        help="refuse a schedule start further back than N days (default 365; none: any)",
    )
    add(
        "--next-links",
        choices=tuple(s.value for s in LinkStyle),
        default=LinkStyle.ABSOLUTE.value,
        help="how list answers write links.*.href: absolute (default), relative "
        "(/api/v1/...?page=...) or query (?page=...)",
    )
    add(
        "--empty-last-next",
        action="store_true",
        help='the last page of a list answers "next": {"href": ""} rather than no next',
    )
