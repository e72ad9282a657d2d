"""Liveness and readiness, as web views on the worker's port.

`/healthz` answers while the process serves requests at all. `/readyz` answers
200 only when the app runs, Redis answers, and no stage has reported itself
degraded (a job waiting for Redis to take it); otherwise 503, with the checks
that failed, so that a load balancer or an orchestrator stops counting on
the worker until it recovers.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.app import Runtime

log = logging.getLogger(__name__)

READY = 200
NOT_READY = 503


class Readiness:
    """Reasons a worker is degraded, set and cleared by the parts that see them."""

    def __init__(self) -> None:
        self._reasons: set[str] = set()

    @property
    def reasons(self) -> frozenset[str]:
        """Return what degrades the worker right now."""
        return frozenset(self._reasons)

    def degrade(self, reason: str) -> None:
        """Record `reason` as degrading the worker; log once when it starts."""
        if reason not in self._reasons:
            self._reasons.add(reason)
            log.warning("worker not ready reason=%s", reason)

    def recover(self, reason: str) -> None:
        """Clear `reason`; log once when it ends."""
        if reason in self._reasons:
            self._reasons.discard(reason)
            log.info("worker recovered reason=%s", reason)


async def readiness_checks(runtime: Runtime) -> dict[str, bool]:
    """Return each readiness check of the worker and whether it passes."""
    app = runtime.app
    return {
        "app": bool(app.started and not app.should_stop),
        "redis": await runtime.scheduler.ping(),
        "degraded": not runtime.readiness.reasons,
    }


def register_views(runtime: Runtime) -> None:
    """Add `/healthz` and `/readyz` to the app's web server."""

    async def healthz(view: Any, request: Any) -> Any:
        return view.json({"alive": True})

    async def readyz(view: Any, request: Any) -> Any:
        checks = await readiness_checks(runtime)
        ready = all(checks.values())
        body = {
            "ready": ready,
            "checks": checks,
            "degraded": sorted(runtime.readiness.reasons),
        }
        return view.json(body, status=READY if ready else NOT_READY)

    runtime.app.page("/healthz")(healthz)
    runtime.app.page("/readyz")(readyz)
