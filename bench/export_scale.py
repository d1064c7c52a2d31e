"""Exporting a large tenant: whole-process peak RSS of `bulkshare export`, then the file checked:
its trailer verifies, and copies cut by one line or mid-line are refused with one line, exit 2.

The simulator runs in its own process with the limits lifted (bench.plan_scale.start_sim);
`bulkshare export` runs under /usr/bin/time -v, which reports the peak RSS of the whole process.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.plan_scale import KEY, KEY_ENV, start_sim
from bench.record import record

#: the acceptance bound for the whole export process
RSS_LIMIT_MB = 200


def bulkshare(config: Path, *args: str, timed: bool = False) -> subprocess.CompletedProcess[str]:
    """One bulkshare process (under /usr/bin/time -v when `timed`), console log lines."""
    command = [sys.executable, "-m", "bulkshare", *args, "--config", str(config)]
    return subprocess.run(
        ["/usr/bin/time", "-v", *command] if timed else command,
        env={**os.environ, KEY_ENV: KEY},
        capture_output=True,
        text=True,
        check=False,
    )


def write_config(workdir: Path, url: str) -> Path:
    config = workdir / "bulkshare.toml"
    config.write_text(
        f'state_dir = "state"\n[tenants.big]\nurl = "{url}"\napi_key_env = "{KEY_ENV}"\n'
        "[tenants.big.limits]\ntier1_per_minute = 100000000\ntier2_per_minute = 100000000\n"
    )
    return config


def export_once(config: Path, out: Path) -> tuple[float, int, int]:
    """(seconds, peak RSS in kB, tasks exported) for one `bulkshare export`."""
    start = time.perf_counter()
    done = bulkshare(config, "export", "--out", str(out), "--log-format", "console", timed=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"export failed: {done.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))  # type: ignore[union-attr]
    count = int(re.search(r"exported (\d+) of", done.stdout).group(1))  # type: ignore[union-attr]
    return seconds, rss, count


def last_two_lines(path: Path) -> tuple[int, int]:
    """Byte offsets where the last task line and the trailer line begin."""
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(max(0, size - (4 << 20)))
        tail = f.read()
    base = size - len(tail)
    trailer = tail.rstrip(b"\n").rfind(b"\n") + 1
    task = tail.rfind(b"\n", 0, trailer - 1) + 1
    return base + task, base + trailer


def refused(config: Path, good: Path, cut_at: int, name: str) -> str:
    """Verify a copy of `good` cut at byte `cut_at`: it must fail with exit 2 and one line."""
    bad = good.with_name(name)
    shutil.copyfile(good, bad)
    os.truncate(bad, cut_at)
    done = bulkshare(config, "export", "--verify", str(bad), "--log-format", "console")
    lines = done.stderr.strip().splitlines()
    bad.unlink()
    if done.returncode != 2 or len(lines) != 1:
        raise SystemExit(f"{name}: exit {done.returncode}, stderr {done.stderr[-2000:]!r}")
    return lines[0]


def check_file(config: Path, out: Path) -> tuple[str, str, str]:
    """The verify line of the whole file, and the refusals of the two cut copies."""
    done = bulkshare(config, "export", "--verify", str(out), "--log-format", "console")
    if done.returncode != 0:
        raise SystemExit(f"the export does not verify: {done.stderr[-2000:]}")
    task, trailer = last_two_lines(out)
    one_line = refused(config, out, trailer, "cut-one-line.jsonl")
    mid_line = refused(config, out, (task + trailer) // 2, "cut-mid-line.jsonl")
    return done.stdout.strip(), one_line, mid_line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100_000)
    args = parser.parse_args()
    proc, url = start_sim(args.tasks)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = write_config(Path(tmp), url)
            out = Path(tmp) / "export.jsonl"
            seconds, rss, count = export_once(config, out)
            size_mb = out.stat().st_size / 2**20
            verified, one_line, mid_line = check_file(config, out)
    finally:
        proc.terminate()
        proc.wait()
    assert count == args.tasks, count
    assert rss / 1024 <= RSS_LIMIT_MB, f"peak RSS {rss / 1024:.0f} MB > {RSS_LIMIT_MB} MB"
    print(verified, one_line, mid_line, sep="\n")
    record(
        f"export {args.tasks:,} tasks",
        f"python -m bench.export_scale --tasks {args.tasks}",
        f"peak RSS {rss / 1024:.0f} MB (/usr/bin/time -v, whole process; limit "
        f"{RSS_LIMIT_MB} MB), {count:,} tasks in {seconds:.1f} s incl. start-up "
        f"({size_mb:,.0f} MB file); trailer verifies; a copy cut by one line and one cut "
        "mid-line are each refused with one line, exit 2",
    )


if __name__ == "__main__":
    main()
