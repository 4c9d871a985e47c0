"""The Chalice application: REST routes, the MCP endpoint, the page, and the scheduled sweeper.

``create_app`` builds an app around a service provider, which the app keeps: every operation it
serves gets its service from there. The module-level ``app`` is the deployed one (Lambda's handlers
are ``app.app`` and ``app.sweep_sessions``); its services are built from the environment on first
use. The local stack and tests create their own app with their own service.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from chalice import Chalice, Rate, Response

from chalice_app import operations  # noqa: F401  (importing registers the operations)
from chalice_app.context import from_environment
from chalice_app.mcp_endpoint import mount_mcp
from chalice_app.openapi import openapi_document
from chalice_app.registry import ServiceProvider, registry
from chalice_app.rest import mount_rest
from chalice_app.settings import Settings
from chalice_app.static_site import mount_static

logging.getLogger("chalice_app").setLevel(logging.INFO)
SWEEP_HANDLER = "sweep_sessions"


def create_app(services: ServiceProvider) -> Chalice:
    """The whole app over the services ``services`` provides (asked per request, so it may be lazy)."""
    app = Chalice(app_name="pb-fm-webpage")

    def settings() -> Settings:
        return services().settings

    mount_rest(app, registry, settings, services)
    mount_mcp(app, registry, settings, services=services)
    mount_static(app, settings)

    @app.route("/api/openapi.json", methods=["GET"])
    def openapi_json() -> Response:
        return Response(body=json.dumps(openapi_document(registry)), status_code=200,
                        headers={"Content-Type": "application/json"})

    @app.schedule(Rate(1, unit=Rate.MINUTES), name=SWEEP_HANDLER)
    def sweep_sessions(event: Any) -> dict[str, int]:
        """Promote observers of silent masters, remove stale browsers, delete expired sessions' queues."""
        live, expired = services().sweep_all()
        return {"sessions": live, "expired": expired}

    return app


def sweep_handler(app: Chalice) -> Any:
    """The scheduled sweeper of ``app``, as Lambda calls it: ``handler(event, context)``."""
    return app.handler_map[SWEEP_HANDLER]


app = create_app(from_environment())
sweep_sessions = sweep_handler(app)
