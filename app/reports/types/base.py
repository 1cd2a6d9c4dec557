"""What every report type is made of.

A report type is a `ReportDefinition[P, R]` subclass: data (key, name, columns, …), a
parameters model `P` (what a request may ask), a resolved-parameters model `R` (what the job
stores: dates absolute, `now` fixed) and one read, described as a `Plan`. The API validates and
resolves parameters with `parse` / `resolve`; the worker calls `count`, `fetch`, `summarizer`,
`describe` and `columns_for` with the *stored* resolved parameters (a JSON dict) and the stored
scope. Each of those turns the dict into `R` once; the type's own hooks only ever see `R`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

from beanie import Document
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from app.config import Settings
from app.errors import FieldError, Forbidden, ValidationFailed, validation_errors
from app.i18n import N_, _, current_formats, current_locale
from app.lookups import validation
from app.platform.models import Department
from app.reports.dates import PRESET_LABELS, DatePreset, StoredRange, iso_utc, limits_context
from app.reports.formats import FORMATS
from app.reports.reading.facts import count_facts, stream_facts
from app.reports.reading.query import Plan, Row, Stage, count_rows, object_ids, stream

# Re-exported: the report types take `Column` from here, so only this module knows where the
# renderers define it.
from app.reports.rendering.base import Column as Column
from app.reports.rendering.base import ColumnType
from app.reports.types.parameters import ReportParameters, ResolvedParameters
from app.security import DataScope, Principal, Role

ColumnTypeName = Literal["string", "integer", "number", "percent", "boolean", "date", "datetime"]
# The format registry is the one list of formats; a type that offers fewer names them.
ALL_FORMATS: tuple[str, ...] = tuple(FORMATS)

P = TypeVar("P", bound=ReportParameters)
R = TypeVar("R", bound=ResolvedParameters)


def column(
    key: str,
    label: str,
    type: ColumnTypeName,
    description: str = "",
    *,
    csv_only: bool = False,
    lookup: str | None = None,
) -> Column:
    """A report column; the same `Column` the renderers take (percent = 0–100, not a
    fraction). `lookup`: the category whose labels the files print for the column's codes."""
    return Column(
        key, label, ColumnType(type), csv_only=csv_only, description=description, lookup=lookup
    )


def column_index(columns: Sequence[Column], *keys: str) -> tuple[int, ...]:
    """The positions of the columns `keys` in a row, for summarizers that read values by
    column key (a KeyError names a key that is not a column)."""
    positions = {c.key: i for i, c in enumerate(columns)}
    return tuple(positions[k] for k in keys)


# Who and what a per-record row is about: the first columns of several report types, whose
# cells come from `reading.learner_course` (the joins, cells and order they share).
LEARNER_COURSE_COLUMNS: list[Column] = [
    column("learnerName", N_("Learner"), "string", N_("The learner's name")),
    column("learnerEmail", N_("Email"), "string", N_("The learner's e-mail address")),
    column(
        "departmentName", N_("Department"), "string", N_("The department the record belongs to")
    ),
    column("courseCode", N_("Course code"), "string", N_("The course's code")),
    column("courseTitle", N_("Course"), "string", N_("The course's title")),
]


def column_document(col: Column) -> dict[str, str]:
    return {
        "key": col.key,
        "label": col.label,
        "type": col.type.value,
        "description": col.description,
    }


@dataclass(frozen=True)
class Resolved:
    """`parameters` is stored on the job as `resolvedParameters`; `scope` is the effective
    scope (requested departmentIds / courseIds already narrowed to what the caller may see)."""

    parameters: dict[str, Any]
    scope: DataScope


class Summarizer(Protocol):
    def add(self, batch: Sequence[Row]) -> None: ...

    def figures(self) -> list[tuple[str, str]]: ...


class ReportDefinition(ABC, Generic[P, R]):
    key: ClassVar[str]
    name: ClassVar[str]
    description: ClassVar[str]
    parameters_model: type[P]
    resolved_model: type[R]
    # The collection the read runs on.
    source: ClassVar[type[Document]]
    columns: ClassVar[list[Column]]
    default_sort: ClassVar[list[str]]
    formats: ClassVar[tuple[str, ...]] = ALL_FORMATS
    roles: ClassVar[tuple[Role, ...]] = (Role.ADMIN, Role.MANAGER, Role.INSTRUCTOR)
    # Labels of the type-specific resolved parameters, in the order `describe` prints them.
    option_labels: ClassVar[dict[str, str]] = {}
    # How the files print an option's codes: a lookup category, or code -> label.
    option_values: ClassVar[dict[str, str | dict[str, str]]] = {}
    # Whether a departmentIds filter covers the named departments' subtrees (see
    # `with_subtrees`); department-summary builds its tree itself.
    expands_departments: ClassVar[bool] = True

    # -- what a type provides -------------------------------------------------------------

    @abstractmethod
    def resolve_parameters(self, params: P, now: datetime) -> R:
        """The resolved parameters of validated ones (`resolved_fields` gives the common
        part)."""

    @abstractmethod
    async def count_stages(self, resolved: R, scope: DataScope) -> list[Stage]:
        """Stages producing one document per row (no sort); a lone `$match` is counted with
        `count_documents`."""

    @abstractmethod
    async def plan(self, resolved: R, scope: DataScope) -> Plan:
        """The read that produces the rows, in order."""

    @abstractmethod
    def summary(self, resolved: R | None) -> Summarizer:
        """The summary of a run (`None`: the resolved parameters are not known)."""

    def run_columns(self, resolved: R) -> list[Column]:
        """The columns of a run; only differs from `columns` when a parameter changes the shape
        of the rows (assessment-results grouped by course)."""
        return self.columns

    # -- parameters -------------------------------------------------------------------------

    def parse(
        self,
        raw: Mapping[str, Any] | None,
        *,
        field: str = "parameters",
        settings: Settings | None = None,
    ) -> P:
        """Validates raw JSON parameters; a 422 names each bad field as `parameters.<path>`.
        The limits come from `settings` (None: the defaults declared on `Settings`)."""
        try:
            return self.parameters_model.model_validate(
                dict(raw or {}), context=limits_context(settings)
            )
        except PydanticValidationError as exc:
            errors = [
                FieldError(
                    field=f"{field}.{e.field}" if e.field else field,
                    message=e.message,
                    type=e.type,
                    allowed=e.allowed,
                )
                for e in validation_errors(exc.errors())
            ]
            detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
            raise ValidationFailed(detail, errors=errors) from None

    def parameters_schema(self) -> dict[str, Any]:
        return self.parameters_model.model_json_schema(by_alias=True)

    def allows(self, principal: Principal) -> bool:
        """Whether the caller's role (its most privileged one, which decides its scope) may run
        this report type."""
        return principal.role in self.roles

    def resolve(
        self,
        params: BaseModel | Mapping[str, Any],
        scope: DataScope,
        now: datetime,
        *,
        settings: Settings | None = None,
    ) -> Resolved:
        """Turns validated parameters into absolute ones (dates in UTC, `now` fixed) and narrows
        the requested departmentIds / courseIds to the caller's scope (403 naming the ids
        outside it)."""
        if not isinstance(params, self.parameters_model):
            raw = params if isinstance(params, Mapping) else params.model_dump(by_alias=True)
            params = self.parse(raw, settings=settings)
        if scope.user_id is not None and Role.LEARNER not in self.roles:
            raise Forbidden(f"Learners may not run the {self.key} report.", code="forbidden")
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        departments = scope.narrow("departmentIds", _requested(params, "department_ids"))
        if getattr(params, "include_sub_departments", False):
            # The requested departments are checked against the scope as usual, but the
            # effective scope keeps the caller's whole set: the filter then covers the requested
            # departments' subtrees, which are only known when the report runs.
            departments = scope.department_ids
        effective = DataScope(
            department_ids=departments,
            course_ids=scope.narrow("courseIds", _requested(params, "course_ids")),
            user_id=scope.user_id,
            description=scope.description,
        )
        resolved = self.resolve_parameters(params, now)
        return Resolved(parameters=resolved.to_document(), scope=effective)

    def resolved_fields(self, params: P, now: datetime) -> dict[str, Any]:
        """The resolved fields every type shares: report type, timezone, `now`, and the date
        range and departments / courses filters of the parameters models that have them."""
        fields: dict[str, Any] = {
            "report_type": self.key,
            "timezone": params.timezone,
            "now": iso_utc(now),
        }
        # Not every parameters model has a date range or the id filters.
        date_range = getattr(params, "date_range", None)
        if date_range is not None:
            fields["date_range"] = StoredRange.of(date_range.resolve(params.timezone, now))
        for name in ("department_ids", "course_ids"):
            if name in type(params).model_fields:
                ids = _requested(params, name)
                fields[name] = sorted(ids) if ids is not None else None
        if "include_sub_departments" in type(params).model_fields:
            fields["include_sub_departments"] = getattr(params, "include_sub_departments", True)
        return fields

    def typed(self, resolved: Mapping[str, Any] | R) -> R:
        """The stored resolved parameters as `R`."""
        if isinstance(resolved, self.resolved_model):
            return resolved
        return self.resolved_model.model_validate(dict(resolved))

    # -- running (the executor's side: stored resolved parameters in) ----------------------

    async def with_subtrees(self, resolved: R) -> R:
        """`resolved` with its departmentIds filter widened to the named departments' subtrees
        (when `includeSubDepartments`, the default): known only when the report runs, as
        departments move."""
        ids = getattr(resolved, "department_ids", None)
        if not ids or not self.expands_departments:
            return resolved
        if not getattr(resolved, "include_sub_departments", True):
            return resolved
        below = await Department.get_pymongo_collection().distinct(
            "_id", {"ancestor_ids": {"$in": object_ids(ids)}}
        )
        return resolved.model_copy(
            update={"department_ids": sorted({*ids, *(str(i) for i in below)})}
        )

    async def count(self, resolved: Mapping[str, Any] | R, scope: DataScope) -> int | None:
        """The number of rows, or None when counting is not cheap on the server (see
        `query.count_rows`)."""
        typed = await self.with_subtrees(self.typed(resolved))
        collection = self.source.get_pymongo_collection()
        plan = await self.plan(typed, scope)
        if plan.facts is not None:
            return await count_facts(collection, plan.facts)
        return await count_rows(collection, await self.count_stages(typed, scope))

    async def fetch(
        self, resolved: Mapping[str, Any] | R, scope: DataScope, batch_size: int
    ) -> AsyncIterator[list[Row]]:
        """The rows in batches of at most `batch_size`, streamed from a server cursor."""
        plan = await self.plan(await self.with_subtrees(self.typed(resolved)), scope)
        if plan.facts is not None:
            batches = stream_facts(self.source.get_pymongo_collection(), plan.facts, batch_size)
        else:
            batches = stream(
                self.source.get_pymongo_collection(),
                plan.pipeline,
                batch_size,
                plan.to_row,
                naive_datetimes=plan.naive_datetimes,
                **plan.options,
            )
        async with aclosing(batches):  # the cursor closes even when the caller stops early
            async for batch in batches:
                yield batch

    def summarizer(self, resolved: Mapping[str, Any] | R | None = None) -> Summarizer:
        return self.summary(self.typed(resolved) if resolved is not None else None)

    def columns_for(self, resolved: Mapping[str, Any] | R) -> list[Column]:
        return self.run_columns(self.typed(resolved))

    def describe(self, resolved: Mapping[str, Any]) -> list[tuple[str, str]]:
        """The resolved parameters as (label, value) pairs for a file's header / PDF page one:
        the ones stored on the job, in stored form, in the current locale (`use_locale`)."""
        pairs: list[tuple[str, str]] = []
        date_range = resolved.get("dateRange")
        if date_range:
            preset = date_range.get("preset", "custom")
            label = PRESET_LABELS.get(DatePreset(preset), preset) if preset in _PRESETS else preset
            pairs.append(
                (
                    _("Date range"),
                    f"{_human_day(date_range['from'])} – {_human_day(date_range['to'])} "
                    f"({_(label)})",
                )
            )
        # The timezone is not repeated here: every file states it on its own.
        for key, label in (("departmentIds", N_("Departments")), ("courseIds", N_("Courses"))):
            if key in resolved:
                pairs.append((_(label), _describe_ids(resolved.get(key))))
        for key, label in self.option_labels.items():
            if key in resolved:
                pairs.append((_(label), _describe_value(self._labelled(key, resolved[key]))))
        return pairs

    def _labelled(self, key: str, value: Any) -> Any:
        """An option's codes as the labels people read ("enrolledAt" -> "Enrolled")."""
        names = self.option_values.get(key)
        if names is None:
            return value
        table = (
            validation.labels(names, current_locale())
            if isinstance(names, str)
            else {code: _(label) for code, label in names.items()}
        )
        if isinstance(value, list):
            return [table.get(v, v) if isinstance(v, str) else v for v in value]
        return table.get(value, value) if isinstance(value, str) else value

    def to_document(self) -> dict[str, Any]:
        """The definition as the metadata API serves it."""
        return {
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "parametersSchema": self.parameters_schema(),
            "columns": [column_document(c) for c in self.columns],
            "defaultSort": list(self.default_sort),
            "formats": list(self.formats),
            "roles": [r.value for r in self.roles],
        }


AnyReportDefinition = ReportDefinition[Any, Any]
_PRESETS = {p.value for p in DatePreset}


def _requested(params: ReportParameters, name: str) -> list[str] | None:
    """A parameters model's departments / courses filter (None when it has none)."""
    value = getattr(params, name, None)
    return list(value) if value is not None else None


def _human_day(value: Any) -> str:
    """A stored local day (`2026-07-01`) as the current locale writes it."""
    try:
        return current_formats().date(date.fromisoformat(str(value)))
    except ValueError:
        return str(value)


def _describe_ids(ids: Sequence[str] | None) -> str:
    if ids is None:
        return _("All in scope")
    if len(ids) <= 5:
        return ", ".join(ids)
    return _("{count} selected").format(count=current_formats().integer(len(ids)))


def _describe_value(value: Any) -> str:
    if value is None:
        return _("All")
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or _("All")
    return str(value)
