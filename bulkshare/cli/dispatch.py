"""From parsed arguments to the command that does the work: the config loaded, the request
built, the async commands run; each handler returns the command's exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable

from bulkshare import commands
from bulkshare.config import Config, load_config
from bulkshare.errors import UsageError

__all__ = ["dispatch"]

_Handler = Callable[[argparse.Namespace, commands.Output], int]


def dispatch(args: argparse.Namespace, output: commands.Output) -> int:
    """Run the command `args` names; its exit code."""
    if args.command == "validate":
        return commands.validate(args.jobs, output)
    if args.command == "sim":
        return _sim(args)
    return _WITH_CONFIG[args.command](args, output)


def _config(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


def _plan(args: argparse.Namespace, output: commands.Output) -> int:
    config = _config(args)
    return asyncio.run(
        commands.plan(
            config,
            args.job,
            args.tenant,
            args.format,
            args.out,
            output,
            args.report,
            accept_incomplete=args.accept_incomplete,
            detailed_exitcode=args.detailed_exitcode,
        )
    )


def _apply(args: argparse.Namespace, output: commands.Output) -> int:
    req = commands.ApplyRequest(
        args.target,
        args.tenant,
        args.yes,
        sys.stdin.isatty(),
        args.max_changes,
        not args.no_verify,
        args.concurrency,
        args.max_age,
        args.accept_incomplete,
        fmt=commands.RunFormat(args.format),
    )
    return asyncio.run(commands.apply(_config(args), req, output))


def _resume(args: argparse.Namespace, output: commands.Output) -> int:
    fmt = commands.RunFormat(args.format)
    return asyncio.run(commands.resume(_config(args), args.run_id, output, fmt))


def _undo(args: argparse.Namespace, output: commands.Output) -> int:
    req = commands.UndoRequest(
        args.run_id, args.yes, args.dry_run, sys.stdin.isatty(), commands.RunFormat(args.format)
    )
    return asyncio.run(commands.undo(_config(args), req, output))


def _export(args: argparse.Namespace, output: commands.Output) -> int:
    if args.verify is not None:
        if args.job or args.tenant or args.format:
            raise UsageError("usage: bulkshare export: --verify takes no JOB, --tenant or --format")
        return commands.verify_export_file(args.verify, output)
    req = commands.ExportRequest(args.out, args.job, args.tenant, args.format)
    return asyncio.run(commands.export(_config(args), req, output))


def _runs(args: argparse.Namespace, output: commands.Output) -> int:
    where = commands.RunFilter(args.job, args.tenant, args.state, args.since)
    return commands.runs(_config(args), output, args.format, where)


def _show(args: argparse.Namespace, output: commands.Output) -> int:
    return commands.show(_config(args), args.run_id, output, args.format, args.report)


def _unlock(args: argparse.Namespace, output: commands.Output) -> int:
    return commands.unlock(_config(args), args.tenant, args.job, args.force, output)


def _audit(args: argparse.Namespace, output: commands.Output) -> int:
    return commands.audit_verify(_config(args), args.target, output)


_WITH_CONFIG: dict[str, _Handler] = {
    "export": _export,
    "plan": _plan,
    "apply": _apply,
    "resume": _resume,
    "undo": _undo,
    "runs": _runs,
    "show": _show,
    "unlock": _unlock,
    "audit": _audit,
}


def _sim(args: argparse.Namespace) -> int:
    from bulkshare.sim import serve
    from bulkshare.sim.command import from_args

    try:
        tenant, config = from_args(args)
    except ValueError as exc:
        raise UsageError(f"usage: bulkshare sim: {exc}") from None
    serve(args.host, args.port, tenant, config)
    return 0
