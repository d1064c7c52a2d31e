"""The lines a command says even with -q: that the tenant is the built-in simulator (not a real
one), and, once per process, that the state directory is on a network filesystem.
"""

from __future__ import annotations

from pathlib import Path

from bulkshare.client.tenant import describe_tenant
from bulkshare.commands.output import Output
from bulkshare.config import Config, TenantConfig
from bulkshare.run.statefs import network_filesystem_warning

__all__ = ["StateDirCheck", "check_state_dir", "tenant_notice"]


def tenant_notice(tenant: TenantConfig, config: Config, output: Output) -> None:
    """The line naming the tenant: -q hides it for a real tenant, never for the simulator
    (a quiet cron job that ran against no real tenant must still say so)."""
    line = describe_tenant(tenant, config)
    if tenant.is_builtin_sim:
        output.notice(line)
    else:
        output.note(line)


class StateDirCheck:
    """Warns once per state directory that SQLite's locking is unsafe where it lives."""

    def __init__(self, mounts: Path | None = None) -> None:
        self._mounts = mounts  #: the mount table to read (None: the system's)
        self._checked: set[Path] = set()

    def __repr__(self) -> str:
        return f"<StateDirCheck checked={len(self._checked)}>"

    def __call__(self, config: Config, output: Output) -> None:
        """The warning line, if `config.state_dir` is on a network filesystem; once each."""
        state_dir = config.state_dir.absolute()
        if state_dir in self._checked:
            return
        self._checked.add(state_dir)
        warning = (
            network_filesystem_warning(state_dir)
            if self._mounts is None
            else network_filesystem_warning(state_dir, self._mounts)
        )
        if warning is not None:
            output.notice(warning)


#: the check of this process, called by every command that writes under state_dir
check_state_dir = StateDirCheck()
