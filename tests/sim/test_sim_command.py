"""`bulkshare sim`'s flags reach the SimConfig they name; their defaults are SimConfig()'s."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulkshare.cli import build_parser, main
from bulkshare.sim import Answer, LinkStyle, SimConfig
from bulkshare.sim.command import from_args


def config_of(*flags: str) -> SimConfig:
    args = build_parser().parse_args(["sim", "--tasks", "30", *flags])
    return from_args(args)[1]


def test_defaults_are_the_faithful_tenant() -> None:
    """No flag: the config is SimConfig() but for the seed, which also seeds the faults."""
    assert config_of() == SimConfig(seed=2026, token_ttl_s=21600)


@pytest.mark.parametrize(
    ("flags", "field", "value"),
    [
        (("--tenant-users", "3"), "tenant_users", 3),
        (("--pace-window-s", "60"), "pace_window_s", 60.0),
        (("--caller-roles", "Developer, Auditor"), "caller_roles", ("Developer", "Auditor")),
        (("--caller-roles", ""), "caller_roles", ()),
        (("--owner-change-disables", "no"), "owner_change_disables", False),
        (("--owner-change-clears-errors", "no"), "owner_change_clears_errors", False),
        (("--unknown-owner", "404"), "unknown_owner", Answer.NOT_FOUND),
        (("--unknown-owner", "accept"), "unknown_owner", Answer.ACCEPTED),
        (("--deleting-patch", "400"), "deleting_patch", Answer.BAD_REQUEST),
        (("--deleting-execute", "accept"), "deleting_execute", Answer.ACCEPTED),
        (("--any-app",), "known_apps_only", False),
        (("--max-start-age-days", "none"), "max_start_age_days", None),
        (("--max-start-age-days", "30"), "max_start_age_days", 30),
        (("--next-links", "relative"), "next_links", LinkStyle.RELATIVE),
        (("--next-links", "query"), "next_links", LinkStyle.QUERY),
        (("--empty-last-next",), "empty_last_next", True),
    ],
)
def test_each_flag_sets_its_field(flags: tuple[str, ...], field: str, value: object) -> None:
    """Every flag of issue 13/14's simulator lands in its SimConfig field."""
    assert getattr(config_of(*flags), field) == value
    assert getattr(SimConfig(), field) != value


def test_caller_id_names_a_user() -> None:
    """--caller-id takes a user of the seeded tenant."""
    args = build_parser().parse_args(["sim", "--tasks", "30"])
    tenant = from_args(args)[0]
    user_id = list(tenant.users)[3]
    assert config_of("--caller-id", user_id).caller_id == user_id


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--client-id", "c"), "--client-id and --client-secret go together"),
        (("--data", "missing.json"), "--data missing.json"),
    ],
)
def test_bad_flag_combinations_exit_2_with_one_line(
    flags: tuple[str, ...],
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Flags that do not fit are one line and exit 2, before anything is served."""
    monkeypatch.chdir(tmp_path)
    assert main(["sim", "--tasks", "5", *flags]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert message in line


@pytest.mark.parametrize(
    "flags",
    [
        ("--tenant-users", "0"),
        ("--owner-change-disables", "maybe"),
        ("--next-links", "sideways"),
        ("--max-start-age-days", "-1"),
        ("--unknown-owner", "409"),
    ],
)
def test_bad_flag_values_are_usage_errors(
    flags: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """A value a flag does not take is refused by the parser: one line naming it, exit 2."""
    assert main(["sim", *flags]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert flags[0] in line
