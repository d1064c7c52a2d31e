"""Config files: tenants, limits, and the refusals that keep secrets out of files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulkshare.config import BUILTIN_SIM, load_config
from bulkshare.errors import ConfigError

GOOD = """
state_dir = "state"
[defaults]
concurrency = 4
[tenants.prod]
url = "https://acme.eu.qlikcloud.com"
api_key_env = "QLIK_PROD_API_KEY"
[tenants.prod.limits]
tier2_per_minute = 50
window_s = 60
[tenants.m2m]
url = "http://127.0.0.1:8080"
client_id = "abc"
client_secret_env = "QLIK_SECRET"
"""

ENV = {"QLIK_PROD_API_KEY": "k-123", "QLIK_SECRET": "s-456"}


def write(tmp_path: Path, text: str) -> str:
    """Write a config file and return its path."""
    path = tmp_path / "bulkshare.toml"
    path.write_text(text)
    return str(path)


def test_no_config_means_the_builtin_sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without any config file the only tenant is the built-in simulator."""
    monkeypatch.chdir(tmp_path)
    config = load_config(None, {})
    [tenant] = config.select([])
    assert tenant.name == BUILTIN_SIM and tenant.is_builtin_sim


def test_good_config(tmp_path: Path) -> None:
    """Tenants, limits, defaults and state_dir are read as written."""
    config = load_config(write(tmp_path, GOOD), ENV)
    assert config.state_dir == tmp_path / "state"
    assert config.defaults.concurrency == 4
    prod = config.select(["prod"])[0]
    assert prod.limits.tier2_per_minute == 50 and prod.limits.window_s == 60
    assert prod.limits.tier1_per_minute == 1000
    assert [t.name for t in config.select(["all"])] == ["prod", "m2m"]


@pytest.mark.parametrize(
    ("text", "env", "needle"),
    [
        (
            GOOD.replace('api_key_env = "QLIK_PROD_API_KEY"', 'api_key = "k-123"'),
            ENV,
            "tenants.prod.api_key: secrets are refused",
        ),
        (
            GOOD.replace("http://127.0.0.1:8080", "http://10.0.0.5:8080"),
            ENV,
            "tenants.m2m.url: http:// is refused",
        ),
        (GOOD.replace("concurrency = 4", "concurency = 4"), ENV, "defaults.concurency: unknown"),
        (GOOD.replace("concurrency = 4", 'concurrency = "4"'), ENV, "defaults.concurrency: must"),
        ("state_dir = [", ENV, "malformed TOML"),
    ],
)
def test_bad_configs_name_the_key(
    tmp_path: Path, text: str, env: dict[str, str], needle: str
) -> None:
    """Each config error is one line naming the file and the key."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env)
    message = str(info.value)
    assert path in message and needle in message and "\n" not in message
    for secret in ENV.values():
        assert secret not in message


def test_unknown_tenant(tmp_path: Path) -> None:
    """Naming a tenant the config lacks lists the known ones."""
    config = load_config(write(tmp_path, GOOD), ENV)
    with pytest.raises(ConfigError, match=r"unknown tenant 'nope'.*m2m, prod"):
        config.select(["nope"])


def test_a_missing_secret_fails_only_the_tenant_that_needs_it(tmp_path: Path) -> None:
    """An unset secret variable refuses its tenant when selected, not the whole config."""
    path = write(tmp_path, GOOD)
    config = load_config(path, {"QLIK_SECRET": "s"})
    assert [t.name for t in config.select(["m2m"])] == ["m2m"]
    for names in (["prod"], ["all"]):
        with pytest.raises(ConfigError) as info:
            config.select(names)
        message = str(info.value)
        assert path in message and "tenants.prod.api_key_env" in message
        assert "QLIK_PROD_API_KEY is not set" in message


def test_new_defaults_are_read_and_have_documented_values(tmp_path: Path) -> None:
    """retry_after_cap_s, max_pages and max_response_bytes default as documented, and are read."""
    config = load_config(write(tmp_path, GOOD), ENV)
    assert config.defaults.retry_after_cap_s == 600.0
    assert config.defaults.max_pages == 100_000
    assert config.defaults.max_response_bytes == 16 * 1024 * 1024
    text = GOOD.replace(
        "concurrency = 4",
        "retry_after_cap_s = 30\nmax_pages = 50\nmax_response_bytes = 1000000",
    )
    config = load_config(write(tmp_path, text), ENV)
    assert config.defaults.retry_after_cap_s == 30.0
    assert (config.defaults.max_pages, config.defaults.max_response_bytes) == (50, 1_000_000)


NUMBERS = [
    ("[defaults]", "request_timeout_s = nan", "defaults.request_timeout_s"),
    ("[defaults]", "request_timeout_s = inf", "defaults.request_timeout_s"),
    ("[defaults]", "request_timeout_s = -inf", "defaults.request_timeout_s"),
    ("[defaults]", "request_timeout_s = -1.5", "defaults.request_timeout_s"),
    ("[defaults]", "progress_every_s = 0", "defaults.progress_every_s"),
    ("[defaults]", "retry_after_cap_s = nan", "defaults.retry_after_cap_s"),
    ("[defaults]", "max_pages = -1", "defaults.max_pages"),
    ("[defaults]", "max_response_bytes = 0", "defaults.max_response_bytes"),
    ("[defaults]", "max_attempts = 1e3", "defaults.max_attempts"),
    ("[defaults]", "concurrency = 99999999999999999", "defaults.concurrency"),
    ("[tenants.prod.limits]", "window_s = nan", "tenants.prod.limits.window_s"),
    ("[tenants.prod.limits]", "window_s = 1e308", "tenants.prod.limits.window_s"),
    ("[tenants.prod.limits]", "tier1_per_minute = -5", "tenants.prod.limits.tier1_per_minute"),
    ("[tenants.prod]", "headroom = nan", "tenants.prod.headroom"),
    ("[tenants.prod]", "headroom = inf", "tenants.prod.headroom"),
]


@pytest.mark.parametrize(("table", "line", "key"), NUMBERS)
def test_nan_inf_and_out_of_range_numbers_are_refused_naming_the_key(
    tmp_path: Path, table: str, line: str, key: str
) -> None:
    """No number in the config may be nan, inf, negative or absurdly large: one line, its key."""
    name = line.split(" = ")[0]
    text = "\n".join(t for t in GOOD.splitlines() if not t.startswith(f"{name} = "))
    text = text.replace(table + "\n", f"{table}\n{line}\n", 1)
    assert line in text
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), ENV)
    message = str(info.value)
    assert f"{key}:" in message and "\n" not in message


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("https://admin:hunter2-pw@acme.eu.qlikcloud.com", "user or password"),
        ("https://admin@acme.eu.qlikcloud.com", "user or password"),
        ("https://acme.eu.qlikcloud.com:99999", "port"),
        ("https://acme.eu.qlikcloud.com:hunter2-pw", "port"),
        ("https://acme.eu.qlikcloud.com:0", "port"),
        ("https://acme.eu.qlikcloud.com/#frag", "base URL only"),
        ("https://acme.eu.qlikcloud.com/api", "base URL only"),
        ("https://acme.eu.qlikcloud.com?x=hunter2-pw", "base URL only"),
        ("https://acme.eu.qlikcloud.com\nx", "plain ASCII"),
        ("https://acmé.eu.qlikcloud.com", "plain ASCII"),
        ("ftp://hunter2-pw.example", "not an http(s) URL"),
        ("hunter2-pw", "not an http(s) URL"),
    ],
)
def test_bad_tenant_urls_are_refused_without_echoing_them(
    tmp_path: Path, url: str, needle: str
) -> None:
    """A URL with userinfo, a bad port or anything past the origin is refused; never echoed."""
    text = GOOD.replace("https://acme.eu.qlikcloud.com", url.replace("\n", "\\n"))
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), ENV)
    message = str(info.value)
    assert "tenants.prod.url" in message and needle in message, message
    assert "hunter2" not in message and "\n" not in message


def test_a_good_url_is_reduced_to_its_origin(tmp_path: Path) -> None:
    """A trailing slash and an explicit port are kept as the origin, nothing else."""
    text = GOOD.replace("https://acme.eu.qlikcloud.com", "https://acme.eu.qlikcloud.com:8443/")
    prod = load_config(write(tmp_path, text), ENV).select(["prod"])[0]
    assert prod.url == "https://acme.eu.qlikcloud.com:8443"
