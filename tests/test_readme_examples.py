"""The examples of the README and docs/: every job example validates, every key and action has
one, configs load, and every relative link leads to a file and heading that exist.

A job example is a ```toml block whose first line is `[job]`; a config example is a ```toml block
that names a `[tenants.` table. Every ```toml block of these pages must be one or the other.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from bulkshare.config import load_config
from bulkshare.job import WHERE_KEYS, ActionKind
from bulkshare.job.copy_keys import COPY_KEYS, MAP_KINDS
from tests.conftest import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: pages that must exist; every docs/*.md page is searched, these and any others
REQUIRED_PAGES = (
    "README.md",
    "docs/README.md",
    "docs/configuration.md",
    "docs/jobs.md",
    "docs/commands.md",
    "docs/run-files.md",
    "docs/rate-limits.md",
    "docs/simulator.md",
    "docs/recipes.md",
    "docs/export.md",
    "docs/architecture.md",
    "docs/copy.md",
)
_TOML_BLOCK = re.compile(r"^([ \t]*)```toml\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
_ENV_NAME = re.compile(r"""^\s*\w+_env\s*=\s*["']([^"']+)["']""", re.MULTILINE)
#: the ways of naming the new owner(s) of `reassign-owner`, each of which needs its own example
REASSIGN_KEYS = ("to", "mapping", "mapping_file", "enable", "keep_enabled")

_FENCE = re.compile(r"^([ \t]*)(```|~~~).*?^\1\2[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_INLINE_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_LINK = re.compile(r"^[ \t]*\[[^\]\n]+\]:[ \t]*<?(\S+?)>?(?:[ \t]+\"[^\"]*\")?[ \t]*$")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def pages() -> list[Path]:
    """The README and every page under docs/."""
    return [README, *sorted(DOCS.glob("*.md"))]


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def toml_blocks() -> list[tuple[str, str]]:
    """Every ```toml block of the pages, named by file and the line its fence opens on."""
    blocks: list[tuple[str, str]] = []
    for page in pages():
        text = page.read_text(encoding="utf-8")
        for m in _TOML_BLOCK.finditer(text):
            where = f"{_name(page)}:{text.count(chr(10), 0, m.start()) + 1}"
            blocks.append((where, textwrap.dedent(m[2])))
    return blocks


def job_examples() -> list[tuple[str, str]]:
    """The blocks that are whole job files."""
    return [(where, body) for where, body in toml_blocks() if body.startswith("[job]")]


def config_examples() -> list[tuple[str, str]]:
    """The blocks that are config files."""
    return [(where, body) for where, body in toml_blocks() if "[tenants." in body]


def _operations(body: str) -> list[dict[str, Any]]:
    operations: list[dict[str, Any]] = tomllib.loads(body).get("operations", [])
    return operations


def _copy_table(body: str) -> dict[str, Any]:
    """A copy job's [copy] table ({} for a job of operations)."""
    table: dict[str, Any] = tomllib.loads(body).get("copy", {})
    return table


def _stub_copy_maps(body: str, folder: Path) -> None:
    """An empty CSV (its header only) for each map a copy example names by file, beside it."""
    for key in MAP_KINDS:
        name = _copy_table(body).get(key)
        if isinstance(name, str):
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("old_id,new_id\n", encoding="utf-8")


@pytest.mark.parametrize("page", REQUIRED_PAGES)
def test_page_exists(page: str) -> None:
    """The README and each page of docs/ that the README links to is there."""
    assert (ROOT / page).is_file(), f"{page} is missing"


def test_every_toml_block_is_a_job_or_a_config() -> None:
    """A TOML block that is neither a job nor a config would escape every check below."""
    blocks = toml_blocks()
    assert blocks, "no ```toml block found in the README or docs/"
    assert job_examples(), "no job example found in the README or docs/"
    assert config_examples(), "no config example found in the README or docs/"
    jobs, configs = {w for w, _ in job_examples()}, {w for w, _ in config_examples()}
    stray = [where for where, _ in blocks if where not in jobs and where not in configs]
    assert not stray, f"{stray}: ```toml blocks that are neither job nor config"


def _job_params() -> list[Any]:
    return [pytest.param(where, body, id=where) for where, body in job_examples()]


@pytest.mark.parametrize(("where", "body"), _job_params())
def test_job_example_validates(tmp_path: Path, where: str, body: str) -> None:
    """`bulkshare validate` accepts the job example, with any mapping file it names beside it."""
    job = tmp_path / "example.toml"
    job.write_text(body, encoding="utf-8")
    for op in _operations(body):
        if "mapping_file" in op:
            shipped = ROOT / "jobs" / op["mapping_file"]
            assert shipped.is_file(), f"{where}: no jobs/{op['mapping_file']} to copy"
            shutil.copy(shipped, tmp_path / op["mapping_file"])
    _stub_copy_maps(body, tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "bulkshare", "validate", str(job)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, f"{where}: {result.stderr}"
    assert result.stdout.startswith(f"ok: {job}"), result.stdout


def test_examples_cover_every_where_key_and_action() -> None:
    """Each `where` key, each action, each way of naming a new owner and each `[copy]` key has
    an example."""
    wheres: set[str] = set()
    actions: set[str] = set()
    reassign: set[str] = set()
    copy_keys: set[str] = set()
    for _, body in job_examples():
        copy_keys.update(_copy_table(body))
        for op in _operations(body):
            wheres.update(op.get("where", {}))
            actions.add(op["action"])
            if op["action"] == ActionKind.REASSIGN_OWNER:
                reassign.update(key for key in REASSIGN_KEYS if key in op)
    missing = {
        "where keys": sorted(set(WHERE_KEYS) - wheres),
        "actions": sorted({kind.value for kind in ActionKind} - actions),
        "reassign-owner keys": sorted(set(REASSIGN_KEYS) - reassign),
        "[copy] keys": sorted(set(COPY_KEYS) - copy_keys),
    }
    assert not any(missing.values()), f"without an example in the README or docs/: {missing}"


def _config_params() -> list[Any]:
    named = list(config_examples())
    shipped = ROOT / "config.example.toml"
    named.append((shipped.name, shipped.read_text(encoding="utf-8")))
    return [pytest.param(where, body, id=where) for where, body in named]


@pytest.mark.parametrize(("where", "body"), _config_params())
def test_config_example_loads(tmp_path: Path, where: str, body: str) -> None:
    """The config example loads once the environment variables it names are set."""
    assert _ENV_NAME.search(body), f"{where}: names no environment variable"
    path = tmp_path / "bulkshare.toml"
    path.write_text(body, encoding="utf-8")
    env = {name: f"value-of-{name}" for name in _ENV_NAME.findall(body)}
    config = load_config(str(path), env=env)
    assert config.tenants, f"{where}: no tenant"


def test_readme_opens_with_the_commands_ci_runs() -> None:
    """The README's test command is the one `.ci/run` runs word for word."""
    readme = README.read_text(encoding="utf-8")
    command = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/pytest"
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    assert command in first_block
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert command in ci
    # the default run leaves the slow suites out (pyproject addopts): CI must run them too
    assert "\n.venv/bin/pytest -m slow\n" in ci
    assert "addopts = \"-m 'not slow'\"" in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_readme_opens_with_the_first_run() -> None:
    """The README's first command installs bulkshare and applies the main job on `sim`."""
    readme = README.read_text(encoding="utf-8")
    command = (
        "python3 -m venv .venv && .venv/bin/pip install -q -e . "
        "&& .venv/bin/bulkshare apply jobs/purge-deleting.toml --yes"
    )
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    assert command in first_block


# -- links ---------------------------------------------------------------------------------


def _prose(text: str) -> str:
    """The page without its code: fenced blocks and code spans cannot hold links or headings."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    """Every link target of a page's prose, inline or reference-style."""
    prose = _prose(text)
    found = _INLINE_LINK.findall(prose)
    found += [m[1] for line in prose.splitlines() if (m := _REFERENCE_LINK.match(line))]
    return found


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = _CODE_SPAN.sub(lambda m: m[0].strip("`"), heading).lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading: its text
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a page's headings, a repeated one numbered as GitHub does (-1, -2, ...)."""
    seen: Counter[str] = Counter()
    found: set[str] = set()
    for heading in _HEADING.findall(_FENCE.sub("", text)):
        base = slug(heading)
        found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def test_slug_matches_github() -> None:
    """The anchors the link check expects are the ones GitHub renders."""
    assert slug("`where` keys") == "where-keys"
    assert slug("E3. Hand one person's tasks to a successor") == (
        "e3-hand-one-persons-tasks-to-a-successor"
    )
    assert slug("Tenants and `--tenant`") == "tenants-and---tenant"
    assert anchors("# A\n```\n# not a heading\n```\n## A\n") == {"a", "a-1"}


def _page_params() -> list[Any]:
    return [pytest.param(page, id=_name(page)) for page in pages()]


@pytest.mark.parametrize("page", _page_params())
def test_relative_links_resolve(page: Path) -> None:
    """Every relative link stays inside the repository and leads to a file (and heading)."""
    text = page.read_text(encoding="utf-8")
    broken: list[str] = []
    for target in links(text):
        if _SCHEME.match(target):
            continue  # a URL: not ours to check offline
        path_part, _, fragment = target.partition("#")
        dest = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not dest.is_relative_to(ROOT.resolve()):
            broken.append(f"{target}: outside the repository")
        elif not dest.exists():
            broken.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest.read_text("utf-8")):
            broken.append(f"{target}: no heading #{fragment} in {dest.name}")
    assert not broken, f"{_name(page)}: broken links: {broken}"


def test_docs_pages_are_linked_from_the_readme() -> None:
    """A newcomer finds every docs page from the README."""
    targets = {t.partition("#")[0] for t in links(README.read_text(encoding="utf-8"))}
    unlinked = [_name(p) for p in sorted(DOCS.glob("*.md")) if _name(p) not in targets]
    assert not unlinked, f"docs pages the README does not link to: {unlinked}"
