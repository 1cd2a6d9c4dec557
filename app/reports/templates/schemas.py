"""HTTP shapes of report templates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, field_validator
from pydantic.alias_generators import to_camel

from app.common.schemas import ApiInput, ApiModel
from app.i18n import LocaleCode, supported_locales
from app.lookups.codes import (
    FormatCode,
    FormatValue,
    ReportTypeCode,
    ReportTypeValue,
    VisibilityCode,
    VisibilityValue,
)
from app.reports.jobs.schemas import COLUMNS_DESCRIPTION, ColumnKeys
from app.reports.templates.models import ReportTemplate, ReportTemplateVersion, VersionOrigin

_EXAMPLE_PARAMETERS: dict[str, Any] = {
    "dateRange": {"preset": "last-month"},
    "timezone": "Europe/Berlin",
    "statuses": ["in-progress", "completed"],
}


LOCALE_DESCRIPTION = (
    "The language and formats of the files it makes: one of "
    f"{', '.join(supported_locales())}. Omitted or null: each run's requester's"
)


def _clean_name(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    if not value:
        raise ValueError("must not be blank")
    return value


class TemplateCreate(ApiInput):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    report_type: ReportTypeCode = Field(description="A report-type code, e.g. `learner-progress`")
    format: FormatCode = Field(description="csv, xlsx or pdf (must be one the report type offers)")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Parameters of the report type, validated against its schema "
        "(GET /api/v1/reports/metadata/report-types/{key})",
    )
    columns: ColumnKeys | None = Field(
        default=None, max_length=100, description=COLUMNS_DESCRIPTION
    )
    locale: LocaleCode | None = Field(default=None, description=LOCALE_DESCRIPTION)
    visibility: VisibilityCode = Field(
        default="private",
        description="private (only you), department (people in your departments), "
        "organization (everyone who may see shared templates)",
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "name": "Monthly progress, my teams",
                    "reportType": "learner-progress",
                    "format": "xlsx",
                    "parameters": _EXAMPLE_PARAMETERS,
                    "visibility": "department",
                }
            ]
        }
    }

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        return _clean_name(value)


class TemplateUpdate(ApiInput):
    """Only the fields sent change. `version` (or the If-Match header) guards against
    overwriting someone else's change: a stale one is a 412. Without it the change applies to
    the current version (last writer wins)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    report_type: ReportTypeCode | None = None
    format: FormatCode | None = None
    parameters: dict[str, Any] | None = Field(
        default=None, description="Replaces the stored parameters as a whole"
    )
    columns: ColumnKeys | None = Field(
        default=None,
        max_length=100,
        description="Replaces the stored choice of columns; null: every column again",
    )
    locale: LocaleCode | None = Field(default=None, description=LOCALE_DESCRIPTION)
    visibility: VisibilityCode | None = None
    archived: bool | None = Field(
        default=None, description="Archived templates are hidden from lists and cannot be run"
    )
    version: int | None = Field(
        default=None, ge=1, description="The version this change is based on (like If-Match)"
    )

    model_config = {
        "json_schema_extra": {"examples": [{"name": "Monthly progress (v2)", "version": 3}]}
    }

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        return _clean_name(value)


class TemplateRun(ApiInput):
    """Optional overrides for one run; the template itself is not changed."""

    parameters: dict[str, Any] | None = Field(
        default=None,
        description="Merged over the template's parameters (top-level keys replace theirs)",
    )
    format: FormatCode | None = None
    locale: LocaleCode | None = Field(
        default=None, description="The locale of this run (default: the template's)"
    )
    columns: ColumnKeys | None = Field(
        default=None,
        max_length=100,
        description="The columns of this run, in order (default: the template's)",
    )

    model_config = {"json_schema_extra": {"examples": [{"format": "pdf"}, {"locale": "de"}, {}]}}


class TemplateDuplicate(ApiInput):
    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="Default: `Copy of <name>`"
    )

    model_config = {"json_schema_extra": {"examples": [{"name": "My copy of Weekly progress"}, {}]}}

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        return _clean_name(value)


class OwnerOut(ApiModel):
    user_id: str
    name: str


class TemplateOut(ApiModel):
    id: str
    name: str
    description: str | None = None
    report_type: ReportTypeValue
    format: FormatValue
    parameters: dict[str, Any]
    columns: list[str] | None = Field(
        description="The columns its files show, in order; null: every column"
    )
    locale: str | None = Field(description="null: each run's requester's locale")
    visibility: VisibilityValue
    owner: OwnerOut
    owner_department_ids: list[str] = Field(
        description=(
            "The owner's departments; `department` visibility shares with these. Callers other "
            "than the owner or an admin see only the ones they belong to themselves"
        )
    )
    version: int = Field(
        description="Grows by one on every change; send it back as If-Match. With "
        "`?version=N` the version shown"
    )
    latest_version: int = Field(
        description="The template's newest version: equal to `version` unless an older one was "
        "asked for with `?version=N`"
    )
    archived: bool
    can_edit: bool = Field(description="Whether the caller may change or delete it")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_document(
        cls, doc: ReportTemplate, *, can_edit: bool, latest_version: int | None = None
    ) -> TemplateOut:
        return cls(
            id=str(doc.id),
            name=doc.name,
            description=doc.description,
            report_type=doc.report_type,
            format=doc.format,
            parameters=doc.parameters,
            columns=doc.columns,
            locale=doc.locale,
            visibility=doc.visibility,
            owner=OwnerOut(user_id=doc.owner.user_id, name=doc.owner.name),
            owner_department_ids=list(doc.owner.department_ids),
            version=doc.version,
            latest_version=latest_version or doc.version,
            archived=doc.archived,
            can_edit=can_edit,
            created_at=doc.created_at,
            updated_at=doc.updated_at,
        )


class TemplateVersionOut(ApiModel):
    """One version of a template, as it was saved; never changes. To restore it, send its
    `name`, `description`, `reportType`, `format`, `parameters`, `columns`, `locale` and
    `visibility` in a PATCH of
    the template: that makes a new version with this content."""

    template_id: str
    version: int
    name: str
    description: str | None = None
    report_type: str
    format: str
    parameters: dict[str, Any]
    columns: list[str] | None = Field(default=None, description="null: every column")
    locale: str | None = Field(default=None, description="null: each run's requester's locale")
    visibility: str
    archived: bool
    origin: VersionOrigin = Field(
        description="`created`: the template was saved (version 1); `changed`: a PATCH made "
        "it; `backfilled`: the template as it was when versions began to be kept (earlier "
        "versions were not kept, and who made it is not known)"
    )
    changed_fields: list[str] = Field(
        description="The fields that differ from the version before (e.g. `name`, "
        "`parameters`); empty for the first version kept"
    )
    changed_by: OwnerOut | None = Field(description="Who made it; null when backfilled")
    created_at: datetime = Field(description="When it was made")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "templateId": "6650f1c2a1b2c3d4e5f60718",
                    "version": 3,
                    "name": "Monthly progress, my teams",
                    "description": None,
                    "reportType": "learner-progress",
                    "format": "xlsx",
                    "parameters": _EXAMPLE_PARAMETERS,
                    "locale": None,
                    "visibility": "department",
                    "archived": False,
                    "origin": "changed",
                    "changedFields": ["format", "parameters"],
                    "changedBy": {"userId": "64b7f0c2a1b2c3d4e5f60718", "name": "Alice"},
                    "createdAt": "2026-11-30T14:43:00Z",
                }
            ]
        }
    }

    @classmethod
    def from_document(cls, doc: ReportTemplateVersion) -> TemplateVersionOut:
        editor = doc.changed_by
        return cls(
            template_id=str(doc.template_id),
            version=doc.version,
            name=doc.name,
            description=doc.description,
            report_type=doc.report_type,
            format=doc.format,
            parameters=doc.parameters,
            columns=doc.columns,
            locale=doc.locale,
            visibility=doc.visibility,
            archived=doc.archived,
            origin=doc.origin,
            changed_fields=[to_camel(name) for name in doc.changed_fields],
            changed_by=OwnerOut(user_id=editor.user_id, name=editor.name) if editor else None,
            created_at=doc.created_at,
        )
