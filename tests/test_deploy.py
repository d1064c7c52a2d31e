"""The deploy/ recipes: the cron script run against the built-in simulator (its alerts), the
Dockerfile's content, and the Kubernetes CronJob example read with a strict YAML-subset reader.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.yaml_subset import YamlSubsetError, load_all

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
SCRIPT = DEPLOY / "cron-apply.sh"
#: the bound a stop holds (issue 15: SIGTERM -> exit within 5 s); bench/stop_fast.py measures it
STOP_BOUND_S = 5
#: the image's user (deploy/Dockerfile), which the CronJob runs as
IMAGE_UID = 10001
UNSET_SECRET = "BULKSHARE_TEST_NEVER_SET_SECRET"

needs_shell = pytest.mark.skipif(
    shutil.which("bash") is None or shutil.which("jq") is None,
    reason="the cron script needs bash and jq",
)


@dataclass(frozen=True)
class Cron:
    """A cron run's exit code, the alerts it sent, and the log files it grew."""

    code: int
    alerts: list[tuple[str, str]]
    out_log: str
    err_log: str


@pytest.fixture
def cron_dir(tmp_path: Path) -> Path:
    """A config with a tenant whose secret is unset (the built-in `sim` is always there too),
    the shipped job, the same job with a max_changes of 3, and an alert command to a file."""
    (tmp_path / "bulkshare.toml").write_text(
        f'state_dir = "state"\n[tenants.prod]\nurl = "https://acme.eu.qlikcloud.com"\n'
        f'api_key_env = "{UNSET_SECRET}"\n'
    )
    job = (ROOT / "jobs" / "disable-orphaned.toml").read_text()
    (tmp_path / "disable-orphaned.toml").write_text(job)
    guarded = job.replace("max_changes = 500", "max_changes = 3")
    assert guarded != job
    (tmp_path / "guarded.toml").write_text(guarded)
    alert = tmp_path / "alert.sh"
    alert.write_text('#!/bin/sh\n{ printf "%s\\n" "$1"; cat; printf "\\036\\n"; } >> alerts\n')
    alert.chmod(0o755)
    return tmp_path


def cron(workdir: Path, job: str, tenant: str) -> Cron:
    """Run deploy/cron-apply.sh JOB TENANT in `workdir` as cron would (no terminal)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKSHARE")}
    env.pop(UNSET_SECRET, None)
    env.update(
        BULKSHARE=str(Path(sys.executable).parent / "bulkshare"),
        BULKSHARE_CONFIG=str(workdir / "bulkshare.toml"),
        BULKSHARE_LOG_DIR=str(workdir / "logs"),
        BULKSHARE_ALERT=str(workdir / "alert.sh"),
    )
    proc = subprocess.run(
        [str(SCRIPT), job, tenant], cwd=workdir, env=env, stdin=subprocess.DEVNULL, timeout=120
    )
    name = Path(job).stem
    return Cron(
        proc.returncode,
        alerts_in(workdir / "alerts"),
        _text(workdir / "logs" / f"{name}.out"),
        _text(workdir / "logs" / f"{name}.log"),
    )


def alerts_in(path: Path) -> list[tuple[str, str]]:
    """(subject, body) of each alert the alert command wrote."""
    if not path.exists():
        return []
    out = []
    for chunk in path.read_text().split("\x1e\n"):
        if chunk:
            subject, _, body = chunk.partition("\n")
            out.append((subject, body))
    return out


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


@needs_shell
def test_cron_success_sends_no_alert_and_logs_the_summary(cron_dir: Path) -> None:
    """A run that applies everything exits 0, alerts no one, and appends its summary."""
    done = cron(cron_dir, "disable-orphaned.toml", "sim")
    assert done.code == 0
    assert done.alerts == []
    assert re.search(r"^run \S+: job disable-orphaned on tenant sim$", done.out_log, re.M)
    assert "applied 108" in done.out_log


@needs_shell
def test_cron_tripped_guard_alert_carries_the_error_line_and_the_counts(cron_dir: Path) -> None:
    """A plan over max_changes exits 3; the alert names the guard and gives the plan's counts,
    and nothing was changed (a later run still finds every change to make)."""
    tripped = cron(cron_dir, "guarded.toml", "sim")
    assert tripped.code == 3
    [(subject, body)] = tripped.alerts
    assert subject == "bulkshare guarded on sim: max_changes guard tripped; nothing was changed"
    lines = body.splitlines()
    assert lines[0] == (
        "exit 3: bulkshare: tenant sim: the plan has 108 changes, more than the max_changes "
        "guard of 3; nothing was changed"
    )
    assert "planned changes by action: disable 108" in lines
    assert re.fullmatch(r"tasks read: \d+; max_changes: 3", lines[2])
    after = cron(cron_dir, "disable-orphaned.toml", "sim")
    assert after.code == 0 and "applied 108" in after.out_log


@needs_shell
def test_cron_error_alert_carries_this_runs_error_line_only(cron_dir: Path) -> None:
    """After a night that succeeded, a run with its secret unset exits 2 and its alert is its
    own error line, not the earlier night's summary."""
    assert cron(cron_dir, "disable-orphaned.toml", "sim").code == 0
    failed = cron(cron_dir, "disable-orphaned.toml", "prod")
    assert failed.code == 2
    [(subject, body)] = failed.alerts
    assert subject.startswith("bulkshare disable-orphaned on prod: refused: config")
    assert body.strip() == (
        f"exit 2: bulkshare: {cron_dir / 'bulkshare.toml'}: tenants.prod.api_key_env: "
        f"environment variable {UNSET_SECRET} is not set or empty"
    )
    assert "applied 108" in failed.out_log  # the earlier night's summary stays in the log
    assert failed.err_log.splitlines()[-1].startswith('{"message":"bulkshare: ')


@needs_shell
def test_cron_without_an_alert_address_refuses_before_running(cron_dir: Path) -> None:
    """With nowhere to send alerts, the script exits 2 with one line and runs nothing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKSHARE")}
    env["BULKSHARE_LOG_DIR"] = str(cron_dir / "logs")
    proc = subprocess.run(
        [str(SCRIPT), "disable-orphaned.toml", "sim"],
        cwd=cron_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "cron-apply.sh: set BULKSHARE_ALERT_TO (or BULKSHARE_ALERT): alerts would go nowhere"
    ]
    assert not (cron_dir / "logs").exists() and not (cron_dir / "state").exists()


def test_the_recipe_shows_the_script_as_shipped() -> None:
    """docs/recipes.md shows deploy/cron-apply.sh verbatim, so the doc cannot drift from it."""
    doc = (ROOT / "docs" / "recipes.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", doc, re.S)
    assert SCRIPT.read_text() in blocks
    assert os.access(SCRIPT, os.X_OK)


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuations joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_dockerfile_is_slim_non_root_with_state_on_a_volume() -> None:
    """Slim Python base, a fixed non-root uid as the last USER, /state as volume and workdir,
    only files of the repository copied in, no secret baked into ENV or ARG."""
    steps = dockerfile()
    froms = [args for word, args in steps if word == "FROM"]
    assert len(froms) == 1 and re.fullmatch(r"python:3\.1[1-9]-slim", froms[0])
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1] == f"{IMAGE_UID}:{IMAGE_UID}"
    assert ("VOLUME", '["/state"]') in steps
    assert [args for word, args in steps if word == "WORKDIR"][-1] == "/state"
    for word, args in steps:
        if word == "COPY":
            *sources, _dest = args.split()
            assert all((ROOT / s).exists() for s in sources), args
        if word in ("ENV", "ARG"):
            assert not re.search(r"SECRET|KEY|TOKEN|PASSWORD", args, re.I), args
    assert ("ENTRYPOINT", '["bulkshare", "--log-format", "json"]') in steps


def cronjob() -> tuple[dict[str, Any], dict[str, Any]]:
    """The example's CronJob and the claim it mounts, read with the strict subset reader."""
    docs = load_all((DEPLOY / "kubernetes-cronjob.yaml").read_text())
    kinds = {doc["kind"]: doc for doc in docs}
    assert set(kinds) == {"CronJob", "PersistentVolumeClaim"}
    return kinds["CronJob"], kinds["PersistentVolumeClaim"]


def test_the_cronjob_forbids_overlap_and_gives_the_stop_its_grace() -> None:
    """One run at a time, no blind retry, a grace period that fits the 5 s stop with room,
    non-root as the image's user, and a --yes apply."""
    job, _ = cronjob()
    assert job["apiVersion"] == "batch/v1"
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    template = job["spec"]["jobTemplate"]
    assert template["spec"]["backoffLimit"] == 0
    pod = template["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    grace = pod["terminationGracePeriodSeconds"]
    assert isinstance(grace, int) and 2 * STOP_BOUND_S <= grace <= 30
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == IMAGE_UID
    [container] = pod["containers"]
    assert container["args"][0] == "apply" and "--yes" in container["args"]


def test_the_cronjob_keeps_state_on_a_claim_and_secrets_in_a_secret() -> None:
    """/state is the claim defined beside it, mounted writable; the config is read-only; every
    secret variable comes from a Secret, none is written in the file."""
    job, claim = cronjob()
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    state = volumes[mounts["/state"]["name"]]
    assert state["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert not mounts["/state"].get("readOnly", False)
    assert mounts["/config"]["readOnly"] is True
    env = {e["name"]: e for e in container["env"]}
    assert env["BULKSHARE_CONFIG"]["value"] == "/config/bulkshare.toml"
    secret_vars = [name for name in env if re.search(r"SECRET|KEY|TOKEN", name)]
    assert secret_vars
    assert all("secretKeyRef" in env[name]["valueFrom"] for name in secret_vars)


@pytest.mark.parametrize(
    "text",
    ["a:\n\tb: 1\n", "a: [1, 2]\n", "a: 1\na: 2\n", "a:\n  b: 1\n c: 2\n", "a: |\n  x\n"],
    ids=["tab", "flow", "twice", "indent", "block-scalar"],
)
def test_the_subset_reader_refuses_what_it_does_not_know(text: str) -> None:
    """Text outside the subset is refused, never read as something else."""
    with pytest.raises(YamlSubsetError):
        load_all(text)
