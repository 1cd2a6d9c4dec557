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
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from beanie import Document
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from app.config import Settings
from app.errors import FieldError, Forbidden, ValidationFailed, validation_errors
from app.i18n import _, current_locale
from app.lookups import validation
from app.platform.models import Department
from app.reports.dates import StoredRange, iso_utc, limits_context
from app.reports.formats import FORMATS
from app.reports.reading.facts import count_facts, estimate_facts, stream_facts
from app.reports.reading.preference import report_reads
from app.reports.reading.query import Plan, Row, Stage, count_rows, object_ids, stream

# Re-exported: the report types take `Column` from here, so only this module knows where the
# renderers define it.
from app.reports.rendering.base import Column as Column
from app.reports.rendering.base import ColumnType as ColumnType
from app.reports.rendering.base import Figure as Figure
from app.reports.rendering.base import LabelledCode as LabelledCode
from app.reports.rendering.base import ParameterValue
from app.reports.rendering.totals import Total
from app.reports.types import describing
from app.reports.types.charting import ChartDefinition, Charting

# Re-exported: how report types declare their columns.
from app.reports.types.columns import LEARNER_COURSE_COLUMNS as LEARNER_COURSE_COLUMNS
from app.reports.types.columns import STATUS_COLUMN as STATUS_COLUMN
from app.reports.types.columns import ColumnTypeName as ColumnTypeName
from app.reports.types.columns import column as column
from app.reports.types.columns import column_index as column_index
from app.reports.types.columns import measure as measure
from app.reports.types.parameters import ReportParameters, ResolvedParameters, filter_ids
from app.security import DataScope, Principal, Role

# The format registry is the one list of formats; a type that offers fewer names them.
ALL_FORMATS: tuple[str, ...] = tuple(FORMATS)

P = TypeVar("P", bound=ReportParameters)
R = TypeVar("R", bound=ResolvedParameters)


@dataclass(frozen=True)
class Mode:
    """One shape of a run: the parameters that select it, its columns, its summary figures
    (values empty: the definitions are what matters)."""

    parameters: dict[str, Any]
    columns: list[Column]
    summary: list[Figure]


@dataclass(frozen=True)
class Resolved:
    """`parameters` is stored on the job as `resolvedParameters`; `scope` is the effective
    scope (requested departmentIds / courseIds already narrowed to what the caller may see)."""

    parameters: dict[str, Any]
    scope: DataScope


class Summarizer(Protocol):
    """A run's summary: `add` every batch of rows, then `figures()`. Which figures it shows
    (labels, types, definitions) depends on the resolved parameters only, never on the rows,
    so a summarizer that has seen no row already states every definition."""

    def add(self, batch: Sequence[Row]) -> None: ...

    def figures(self) -> list[Figure]: ...


def figure_definitions(summarizer: Summarizer) -> dict[str, str]:
    """What each summary figure means, by its label: the definitions its figures carry (a
    summarizer states them before it has seen a row)."""
    return {f.label: f.definition for f in summarizer.figures() if f.definition}


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
    # The parameters that select each shape of a run (`modes`): rows per submission or per
    # course, a department tree or a flat list. One mode: the type has one shape.
    mode_parameters: ClassVar[tuple[dict[str, Any], ...]] = ({},)
    # The totals row (PDF, Excel, a preview's `totals`): each column's total by column key
    # (`rendering.totals`: sums, rates of the totals, means); none: no totals row.
    totals: ClassVar[Mapping[str, Total]] = {}
    # The columns naming what a row groups: a choice of columns keeps them (`types/choice.py`).
    group_columns: ClassVar[tuple[str, ...]] = ()
    column_fields: ClassVar[dict[str, tuple[str, ...]]] = {}  # fact fields only it reads
    # The charts its files and previews draw (`charting`), fed in the same pass as the summary.
    charts: ClassVar[tuple[ChartDefinition, ...]] = ()

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

    def run_group_columns(self, resolved: R) -> tuple[str, ...]:  # the group keys of a run
        return self.group_columns

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
            raise Forbidden(
                f"Learners may not run the {self.key} report.", code="report-type-not-allowed"
            )
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        departments = scope.narrow("departmentIds", filter_ids(params, "department_ids"))
        if getattr(params, "include_sub_departments", False):
            # The requested departments are checked against the scope as usual, but the
            # effective scope keeps the caller's whole set: the filter then covers the requested
            # departments' subtrees, which are only known when the report runs.
            departments = scope.department_ids
        effective = DataScope(
            department_ids=departments,
            course_ids=scope.narrow("courseIds", filter_ids(params, "course_ids")),
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
                ids = filter_ids(params, name)
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
        below = await report_reads(Department.get_pymongo_collection()).distinct(
            "_id", {"ancestor_ids": {"$in": object_ids(ids)}}
        )
        return resolved.model_copy(
            update={"department_ids": sorted({*ids, *(str(i) for i in below)})}
        )

    async def count(
        self, resolved: Mapping[str, Any] | R, scope: DataScope, *, alongside: bool = False
    ) -> int | None:
        """The number of rows, or None when counting is not cheap on the server (see
        `query.count_rows`); `alongside` a job's read, also None when that read counts its
        rows itself (an ordered fact read: its sort has the total before the first row)."""
        typed = await self.with_subtrees(self.typed(resolved))
        collection = report_reads(self.source.get_pymongo_collection())
        plan = await self.plan(typed, scope)
        if (facts := plan.facts) is not None and alongside and (facts.order or facts.group):
            return None  # the read counts its rows itself (a sort; a grouping's few rows)
        if facts is not None and facts.group is None:
            return await count_facts(collection, facts)
        return await count_rows(collection, await self.count_stages(typed, scope))

    async def estimate(
        self, resolved: Mapping[str, Any] | R, scope: DataScope, seconds: float
    ) -> tuple[int, bool] | None:
        """About how many documents the read goes through, counted for at most `seconds`
        (`facts.estimate_facts`: (count, exact)); None for a read the server reduces, or when
        nothing could be counted in time."""
        typed = await self.with_subtrees(self.typed(resolved))
        plan = await self.plan(typed, scope)
        if plan.facts is None or plan.facts.group is not None:
            return None
        return await estimate_facts(
            report_reads(self.source.get_pymongo_collection()), plan.facts, seconds
        )

    async def fetch(
        self,
        resolved: Mapping[str, Any] | R,
        scope: DataScope,
        batch_size: int,
        columns: Sequence[str] | None = None,
    ) -> AsyncIterator[list[Row]]:
        """The rows in batches of at most `batch_size`, streamed from a server cursor; with
        `columns` (the chosen ones), a fact read skips the fields only other columns read."""
        plan = await self.plan(await self.with_subtrees(self.typed(resolved)), scope)
        collection = report_reads(self.source.get_pymongo_collection())
        if (facts := plan.facts) is not None:
            if columns is not None:
                unused = self.column_fields.keys() - set(columns)
                facts = facts.without(f for k in unused for f in self.column_fields[k])
            batches = stream_facts(collection, facts, batch_size)
        else:
            batches = stream(
                collection,
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

    def charting(self, resolved: Mapping[str, Any] | R) -> Charting:
        typed = self.typed(resolved)
        return Charting(self.charts, typed, self.run_columns(typed), self.people_cells(typed))

    def columns_for(self, resolved: Mapping[str, Any] | R) -> list[Column]:
        return self.run_columns(self.typed(resolved))

    def totals_for(self, resolved: Mapping[str, Any] | R) -> Mapping[str, Total]:
        """Each column's total in a run (`run_totals`; by column key)."""
        return self.run_totals(self.typed(resolved))

    def run_totals(self, resolved: R) -> Mapping[str, Total]:
        """The totals of a run (differs from `totals` when a parameter changes the rows)."""
        return self.totals

    def describe(
        self,
        resolved: Mapping[str, Any],
        names: Mapping[str, str] | None = None,
        learner: str | None = None,
    ) -> list[tuple[str, ParameterValue]]:
        """The resolved parameters as (label, value) pairs for a file's Parameters block (see
        `describing.describe`): ids as stored, or as names with `names` (`names_for`)."""
        return describing.describe(resolved, self.option_labels, self._labelled, names, learner)

    async def describe_for_people(
        self, resolved: Mapping[str, Any], scope: DataScope
    ) -> list[tuple[str, ParameterValue]]:
        """`describe` with departments, courses and the learner named (PDF, Excel)."""
        names = await describing.names_for(resolved, scope)
        return self.describe(resolved, names, learner=scope.user_id)

    def people_cells(self, resolved: R) -> dict[str, Callable[[Any], Any]]:
        """How PDF and Excel show some of the run's cells, by column key (CSV keeps them as
        computed): learning-activity clips its first period's start to the range."""
        return {}

    def cells_for_people(self, resolved: Mapping[str, Any] | R) -> dict[str, Callable[[Any], Any]]:
        return self.people_cells(self.typed(resolved))

    def modes(self) -> list[Mode]:
        """Each shape a run of this type can take, with its columns and summary figures (and so
        every definition its files may state), for the metadata API; the first is the default."""
        out: list[Mode] = []
        for parameters in self.mode_parameters:
            resolved = self.resolve_parameters(self.parse(parameters), _MODE_NOW)
            summary = self.summary(resolved).figures()
            out.append(Mode(dict(parameters), self.run_columns(resolved), summary))
        return out

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


AnyReportDefinition = ReportDefinition[Any, Any]
# A fixed moment the metadata resolves each mode at (the definitions do not depend on it).
_MODE_NOW = datetime(2026, 1, 1, tzinfo=UTC)
