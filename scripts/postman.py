"""Turns the OpenAPI document into a Postman collection (v2.1).

    build_collection(openapi) -> dict

One folder per tag, one request per operation (named by its summary, described by its
description and operationId), path parameters as `:name` with variables, query parameters
listed (optional ones disabled), JSON bodies filled from the schema's first example (or a
skeleton built from the schema), and bearer auth taken from the `{{token}}` variable except on
operations without security. Set `baseUrl` and `token` in the collection's variables (or an
environment). The output is deterministic: the same OpenAPI gives the same file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SCHEMA_URL = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
_MAX_DEPTH = 6


def build_collection(
    openapi: dict[str, Any], *, base_url: str = "http://127.0.0.1:8000"
) -> dict[str, Any]:
    info = openapi.get("info", {})
    folders: dict[str, list[dict[str, Any]]] = {}
    for path, item in openapi.get("paths", {}).items():
        shared_params = item.get("parameters", [])
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            tag = (operation.get("tags") or ["default"])[0]
            folders.setdefault(tag, []).append(
                _request(openapi, path, method, operation, shared_params)
            )
    tag_docs = {t["name"]: t.get("description") for t in openapi.get("tags", [])}
    ordered = [t["name"] for t in openapi.get("tags", []) if t["name"] in folders]
    ordered += [t for t in folders if t not in ordered]
    return {
        "info": {
            "name": info.get("title", "API"),
            "description": info.get("description", ""),
            "version": info.get("version", ""),
            "schema": SCHEMA_URL,
        },
        "item": [
            {
                "name": tag,
                **({"description": tag_docs[tag]} if tag_docs.get(tag) else {}),
                "item": folders[tag],
            }
            for tag in ordered
        ],
        "auth": {
            "type": "bearer",
            "bearer": [{"key": "token", "value": "{{token}}", "type": "string"}],
        },
        "variable": [
            {"key": "baseUrl", "value": base_url, "type": "string"},
            {
                "key": "token",
                "value": "",
                "type": "string",
                "description": "A JWT (scripts/mint_token.py)",
            },
        ],
    }


def _request(
    openapi: dict[str, Any],
    path: str,
    method: str,
    operation: dict[str, Any],
    shared_params: list[dict[str, Any]],
) -> dict[str, Any]:
    parameters = [_deref(openapi, p) for p in [*shared_params, *operation.get("parameters", [])]]
    path_params = [p for p in parameters if p.get("in") == "path"]
    query_params = [p for p in parameters if p.get("in") == "query"]
    header_params = [p for p in parameters if p.get("in") == "header"]

    segments = [
        f":{segment[1:-1]}" if segment.startswith("{") and segment.endswith("}") else segment
        for segment in path.strip("/").split("/")
        if segment
    ]
    query = [
        {
            "key": p["name"],
            "value": _param_value(openapi, p),
            **({"description": p["description"]} if p.get("description") else {}),
            **({} if p.get("required") else {"disabled": True}),
        }
        for p in query_params
    ]
    raw = "{{baseUrl}}/" + "/".join(segments)
    if query:
        raw += "?" + "&".join(f"{q['key']}={q['value']}" for q in query if not q.get("disabled"))
        raw = raw.rstrip("?")
    url: dict[str, Any] = {"raw": raw, "host": ["{{baseUrl}}"], "path": segments}
    if query:
        url["query"] = query
    if path_params:
        url["variable"] = [
            {
                "key": p["name"],
                "value": "",
                **({"description": p["description"]} if p.get("description") else {}),
            }
            for p in path_params
        ]

    headers = [
        {
            "key": p["name"],
            "value": _param_value(openapi, p),
            **({"description": p["description"]} if p.get("description") else {}),
            **({} if p.get("required") else {"disabled": True}),
        }
        for p in header_params
    ]
    request: dict[str, Any] = {"method": method.upper(), "header": headers, "url": url}
    body = _body(openapi, operation.get("requestBody"))
    if body is not None:
        headers.insert(0, {"key": "Content-Type", "value": "application/json"})
        request["body"] = {
            "mode": "raw",
            "raw": json.dumps(body, indent=2, ensure_ascii=False),
            "options": {"raw": {"language": "json"}},
        }
    description = "\n\n".join(
        part
        for part in (operation.get("description"), f"operationId: `{operation.get('operationId')}`")
        if part
    )
    request["description"] = description
    if (not operation.get("security") and "security" in operation) or (
        "security" not in operation and not openapi.get("security")
    ):
        request["auth"] = {"type": "noauth"}
    return {
        "name": operation.get("summary") or operation.get("operationId") or path,
        "request": request,
    }


def _deref(openapi: dict[str, Any], node: Any) -> Any:
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 20:
        target: Any = openapi
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node, seen = target, seen + 1
    return node


def _param_value(openapi: dict[str, Any], param: dict[str, Any]) -> str:
    if "example" in param:
        return str(param["example"])
    schema = _deref(openapi, param.get("schema", {}))
    for source in (param.get("examples"), schema.get("examples")):
        if isinstance(source, list) and source:
            return str(source[0])
        if isinstance(source, dict) and source:
            first = next(iter(source.values()))
            if isinstance(first, dict) and "value" in first:
                return str(first["value"])
    if "default" in schema and schema["default"] is not None:
        value = schema["default"]
        return str(value).lower() if isinstance(value, bool) else str(value)
    return ""


def _body(openapi: dict[str, Any], request_body: Any) -> Any:
    request_body = _deref(openapi, request_body)
    if not request_body:
        return None
    media = request_body.get("content", {}).get("application/json")
    if media is None:
        return None
    if "example" in media:
        return media["example"]
    schema = _deref(openapi, media.get("schema", {}))
    return _example(openapi, schema, 0)


def _example(openapi: dict[str, Any], schema: Any, depth: int) -> Any:
    schema = _deref(openapi, schema)
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return None
    if "example" in schema:
        return schema["example"]
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return schema["examples"][0]
    if "default" in schema:
        return schema["default"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [o for o in schema[key] if _deref(openapi, o).get("type") != "null"]
            if options:
                return _example(openapi, options[0], depth + 1)
            return None
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        required = set(schema.get("required", []))
        properties = schema.get("properties", {})
        chosen = {k: v for k, v in properties.items() if k in required} or properties
        return {k: _example(openapi, v, depth + 1) for k, v in chosen.items()}
    if kind == "array":
        item = _example(openapi, schema.get("items", {}), depth + 1)
        return [] if item is None else [item]
    return {
        "string": _string_example(schema),
        "integer": 0,
        "number": 0,
        "boolean": False,
    }.get(kind or "")


def _string_example(schema: dict[str, Any]) -> str:
    return {
        "date-time": "2026-01-01T00:00:00Z",
        "date": "2026-01-01",
        "email": "someone@example.org",
        "uri": "https://example.org",
    }.get(schema.get("format", ""), "string")


def main() -> None:  # pragma: no cover - convenience: python -m scripts.postman openapi.json
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "openapi.json")
    print(
        json.dumps(build_collection(json.loads(source.read_text())), indent=2, ensure_ascii=False)
    )


if __name__ == "__main__":  # pragma: no cover
    main()
