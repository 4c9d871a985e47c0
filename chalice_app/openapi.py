"""OpenAPI 3.1 document built from the registry (the same record as the routes and MCP tools)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from chalice_app.registry import Registry
from chalice_app.version import package_version

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}, "details": {}},
}
STATUS_TEXT = {400: "Invalid input", 401: "No valid session cookie", 403: "Not allowed for this browser",
               404: "Not found", 410: "Gone: join again", 413: "Too large", 502: "AWS or upstream failure"}


def openapi_document(registry: Registry, title: str = "pb-fm-webpage", version: str | None = None) -> dict[str, Any]:
    operations = registry.operations("rest")
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for op in operations:
        models.append((op.input_model, "validation"))
        models.append((op.output_model, "serialization"))
    refs, schema = models_json_schema(models, ref_template="#/components/schemas/{model}")
    components = dict(schema.get("$defs", {}))
    components["Error"] = ERROR_SCHEMA
    paths: dict[str, Any] = {}
    for op in operations:
        entry: dict[str, Any] = {
            "operationId": op.name,
            "summary": op.summary,
            "description": op.description,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {
                    "schema": refs[(op.output_model, "serialization")]}}},
                **{
                    str(code): {"description": text, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Error"}}}}
                    for code, text in STATUS_TEXT.items()
                },
            },
        }
        if op.method == "GET":
            entry["parameters"] = [
                {"name": name, "in": "query", "required": field.is_required()}
                for name, field in op.input_model.model_fields.items()
            ]
        else:
            entry["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": refs[(op.input_model, "validation")]}}}
        if op.caller_param is not None:
            entry["security"] = [{"sessionCookie": []}]
        if op.rest_needs_token:
            # Only when the server is configured with PBFM_MCP_TOKEN; open otherwise.
            entry["security"] = [{"accessToken": []}, {}]
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version or package_version(),
                 "description": "REST API of pb-fm-webpage. The same operations marked for MCP are served "
                                "as tools at POST /mcp."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "pbfm_{session_id}"},
                "accessToken": {"type": "http", "scheme": "bearer", "description": "PBFM_MCP_TOKEN, when set"},
            },
        },
    }
