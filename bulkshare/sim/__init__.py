"""The simulated Qlik Cloud tenant: the sharing-tasks API, the users read subset and
`/oauth/token`, with the service's tiers, windows, errors and a seeded realistic tenant.

    tenant = SimTenant.seed(1000, seed=1)
    async with running_sim(tenant, SimConfig(tier2_per_minute=10)) as base_url:
        ...  # talk to base_url + "/api/v1/sharing-tasks"

Where no public source says what the service does, `SimConfig` chooses (`Answer`, `LinkStyle`
and the owner-change switches), so a client can be proven right under either answer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bulkshare.sim.app import make_app
    from bulkshare.sim.config import SimCaller, SimConfig
    from bulkshare.sim.rules import Answer, LinkStyle
    from bulkshare.sim.server import running_sim, serve
    from bulkshare.sim.tenant import SimTenant

#: name -> the module that defines it, imported when the name is first used: every command
#: builds the `sim` subcommand's flags (`bulkshare.sim.command`), and only `bulkshare sim`
#: and the built-in tenant need the server itself (aiohttp.web and every handler, ~3 MB)
_HOMES = {
    "make_app": "app",
    "SimCaller": "config",
    "SimConfig": "config",
    "Answer": "rules",
    "LinkStyle": "rules",
    "running_sim": "server",
    "serve": "server",
    "SimTenant": "tenant",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = [
    "Answer",
    "LinkStyle",
    "SimCaller",
    "SimConfig",
    "SimTenant",
    "make_app",
    "running_sim",
    "serve",
]
