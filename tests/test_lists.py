"""Every list endpoint, as a table in a frontend uses it: sorted by each documented field in both
directions it equals a sort of the whole list (nulls first ascending, ties by id), paging
through it with cursors neither skips nor repeats an item, and `total` is right on every page.
A refused sort or cursor is a 422 that says what is allowed."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from beanie import Document, PydanticObjectId
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import ExecutionTimeout

from app.audit.models import AUDIT_SORTS, AuditEvent
from app.common import pagination
from app.common.pagination import Sorting
from app.common.schemas import encode_cursor
from app.platform.models import COURSE_SORTS, DEPARTMENT_SORTS, USER_SORTS, Course, Department, User
from app.reports.deliveries.models import (
    DELIVERY_SORTS,
    WEBHOOK_SORTS,
    DeliveryContent,
    Recipient,
    ReportDelivery,
    WebhookEndpoint,
)
from app.reports.jobs.models import JOB_SORTS, RUN_SORTS, JobStatus, ReportJob, Requester
from app.reports.schedules.models import SCHEDULE_SORTS, ReportSchedule
from app.reports.templates.models import (
    TEMPLATE_SORTS,
    VERSION_SORTS,
    ReportTemplate,
    ReportTemplateVersion,
)
from app.runtime.resources import Resources
from tests import factories
from tests.factories import dt
from tests.helpers.tokens import TokenFactory

BASE = "/api/v1/reports"
ME = "65f00000000000000000a001"
OTHER = "65f00000000000000000a002"
# Few distinct moments, so sort values tie and the id decides.
MOMENTS = [dt(2026, 3, 1, 9), dt(2026, 3, 2, 9), dt(2026, 3, 2, 9), dt(2026, 3, 5, 17)]
NAMES = ["Beta", "alpha", "Alpha", "beta", "Beta", "Zulu", "émigré", "10 days"]
STATUSES = list(JobStatus)
TYPES = ["learner-progress", "course-completion", "assessment-results"]


def pick(values: list[Any], i: int) -> Any:
    return values[i % len(values)]


def maybe(i: int, value: Any) -> Any:
    """Every third value is missing (null)."""
    return None if i % 3 == 0 else value


@dataclass
class Case:
    """One list: where it is, who asks, its documented orders, and the documents it must hold
    (read back from the collection with the list's own filter, written out here)."""

    url: str
    headers: dict[str, str]
    sorting: Sorting
    document: type[Document]
    expected: dict[str, Any]


def ordered(docs: list[dict[str, Any]], path: str, descending: bool) -> list[str]:
    def key(doc: dict[str, Any]) -> tuple[bool, Any, Any]:
        value = doc.get(path)
        return (value is not None, value, doc["_id"])

    return [str(d["_id"]) for d in sorted(docs, key=key, reverse=descending)]


async def walk(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    *,
    limit: int,
    params: dict[str, Any] | None = None,
) -> tuple[list[str], list[dict[str, Any]]]:
    """The ids of every page, following the cursors; and the pages."""
    ids: list[str] = []
    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**(params or {}), "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get(url, params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        ids += [item["id"] for item in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            return ids, pages
        assert len(pages) < 100


async def check_every_order(client: httpx.AsyncClient, case: Case) -> None:
    docs = await case.document.get_pymongo_collection().find(case.expected).to_list()
    assert len(docs) >= 7, "enough items for three pages"
    everything = {str(d["_id"]) for d in docs}
    for field, descending in itertools.product(case.sorting.fields, (False, True)):
        sort = f"-{field.name}" if descending else field.name
        ids, pages = await walk(client, case.url, case.headers, limit=3, params={"sort": sort})
        assert ids == ordered(docs, field.path, descending), (case.url, sort)
        assert len(set(ids)) == len(ids) and set(ids) == everything
        for page in pages:
            assert page["total"] == len(docs) and page["totalAtLeast"] == len(docs)
    default, _ = await walk(client, case.url, case.headers, limit=100)
    chosen = case.sorting.parse(case.sorting.default)
    assert default == ordered(docs, chosen.field.path, chosen.descending)


async def jobs(auth: TokenFactory) -> Case:
    for i in range(11):
        owner = ME if i < 9 else OTHER
        status = pick(STATUSES, i)
        await ReportJob(
            report_type=pick(TYPES, i),
            format="csv",
            requested_by=Requester(user_id=owner, name="Someone"),
            status=status,
            created_at=pick(MOMENTS, i),
            finished_at=maybe(i, pick(MOMENTS, i + 1) + timedelta(minutes=i % 2)),
        ).insert()
    return Case(
        f"{BASE}/jobs",
        auth("manager", sub=ME),
        JOB_SORTS,
        ReportJob,
        {"requested_by.user_id": ME},
    )


async def templates(auth: TokenFactory) -> Case:
    for i, name in enumerate([*NAMES, "Other's"]):
        template = await ReportTemplate(
            name=name,
            report_type="learner-progress",
            format="csv",
            owner=Requester(user_id=ME if i < len(NAMES) else OTHER, name="Someone"),
            created_at=pick(MOMENTS, i),
        ).insert()
        await ReportTemplate.get_pymongo_collection().update_one(
            {"_id": template.id}, {"$set": {"updated_at": pick(MOMENTS, i + 2)}}
        )
    return Case(
        f"{BASE}/templates",
        auth("learner", sub=ME),
        TEMPLATE_SORTS,
        ReportTemplate,
        {"owner.user_id": ME},
    )


def schedule(i: int, owner: str) -> ReportSchedule:
    return ReportSchedule(
        name=pick(NAMES, i),
        report_type="learner-progress",
        format="csv",
        frequency="daily",
        owner=Requester(user_id=owner, name="Someone"),
        created_at=pick(MOMENTS, i),
        next_run_at=maybe(i, pick(MOMENTS, i + 1)),
        last_run_at=maybe(i + 1, pick(MOMENTS, i + 3)),
    )


async def schedules(auth: TokenFactory) -> Case:
    for i in range(10):
        await schedule(i, ME if i < 8 else OTHER).insert()
    return Case(
        f"{BASE}/schedules",
        auth("manager", sub=ME),
        SCHEDULE_SORTS,
        ReportSchedule,
        {"owner.user_id": ME},
    )


async def runs(auth: TokenFactory) -> Case:
    mine, other = await schedule(0, ME).insert(), await schedule(1, ME).insert()
    for i in range(10):
        await ReportJob(
            report_type="learner-progress",
            format="csv",
            requested_by=Requester(user_id=ME, name="Someone"),
            schedule_id=mine.id if i < 8 else other.id,
            created_at=pick(MOMENTS, i),
            scheduled_for=maybe(i, dt(2026, 3, 1 + i)),  # one job per slot
            finished_at=maybe(i + 2, pick(MOMENTS, i + 1)),
        ).insert()
    return Case(
        f"{BASE}/schedules/{mine.id}/runs",
        auth("manager", sub=ME),
        RUN_SORTS,
        ReportJob,
        {"schedule_id": mine.id},
    )


async def deliveries(auth: TokenFactory) -> Case:
    for i in range(10):
        await ReportDelivery(
            owner_user_id=ME if i < 8 else OTHER,
            job_id=PydanticObjectId(),
            channel="email",
            recipient=Recipient(address=f"r{i}@example.test"),
            content=DeliveryContent(
                report_name="Progress",
                report_type="learner-progress",
                format="csv",
                job_status="completed",
            ),
            idempotency_id=f"delivery-{i}",
            next_attempt_at=pick(MOMENTS, i),
            created_at=pick(MOMENTS, i),
            status="sent" if i % 3 else "pending",
            sent_at=maybe(i, pick(MOMENTS, i + 1)),
        ).insert()
    return Case(
        f"{BASE}/deliveries",
        auth("instructor", sub=ME),
        DELIVERY_SORTS,
        ReportDelivery,
        {"owner_user_id": ME},
    )


async def webhooks(auth: TokenFactory) -> Case:
    for i in range(9):
        await WebhookEndpoint(
            owner_user_id=ME if i < 8 else OTHER,
            url=f"https://hooks.example.test/{pick(NAMES, i)}/{i % 2}",
            created_at=pick(MOMENTS, i),
        ).insert()
    return Case(
        f"{BASE}/webhooks",
        auth("admin", sub=ME),
        WEBHOOK_SORTS,
        WebhookEndpoint,
        {"owner_user_id": ME},
    )


async def audit(auth: TokenFactory) -> Case:
    for i in range(8):
        await AuditEvent(
            action="job.created", created_at=pick(MOMENTS, i), expires_at=dt(2099, 1, 1)
        ).insert()
    return Case(f"{BASE}/audit", auth("admin"), AUDIT_SORTS, AuditEvent, {})


async def organisation() -> None:
    parents: list[Department | None] = [None]
    for i, name in enumerate(NAMES):
        dept = await factories.department(name, code=f"D-{i % 4}{i}", parent=pick(parents, i))
        parents.append(dept)
        await factories.user(name, dept=dept, email=f"{chr(ord('q') - i)}{i}@example.test")
        await factories.course(f"C{9 - i}", title=name, dept=dept)
    await factories.user("Gone", status="inactive")


async def department_options(auth: TokenFactory) -> Case:
    await organisation()
    url = f"{BASE}/metadata/filter-options/departments"
    return Case(url, auth("admin"), DEPARTMENT_SORTS, Department, {})


async def course_options(auth: TokenFactory) -> Case:
    await organisation()
    url = f"{BASE}/metadata/filter-options/courses"
    return Case(url, auth("admin"), COURSE_SORTS, Course, {})


async def user_options(auth: TokenFactory) -> Case:
    await organisation()
    url = f"{BASE}/metadata/filter-options/users"
    return Case(url, auth("admin"), USER_SORTS, User, {"status": "active"})


LISTS: dict[str, Callable[[TokenFactory], Awaitable[Case]]] = {
    "jobs": jobs,
    "templates": templates,
    "schedules": schedules,
    "schedule runs": runs,
    "deliveries": deliveries,
    "webhooks": webhooks,
    "audit": audit,
    "department options": department_options,
    "course options": course_options,
    "user options": user_options,
}


@pytest.mark.parametrize("name", LISTS)
async def test_each_documented_order_pages_through_the_whole_list(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources, name: str
) -> None:
    await check_every_order(client, await LISTS[name](auth))


@pytest.mark.parametrize("name", LISTS)
async def test_an_unknown_sort_and_a_cursor_of_another_sort_are_422(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources, name: str
) -> None:
    case = await LISTS[name](auth)
    unknown = await client.get(case.url, params={"sort": "-colour"}, headers=case.headers)
    assert unknown.status_code == 422
    (error,) = unknown.json()["errors"]
    assert error["field"] == "query.sort" and error["type"] == "sort-unknown"
    assert error["allowed"] == case.sorting.tokens
    first = (await client.get(case.url, params={"limit": 2}, headers=case.headers)).json()
    other = case.sorting.fields[-1].name
    mixed = await client.get(
        case.url, params={"cursor": first["nextCursor"], "sort": other}, headers=case.headers
    )
    assert mixed.status_code == 422
    (error,) = mixed.json()["errors"]
    assert error["field"] == "query.cursor" and error["type"] == "cursor-sort-mismatch"
    assert case.sorting.default in error["message"]


async def test_filters_narrow_the_total_and_the_pages(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    case = await jobs(auth)
    ids, pages = await walk(
        client, case.url, case.headers, limit=2, params={"status": "queued", "sort": "-status"}
    )
    stored = await ReportJob.find({"requested_by.user_id": ME, "status": "queued"}).to_list()
    assert sorted(ids) == sorted(str(j.id) for j in stored) and len(ids) == 2
    assert all(p["total"] == 2 for p in pages)
    admin, _ = await walk(client, case.url, auth("admin"), limit=4, params={"userId": OTHER})
    assert len(admin) == 2


async def test_a_count_past_its_limit_or_budget_gives_a_lower_bound(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    case = await jobs(auth)  # 9 of them
    monkeypatch.setattr(pagination, "COUNT_LIMIT", 5)
    ids, pages = await walk(client, case.url, case.headers, limit=3)
    assert len(ids) == 9
    assert [p["total"] for p in pages] == [None, None, None]
    # The limit, then what has been read so far (one more while there is a next page).
    assert [p["totalAtLeast"] for p in pages] == [5, 7, 9]

    async def slow(self: AsyncCollection[Any], *args: Any, **kwargs: Any) -> int:
        assert kwargs["maxTimeMS"] == pagination.COUNT_BUDGET_MS
        raise ExecutionTimeout("operation exceeded time limit", 50)

    monkeypatch.setattr(AsyncCollection, "count_documents", slow)
    ids, pages = await walk(client, case.url, case.headers, limit=4)
    assert len(ids) == 9
    assert [(p["total"], p["totalAtLeast"]) for p in pages] == [(None, 5), (None, 9), (None, 9)]


async def test_a_cursor_keeps_its_place_while_items_arrive_and_old_cursors_still_read(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    case = await jobs(auth)
    first = (await client.get(case.url, params={"limit": 4}, headers=case.headers)).json()
    await ReportJob(
        report_type="learner-progress",
        format="csv",
        requested_by=Requester(user_id=ME, name="Someone"),
        created_at=dt(2027, 1, 1),
    ).insert()
    rest, _ = await walk(
        client, case.url, case.headers, limit=100, params={"cursor": first["nextCursor"]}
    )
    docs = await ReportJob.get_pymongo_collection().find(case.expected).to_list()
    newest_first = ordered(docs, "created_at", descending=True)
    assert [i["id"] for i in first["items"]] + rest == newest_first[1:]
    # A cursor handed out before lists took `sort` continues the default order.
    fourth = await ReportJob.get(first["items"][3]["id"])
    assert fourth is not None
    legacy = encode_cursor({"c": fourth.created_at.isoformat(), "i": str(fourth.id)})
    answer = await client.get(case.url, params={"cursor": legacy}, headers=case.headers)
    assert [i["id"] for i in answer.json()["items"]] == rest[:20]


SERVED: list[tuple[type[Document], Sorting, tuple[tuple[str, ...], ...]]] = [
    (ReportJob, JOB_SORTS, (("requested_by.user_id",), ())),
    (ReportJob, RUN_SORTS, (("schedule_id",),)),
    (ReportTemplate, TEMPLATE_SORTS, (("owner.user_id",), ())),
    (ReportTemplateVersion, VERSION_SORTS, (("template_id",),)),
    (ReportSchedule, SCHEDULE_SORTS, (("owner.user_id",), ())),
    (ReportDelivery, DELIVERY_SORTS, (("owner_user_id",), ("schedule_id",), ())),
    (WebhookEndpoint, WEBHOOK_SORTS, (("owner_user_id",),)),
    (AuditEvent, AUDIT_SORTS, ((), ("actor.user_id",), ("action",), ("object_id",))),
    (Department, DEPARTMENT_SORTS, ((), ("parent_id",))),
    (Course, COURSE_SORTS, ((),)),
    (User, USER_SORTS, (("status",), ("department_id", "status"))),
]


async def test_the_server_has_an_index_for_each_documented_order(resources: Resources) -> None:
    """Each list's usual filter (the owner, the schedule, ...) followed by each sort field and
    the id: one index range in sort order, read forwards or backwards."""
    for document, sorting, prefixes in SERVED:
        info = await document.get_pymongo_collection().index_information()
        patterns = {tuple(name for name, _ in index["key"]) for index in info.values()}
        for prefix in prefixes:
            for field in sorting.fields:
                tail = (field.path,) if field.unique else (field.path, "_id")
                assert (*prefix, *tail) in patterns, (document.__name__, prefix, field.name)


async def test_deliveries_and_webhooks_hold_only_the_callers_own(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    await deliveries(auth)  # 8 of ME's (every third pending), 2 of OTHER's
    await webhooks(auth)  # 8 of ME's, 1 of OTHER's
    mine, stranger, admin = auth("manager", sub=ME), auth("learner"), auth("admin")

    async def ids(headers: dict[str, str], url: str, **params: Any) -> list[str]:
        found, _ = await walk(client, url, headers, limit=100, params=params)
        return found

    url = f"{BASE}/deliveries"
    assert len(await ids(mine, url)) == 8 and await ids(stranger, url) == []
    assert len(await ids(admin, url)) == 10
    pending = await ids(mine, url, status="pending")
    stored = await ReportDelivery.find({"owner_user_id": ME, "status": "pending"}).to_list()
    assert sorted(pending) == sorted(str(d.id) for d in stored) and pending
    one = stored[0]
    assert await ids(mine, url, jobId=str(one.job_id)) == [str(one.id)]
    assert await ids(stranger, url, jobId=str(one.job_id)) == []
    assert await ids(mine, url, channel="webhook") == []
    assert await ids(mine, url, scheduleId=str(PydanticObjectId())) == []
    bad = await client.get(url, params={"jobId": "nope"}, headers=mine)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.jobId"

    hooks = f"{BASE}/webhooks"
    assert len(await ids(mine, hooks)) == 8 and await ids(admin, hooks) == []
    listed = (await client.get(hooks, headers=mine)).json()
    assert all(item["secret"] is None for item in listed["items"])
