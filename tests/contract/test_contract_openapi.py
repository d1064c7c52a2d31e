"""Every answer of the simulator, success and error, against the service's OpenAPI specs,
amended only where the newer reference wins; each case names the exceptions it applies.

The test ids carry the exceptions a case may apply; `pytest tests/contract -rP` prints the ones
each case did apply, with their reasons.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import aiohttp
import pytest
from openapi_core import OpenAPI
from openapi_core.exceptions import OpenAPIError
from openapi_core.testing import MockRequest, MockResponse

from bulkshare.sim import SimConfig, running_sim
from bulkshare.sim.faults import Fault, FaultPlan

from .cases import CASES, Case, build_world, resolve
from .spec import BY_NAME, HOST, TASKS_SPEC, USERS_SPEC, amended, applied_exceptions

#: the fault a write is given to answer a status the service only gives when it fails
FAULTS = {500: Fault.ERROR_AFTER, 503: Fault.UNAVAILABLE}
#: the identity whose request spends a window before a 429 case
_SPENDER = {"Authorization": "Bearer contract"}
#: one request per tier per window: the second request of a tier is refused
SPENT = SimConfig(tier1_per_minute=1, tier2_per_minute=1, users_filter_per_minute=1, window_s=60)


@dataclass(frozen=True, slots=True)
class Sent:
    """A case's request with the World's ids filled in."""

    method: str
    path: str  # as sent, /api included
    query: list[tuple[str, str]]
    body: bytes | None
    headers: dict[str, str]

    def mock(self) -> MockRequest:
        """The request as openapi-core reads it."""
        return MockRequest(
            HOST,
            self.method,
            self.path,
            args=self.query,  # type: ignore[arg-type]  # a list of pairs keeps repeats
            headers=self.headers,
            data=self.body,
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back, as captured off the wire."""

    status: int
    headers: dict[str, str]
    body: bytes

    def mock(self) -> MockResponse:
        """The answer as openapi-core reads it."""
        content_type = self.headers.get("Content-Type", "").split(";")[0]
        return MockResponse(self.body, self.status, self.headers, content_type)


def _prepare(case: Case, names: dict[str, str]) -> Sent:
    headers = {"Authorization": f"Bearer {case.bearer}"} if case.token else {}
    body = case.raw
    if body is None and case.body is not None:
        body = json.dumps(resolve(case.body, names)).encode()
    if body is not None:
        headers["Content-Type"] = "application/json"
    query = [(k, resolve(v, names)) for k, v in case.query]
    path = "/api" + resolve(case.named_path(), names)
    return Sent(case.method, path, query, body, headers)


def _config(case: Case, sent: Sent) -> SimConfig:
    if case.config is not None:
        return case.config
    if case.status == 429:
        return SPENT
    fault = FAULTS.get(case.status)
    if fault is None:
        return SimConfig()
    seed = next(s for s in range(10_000) if FaultPlan(1.0, s).draw(sent.method, sent.path) is fault)
    return SimConfig(fault_rate=1.0, seed=seed)


async def _send(session: aiohttp.ClientSession, base: str, sent: Sent) -> Answer:
    async with session.request(
        sent.method, base + sent.path, params=sent.query, data=sent.body, headers=sent.headers
    ) as resp:
        return Answer(resp.status, dict(resp.headers), await resp.read())


async def _exchange(case: Case) -> tuple[Sent, Answer]:
    tenant, names = build_world()
    sent = _prepare(case, names)
    async with (
        running_sim(tenant, _config(case, sent)) as base,
        aiohttp.ClientSession() as session,
    ):
        if case.status == 429:  # spends the tier's only request, as "contract"
            await _send(session, base, replace(sent, headers=_SPENDER))
        return sent, await _send(session, base, sent)


def _validate(case: Case, sent: Sent, answer: Answer) -> tuple[str, ...]:
    request, response = sent.mock(), answer.mock()

    def check_response(api: OpenAPI) -> None:
        api.validate_response(request, response)

    def check_request(api: OpenAPI) -> None:
        api.validate_request(request)

    applied = applied_exceptions(case.spec, check_response)
    if case.valid:
        applied += applied_exceptions(case.spec, check_request)
    return tuple(dict.fromkeys(applied))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_answer_matches_the_contract(case: Case) -> None:
    """The simulator answers `case` with its status, in the shape the contract documents."""
    sent, answer = await _exchange(case)
    assert answer.status == case.status, f"{answer.status}: {answer.body[:300]!r}"
    applied = _validate(case, sent, answer)
    for name in applied:
        print(f"{case.id}: applies exception {name}: {BY_NAME[name].reason}")
    unexpected = [name for name in applied if name not in case.exceptions]
    assert not unexpected, f"needs exceptions the case does not name: {unexpected}"
    if case.status == 429:
        assert int(answer.headers["Retry-After"]) >= 1


def test_the_reference_narrows_the_settings_patch_paths() -> None:
    """A settings PATCH the 2025 spec allows is one sharing-tasks.md refuses (see its 400 case)."""
    body = [{"op": "replace", "path": "/enable-reporting-template-subscription", "value": True}]
    request = MockRequest(
        HOST, "patch", "/api/v1/sharing-tasks/settings", data=json.dumps(body).encode()
    )
    lenient = frozenset({"patch-value-any-json"})
    amended(TASKS_SPEC, lenient).validate_request(request)
    with pytest.raises(OpenAPIError):
        amended(TASKS_SPEC, lenient | {"settings-patch-paths"}).validate_request(request)


def test_the_check_rejects_answers_the_contract_does_not_allow() -> None:
    """A wrong shape, an undocumented status or media type fails even with every exception."""
    tasks = MockRequest(HOST, "get", "/api/v1/sharing-tasks")
    user = MockRequest(HOST, "get", "/api/v1/users/someone")
    wrong = [
        (TASKS_SPEC, tasks, MockResponse(b'{"sharingTasks": 1, "totalCount": 1}')),
        (TASKS_SPEC, tasks, MockResponse(b"{}")),  # totalCount, currentPageCount are required
        (TASKS_SPEC, tasks, MockResponse(b'{"errors": "no"}', 404)),
        (TASKS_SPEC, tasks, MockResponse(b"oops", 400, content_type="text/plain")),
        (USERS_SPEC, user, MockResponse(b'{"errors": []}', 418)),  # no default to fall back to
    ]
    for spec, request, response in wrong:

        def check(
            api: OpenAPI, request: MockRequest = request, response: MockResponse = response
        ) -> None:
            api.validate_response(request, response)

        with pytest.raises(AssertionError, match="with every exception applied"):
            applied_exceptions(spec, check)
