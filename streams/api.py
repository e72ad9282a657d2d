"""The read-only HTTP API on the worker's web port, and its `/metrics`.

Every read is authorized by a bearer token (`streams.auth`) and composed at
request time from the topics, so any worker answers for any mission. Error
bodies name the status only: a refused request learns nothing of what exists.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.auth import AuthError, authorize
from streams.codec import to_json
from streams.metrics import Metrics
from streams.readback import ReadbackError
from streams.settings import Settings
from streams.timelines import read_contract, read_timeline, timeline_json

if TYPE_CHECKING:
    from streams.app import Runtime

log = logging.getLogger(__name__)

TIMELINE_PATH = "/v1/orgs/{org}/projects/{project}/missions/{mission}/timeline"
CONTRACT_PATH = "/v1/orgs/{org}/projects/{project}/contracts/{contract_id}"
METRICS_PATH = "/metrics"

ERROR_BODIES: dict[int, dict[str, str]] = {
    401: {"error": "unauthorized"},
    403: {"error": "forbidden"},
    404: {"error": "not found"},
    503: {"error": "unavailable"},
}
# RFC 6750: a 401 names the scheme the client should use.
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="contractflow"'}

R = TypeVar("R")


class Api:
    """The handlers behind the views, given the settings and metrics they read."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics

    async def timeline(
        self, view: View, request: Request, org: str, project: str, mission: str
    ) -> Response:
        """Answer the timeline of one mission."""
        refused = self._refusal(view, request, org, project)
        if refused is not None:
            return refused
        try:
            timeline = await _in_thread(
                read_timeline, self._settings, org, project, mission
            )
        except ReadbackError as exc:
            return _unavailable(view, exc)
        if not timeline.assignments:
            return _error(view, 404)
        log.info(
            "timeline served org=%s project=%s mission=%s assignments=%d",
            org,
            project,
            mission,
            len(timeline.assignments),
        )
        return view.json(timeline_json(timeline))

    async def contract(
        self, view: View, request: Request, org: str, project: str, contract_id: str
    ) -> Response:
        """Answer the latest record of one contract."""
        refused = self._refusal(view, request, org, project)
        if refused is not None:
            return refused
        try:
            found = await _in_thread(
                read_contract, self._settings, org, project, contract_id
            )
        except ReadbackError as exc:
            return _unavailable(view, exc)
        if found is None:
            return _error(view, 404)
        log.info("contract served org=%s project=%s", org, project)
        return view.json(to_json(found))

    async def metrics(self, view: View, request: Request) -> Response:
        """Answer the registry in the Prometheus text format."""
        return view.bytes(
            generate_latest(self._metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    def _refusal(
        self, view: View, request: Request, org: str, project: str
    ) -> Response | None:
        header = request.headers.get("Authorization")
        try:
            authorize(header, self._settings.jwt_secret, org, project)
        except AuthError as exc:
            log.info("request refused status=%d: %s", exc.status, exc.reason)
            return _error(view, exc.status)
        return None


def register_api(runtime: Runtime) -> None:
    """Add the timeline, contract and metrics views to the runtime's app."""
    api = Api(runtime.settings, runtime.metrics)
    page = runtime.app.page

    @page(TIMELINE_PATH, name="contractflow-timeline")
    async def timeline(
        view: View, request: Request, org: str, project: str, mission: str
    ) -> Response:
        return await api.timeline(view, request, org, project, mission)

    @page(CONTRACT_PATH, name="contractflow-contract")
    async def contract(
        view: View, request: Request, org: str, project: str, contract_id: str
    ) -> Response:
        return await api.contract(view, request, org, project, contract_id)

    @page(METRICS_PATH, name="contractflow-metrics")
    async def metrics(view: View, request: Request) -> Response:
        return await api.metrics(view, request)


async def _in_thread(call: Callable[..., R], *args: Any) -> R:
    # The read blocks on the broker for up to seconds; the event loop keeps
    # serving the agents meanwhile.
    return await asyncio.get_running_loop().run_in_executor(None, call, *args)


def _error(view: View, status: int) -> Response:
    headers = dict(CHALLENGE) if status == 401 else None
    return view.json(ERROR_BODIES[status], status=status, headers=headers)


def _unavailable(view: View, exc: ReadbackError) -> Response:
    log.warning("read back failed: %s", exc.reason)
    return _error(view, 503)
