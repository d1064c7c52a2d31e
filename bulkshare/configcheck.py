"""The type checks of config values, each naming the file and key of what is wrong.

Used by `bulkshare.config`; secrets met in any table are refused here, with the way out.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bulkshare.errors import ConfigError

__all__ = ["NUMBER_MAX", "SECRET_KEYS", "Checker"]

#: keys that would hold a secret: refused wherever they appear
SECRET_KEYS = {"api_key", "client_secret", "token", "access_token", "password", "secret"}
#: no number in the config is meant to be larger: beyond it, arithmetic on it stops being exact
NUMBER_MAX = 1e12


class Checker:
    """Type checks that name the file and key of what is wrong."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {message}")

    def table(self, value: Any, key: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table")
        for name in value:
            full = f"{key}.{name}" if key else name
            if name in SECRET_KEYS:
                raise self.fail(
                    full,
                    "secrets are refused in the config file; "
                    "put the secret in an environment variable and name it "
                    "with api_key_env or client_secret_env",
                )
            if name not in allowed:
                raise self.fail(full, f"unknown key (allowed: {', '.join(sorted(allowed))})")
        return value

    def positive_int(self, value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= NUMBER_MAX:
            raise self.fail(key, f"must be a positive integer (at most {NUMBER_MAX:.0e})")
        return value

    def positive_number(self, value: Any, key: str) -> float:
        # nan fails every comparison and inf every bound: `not 0 < x <= max` refuses both
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, "must be a positive number")
        if not 0 < value <= NUMBER_MAX or not math.isfinite(value):
            raise self.fail(
                key, f"must be a positive finite number (at most {NUMBER_MAX:.0e}), not {value}"
            )
        return float(value)

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key, "must be a non-empty string")
        return value
