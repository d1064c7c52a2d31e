"""How soon `bulkshare resume` of a big, half-done run sends its first write.

A tag-all job on a large simulated tenant (limits lifted) is applied and stopped with SIGINT
once half its changes are in the audit log; the figure is the time from spawning `resume` to
the first PATCH the server sees.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from bench.apply_throughput import tag_all_job, write_config
from bench.plan_scale import KEY, KEY_ENV, start_sim
from bench.record import record


def control(url: str, path: str, post: bool = False) -> Any:
    req = urllib.request.Request(f"{url}{path}", method="POST" if post else "GET")
    with urllib.request.urlopen(req) as resp:
        body = resp.read()
    return orjson.loads(body) if body else None


def changes_logged(audit: Path) -> int:
    if not audit.exists():
        return 0
    with open(audit, "rb") as fh:
        return sum(1 for line in fh if b'"event":"change"' in line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=105_000)
    args = parser.parse_args()
    env = {**os.environ, KEY_ENV: KEY}
    proc, url = start_sim(args.tasks)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            config = write_config(workdir, url)
            job = tag_all_job(workdir)
            apply = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bulkshare",
                    "apply",
                    str(job),
                    "--yes",
                    "--no-verify",
                    "--config",
                    str(config),
                    "-q",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            runs = workdir / "state" / "runs"
            while not runs.exists() or not any(runs.iterdir()):
                time.sleep(0.2)
            run_dir = next(runs.iterdir())
            while not (run_dir / "plan.json").exists():
                time.sleep(0.2)
            planned = len(orjson.loads((run_dir / "plan.json").read_bytes())["changes"])
            while changes_logged(run_dir / "audit.jsonl") < planned // 2:
                time.sleep(0.2)
            apply.send_signal(signal.SIGINT)
            assert apply.wait(60) == 130
            done = changes_logged(run_dir / "audit.jsonl")
            control(url, "/__sim/reset-stats", post=True)
            start = time.perf_counter()
            resume = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bulkshare",
                    "resume",
                    run_dir.name,
                    "--config",
                    str(config),
                    "-q",
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            total = time.perf_counter() - start
            assert resume.returncode == 0, resume.stderr[-2000:]
            stats = control(url, "/__sim/stats")
    finally:
        proc.terminate()
        proc.wait()
    first = min(row[0] for row in stats["timeline"] if row[1] == "PATCH")
    record(
        f"resume of a {planned:,}-change run, half done: first write",
        f"python -m bench.resume_start --tasks {args.tasks}",
        f"{first:.2f} s after spawning resume ({done:,} of {planned:,} done before; resume "
        f"finished the rest in {total:.1f} s)",
    )


if __name__ == "__main__":
    main()
