"""The state directory's filesystem is recognised, and a network one draws one warning line."""

from __future__ import annotations

from pathlib import Path

from bulkshare.run.statefs import filesystem_of, network_filesystem_warning


def mounts_file(tmp_path: Path, *rows: tuple[str, str]) -> Path:
    """A /proc/mounts-shaped table naming `rows` (mount point, type) below a root ext4."""
    lines = ["/dev/sda1 / ext4 rw,relatime 0 0"]
    lines += [
        f"server:/export {point.replace(' ', chr(92) + '040')} {kind} rw 0 0"
        for point, kind in rows
    ]
    path = tmp_path / "mounts"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_longest_mount_point_decides(tmp_path: Path) -> None:
    """A directory under an NFS mount is NFS, one beside it is the root filesystem."""
    shared = tmp_path / "shared state"
    (shared / "runs").mkdir(parents=True)
    table = mounts_file(tmp_path, (str(shared), "nfs4"))
    assert filesystem_of(shared / "runs", table) == "nfs4"
    assert filesystem_of(tmp_path / "elsewhere", table) == "ext4"
    warning = network_filesystem_warning(shared / "not-yet-made", table)
    assert warning is not None and "nfs4" in warning and "\n" not in warning
    assert network_filesystem_warning(tmp_path, table) is None


def test_a_prefix_of_a_name_is_not_its_mount(tmp_path: Path) -> None:
    """A mount at /x/state does not hold /x/state-old."""
    (tmp_path / "state").mkdir()
    (tmp_path / "state-old").mkdir()
    table = mounts_file(tmp_path, (str(tmp_path / "state"), "cifs"))
    assert filesystem_of(tmp_path / "state-old", table) == "ext4"
    assert filesystem_of(tmp_path / "state", table) == "cifs"


def test_this_machine_reports_a_filesystem_for_a_local_directory(tmp_path: Path) -> None:
    """On Linux the real mount table names the test's own directory's filesystem."""
    kind = filesystem_of(tmp_path)
    assert kind is not None and kind not in {"nfs", "nfs4", "cifs"}
    assert filesystem_of(tmp_path, tmp_path / "no-such-table") is None
