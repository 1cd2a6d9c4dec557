"""What every report type is made of, and the helpers their fetchers share.

A report type is a `ReportDefinition` subclass: data (key, name, columns, parameters model, …)
plus one aggregation pipeline. The API validates and resolves parameters with `parse` /
`resolve`; the worker calls `count` and `fetch` with the *stored* resolved parameters (a JSON
dict) and the stored scope, so everything a fetcher needs is in that dict.

Numbers follow spec §5.1: averages ignore missing values and are rounded to 1 decimal (half up);
rates are percentages 0–100 rounded to 1 decimal; an average, rate, minimum or maximum over an
empty set is `None` (an empty cell), while counts and sums over an empty set are 0.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, ClassVar, Literal, Protocol

from bson import ObjectId
from pydantic import AfterValidator, BaseModel, Field, StringConstraints
from pydantic import ValidationError as PydanticValidationError
from pymongo.asynchronous.collection import AsyncCollection

from app.common.schemas import ApiInput
from app.common.time import as_utc, is_timezone
from app.config import get_settings
from app.errors import FieldError, Forbidden, ValidationFailed, validation_errors
from app.reports.dates import PRESET_LABELS, DatePreset, DateRange, iso_utc, parse_iso_utc
from app.reports.rendering.base import Column, ColumnType
from app.security import DataScope, Principal, Role

ColumnTypeName = Literal["string", "integer", "number", "percent", "boolean", "date", "datetime"]
Row = tuple[Any, ...]
Format = Literal["csv", "xlsx", "pdf"]
ALL_FORMATS: tuple[Format, ...] = ("csv", "xlsx", "pdf")

# Collection names of the platform data (see app/platform/models.py).
USERS, COURSES, DEPARTMENTS = "users", "courses", "departments"
CLOSED_STATUSES = ("completed", "withdrawn")
# Names sort the way people read them (case-insensitive), not by byte value. Only used where the
# first $match works on ObjectId / date index fields, which a collation does not affect.
NAME_COLLATION = {"locale": "en", "strength": 2}


def column(key: str, label: str, type: ColumnTypeName) -> Column:
    """A report column; the same `Column` the renderers take (percent = 0–100, not a
    fraction)."""
    return Column(key, label, ColumnType(type))


# Who and what a per-enrollment row is about: the first columns of several report types.
LEARNER_COURSE_COLUMNS: list[Column] = [
    column("learnerName", "Learner", "string"),
    column("learnerEmail", "Email", "string"),
    column("departmentName", "Department", "string"),
    column("courseCode", "Course code", "string"),
    column("courseTitle", "Course", "string"),
]


def column_document(col: Column) -> dict[str, str]:
    return {"key": col.key, "label": col.label, "type": col.type.value}


@dataclass(frozen=True)
class Resolved:
    """`parameters` is stored on the job as `resolvedParameters`; `scope` is the effective
    scope (requested departmentIds / courseIds already narrowed to what the caller may see)."""

    parameters: dict[str, Any]
    scope: DataScope


class Summarizer(Protocol):
    def add(self, batch: Sequence[Row]) -> None: ...

    def figures(self) -> list[tuple[str, str]]: ...


# ---------------------------------------------------------------------------------------------
# Parameter building blocks


def _check_timezone(value: str) -> str:
    if not is_timezone(value):
        raise ValueError(f"{value!r} is not an IANA timezone (e.g. Europe/Berlin)")
    return value


def _check_id_list(values: list[str]) -> list[str]:
    limit = get_settings().max_filter_ids
    if len(values) > limit:
        raise ValueError(f"at most {limit} ids are allowed, got {len(values)}")
    return list(dict.fromkeys(values))  # de-duplicated, order kept


ObjectIdStr = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-fA-F]{24}$", to_lower=True),
    Field(description="A 24-hex-digit ObjectId"),
]
IdList = Annotated[list[ObjectIdStr], Field(min_length=1), AfterValidator(_check_id_list)]
Timezone = Annotated[str, AfterValidator(_check_timezone)]

TIMEZONE_DESCRIPTION = (
    "IANA timezone for the date range, the day / week / month buckets and the datetimes printed "
    "in the file"
)
DEPARTMENTS_DESCRIPTION = (
    "Only these departments (ObjectIds; at most MAX_FILTER_IDS, default 500). Omitted: every "
    "department you may report on"
)
COURSES_DESCRIPTION = (
    "Only these courses (ObjectIds; at most MAX_FILTER_IDS, default 500). Omitted: every course "
    "you may report on"
)
DATE_RANGE_DESCRIPTION = "A date-range preset, or custom from / to dates (both included)"


def default_date_range() -> DateRange:
    return DateRange(preset=DatePreset.LAST_30_DAYS)


class ReportParameters(ApiInput):
    """Base of every parameters model: `timezone` is common to all report types."""

    timezone: Timezone = Field(default="UTC", description=TIMEZONE_DESCRIPTION)


# ---------------------------------------------------------------------------------------------
# Numbers and formatting


def round1(value: float | int | None) -> float | None:
    """1 decimal, half up (12.25 -> 12.3); None and NaN stay empty."""
    if value is None or value != value:
        return None
    return float(Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def rate(part: int | float, whole: int | float) -> float | None:
    """`part ÷ whole` as a percentage with 1 decimal; None when `whole` is 0."""
    if not whole:
        return None
    return round1(100.0 * part / whole)


def average(total: float, count: int) -> float | None:
    return round1(total / count) if count else None


def fmt_count(value: int) -> str:
    return f"{value:,}"


def fmt_number(value: float | None, suffix: str = "") -> str:
    return "—" if value is None else f"{value:,.1f}{suffix}"


def fmt_rate(value: float | None) -> str:
    return fmt_number(value, "%")


def utc(value: Any) -> datetime | None:
    """Aware UTC datetime from whatever MongoDB returned (None stays None)."""
    if type(value) is datetime and value.tzinfo is None:  # the common case, made cheap
        return value.replace(tzinfo=UTC)
    return as_utc(value) if isinstance(value, datetime) else None


def naive_utc(value: Any) -> datetime | None:
    """A naive UTC datetime (what the renderers take) from whatever MongoDB returned; cheap
    for the common case, a naive datetime decoded with ``tz_aware=False``."""
    if value.__class__ is datetime:
        if value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)
    return as_utc(value).replace(tzinfo=None) if isinstance(value, datetime) else None


def number(value: Any) -> float | None:
    """A numeric cell, or None for missing / non-numeric values."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


# ---------------------------------------------------------------------------------------------
# Filters shared by the pipelines


def object_ids(ids: Iterable[str]) -> list[ObjectId]:
    return sorted(ObjectId(i) for i in ids if ObjectId.is_valid(i))


def effective_ids(
    requested: Sequence[str] | None, allowed: Iterable[str] | None
) -> list[str] | None:
    """The ids a fetch must stay within: the requested filter intersected with the scope;
    None when neither restricts."""
    sets = [set(x) for x in (requested, allowed) if x is not None]
    if not sets:
        return None
    return sorted(set.intersection(*sets))


def scope_match(
    resolved: Mapping[str, Any],
    scope: DataScope,
    *,
    department_field: str | None = "department_id",
    course_field: str | None = "course_id",
    user_field: str | None = "user_id",
) -> dict[str, Any]:
    """`$match` conditions for the scope and the departmentIds / courseIds filters."""
    match: dict[str, Any] = {}
    if department_field:
        departments = effective_ids(resolved.get("departmentIds"), scope.department_ids)
        if departments is not None:
            match[department_field] = {"$in": object_ids(departments)}
    if course_field:
        courses = effective_ids(resolved.get("courseIds"), scope.course_ids)
        if courses is not None:
            match[course_field] = {"$in": object_ids(courses)}
    if user_field and scope.user_id is not None:
        # A learner sees only its own data; an id that is not an ObjectId matches nothing.
        match[user_field] = (
            ObjectId(scope.user_id) if ObjectId.is_valid(scope.user_id) else {"$in": []}
        )
    return match


def range_match(resolved: Mapping[str, Any]) -> dict[str, datetime]:
    start, end = resolved_range(resolved)
    return {"$gte": start, "$lt": end}


def resolved_range(resolved: Mapping[str, Any]) -> tuple[datetime, datetime]:
    date_range = resolved["dateRange"]
    return parse_iso_utc(date_range["start"]), parse_iso_utc(date_range["end"])


def resolved_now(resolved: Mapping[str, Any]) -> datetime:
    return parse_iso_utc(resolved["now"])


def lookup_one(source: str, local_field: str, target: str, fields: Mapping[str, int]) -> list[Any]:
    """Joins one document (by `_id`) and keeps only `fields`; a missing match leaves `target`
    absent rather than dropping the row."""
    return [
        {
            "$lookup": {
                "from": source,
                "localField": local_field,
                "foreignField": "_id",
                "pipeline": [{"$project": dict(fields)}],
                "as": target,
            }
        },
        {"$unwind": {"path": f"${target}", "preserveNullAndEmptyArrays": True}},
    ]


def count_stage() -> dict[str, Any]:
    # `$group` rather than `$count` so the same building block works inside `$lookup`
    # sub-pipelines on every server we run against.
    return {"$group": {"_id": None, "n": {"$sum": 1}}}


async def stream(
    collection: AsyncCollection[Any],
    pipeline: list[dict[str, Any]],
    batch_size: int,
    to_row: Callable[[dict[str, Any]], Row],
    *,
    naive_datetimes: bool = False,
    **options: Any,
) -> AsyncIterator[list[Row]]:
    """Runs `pipeline` with a server cursor and yields rows in batches of `batch_size`.

    `naive_datetimes=True` decodes datetimes without a timezone (~30% cheaper BSON decoding);
    only for a `to_row` that treats naive datetimes as UTC (`utc()` or `naive_utc()`)."""
    if naive_datetimes:
        collection = collection.with_options(
            codec_options=collection.codec_options.with_options(tz_aware=False, tzinfo=None)
        )
    cursor = await collection.aggregate(
        pipeline, batchSize=batch_size, allowDiskUse=True, **options
    )
    try:
        # A batch at a time: `async for` over the cursor costs a coroutine chain per document.
        # An empty batch from a cursor that is still open (possible on sharded clusters) is
        # not the end.
        while True:
            docs = await cursor.to_list(batch_size)
            if docs:
                yield [to_row(doc) for doc in docs]
            elif not cursor.alive:
                break
    finally:
        await cursor.close()


async def aggregate_count(
    collection: AsyncCollection[Any], pipeline: list[dict[str, Any]], **options: Any
) -> int:
    cursor = await collection.aggregate([*pipeline, count_stage()], allowDiskUse=True, **options)
    docs = await cursor.to_list()
    return int(docs[0]["n"]) if docs else 0


# ---------------------------------------------------------------------------------------------
# The definition


class ReportDefinition(ABC):
    key: ClassVar[str]
    name: ClassVar[str]
    description: ClassVar[str]
    parameters_model: ClassVar[type[ReportParameters]]
    columns: ClassVar[list[Column]]
    default_sort: ClassVar[list[str]]
    formats: ClassVar[tuple[Format, ...]] = ALL_FORMATS
    roles: ClassVar[tuple[Role, ...]] = (Role.ADMIN, Role.MANAGER, Role.INSTRUCTOR)

    # -- parameters -------------------------------------------------------------------------

    def parse(self, raw: Mapping[str, Any] | None, *, field: str = "parameters") -> Any:
        """Validates raw JSON parameters; a 422 names each bad field as `parameters.<path>`."""
        try:
            return self.parameters_model.model_validate(dict(raw or {}))
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
        self, params: BaseModel | Mapping[str, Any], scope: DataScope, now: datetime
    ) -> Resolved:
        """Turns validated parameters into absolute ones (dates in UTC, `now` fixed) and narrows
        the requested departmentIds / courseIds to the caller's scope (403 naming the ids
        outside it)."""
        if not isinstance(params, self.parameters_model):
            raw = params if isinstance(params, Mapping) else params.model_dump(by_alias=True)
            params = self.parse(raw)
        assert isinstance(params, ReportParameters)
        if scope.user_id is not None and Role.LEARNER not in self.roles:
            raise Forbidden(f"Learners may not run the {self.key} report.", code="forbidden")
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        requested_departments = getattr(params, "department_ids", None)
        requested_courses = getattr(params, "course_ids", None)
        departments = scope.narrow("departmentIds", requested_departments)
        courses = scope.narrow("courseIds", requested_courses)
        effective = DataScope(
            department_ids=departments,
            course_ids=courses,
            user_id=scope.user_id,
            description=scope.description,
        )
        timezone: str = params.timezone
        parameters: dict[str, Any] = {
            "reportType": self.key,
            "timezone": timezone,
            "now": iso_utc(now),
        }
        if hasattr(params, "date_range"):
            parameters["dateRange"] = params.date_range.resolve(timezone, now).to_document()
        if hasattr(params, "department_ids"):
            parameters["departmentIds"] = (
                sorted(requested_departments) if requested_departments is not None else None
            )
        if hasattr(params, "course_ids"):
            parameters["courseIds"] = (
                sorted(requested_courses) if requested_courses is not None else None
            )
        parameters.update(self.resolve_options(params, now))
        return Resolved(parameters=parameters, scope=effective)

    def resolve_options(self, params: Any, now: datetime) -> dict[str, Any]:
        """The type-specific resolved parameters (JSON-able)."""
        return {}

    def columns_for(self, resolved: Mapping[str, Any]) -> list[Column]:
        """The columns of a run; only differs from `columns` when a parameter changes the shape
        of the rows (assessment-results grouped by course)."""
        return self.columns

    # -- data -------------------------------------------------------------------------------

    @abstractmethod
    async def count(self, resolved: Mapping[str, Any], scope: DataScope) -> int: ...

    @abstractmethod
    def fetch(
        self, resolved: Mapping[str, Any], scope: DataScope, batch_size: int
    ) -> AsyncIterator[list[Row]]: ...

    @abstractmethod
    def summarizer(self, resolved: Mapping[str, Any] | None = None) -> Summarizer: ...

    # Labels of the type-specific resolved parameters, in the order `describe` prints them.
    option_labels: ClassVar[dict[str, str]] = {}

    def describe(self, resolved: Mapping[str, Any]) -> list[tuple[str, str]]:
        """The resolved parameters as (label, value) pairs for a file's header / PDF page one."""
        pairs: list[tuple[str, str]] = []
        date_range = resolved.get("dateRange")
        if date_range:
            preset = date_range.get("preset", "custom")
            label = PRESET_LABELS.get(DatePreset(preset), preset) if preset in _PRESETS else preset
            pairs.append(("Date range", f"{date_range['from']} – {date_range['to']} ({label})"))
        # The timezone is not repeated here: every file states it on its own.
        for key, label in (("departmentIds", "Departments"), ("courseIds", "Courses")):
            if key in resolved:
                pairs.append((label, _describe_ids(resolved.get(key))))
        for key, label in self.option_labels.items():
            if key in resolved:
                pairs.append((label, _describe_value(resolved[key])))
        return pairs

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


_PRESETS = {p.value for p in DatePreset}


def _describe_ids(ids: Sequence[str] | None) -> str:
    if ids is None:
        return "All in scope"
    if len(ids) <= 5:
        return ", ".join(ids)
    return f"{len(ids)} selected"


def _describe_value(value: Any) -> str:
    if value is None:
        return "All"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "All"
    return str(value)
