"""Which filesystem holds the state directory: SQLite's locking (checkpoint, ledger) is unsafe on
network filesystems, so a run started on one is warned about, once, before it writes anything.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["NETWORK_FILESYSTEMS", "filesystem_of", "network_filesystem_warning"]

#: filesystem types (as /proc/mounts names them) where POSIX locks are unreliable or absent
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "lustre", "gpfs",
        "afs", "davfs", "fuse.sshfs", "fuse.s3fs", "fuse.gcsfuse", "fuse.rclone", "fuse.juicefs",
        "fuse.glusterfs", "fuse.cephfs", "efs",
    }
)  # fmt: skip
_MOUNTS = Path("/proc/mounts")


def filesystem_of(path: Path, mounts: Path = _MOUNTS) -> str | None:
    """The type of the filesystem `path` lives on, from the longest matching mount point."""
    try:
        table = mounts.read_text()
    except OSError:
        return None  # not Linux, or /proc is hidden: nothing to say
    target = os.path.realpath(_existing(path))
    best, kind = "", None
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape(fields[1])
        if _contains(point, target) and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def network_filesystem_warning(state_dir: Path, mounts: Path = _MOUNTS) -> str | None:
    """One line to show when the state directory is on a network filesystem, else None."""
    kind = filesystem_of(state_dir, mounts)
    if kind is None or kind not in NETWORK_FILESYSTEMS:
        return None
    return (
        f"warning: state_dir {state_dir} is on a {kind} filesystem; SQLite's locking (checkpoint, "
        "budget ledger) is unsafe there: keep state_dir on a local disk or a block volume"
    )


def _existing(path: Path) -> Path:
    # the state directory may not exist yet: judge by its nearest existing parent
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _contains(point: str, target: str) -> bool:
    return target == point or target.startswith(point.rstrip("/") + "/")


def _unescape(field: str) -> str:
    # /proc/mounts writes space, tab, newline and backslash in octal
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field
