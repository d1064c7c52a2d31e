"""Where the vendored API specs live: package data of bulkshare (see bulkshare/data/api)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: the service's OpenAPI specs and reference, as shipped with bulkshare
SPECS = Path(str(resources.files("bulkshare") / "data" / "api"))
