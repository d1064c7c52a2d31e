"""Config file -> tenants, defaults and the state directory.

Secrets never live in the file: it names environment variables, and this module reads them.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bulkshare import safefile
from bulkshare.configcheck import Checker
from bulkshare.errors import ConfigError

__all__ = [
    "BUILTIN_SIM",
    "Config",
    "Credentials",
    "Defaults",
    "Limits",
    "Scope",
    "TenantConfig",
    "find_config_path",
    "load_config",
]

#: Name of the built-in simulated tenant, always available.
BUILTIN_SIM = "sim"

_TOP_KEYS = {"state_dir", "defaults", "tenants"}
_DEFAULT_KEYS = {
    "concurrency",
    "max_attempts",
    "request_timeout_s",
    "progress_every_s",
    "plan_max_age_h",
    "plan_key_env",
    "retry_after_cap_s",
    "max_pages",
    "max_response_bytes",
}
_TENANT_KEYS = {
    "url", "api_key_env", "client_id", "client_secret_env", "limits", "headroom", "scope",
}  # fmt: skip
_LIMIT_KEYS = {
    "tier1_per_minute",
    "tier2_per_minute",
    "users_filter_per_minute",
    "window_s",
    "pace",
}
#: how requests are spread over the window: as the budget allows, or evenly at the per-minute rate
PACES = ("window", "even")
_TENANT_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Scope(StrEnum):
    """Which tasks a tenant's plans cover (`scope` in its config table)."""

    ALL = "all"  # every task: the identity must be TenantAdmin or AnalyticsAdmin
    OWN = "own"  # the identity's own tasks only: any identity will do


@dataclass(frozen=True)
class Limits:
    """The service's rate limits for one tenant, as the server counts them."""

    tier1_per_minute: int = 1000  #: GETs
    tier2_per_minute: int = 100  #: writes and /oauth/token
    users_filter_per_minute: int = 200  #: POST /users/actions/filter
    window_s: float = 300.0  #: the server's counting window
    headroom: float = 1.0  #: fraction of the budget bulkshare may use
    #: "window": spend the window's budget as work comes; "even": never faster than per minute
    pace: str = "window"


@dataclass(frozen=True)
class Defaults:
    """Run-wide settings from `[defaults]`."""

    concurrency: int = 16  #: requests in flight per tenant
    max_attempts: int = 6  #: per request, for 429 / 5xx / network errors
    request_timeout_s: float = 30.0
    progress_every_s: float = 15.0  #: a progress log line this often when not on a terminal
    plan_max_age_h: float = 24.0  #: `apply PLAN.json` refuses an older plan (`--max-age` wins)
    #: names the env var holding the key that signs plans; set, only signed plans are applied
    plan_key_env: str | None = None
    #: the longest one 429 may pause a tier, whatever its Retry-After asks; a pause stored in
    #: the shared ledger beyond it is ignored
    retry_after_cap_s: float = 600.0
    max_pages: int = 100_000  #: pages one listing may take (10 M tasks at 100 a page)
    max_response_bytes: int = 16 * 1024 * 1024  #: a larger answer is refused as it streams in


@dataclass(frozen=True)
class Credentials:
    """Where a tenant's secret comes from: names of environment variables, never values."""

    api_key_env: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None


@dataclass(frozen=True)
class TenantConfig:
    """One tenant: where it is, how to authenticate, and its limits."""

    name: str
    url: str | None  #: None for the built-in simulator
    credentials: Credentials = field(default_factory=Credentials)
    limits: Limits = field(default_factory=Limits)
    #: why this tenant cannot be used (its secret's variable is unset); checked when selected,
    #: so `runs`, `show` and other tenants' commands do not need every tenant's secret
    unusable: str | None = None
    #: the tasks its plans cover: all of them (an admin identity), or the identity's own
    scope: Scope = Scope.ALL

    @property
    def is_builtin_sim(self) -> bool:
        """True for the in-process simulated tenant."""
        return self.url is None


@dataclass(frozen=True)
class Config:
    """Everything a command needs from the config file."""

    path: Path | None
    state_dir: Path
    defaults: Defaults
    tenants: Mapping[str, TenantConfig]

    def select(self, names: list[str]) -> list[TenantConfig]:
        """Resolve `--tenant` values (`all` means every configured tenant)."""
        if not names:
            return [self._default_tenant()]
        if "all" in names:
            # with no tenant configured, the built-in simulator is every tenant there is
            names = list(self.tenants) or [BUILTIN_SIM]
        picked = [self._tenant(name) for name in dict.fromkeys(names)]
        for tenant in picked:
            if tenant.unusable:
                raise ConfigError(tenant.unusable)
        return picked

    def _tenant(self, name: str) -> TenantConfig:
        if name in self.tenants:
            return self.tenants[name]
        if name == BUILTIN_SIM:
            return TenantConfig(BUILTIN_SIM, None)
        known = ", ".join(sorted(self.tenants)) or "none"
        where = self.path or "built-in defaults"
        raise ConfigError(f"{where}: unknown tenant {name!r} (configured: {known})")

    def _default_tenant(self) -> TenantConfig:
        if not self.tenants:
            return TenantConfig(BUILTIN_SIM, None)
        if len(self.tenants) == 1:
            return self.select(list(self.tenants))[0]
        known = ", ".join(sorted(self.tenants))
        raise ConfigError(f"{self.path}: several tenants ({known}); name one with --tenant")


def find_config_path(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    """`--config`, else `$BULKSHARE_CONFIG`, else `./bulkshare.toml` if present."""
    if explicit:
        return Path(explicit)
    if env.get("BULKSHARE_CONFIG"):
        return Path(env["BULKSHARE_CONFIG"])
    default = Path("bulkshare.toml")
    return default if default.is_file() else None


def load_config(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read and check the config; with no file, the built-in simulator is the only tenant."""
    env = os.environ if env is None else env
    path = find_config_path(explicit, env)
    if path is None:
        return Config(None, Path(".bulkshare"), Defaults(), {})
    doc = _read_toml(path)
    return _parse(path, doc, env)


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        # a regular file of bounded size: a FIFO or device is refused at once, never waited on
        text = safefile.read_regular(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 (byte {exc.start})") from None
    except safefile.FileRefused as exc:
        raise ConfigError(str(exc)) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None


def _parse(path: Path, doc: dict[str, Any], env: Mapping[str, str]) -> Config:
    check = Checker(path)
    check.table(doc, "", _TOP_KEYS)
    state_dir = Path(check.string(doc.get("state_dir", ".bulkshare"), "state_dir"))
    if not state_dir.is_absolute():
        state_dir = path.parent / state_dir
    defaults = _parse_defaults(check, doc.get("defaults", {}))
    raw_tenants = doc.get("tenants", {})
    names = set(raw_tenants) if isinstance(raw_tenants, dict) else set()
    tenants_doc = check.table(raw_tenants, "tenants", names)
    tenants = {name: _parse_tenant(check, name, t, env) for name, t in tenants_doc.items()}
    return Config(path, state_dir, defaults, tenants)


def _parse_defaults(check: Checker, raw: Any) -> Defaults:
    table = check.table(raw, "defaults", _DEFAULT_KEYS)
    base = Defaults()

    def count(name: str) -> int:
        return check.positive_int(table.get(name, getattr(base, name)), f"defaults.{name}")

    def seconds(name: str) -> float:
        return check.positive_number(table.get(name, getattr(base, name)), f"defaults.{name}")

    return Defaults(
        concurrency=count("concurrency"),
        max_attempts=count("max_attempts"),
        request_timeout_s=seconds("request_timeout_s"),
        progress_every_s=seconds("progress_every_s"),
        retry_after_cap_s=seconds("retry_after_cap_s"),
        max_pages=count("max_pages"),
        max_response_bytes=count("max_response_bytes"),
        plan_max_age_h=_plan_max_age(check, table.get("plan_max_age_h", base.plan_max_age_h)),
        plan_key_env=_plan_key_env(check, table.get("plan_key_env")),
    )


def _plan_max_age(check: Checker, value: Any) -> float:
    hours = check.positive_number(value, "defaults.plan_max_age_h")
    if not math.isfinite(hours):
        raise check.fail("defaults.plan_max_age_h", "must be a finite number of hours")
    return hours


def _plan_key_env(check: Checker, value: Any) -> str | None:
    # the name of a variable, never the key: a key written here would be refused as a secret
    if value is None:
        return None
    name = check.string(value, "defaults.plan_key_env")
    if not _ENV_NAME.match(name):
        raise check.fail(
            "defaults.plan_key_env", "must name an environment variable, e.g. BULKSHARE_PLAN_KEY"
        )
    return name


def _parse_tenant(check: Checker, name: str, raw: Any, env: Mapping[str, str]) -> TenantConfig:
    key = f"tenants.{name}"
    if not _TENANT_NAME.match(name) or name == "all":
        raise check.fail(key, "tenant names are letters, digits, - and _ (and not 'all')")
    table = check.table(raw, key, _TENANT_KEYS)
    url = _check_url(check, check.string(table.get("url"), f"{key}.url"), f"{key}.url")
    creds = _parse_credentials(check, key, table)
    limits = _parse_limits(check, key, table)
    scope = _parse_scope(check, key, table.get("scope", Scope.ALL.value))
    var, var_key = (
        (creds.api_key_env, f"{key}.api_key_env")
        if creds.api_key_env
        else (creds.client_secret_env, f"{key}.client_secret_env")
    )
    unusable = None
    if var and not env.get(var):
        unusable = str(check.fail(var_key, f"environment variable {var} is not set or empty"))
    return TenantConfig(name, url, creds, limits, unusable, scope)


def _parse_scope(check: Checker, key: str, value: Any) -> Scope:
    if not isinstance(value, str) or value not in tuple(Scope):
        raise check.fail(f"{key}.scope", 'must be "all" (every task: an admin identity) or "own"')
    return Scope(value)


def _check_url(check: Checker, url: str, key: str) -> str:
    """The tenant's origin, `scheme://host[:port]`; the URL is never echoed (it may hold a
    password)."""
    if not url.isascii() or not url.isprintable() or any(c.isspace() for c in url):
        raise check.fail(key, "must be a plain ASCII URL without spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed `[` of an IPv6 address
        raise check.fail(key, "not a URL, e.g. https://acme.eu.qlikcloud.com") from None
    if "@" in parts.netloc:
        raise check.fail(
            key,
            "a user or password in the URL is refused; name the secret's environment "
            "variable with api_key_env or client_secret_env",
        )
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise check.fail(key, "has a port that is not a number from 1 to 65535")
    host = parts.hostname
    if parts.scheme not in {"https", "http"} or not host:
        raise check.fail(key, "not an http(s) URL, e.g. https://acme.eu.qlikcloud.com")
    if parts.scheme == "http" and not _is_loopback(host):
        raise check.fail(key, "http:// is refused except for loopback addresses; use https://")
    if parts.path not in {"", "/"} or parts.query or parts.fragment or url.endswith(("?", "#")):
        raise check.fail(key, "give the tenant's base URL only, e.g. https://acme.eu.qlikcloud.com")
    return f"{parts.scheme}://{parts.netloc}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_credentials(check: Checker, key: str, table: dict[str, Any]) -> Credentials:
    api_key_env = table.get("api_key_env")
    client_id = table.get("client_id")
    secret_env = table.get("client_secret_env")
    if api_key_env is not None and (client_id is not None or secret_env is not None):
        raise check.fail(key, "give either api_key_env or client_id + client_secret_env, not both")
    if api_key_env is not None:
        return Credentials(api_key_env=check.string(api_key_env, f"{key}.api_key_env"))
    if client_id is None or secret_env is None:
        raise check.fail(key, "needs api_key_env, or client_id and client_secret_env")
    check.string(client_id, f"{key}.client_id")
    check.string(secret_env, f"{key}.client_secret_env")
    return Credentials(client_id=client_id, client_secret_env=secret_env)


def _parse_limits(check: Checker, key: str, table: dict[str, Any]) -> Limits:
    raw = check.table(table.get("limits", {}), f"{key}.limits", _LIMIT_KEYS)
    base = Limits()
    headroom = check.positive_number(table.get("headroom", base.headroom), f"{key}.headroom")
    if headroom > 1.0:
        raise check.fail(f"{key}.headroom", "must be a fraction in (0, 1]")

    def count(name: str, default: int) -> int:
        return check.positive_int(raw.get(name, default), f"{key}.limits.{name}")

    return Limits(
        tier1_per_minute=count("tier1_per_minute", base.tier1_per_minute),
        tier2_per_minute=count("tier2_per_minute", base.tier2_per_minute),
        users_filter_per_minute=count("users_filter_per_minute", base.users_filter_per_minute),
        window_s=check.positive_number(
            raw.get("window_s", base.window_s), f"{key}.limits.window_s"
        ),
        headroom=headroom,
        pace=_pace(check, raw.get("pace", base.pace), f"{key}.limits.pace"),
    )


def _pace(check: Checker, value: Any, key: str) -> str:
    if value not in PACES:
        raise check.fail(key, f"must be one of {', '.join(map(repr, PACES))}")
    return str(value)
