"""Cascading filter options, as a report form uses them: picking departments narrows the courses
to those taken there (sub-departments included) and the people to those who work there;
picking courses narrows the people to those enrolled and the departments to those the courses
are taken in; departments come as the caller's tree with counts. All of it within each role's
scope; ids outside it are a 403 naming them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.platform.models import Course, Department, User
from app.runtime.resources import Resources
from tests import factories
from tests.factories import dt
from tests.helpers.tokens import TokenFactory

URL = "/api/v1/reports/metadata/filter-options"


@dataclass
class Org:
    """ORG > ENG > PLAT, ORG > SALES, and OTHER beside ORG; a teacher of ALG and CHE."""

    depts: dict[str, Department]
    people: dict[str, User]
    courses: dict[str, Course]

    def ids(self, *names: str) -> str:
        found = {**self.depts, **self.courses, **self.people}
        return ",".join(str(found[n].id) for n in names)


@pytest.fixture
async def org(resources: Resources) -> Org:
    root = await factories.department("Organisation", code="ORG")
    eng = await factories.department("Engineering", code="ENG", parent=root)
    plat = await factories.department("Platform", code="PLAT", parent=eng)
    sales = await factories.department("Sales", code="SALES", parent=root)
    other = await factories.department("Other", code="OTHER")
    ann = await factories.user("Ann", dept=eng)
    ben = await factories.user("Ben", dept=plat)
    cat = await factories.user("Cat", dept=sales)
    dan = await factories.user("Dan", dept=other)
    eve = await factories.user("Eve", dept=plat, status="inactive")
    teacher = await factories.user("Tess", dept=other, roles=["instructor"])
    alg = await factories.course("ALG", title="Algebra", dept=eng, instructors=[teacher])
    bio = await factories.course("BIO", title="Biology", dept=sales)
    che = await factories.course("CHE", title="Chemistry", dept=other, instructors=[teacher])
    dra = await factories.course("DRA", title="Drama", dept=root)
    ext = await factories.course("EXT", title="Extra", dept=other)
    taken = [(ann, alg), (ann, bio), (ben, che), (cat, bio), (dan, che), (dan, dra), (eve, alg)]
    for learner, course in taken:
        await factories.enrollment(learner, course, enrolled_at=dt(2026, 1, 5))
    return Org(
        {"ORG": root, "ENG": eng, "PLAT": plat, "SALES": sales, "OTHER": other},
        {"Ann": ann, "Ben": ben, "Cat": cat, "Dan": dan, "Eve": eve, "Tess": teacher},
        {"ALG": alg, "BIO": bio, "CHE": che, "DRA": dra, "EXT": ext},
    )


async def options(
    client: httpx.AsyncClient, headers: dict[str, str], kind: str, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(f"{URL}/{kind}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == len(page["items"])
    return list(page["items"])


async def labels(
    client: httpx.AsyncClient, headers: dict[str, str], kind: str, **params: Any
) -> list[str]:
    found = await options(client, headers, kind, **params)
    return [o["description"] if kind != "users" else o["label"] for o in found]


async def test_courses_narrow_to_those_taken_in_the_chosen_departments_and_below(
    client: httpx.AsyncClient, auth: TokenFactory, org: Org
) -> None:
    admin = auth("admin")
    codes = [o["label"][:3] for o in await options(client, admin, "courses")]
    assert codes == ["ALG", "BIO", "CHE", "DRA", "EXT"]

    async def courses(headers: dict[str, str], **params: Any) -> list[str]:
        return [o["label"][:3] for o in await options(client, headers, "courses", **params)]

    # ENG with PLAT below it: Ann's ALG and BIO, Ben's CHE, Eve's ALG.
    assert await courses(admin, departmentIds=org.ids("ENG")) == ["ALG", "BIO", "CHE"]
    assert await courses(admin, departmentIds=org.ids("ENG"), includeSubDepartments=False) == [
        "ALG",
        "BIO",
    ]
    assert await courses(admin, departmentIds=org.ids("SALES")) == ["BIO"]
    # The whole ORG tree: DRA is taken in OTHER only, EXT nowhere.
    assert await courses(admin, departmentIds=org.ids("ORG")) == ["ALG", "BIO", "CHE"]
    # Repeated and comma-separated ids mean the same.
    repeated = await client.get(
        f"{URL}/courses",
        params=[("departmentIds", org.ids("SALES")), ("departmentIds", org.ids("OTHER"))],
        headers=admin,
    )
    assert [o["label"][:3] for o in repeated.json()["items"]] == ["BIO", "CHE", "DRA"]

    manager = auth("manager", departments=[org.ids("ENG")])
    # Its scope: courses its departments own (ALG) or that are taken in them (BIO, CHE).
    assert await courses(manager) == ["ALG", "BIO", "CHE"]
    assert await courses(manager, departmentIds=org.ids("PLAT")) == ["ALG", "CHE"]

    teacher = auth("instructor", sub=str(org.people["Tess"].id))
    assert await courses(teacher) == ["ALG", "CHE"]
    assert await courses(teacher, departmentIds=org.ids("OTHER")) == ["CHE"]
    assert await courses(teacher, departmentIds=org.ids("SALES")) == []

    ann = auth("learner", sub=str(org.people["Ann"].id), departments=[org.ids("ENG")])
    assert await courses(ann) == ["ALG", "BIO"]
    assert await courses(ann, departmentIds=org.ids("ENG"), q="bio") == ["BIO"]


async def test_people_narrow_by_departments_and_courses(
    client: httpx.AsyncClient, auth: TokenFactory, org: Org
) -> None:
    admin = auth("admin")
    assert await labels(client, admin, "users", departmentIds=org.ids("ENG")) == ["Ann", "Ben"]
    assert await labels(
        client, admin, "users", departmentIds=org.ids("ENG"), includeSubDepartments="false"
    ) == ["Ann"]
    assert await labels(client, admin, "users", courseIds=org.ids("CHE")) == ["Ben", "Dan"]
    assert await labels(client, admin, "users", courseIds=org.ids("ALG", "DRA")) == ["Ann", "Dan"]
    both = {"courseIds": org.ids("CHE"), "departmentIds": org.ids("ENG")}
    assert await labels(client, admin, "users", **both) == ["Ben"]
    assert await labels(client, admin, "users", courseIds=org.ids("EXT")) == []

    manager = auth("manager", departments=[org.ids("ENG")])
    assert await labels(client, manager, "users") == ["Ann", "Ben"]
    assert await labels(client, manager, "users", departmentIds=org.ids("PLAT")) == ["Ben"]
    # Only enrollments it may see count: Eve (inactive) and Ann took ALG in its departments.
    assert await labels(client, manager, "users", courseIds=org.ids("ALG")) == ["Ann"]
    assert await labels(client, manager, "users", courseIds=org.ids("CHE")) == ["Ben"]

    teacher = auth("instructor", sub=str(org.people["Tess"].id))
    assert await labels(client, teacher, "users") == ["Ann", "Ben", "Dan"]
    assert await labels(client, teacher, "users", departmentIds=org.ids("ENG")) == ["Ann", "Ben"]
    assert await labels(client, teacher, "users", courseIds=org.ids("CHE")) == ["Ben", "Dan"]

    ann = auth("learner", sub=str(org.people["Ann"].id), departments=[org.ids("ENG")])
    assert await labels(client, ann, "users", courseIds=org.ids("BIO")) == ["Ann"]
    assert await labels(client, ann, "users", courseIds=org.ids("CHE")) == []


async def test_departments_narrow_by_courses(
    client: httpx.AsyncClient, auth: TokenFactory, org: Org
) -> None:
    admin = auth("admin")
    assert await labels(client, admin, "departments", courseIds=org.ids("BIO")) == [
        "ENG",
        "SALES",
    ]
    assert await labels(client, admin, "departments", departmentIds=org.ids("ENG")) == [
        "ENG",
        "PLAT",
    ]
    teacher = auth("instructor", sub=str(org.people["Tess"].id))
    assert await labels(client, teacher, "departments") == ["ENG", "OTHER", "PLAT"]
    assert await labels(client, teacher, "departments", courseIds=org.ids("ALG")) == [
        "ENG",
        "PLAT",
    ]


def tree(found: list[dict[str, Any]], org: Org) -> dict[str, tuple[Any, ...]]:
    """code -> (parent code, level, children, learners, enrollments)."""
    codes = {str(d.id): code for code, d in org.depts.items()}
    return {
        o["description"]: (
            codes.get(o["parentId"]) if o["parentId"] else None,
            o["level"],
            o["childCount"],
            o["learnerCount"],
            o["enrollmentCount"],
        )
        for o in found
    }


async def test_departments_are_the_callers_tree_with_counts(
    client: httpx.AsyncClient, auth: TokenFactory, org: Org
) -> None:
    admin = auth("admin")
    found = await options(client, admin, "departments")
    assert tree(found, org) == {
        "ORG": (None, 0, 2, 0, 0),
        "ENG": ("ORG", 1, 1, 1, 2),
        "PLAT": ("ENG", 2, 0, 1, 2),  # Eve is inactive; her enrollment counts
        "SALES": ("ORG", 1, 0, 1, 1),
        "OTHER": (None, 0, 0, 2, 2),  # Dan and Tess; Dan's CHE and DRA
    }
    assert all(o["learnerCountAtLeast"] == o["learnerCount"] for o in found)
    assert all(o["enrollmentCountAtLeast"] == o["enrollmentCount"] for o in found)
    top = await labels(client, admin, "departments", parentId="root")
    assert top == ["ORG", "OTHER"]
    assert await labels(client, admin, "departments", parentId=org.ids("ORG")) == ["ENG", "SALES"]
    # Chosen courses narrow the enrollments counted.
    chosen = await options(client, admin, "departments", courseIds=org.ids("ALG"))
    assert tree(chosen, org) == {"ENG": ("ORG", 1, 1, 1, 1), "PLAT": ("ENG", 2, 0, 1, 1)}

    # A manager's tree starts at its departments: nothing above them is named.
    manager = auth("manager", departments=[org.ids("ENG")])
    found = await options(client, manager, "departments")
    assert tree(found, org) == {"ENG": (None, 0, 1, 1, 2), "PLAT": ("ENG", 1, 0, 1, 2)}
    assert await labels(client, manager, "departments", parentId="root") == ["ENG"]

    # An instructor's: where its courses are taken, counting its courses' learners only.
    teacher = auth("instructor", sub=str(org.people["Tess"].id))
    found = await options(client, teacher, "departments")
    assert tree(found, org) == {
        "ENG": (None, 0, 1, 1, 1),
        "OTHER": (None, 0, 0, 1, 1),
        "PLAT": ("ENG", 1, 0, 1, 2),
    }
    ann = auth("learner", sub=str(org.people["Ann"].id), departments=[org.ids("ENG")])
    assert tree(await options(client, ann, "departments"), org) == {"ENG": (None, 0, 0, 1, 2)}


async def test_ids_outside_the_scope_or_malformed_are_refused(
    client: httpx.AsyncClient, auth: TokenFactory, org: Org, resources: Resources
) -> None:
    manager = auth("manager", departments=[org.ids("ENG")])
    outside = await client.get(
        f"{URL}/courses", params={"departmentIds": org.ids("PLAT", "SALES")}, headers=manager
    )
    assert outside.status_code == 403
    assert outside.json()["outOfScope"] == [str(org.depts["SALES"].id)]
    teacher = auth("instructor", sub=str(org.people["Tess"].id))
    course = await client.get(f"{URL}/users", params={"courseIds": org.ids("BIO")}, headers=teacher)
    assert course.status_code == 403 and course.json()["field"] == "courseIds"
    ann = auth("learner", sub=str(org.people["Ann"].id), departments=[org.ids("ENG")])
    other = await client.get(
        f"{URL}/courses", params={"departmentIds": org.ids("SALES")}, headers=ann
    )
    assert other.status_code == 403

    admin = auth("admin")
    for kind, params, field in (
        ("courses", {"departmentIds": "nope"}, "query.departmentIds"),
        ("courses", {"courseIds": org.ids("ALG")}, "query.courseIds"),
        ("users", {"parentId": "root"}, "query.parentId"),
        ("departments", {"parentId": "nope"}, "query.parentId"),
        ("users", {"sort": "title"}, "query.sort"),
    ):
        response = await client.get(f"{URL}/{kind}", params=params, headers=admin)
        assert response.status_code == 422, (kind, params)
        assert [e["field"] for e in response.json()["errors"]] == [field]
    many = ",".join(["65f000000000000000000000"] * (resources.settings.max_filter_ids + 1))
    too_many = await client.get(f"{URL}/users", params={"departmentIds": many}, headers=admin)
    assert too_many.status_code == 422


async def test_narrowed_options_page_with_a_total(
    client: httpx.AsyncClient, auth: TokenFactory, org: Org
) -> None:
    admin = auth("admin")
    params: dict[str, str | int] = {
        "departmentIds": org.ids("ORG", "OTHER"),
        "limit": 2,
        "sort": "-title",
    }
    first = (await client.get(f"{URL}/courses", params=params, headers=admin)).json()
    assert first["total"] == 4
    assert [o["label"] for o in first["items"]] == ["DRA — Drama", "CHE — Chemistry"]
    second = await client.get(
        f"{URL}/courses", params={**params, "cursor": first["nextCursor"]}, headers=admin
    )
    assert [o["label"] for o in second.json()["items"]] == ["BIO — Biology", "ALG — Algebra"]
    assert second.json()["nextCursor"] is None
