"""A report previewed: the same request road, the same read and the same figures as its file,
answered at once as JSON, within a time budget.

The request goes the road every job goes (`requests.resolve_request`: validate → role → data
scope), with a template and its overrides as `POST /jobs {templateId}` takes them. The rows
then come from the report definition's own `fetch` — the engine the worker runs, in the order
the file has — through the summarizer the file's summary comes from, while a `PageKeeper` keeps
the page asked for (in the report's order or a requested sort). The whole read runs within
`PREVIEW_BUDGET_MS` (`budget.py`); one that does not fit is refused with its estimate. Each
caller may ask for `PREVIEW_RATE_PER_MINUTE` previews a minute, counted in Redis.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from app.audit import AuditAction, record
from app.common.time import utcnow
from app.config import Settings
from app.errors import TooManyRequests, ValidationFailed
from app.i18n import DEFAULT_LOCALE, translate, use_locale
from app.lookups import validation
from app.reports.jobs.requests import (
    ReportRequest,
    Resolution,
    resolve_locale,
    resolve_request,
)
from app.reports.jobs.schemas import JobCreate
from app.reports.previews.budget import Budget, ReadWatch, ran_out, too_large
from app.reports.previews.first_page import FirstPage, first_page
from app.reports.previews.paging import (
    PageKeeper,
    fingerprint,
    parse_sort,
    preview_cursor,
    read_preview_cursor,
)
from app.reports.previews.schemas import (
    ChartOut,
    ColumnOut,
    FigureOut,
    ParameterOut,
    PreviewOut,
)
from app.reports.reading.progress import READ_PROGRESS
from app.reports.rendering import JsonRows
from app.reports.rendering.choice import ColumnChoice
from app.reports.rendering.jsonl import chart_document, column_document
from app.reports.rendering.present import Presentation, localised
from app.reports.templates.job_bodies import body_fields, body_request
from app.reports.types import figure_definitions
from app.reports.types.totals import TotalsAccumulator
from app.runtime.resources import Resources
from app.security import Principal

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
READ_BATCH = 2000  # rows a fetch hands over at a time
RATE_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class PageAsk:
    limit: int = DEFAULT_LIMIT
    sort: str | None = None
    cursor: str | None = None


async def check_request(
    settings: Settings, principal: Principal, body: JobCreate, now: datetime
) -> tuple[ReportRequest, Resolution]:
    """The request of a preview's body resolved at `now`, as a job's would be (validate → role
    → data scope: a 422 naming every problem of the input, a 403 for what is not allowed)."""
    request = await body_request(principal, body)
    with body_fields(body):
        return request, await resolve_request(settings, principal, request, now)


async def check_rate(resources: Resources, principal: Principal) -> None:
    """429 with `Retry-After` past `PREVIEW_RATE_PER_MINUTE` previews in the current minute."""
    limit = resources.settings.preview_rate_per_minute
    count, left = await resources.queue.count_in_window(
        f"preview:{principal.user_id}", RATE_WINDOW_SECONDS
    )
    if count > limit:
        raise TooManyRequests(
            f"At most {limit} previews a minute; try again in {int(left) + 1} s.",
            retry_after=int(left) + 1,
            code="preview-rate-exceeded",
        )


async def preview(
    resources: Resources, principal: Principal, body: JobCreate, ask: PageAsk
) -> PreviewOut:
    settings = resources.settings
    await check_rate(resources, principal)
    request_key = fingerprint(body.model_dump(mode="json"), ask.sort)
    position = read_preview_cursor(ask.cursor, request_key)
    offset = position.offset if position else 0
    if offset + ask.limit > settings.preview_max_depth:
        raise ValidationFailed.one(
            "cursor" if position else "limit",
            f"a preview pages through its first {settings.preview_max_depth:,} rows; run the "
            "report as a job and read GET /api/v1/reports/jobs/{id}/rows for the rest",
            type="preview_depth",
        )
    now = position.now if position else utcnow()
    request, resolution = await check_request(settings, principal, body, now)
    definition, resolved = resolution.definition, resolution.resolved
    params, scope = resolved.parameters, resolved.scope
    # Words (labels, definitions, parameters) in the locale the job would be made in; values
    # stay machine formats in every locale, as in the JSON Lines file.
    locale = await resolve_locale(request.locale, principal)

    columns = localised(definition.columns_for(params), locale)
    # The rows a CSV of the same request holds: codes (labels when asked), the chosen columns
    # in the chosen order.
    choice = ColumnChoice(tuple(resolution.columns))
    presentation = choice.narrow(
        columns,
        Presentation.of(
            columns,
            {c.lookup: validation.labels(c.lookup, locale) for c in columns if c.lookup},
            for_people=False,
            with_labels=True if body.options.labels else None,
        ),
    )
    sort = parse_sort(ask.sort, presentation.columns)
    keeper = PageKeeper(offset, ask.limit, sort)
    summarizer = definition.summarizer(params)
    totals = TotalsAccumulator(
        columns, {k: t for k, t in definition.totals_for(params).items() if k in choice.keys}
    )
    charting = definition.charting(params) if body.options.charts else None

    budget = Budget(settings.preview_budget_ms)
    watch = ReadWatch(budget)
    following = READ_PROGRESS.set(watch)
    large: FirstPage | None = None
    try:
        async with budget.spending():
            if not sort:  # a large report in its own order: its first rows alone
                need, wait = offset + ask.limit, budget.left() / 2
                large = await first_page(definition, params, scope, need, wait)
            if large is not None:
                keeper.add(presentation.rows(large.rows))
                keeper.total = large.row_count
            else:
                async for batch in definition.fetch(params, scope, READ_BATCH, choice.keys):
                    summarizer.add(batch)
                    if charting is not None:
                        charting.add(batch)
                    totals.add(batch)
                    keeper.add(presentation.rows(batch))
    except Exception as exc:
        if ran_out(exc):
            raise await too_large(
                definition, params, scope, request.parameters, watch, budget
            ) from exc
        raise
    finally:
        READ_PROGRESS.reset(following)

    timezone = str(params.get("timezone") or "UTC")
    with use_locale(locale):
        figures = summarizer.figures()
        meanings = figure_definitions(summarizer)
        parameters = definition.describe(params)
    end = offset + ask.limit
    more = end < keeper.total and end < settings.preview_max_depth
    out = PreviewOut(
        report_type=definition.key,
        title=translate(locale, definition.name),
        timezone=timezone,
        generated_at=utcnow(),
        columns=[ColumnOut(**column_document(c)) for c in presentation.columns],
        rows=JsonRows(presentation.columns, timezone).objects(keeper.page()),
        sort=[f.text() for f in sort],
        default_sort=list(definition.default_sort),
        offset=offset,
        row_count=keeper.total,
        row_count_exact=large.exact if large else True,
        summary_included=large is None,
        summary=[
            FigureOut(
                label=f.label,
                value=replace(f, locale=DEFAULT_LOCALE).text,
                definition=f.definition or meanings.get(f.label),
            )
            for f in (figures if large is None else [])
        ],
        totals=totals.result() if large is None else None,
        charts=[
            ChartOut(**chart_document(c))
            for c in (charting.specs(locale) if charting and large is None else [])
        ],
        parameters=[ParameterOut(label=k, value=v) for k, v in parameters],
        resolved_parameters=params,
        scope=scope.to_document(),
        next_cursor=preview_cursor(end, now, request_key) if more else None,
    )
    await record(
        AuditAction.REPORT_PREVIEWED,
        principal,
        object_type="report",
        scope=scope.to_document(),
        parameters=params,
        details={
            "reportType": definition.key,
            "offset": offset,
            "rows": len(out.rows),
            "rowCount": keeper.total,
            "milliseconds": budget.elapsed_ms(),
            **({"templateId": body.template_id} if body.template_id else {}),
        },
    )
    return out


__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "PageAsk", "check_rate", "preview"]
