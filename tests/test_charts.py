"""Charts from one definition: every report type lists its charts; the preview and the JSON
Lines header carry them as Vega-Lite v5 specifications whose data are the report's figures
(worked out here again from the CSV rows of the same request); Excel draws them as native
charts over cells of its "Charts" sheet; the PDF's first page draws them as vector graphics
with their titles; `options.charts: false` leaves every one of them out."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections import Counter, defaultdict
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import altair
import httpx
import jsonschema
import openpyxl
import pikepdf
import pytest
from pypdf import PdfReader

from app.reports.rendering.base import ColumnType
from app.reports.rendering.charts import ChartKind, ChartSeries, ChartSpec, vega_lite
from app.reports.types import REPORT_TYPES
from app.runtime.resources import Resources
from tests.helpers.api import api_client
from tests.helpers.tokens import TokenFactory
from tests.reports_fixture import build_dataset
from tests.test_previews import JOBS, PREVIEW, REQUESTS, _app, _download, body

METADATA = "/api/v1/reports/metadata/report-types"


@cache
def _validator() -> jsonschema.protocols.Validator:
    path = Path(altair.__file__).parent / "vegalite" / "v5" / "schema" / "vega-lite-schema.json"
    schema = json.loads(path.read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def _assert_vega_lite_v5(spec: dict[str, Any]) -> None:
    errors = [e.message for e in _validator().iter_errors(spec)]
    assert errors == [], errors[:3]
    assert spec["$schema"].endswith("/vega-lite/v5.json")
    assert spec["data"]["values"], "the data is inline"


def _values(chart: dict[str, Any]) -> dict[Any, Any]:
    """A chart's data: category (and series) -> value."""
    out: dict[Any, Any] = {}
    for item in chart["spec"]["data"]["values"]:
        key = (item["category"], item["series"]) if "series" in item else item["category"]
        out[key] = item["value"]
    return out


def _number(text: str) -> float | None:
    return float(text) if text else None


def _expected(key: str, rows: list[dict[str, str]], first_day: str = "") -> dict[Any, Any]:
    """What a chart shows, from the CSV rows (labels) of the same report."""
    if key == "enrollmentsByStatus":
        return dict(Counter(r["Status"] for r in rows))
    if key == "completionRateByCourse":
        return {r["Course"]: _number(r["Completion rate"]) for r in rows}
    if key == "completionRateByDepartment":
        return {r["Department"]: _number(r["Completion rate"]) for r in rows}
    if key == "complianceStatesByDepartment":
        return dict(Counter((r["Department"], r["Compliance"]) for r in rows))
    if key == "eventsPerPeriodByType":
        events: dict[tuple[str, str], float] = defaultdict(float)
        for r in rows:
            # A period begun before the range shows from its first day, as PDF and Excel do.
            events[(max(r["Period start"], first_day), r["Event type"])] += float(r["Events"])
        return dict(events)
    if key == "scoreDistribution":
        bands = Counter(min(int(float(r["Score"]) // 10), 9) for r in rows if r["Score"])
        return {f"{b * 10}–{b * 10 + (9 if b < 9 else 10)}": bands.get(b, 0) for b in range(10)}
    if key == "passRateByQuiz":
        judged: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in rows:
            if r["Passed"]:
                judged[r["Quiz"]][0] += r["Passed"] in ("Yes", "true")
                judged[r["Quiz"]][1] += 1
        return {q: round(100 * p / n, 1) for q, (p, n) in judged.items()}
    if key == "passRateByCourse":
        return {r["Course"]: _number(r["Pass rate"]) for r in rows}
    raise AssertionError(f"no expectation for {key}")


async def test_every_report_type_lists_its_charts(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    for key in REPORT_TYPES:
        response = await client.get(f"{METADATA}/{key}", headers=auth("admin"))
        assert response.status_code == 200, response.text
        charts = response.json()["charts"]
        assert charts, key
        for chart in charts:
            assert chart["key"] and chart["title"] and chart["description"], chart
            assert chart["type"] in ("bar", "column")
    german = await client.get(
        f"{METADATA}/learner-progress", params={"locale": "de"}, headers=auth("admin")
    )
    assert german.json()["charts"][0]["title"] == "Einschreibungen nach Status"


async def test_preview_and_json_lines_charts_are_vega_lite_over_the_reports_figures(
    resources: Resources, auth: TokenFactory, run_worker: Any
) -> None:
    await build_dataset()
    headers = auth("admin")
    app = _app(resources, max_active_jobs_per_user=50)
    async with app.router.lifespan_context(app), api_client(app) as client:
        jobs = []
        for report_type, parameters in REQUESTS:
            ids = {}
            for fmt, options in (("csv", {"labels": True}), ("json", {})):
                request = {**body(report_type, parameters, fmt), "options": options}
                created = await client.post(JOBS, json=request, headers=headers)
                assert created.status_code == 202, created.text
                ids[fmt] = created.json()["id"]
            jobs.append((report_type, parameters, ids))
        await run_worker(timeout=240)
        seen: set[str] = set()
        for report_type, parameters, ids in jobs:
            case = (report_type, parameters.get("groupBy"))
            response = await client.post(
                PREVIEW, params={"limit": 1}, json=body(report_type, parameters), headers=headers
            )
            assert response.status_code == 200, response.text
            charts = response.json()["charts"]
            assert charts, case
            text = (await _download(client, ids["csv"], headers)).decode()
            rows = list(csv.DictReader(io.StringIO(text)))
            for chart in charts:
                seen.add(chart["key"])
                _assert_vega_lite_v5(chart["spec"])
                shown = _values(chart)
                first_day = parameters.get("dateRange", {}).get("from", "")
                expected = _expected(chart["key"], rows, first_day)
                if chart["key"] == "passRateByQuiz":  # the CSV names quizzes by id
                    assert sorted(shown.values()) == sorted(expected.values()), case
                elif "series" in chart["spec"]["data"]["values"][0]:  # stacked: zeros drawn too
                    assert {k: v for k, v in shown.items() if v} == expected, case
                else:
                    assert shown == expected, (case, chart["key"])
                assert not any(re.fullmatch(r"[a-z]+(-[a-z]+)+", str(k)) for k in shown), (
                    "labels, never codes",
                    shown,
                )
            header = json.loads((await _download(client, ids["json"], headers)).splitlines()[0])
            assert header["charts"] == charts, case
        listed = {c.key for d in REPORT_TYPES.values() for c in d.charts}
        assert seen == listed

        off = {**body("learner-progress", {}), "options": {"charts": False}}
        response = await client.post(PREVIEW, json=off, headers=headers)
        assert response.status_code == 200 and response.json()["charts"] == []
        created = await client.post(
            JOBS,
            json={**body("learner-progress", {}, "json"), "options": {"charts": False}},
            headers=headers,
        )
        await run_worker()
        content = await _download(client, created.json()["id"], headers)
        assert "charts" not in json.loads(content.splitlines()[0])


def _pdf_paths_and_images(content: bytes) -> tuple[int, int, set[tuple[float, ...]]]:
    """The first page's path-painting operators, image XObjects and fill colours (forms
    included)."""
    pdf = pikepdf.open(io.BytesIO(content))
    page = pdf.pages[0]
    paths, images = 0, 0
    colours: set[tuple[float, ...]] = set()
    painting = {"f", "F", "f*", "S", "s", "B", "B*", "b", "b*", "re"}

    def walk(container: Any, resources: Any) -> None:
        nonlocal paths, images
        for instruction in pikepdf.parse_content_stream(container):
            operands, operator = instruction.operands, instruction.operator
            name = str(operator)
            if name in painting:
                paths += 1
            elif name == "rg":
                colours.add(tuple(round(float(v), 2) for v in operands))
            elif name == "Do" and resources is not None and "/XObject" in resources:
                xobject = resources.XObject.get(operands[0])
                if xobject is None:
                    continue
                if xobject.get("/Subtype") == "/Image":
                    images += 1
                elif xobject.get("/Subtype") == "/Form":
                    walk(xobject, xobject.get("/Resources", resources))

    walk(page, page.get("/Resources"))
    return paths, images, colours


async def _file(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    run_worker: Any,
    report_type: str,
    parameters: dict[str, Any],
    fmt: str,
    charts: bool = True,
) -> bytes:
    request = {**body(report_type, parameters, fmt), "options": {"charts": charts}}
    created = await client.post(JOBS, json=request, headers=headers)
    assert created.status_code == 202, created.text
    await run_worker(timeout=120)
    return await _download(client, created.json()["id"], headers)


async def test_excel_draws_native_charts_and_the_pdf_vector_charts_on_page_one(
    client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any
) -> None:
    await build_dataset()
    headers = auth("admin")
    compliance = ("compliance-status", {"asOfDate": "2026-03-20"})
    preview = await client.post(PREVIEW, json=body(*compliance), headers=headers)
    chart = preview.json()["charts"][0]

    workbook = await _file(client, headers, run_worker, *compliance, "xlsx")
    parts = zipfile.ZipFile(io.BytesIO(workbook))
    chart_parts = [n for n in parts.namelist() if re.fullmatch(r"xl/charts/chart\d+\.xml", n)]
    assert len(chart_parts) == 1
    xml = parts.read(chart_parts[0]).decode()
    assert "<c:barChart>" in xml and "Charts!$A$" in xml and "Charts!$B$" in xml
    assert not [n for n in parts.namelist() if n.startswith("xl/media/")], "no pictures"
    book = openpyxl.load_workbook(io.BytesIO(workbook))
    assert book.sheetnames == ["Data", "Parameters", "Charts"]
    cells = [row for row in book["Charts"].iter_rows(values_only=True) if any(row)]
    assert cells[0][0] == "Compliance states by department"
    series = [s for s in cells[1][1:] if s]
    table = {(row[0], name): row[1 + i] for row in cells[2:] for i, name in enumerate(series)}
    assert table == _values(chart)

    pdf = await _file(client, headers, run_worker, *compliance, "pdf")
    plain = await _file(client, headers, run_worker, *compliance, "pdf", charts=False)
    first = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "Compliance states by department" in first and "Enrollments" in first
    paths, images, colours = _pdf_paths_and_images(pdf)
    _, _, plain_colours = _pdf_paths_and_images(plain)
    assert images == 0 and paths > 20  # drawn, not pasted in as a picture
    # The bars' Okabe-Ito colours (dark blue, orange, bluish green) are painted as vectors.
    okabe_ito = {(0.0, 0.45, 0.7), (0.9, 0.62, 0.0), (0.0, 0.62, 0.45)}
    assert okabe_ito <= colours and not okabe_ito & plain_colours, colours
    plain_first = PdfReader(io.BytesIO(plain)).pages[0].extract_text()
    assert "Compliance states by department" not in plain_first
    with pikepdf.open(io.BytesIO(pdf)) as tagged:
        assert _has_figure(tagged.Root.StructTreeRoot), "a figure with its text alternative"

    no_charts = await _file(client, headers, run_worker, *compliance, "xlsx", charts=False)
    names = zipfile.ZipFile(io.BytesIO(no_charts)).namelist()
    assert not [n for n in names if n.startswith("xl/charts/")]
    assert openpyxl.load_workbook(io.BytesIO(no_charts)).sheetnames == ["Data", "Parameters"]


def _has_figure(element: Any, depth: int = 0) -> bool:
    """Whether the structure tree holds a /Figure with its text alternative."""
    if depth > 40:
        return False
    if isinstance(element, pikepdf.Dictionary):
        if element.get("/S") == "/Figure" and "/Alt" in element:
            return True
        kids = element.get("/K")
        return kids is not None and _has_figure(kids, depth + 1)
    if isinstance(element, pikepdf.Array):
        return any(_has_figure(k, depth + 1) for k in element)
    return False


@pytest.mark.parametrize("stacked", [False, True])
def test_a_chart_spec_is_valid_vega_lite_v5(stacked: bool) -> None:
    series = (
        (ChartSeries("Compliant", (3, 0)), ChartSeries("Overdue", (1, 2)))
        if stacked
        else (ChartSeries("", (50.0, None)),)
    )
    chart = ChartSpec(
        key="k",
        title="A chart",
        description="What it shows",
        kind=ChartKind.BAR if stacked else ChartKind.COLUMN,
        category_title="Department",
        value_title="Enrollments" if stacked else "Rate (%)",
        value_type=ColumnType.INTEGER if stacked else ColumnType.PERCENT,
        categories=("Engineering", "Sales"),
        series=series,
        note="The first 2 of 3, in the report's order",
    )
    spec = vega_lite(chart)
    _assert_vega_lite_v5(spec)
    assert len(spec["data"]["values"]) == (4 if stacked else 2)
    assert "Engineering: 50.0%" in chart.alternative() or stacked


def test_charts_keep_counters_not_rows_and_a_report_without_rows_draws_none() -> None:
    definition = REPORT_TYPES["learner-progress"]
    resolved = definition.resolve_parameters(
        definition.parse({}), datetime(2026, 3, 20, tzinfo=UTC)
    )
    charting = definition.charting(resolved)
    assert charting.specs("en") == []
    status = [c.key for c in definition.columns].index("status")
    row: list[Any] = [None] * len(definition.columns)
    for code in ["completed"] * 3 + ["in-progress"] * 5000:
        row[status] = code
        charting.add([tuple(row)])
    (chart,) = charting.specs("de")
    assert chart.title == "Einschreibungen nach Status"
    assert dict(zip(chart.categories, chart.series[0].values, strict=True)) == {
        "In Bearbeitung": 5000,
        "Abgeschlossen": 3,
    }
    # Bounded memory: one counter per status, whatever the number of rows.
    assert sum(len(s.tally) for s in charting._series) == 2
