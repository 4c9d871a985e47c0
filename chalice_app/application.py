"""The Chalice application: REST routes, the MCP endpoint, the page, and the scheduled sweeper."""

from __future__ import annotations

import json
import logging
from typing import Any

from chalice import Chalice, Rate, Response

from chalice_app import context, operations  # noqa: F401  (importing registers the operations)
from chalice_app.mcp_endpoint import mount_mcp
from chalice_app.openapi import openapi_document
from chalice_app.registry import registry
from chalice_app.rest import mount_rest
from chalice_app.static_site import mount_static

logging.getLogger("chalice_app").setLevel(logging.INFO)

app = Chalice(app_name="pb-fm-webpage")
mount_rest(app, registry, context.settings)
mount_mcp(app, registry, context.settings)
mount_static(app, context.settings)


@app.route("/api/openapi.json", methods=["GET"])
def openapi_json() -> Response:
    return Response(body=json.dumps(openapi_document(registry)), status_code=200,
                    headers={"Content-Type": "application/json"})


@app.schedule(Rate(1, unit=Rate.MINUTES))
def sweep_sessions(event: Any) -> dict[str, int]:
    """Promote observers of silent masters, remove stale browsers, delete expired sessions' queues."""
    live, expired = context.service().sweep_all()
    return {"sessions": live, "expired": expired}
