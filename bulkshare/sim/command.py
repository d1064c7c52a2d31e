"""What the flags of `bulkshare sim` (`flags.py`) make: the tenant to serve and its SimConfig.

`bulkshare.cli` adds those flags to its `sim` command and serves what `from_args` builds.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bulkshare.sim.callers import parse_roles
from bulkshare.sim.config import SimConfig
from bulkshare.sim.flags import YES_NO
from bulkshare.sim.rules import Answer, LinkStyle
from bulkshare.sim.tenant import SimTenant

__all__ = ["from_args"]


def from_args(args: argparse.Namespace) -> tuple[SimTenant, SimConfig]:
    """The tenant and config the flags describe; ValueError (one line) if they do not fit."""
    tenant = _tenant(args)
    if bool(args.client_id) != bool(args.client_secret):
        raise ValueError("--client-id and --client-secret go together")
    if args.caller_id is not None and args.caller_id not in tenant.users:
        raise ValueError(f"--caller-id {args.caller_id!r} is not a user of the tenant")
    return tenant, SimConfig(**_limits(args), **_identity(args), **_rules(args))


def _tenant(args: argparse.Namespace) -> SimTenant:
    if not args.data:
        return SimTenant.seed(args.tasks, args.seed)
    try:
        return SimTenant.load(Path(args.data))
    except (OSError, ValueError) as exc:
        raise ValueError(f"--data {args.data}: {exc}") from None


def _limits(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "tier1_per_minute": args.tier1_per_minute,
        "tier2_per_minute": args.tier2_per_minute,
        "window_s": args.window_s,
        "tenant_users": args.tenant_users,
        "pace_window_s": args.pace_window_s,
        "fault_rate": args.fault_rate,
        "seed": args.seed,
        "latency_ms": args.latency_ms,
        "deleting_phase": args.deleting_phase,
    }


def _identity(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "api_key": args.api_key,
        "client_id": args.client_id,
        "client_secret": args.client_secret,
        "token_ttl_s": args.token_ttl_s,
        "caller_id": args.caller_id,
        "caller_roles": parse_roles(args.caller_roles),
    }


def _rules(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "owner_change_disables": YES_NO[args.owner_change_disables],
        "owner_change_clears_errors": YES_NO[args.owner_change_clears_errors],
        "unknown_owner": Answer(args.unknown_owner),
        "deleting_patch": Answer(args.deleting_patch),
        "deleting_execute": Answer(args.deleting_execute),
        "known_apps_only": not args.any_app,
        "max_start_age_days": args.max_start_age_days,
        "next_links": LinkStyle(args.next_links),
        "empty_last_next": args.empty_last_next,
    }
