"""The simulated Qlik Cloud tenant: the sharing-tasks API, the users read subset and
`/oauth/token`, with the service's tiers, windows, errors and a seeded realistic tenant.

    tenant = SimTenant.seed(1000, seed=1)
    async with running_sim(tenant, SimConfig(tier2_per_minute=10)) as base_url:
        ...  # talk to base_url + "/api/v1/sharing-tasks"

Where no public source says what the service does, `SimConfig` chooses (`Answer`, `LinkStyle`
and the owner-change switches), so a client can be proven right under either answer.
"""

from bulkshare.sim.app import make_app
from bulkshare.sim.config import SimCaller, SimConfig
from bulkshare.sim.rules import Answer, LinkStyle
from bulkshare.sim.server import running_sim, serve
from bulkshare.sim.tenant import SimTenant

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
