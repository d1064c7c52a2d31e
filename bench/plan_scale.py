"""Planning a large tenant: tasks per second and whole-process peak RSS of `bulkshare plan`.

The simulator runs in its own process with the limits lifted; `bulkshare plan` runs under
/usr/bin/time -v, which reports the peak RSS of the whole process, not what Python thinks.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.record import record

KEY_ENV = "BENCH_SIM_KEY"
KEY = "bench-key"
ROOT = Path(__file__).resolve().parent.parent


def start_sim(tasks: int) -> tuple[subprocess.Popen[bytes], str]:
    """A `bulkshare sim` with `tasks` tasks and no effective limit; (process, url)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bulkshare",
            "sim",
            "--port",
            "0",
            "--tasks",
            str(tasks),
            "--seed",
            "2026",
            "--tier1-per-minute",
            "100000000",
            "--tier2-per-minute",
            "100000000",
            "--api-key",
            KEY,
        ],
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline().decode()
    match = re.search(r"on (http://\S+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"sim did not start: {line}")
    return proc, match.group(1)


def plan_once(url: str, workdir: Path, job: str) -> tuple[float, int, int]:
    """(seconds, peak RSS in kB, tasks read) for one `bulkshare plan`."""
    config = workdir / "bulkshare.toml"
    config.write_text(
        f'state_dir = "state"\n[tenants.big]\nurl = "{url}"\napi_key_env = "{KEY_ENV}"\n'
        "[tenants.big.limits]\ntier1_per_minute = 100000000\ntier2_per_minute = 100000000\n"
    )
    start = time.perf_counter()
    done = subprocess.run(
        [
            "/usr/bin/time",
            "-v",
            sys.executable,
            "-m",
            "bulkshare",
            "plan",
            job,
            "--config",
            str(config),
        ],
        env={**os.environ, KEY_ENV: KEY},
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"plan failed: {done.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))  # type: ignore[union-attr]
    scanned = int(re.search(r"(\d+) tasks read", done.stdout).group(1))  # type: ignore[union-attr]
    return seconds, rss, scanned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--job", default=str(ROOT / "jobs" / "disable-orphaned.toml"))
    args = parser.parse_args()
    proc, url = start_sim(args.tasks)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            seconds, rss, scanned = plan_once(url, Path(tmp), args.job)
    finally:
        proc.terminate()
        proc.wait()
    # the job leaves DELETING tasks alone, so the server leaves them out of the listing
    assert 0.9 * args.tasks <= scanned <= args.tasks, scanned
    record(
        f"plan {args.tasks:,} tasks",
        f"python -m bench.plan_scale --tasks {args.tasks}",
        f"{args.tasks / seconds:,.0f} tenant tasks/s ({seconds:.1f} s incl. start-up; "
        f"{scanned:,} listed, DELETING excluded by the server), "
        f"peak RSS {rss / 1024:.0f} MB (/usr/bin/time -v, whole process)",
    )


if __name__ == "__main__":
    main()
