"""Request bodies in the contract, typed per registered report type.

A body that names a `reportType` and carries its `parameters` (a job, a template, a schedule)
is one model for the API, which checks `parameters` with the type's own model (naming
`parameters.<field>` in its 422s). In the contract it is described more closely: one schema
per report type (its `reportType`, the formats it offers, its parameters schema) or, where the
body may name a template instead, a template variant. A type registered later appears by
itself."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from pydantic.json_schema import models_json_schema

from app.reports.types.base import AnyReportDefinition
from app.reports.types.choice import all_keys
from app.reports.types.registry import ReportTypeRegistry

_SCHEMAS = "#/components/schemas/"
_NULL = {"type": "null"}


def variant_name(definition: AnyReportDefinition, suffix: str) -> str:
    """(`learner-progress`, `JobCreate`) → `LearnerProgressJobCreate`."""
    return "".join(part.title() for part in definition.key.split("-")) + suffix


def add_parameter_schemas(openapi: dict[str, Any], registry: ReportTypeRegistry) -> None:
    """Every report type's parameters schema as a component (named after its model)."""
    schemas: dict[str, Any] = openapi["components"]["schemas"]
    definitions = [registry[key] for key in registry]
    _, parameters = models_json_schema(
        [(d.parameters_model, "validation") for d in definitions],
        ref_template=_SCHEMAS + "{model}",
    )
    for name, schema in parameters.get("$defs", {}).items():
        if schemas.setdefault(name, schema) != schema:
            raise RuntimeError(f"two different schemas named {name} in the contract")


def _parameters_ref(definition: AnyReportDefinition, nullable: bool) -> dict[str, Any]:
    ref = {"$ref": _SCHEMAS + definition.parameters_model.__name__}
    return {"anyOf": [ref, _NULL]} if nullable else ref


def _column_keys(prop: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """A `columns` property whose items are the report type's column keys (of any shape)."""
    typed = copy.deepcopy(prop)
    for option in typed.get("anyOf", [typed]):
        if option.get("type") == "array":
            option["items"] = {"type": "string", "enum": keys}
    return typed


def _nullable(prop: dict[str, Any]) -> bool:
    return _NULL in prop.get("anyOf", [])


def document_bodies(
    openapi: dict[str, Any],
    registry: ReportTypeRegistry,
    name: str,
    *,
    what: Callable[[AnyReportDefinition], str],
    template_variant: str | None = None,
    template_description: str = "",
) -> None:
    """Replaces the schema `name` (a body with `reportType`, `format` and `parameters`, and
    `templateId` when `template_variant` is given) by `oneOf` one variant per report type
    (`<Type><name>`, described by `what(definition)`) and the template variant."""
    add_parameter_schemas(openapi, registry)
    schemas: dict[str, Any] = openapi["components"]["schemas"]
    body = schemas[name]
    props: dict[str, Any] = body["properties"]
    shared = {k: v for k, v in props.items() if k not in ("templateId", "reportType")}
    also_required = [n for n in body.get("required", []) if n in shared and n != "format"]
    variants = []
    for key in registry:
        definition = registry[key]
        variant = variant_name(definition, name)
        properties = {
            "reportType": {
                "type": "string",
                "const": definition.key,
                "description": definition.description,
            },
            **shared,
            "format": {
                "type": "string",
                "enum": list(definition.formats),
                "description": "The formats this report type offers",
            },
            "parameters": {
                **_parameters_ref(definition, _nullable(props.get("parameters", {}))),
                "description": f"Parameters of the {definition.name} report",
            },
        }
        if "columns" in shared:
            properties["columns"] = _column_keys(shared["columns"], all_keys(definition))
        schemas[variant] = {
            "type": "object",
            "title": variant,
            "description": what(definition),
            "properties": properties,
            "required": ["reportType", "format", *also_required],
            "additionalProperties": False,
        }
        variants.append({"$ref": _SCHEMAS + variant})
    if template_variant is not None:
        template_id = props["templateId"]
        plain = next((o for o in template_id.get("anyOf", []) if o != _NULL), template_id)
        schemas[template_variant] = {
            "type": "object",
            "title": template_variant,
            "description": template_description,
            "properties": {
                "templateId": {**plain, "description": template_id.get("description", "")},
                **shared,
            },
            "required": ["templateId", *also_required],
            "additionalProperties": False,
        }
        variants.append({"$ref": _SCHEMAS + template_variant})
    schemas[name] = {
        key: value
        for key, value in (
            ("title", name),
            ("description", body.get("description")),
            ("oneOf", variants),
            ("examples", body.get("examples")),
        )
        if value is not None
    }


def type_parameters(openapi: dict[str, Any], registry: ReportTypeRegistry, name: str) -> None:
    """`parameters` of the schema `name` (a change, whose report type the stored object
    decides) becomes one of the report types' parameters schemas."""
    add_parameter_schemas(openapi, registry)
    prop: dict[str, Any] = openapi["components"]["schemas"][name]["properties"]["parameters"]
    options: list[dict[str, Any]] = [
        {"$ref": _SCHEMAS + registry[key].parameters_model.__name__} for key in registry
    ]
    if _nullable(prop):
        options.append(_NULL)
    for key in ("anyOf", "type", "additionalProperties"):
        prop.pop(key, None)
    prop["anyOf"] = options
