"""Locales: one registry, message catalogs, Babel's formats, and a `de` job end to end (German
CSV, Excel, PDF and e-mail); `en` stays as it was."""

from __future__ import annotations

import asyncio
import csv
import io
import shutil
import subprocess
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from babel.dates import format_date
from babel.numbers import format_decimal, format_percent
from beanie import PydanticObjectId
from pypdf import PdfReader

from app.i18n import (
    DEFAULT_LOCALE,
    human_formats,
    negotiate,
    supported_locales,
    translate,
    use_locale,
)
from app.reports.deliveries import repository
from app.reports.deliveries.models import DeliveryConfig, Recipient
from app.reports.deliveries.planning import plan_deliveries
from app.reports.deliveries.sender import send_due
from app.reports.jobs.models import ReportJob
from app.reports.rendering.base import Column, ColumnType, Figure
from app.runtime.resources import Resources
from scripts import i18n
from tests.helpers.deliveries import NOW, Mailbox, completed_job, delivery_people, schedule_body
from tests.helpers.tokens import TokenFactory
from tests.test_jobs import JOBS, RANGE, org  # noqa: F401  (the org fixture)

TEMPLATES = "/api/v1/reports/templates"
SCHEDULES = "/api/v1/reports/schedules"
METADATA = "/api/v1/reports/metadata"


@pytest.fixture
def staff(org: dict[str, Any]) -> dict[str, Any]:  # noqa: F811
    """The org fixture's departments and people (by another name: `org` is imported)."""
    return org


# -- the registry, the catalogs and the formats ----------------------------------------------


def test_the_registry_ships_en_and_de() -> None:
    assert supported_locales() == ["en", "de"]
    assert DEFAULT_LOCALE == "en"
    assert translate("de", "Completion rate") == "Abschlussquote"
    assert translate("en", "Completion rate") == "Completion rate"
    assert translate("de", "a text nobody marked") == "a text nobody marked"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("fr-FR, en;q=0.5, de;q=0.7", "de"),
        ("en-GB", "en"),
        ("fr, it", None),
        ("de;q=0, en;q=0.1", "en"),
        ("", None),
        ("garbage;;q=x, de", "de"),
    ],
)
def test_accept_language_picks_the_preferred_supported_locale(
    header: str, expected: str | None
) -> None:
    assert negotiate(header) == expected


def test_the_catalogs_are_extracted_and_complete() -> None:
    """messages.pot equals a fresh pybabel extraction and de translates every message (none
    fuzzy, the same placeholders): a text marked in the code and not translated fails here."""
    assert i18n.problems() == []


@pytest.mark.parametrize("value", [0.0, 0.5, 12.3, 49.6, 100.0, 1234.5, 98765.4, -3.2])
def test_fast_number_formats_equal_babel(value: float) -> None:
    for locale in ("en", "de"):
        formats = human_formats(locale)
        assert formats.decimal(value, 1) == format_decimal(value, "#,##0.0", locale=locale)
        assert formats.integer(int(value)) == format_decimal(int(value), locale=locale)
    # The locale's own percent pattern, one decimal: "49,6 %" in German.
    de_pattern = "#,##0.0\xa0%"
    assert human_formats("de").percent(value) == format_percent(
        value / 100, de_pattern, locale="de"
    )
    assert human_formats("en").percent(value) == format_percent(value / 100, "#,##0.0%", "en")


def test_dates_in_human_formats() -> None:
    day, moment = date(2026, 7, 1), datetime(2026, 7, 1, 14, 5)
    assert human_formats("en").date(day) == "2026-07-01"  # English keeps its ISO dates
    assert human_formats("en").datetime(moment) == "2026-07-01 14:05"
    assert human_formats("de").date(day) == format_date(day, "medium", locale="de") == "01.07.2026"
    assert human_formats("de").datetime(moment) == "01.07.2026, 14:05"


def test_summary_figures_follow_the_current_locale() -> None:
    count = Column("enrollments", "Enrollments", ColumnType.INTEGER, description="All of them")
    share = Column("completionRate", "Completion rate", ColumnType.PERCENT)
    assert (count.figure(12345).text, share.figure(49.6).text) == ("12,345", "49.6%")
    with use_locale("de"):
        figure = count.figure(12345)
        assert (figure.text, share.figure(49.6).text) == ("12.345", "49,6\xa0%")
        assert (figure.label, share.figure(None).text) == ("Einschreibungen", "—")
        assert figure.definition == "All of them"  # a text the catalog does not know stays
    assert count.figure(12345).text == "12,345"


# -- the API ------------------------------------------------------------------------------------


async def test_an_unknown_locale_is_a_422_listing_the_supported_ones(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    headers = auth("admin")
    job = {"reportType": "learner-progress", "format": "csv", "locale": "fr"}
    template = {**job, "name": "T"}
    schedule = {**job, "name": "S", "frequency": "daily", "timeOfDay": "07:00"}
    for url, body in ((JOBS, job), (TEMPLATES, template), (SCHEDULES, schedule)):
        answer = await client.post(url, json=body, headers=headers)
        assert answer.status_code == 422, answer.text
        [error] = [e for e in answer.json()["errors"] if e["field"].endswith("locale")]
        assert error["field"] == "body.locale"
        assert error["allowed"] == ["en", "de"]
        assert "en, de" in error["message"]
    answer = await client.get(f"{METADATA}/lookups/enrollment-status?locale=fr", headers=headers)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["allowed"] == ["en", "de"]


async def test_a_job_stores_the_locale_it_resolved_to(
    client: httpx.AsyncClient, auth: TokenFactory, staff: dict[str, Any]
) -> None:
    manager = staff["manager"]
    headers = auth(
        "manager", sub=str(manager.id), name="Maria Manager", departments=[str(staff["a"].id)]
    )
    body = {"reportType": "learner-progress", "format": "csv", "parameters": {"dateRange": RANGE}}

    async def locale_of(**extra: Any) -> str:
        created = await client.post(JOBS, json={**body, **extra}, headers=headers)
        assert created.status_code == 202, created.text
        return str(created.json()["locale"])

    assert await locale_of() == "en"  # nothing chosen anywhere: the default
    await manager.set({"locale": "de"})
    assert await locale_of() == "de"  # the requester's profile
    assert await locale_of(locale="en") == "en"  # asked for
    template = await client.post(
        TEMPLATES, json={**body, "name": "Monatlich", "locale": "de"}, headers=headers
    )
    assert template.status_code == 201, template.text
    assert template.json()["locale"] == "de"
    await manager.set({"locale": None})
    run = await client.post(JOBS, json={"templateId": template.json()["id"]}, headers=headers)
    assert run.json()["locale"] == "de"  # the template's
    run = await client.post(
        JOBS, json={"templateId": template.json()["id"], "locale": "en"}, headers=headers
    )
    assert run.json()["locale"] == "en"
    # A CSV whose decimal separator is its delimiter could not be read back.
    clash = {**body, "locale": "de", "options": {"csvDelimiter": ","}}
    answer = await client.post(JOBS, json=clash, headers=headers)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body.options.csvDecimal"


async def test_metadata_in_the_asked_locale(client: httpx.AsyncClient, auth: TokenFactory) -> None:
    headers = auth("admin")
    german = await client.get(f"{METADATA}/lookups/enrollment-status?locale=de", headers=headers)
    assert german.headers["content-language"] == "de"
    labels = {v["code"]: v["label"] for v in german.json()}
    assert labels["in-progress"] == "In Bearbeitung"
    assert german.json()[0]["labels"]["de"] == labels[german.json()[0]["code"]]
    negotiated = await client.get(
        f"{METADATA}/lookups/enrollment-status",
        headers={**headers, "Accept-Language": "de-AT,de;q=0.9,en;q=0.5"},
    )
    assert {v["code"]: v["label"] for v in negotiated.json()} == labels
    english = await client.get(f"{METADATA}/lookups/enrollment-status", headers=headers)
    assert english.headers["content-language"] == "en"
    assert {v["code"]: v["label"] for v in english.json()}["in-progress"] == "In progress"
    detail = await client.get(
        f"{METADATA}/report-types/learner-progress?locale=de", headers=headers
    )
    assert detail.json()["name"] == "Lernfortschritt"
    columns = {c["key"]: c for c in detail.json()["columns"]}
    assert columns["learnerName"]["label"] == "Lernende(r)"
    assert columns["status"]["description"].startswith("Wo die Einschreibung steht: ")
    presets = await client.get(f"{METADATA}/date-range-presets?locale=de", headers=headers)
    assert {p["preset"]: p["label"] for p in presets.json()["items"]}["last-month"] == (
        "Letzter Monat"
    )


# -- a German job's files -----------------------------------------------------------------------


async def _file(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    run_worker: Any,
    report_type: str,
    fmt: str,
    locale: str | None = None,
    **options: Any,
) -> bytes:
    body: dict[str, Any] = {
        "reportType": report_type,
        "format": fmt,
        "parameters": {"dateRange": RANGE},
        "options": options,
    }
    if locale:
        body["locale"] = locale
    created = await client.post(JOBS, json=body, headers=headers)
    assert created.status_code == 202, created.text
    await run_worker()
    response = await client.get(f"{JOBS}/{created.json()['id']}/download", headers=headers)
    assert response.status_code == 200, response.text
    return response.content


def _number(text: str, decimal: str) -> float | str:
    try:
        return float(text.replace(decimal, ".")) if text else text
    except ValueError:
        return text


@pytest.mark.usefixtures("org")
async def test_a_german_csv_is_semicolon_separated_with_decimal_commas(
    client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any, tmp_path: Path
) -> None:
    headers = auth("admin")
    en = await _file(client, headers, run_worker, "learner-progress", "csv")
    de = await _file(client, headers, run_worker, "learner-progress", "csv", "de")
    en_rows = list(csv.reader(io.StringIO(en.decode())))
    de_rows = list(csv.reader(io.StringIO(de.decode()), delimiter=";"))
    assert en_rows[0][:3] == ["Learner", "Email", "Department"]  # en as it always was
    assert de_rows[0][:3] == ["Lernende(r)", "E-Mail", "Abteilung"]
    assert b";" not in en.split(b"\r\n")[0] and b"," not in de.split(b"\r\n")[0]
    progress = en_rows[0].index("Progress")
    assert any("." in row[progress] for row in en_rows[1:])
    assert any("," in row[progress] for row in de_rows[1:])  # 40,0
    # The same values once read back: numbers with their decimal separator, codes unchanged.
    assert len(de_rows) == len(en_rows) > 1
    for en_row, de_row in zip(en_rows[1:], de_rows[1:], strict=True):
        assert [_number(c, ".") for c in en_row] == [_number(c, ",") for c in de_row]
    assert "in-progress" in {c for row in de_rows for c in row}  # codes, as in every CSV
    # Asked for: the locale's separators give way to the job's options.
    custom = await _file(
        client, headers, run_worker, "learner-progress", "csv", "de", csvDelimiter="\t"
    )
    assert custom.split(b"\r\n")[0].count(b"\t") == len(de_rows[0]) - 1

    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        return  # LibreOffice is optional here; the parse above is the check that always runs
    source = tmp_path / "report.csv"
    source.write_bytes(de)
    await asyncio.to_thread(
        subprocess.run,
        [
            soffice,
            "--headless",
            "--infilter=CSV:59,34,76,1,,1031",  # `;`, `"`, UTF-8, German number recognition
            "--convert-to",
            "xlsx",
            "--outdir",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    sheet = openpyxl.load_workbook(tmp_path / "report.xlsx").worksheets[0]
    opened = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert opened[0][:3] == ["Lernende(r)", "E-Mail", "Abteilung"]
    assert any(isinstance(r[progress], int | float) for r in opened[1:])


@pytest.mark.usefixtures("org")
async def test_a_german_workbook_and_pdf(
    client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any
) -> None:
    headers = auth("admin")
    book = openpyxl.load_workbook(
        io.BytesIO(await _file(client, headers, run_worker, "learner-progress", "xlsx", "de"))
    )
    assert book.sheetnames == ["Daten", "Parameter", "Diagramme"]  # charts: docs/charts.md
    assert book["Diagramme"]["A1"].value == "Einschreibungen nach Status"
    data = [list(r) for r in book["Daten"].iter_rows(values_only=True)]
    assert data[-1][0] == "Gesamt"  # the totals row, below the rows
    data = data[:-1]
    assert data[0][:6] == ["Lernende(r)", "E-Mail", "Abteilung", "Kurscode", "Kurs", "Status"]
    assert {r[5] for r in data[1:]} == {"Abgeschlossen", "In Bearbeitung"}
    assert all(isinstance(r[6], int | float) for r in data[1:])  # cells stay typed
    assert book["Daten"].cell(2, 9).number_format == "dd.mm.yyyy hh:mm"
    parameters: dict[Any, Any] = {}
    for r in book["Parameter"].iter_rows(values_only=True):  # a figure's row, then its definition
        if r[0]:
            parameters.setdefault(r[0], r[1])
    assert {"Zeitzone", "Erstellt am", "Zeilen", "Zeitraum", "Abschlussquote"} <= set(parameters)
    assert parameters["Zeitraum"] == "01.01.2026 – 31.12.2026 (Benutzerdefiniert)"
    # A number (Excel shows it with the reader's own separators: "60,0 %").
    assert parameters["Abschlussquote"] == pytest.approx(0.6)

    pdf = await _file(client, headers, run_worker, "learner-progress", "pdf", "de")
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages).lower()  # headings: capitals
    for german in (
        "Lernfortschritt",
        "Parameter",
        "Zusammenfassung",
        "Definitionen",
        "Abschlussquote",
        "In Bearbeitung",
        "Zeitraum",
        "01.01.2026",
        "Seite 1 von",  # the charts and the totals row may push the table onto page 2
        "Nein",
        "Gesamt",
    ):
        assert german.lower() in text, german
    for english in ("Summary", "Completion rate", "In progress", "Page 1 of"):
        assert english.lower() not in text, english
    assert "40,0 %" in text.replace("\xa0", " ")


@pytest.mark.usefixtures("org")
async def test_english_files_keep_their_words_and_formats(
    client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any
) -> None:
    headers = auth("admin")
    text = "\n".join(
        page.extract_text()
        for page in PdfReader(
            io.BytesIO(await _file(client, headers, run_worker, "learner-progress", "pdf"))
        ).pages
    )
    lowered = text.lower()  # headings print in capitals
    for english in ("Learner progress", "Summary", "Completion rate", "In progress", "Page 1 of"):
        assert english.lower() in lowered, english
    assert "60.0%" in text and "2026-01-01" in text
    book = openpyxl.load_workbook(
        io.BytesIO(await _file(client, headers, run_worker, "learner-progress", "xlsx"))
    )
    assert book.sheetnames == ["Data", "Parameters", "Charts"]
    assert book["Data"].cell(2, 9).number_format == "yyyy-mm-dd hh:mm"


# -- e-mails ------------------------------------------------------------------------------------


async def test_each_recipient_reads_the_message_in_their_locale(
    delivery_resources: Resources, smtp_server: Mailbox
) -> None:
    res = delivery_resources
    job = (await completed_job(res)).model_copy(update={"locale": "de"})
    german_user = Recipient(user_id="u-1", address="ann@school.example", locale="de")
    english_user = Recipient(user_id="u-2", address="ben@school.example", locale="en")
    external = Recipient(address="bob@partner.example")  # no profile: the job's locale
    planned = plan_deliveries(
        job,
        DeliveryConfig(recipients=[german_user, english_user, external]),
        [],
        res.settings,
        report_name=lambda locale: translate(locale, "Learner progress"),
        figures={
            "de": [
                Figure("completionRate", "Abschlussquote", 73.5, ColumnType.PERCENT, locale="de")
            ],
            "en": [Figure("completionRate", "Completion rate", 73.5, ColumnType.PERCENT)],
        },
        now=NOW,
    )
    await repository.insert_many(planned)
    assert await send_due(res, worker_id="w1", now=NOW) == 3
    by_address = {m["To"]: m for m in smtp_server.messages()}
    for address in ("ann@school.example", "bob@partner.example"):
        message = by_address[address]
        assert message["Subject"] == "Bericht: Lernfortschritt"
        assert message["Content-Language"] == "de"
        text = _text(message)
        assert "Ihr Bericht „Lernfortschritt“ ist fertig." in text
        assert "Zeitraum: 01.11.2026 – 30.11.2026 (Europe/Berlin)" in text
        assert "Zeilen: 1" in text and "Abschlussquote: 73,5\xa0%" in text
        assert "Die Datei learner-progress.csv ist angehängt." in text
        assert "Bericht herunterladen" in _html(message)
    english = by_address["ben@school.example"]
    assert english["Subject"] == "Report: Learner progress"
    assert "Period: 2026-11-01 – 2026-11-30 (Europe/Berlin)" in _text(english)
    assert "Completion rate: 73.5%" in _text(english)


async def test_a_german_job_mails_its_german_summary(
    client: httpx.AsyncClient,
    auth: TokenFactory,
    run_worker: Any,
    staff: dict[str, Any],
    delivery_resources: Resources,
    smtp_server: Mailbox,
) -> None:
    manager = staff["manager"]
    headers = auth(
        "manager", sub=str(manager.id), name="Maria Manager", departments=[str(staff["a"].id)]
    )
    created = await client.post(
        JOBS,
        json={
            "reportType": "learner-progress",
            "format": "pdf",
            "locale": "de",
            "parameters": {"dateRange": RANGE, "timezone": "Europe/Berlin"},
            "notify": {"email": True},
        },
        headers=headers,
    )
    assert created.status_code == 202, created.text
    await run_worker()
    assert await send_due(delivery_resources, worker_id="w1") == 1
    [message] = smtp_server.messages()
    assert message["To"] == manager.email
    assert message["Subject"] == "Bericht: Lernfortschritt"
    text = _text(message)
    assert "Zeitraum: 01.01.2026 – 31.12.2026 (Europe/Berlin)" in text
    assert "Einschreibungen: 3" in text and "Abschlussquote: 100,0\xa0%" in text
    assert "Herunterladen: " in text


def _text(message: Any) -> str:
    return str(message.get_body(preferencelist=("plain",)).get_content())


def _html(message: Any) -> str:
    return str(message.get_body(preferencelist=("html",)).get_content())


async def test_a_schedule_run_keeps_its_locale_and_each_recipients(
    client: httpx.AsyncClient, auth: TokenFactory
) -> None:
    people = await delivery_people(auth)
    await people.ann.set({"locale": "en"})  # Ben has none: he reads the schedule's
    created = await client.post(
        SCHEDULES,
        json=schedule_body(locale="de", recipients=[str(people.ann.id), str(people.ben.id)]),
        headers=people.headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["locale"] == "de"
    run = await client.post(f"{SCHEDULES}/{created.json()['id']}/run-now", headers=people.headers)
    assert run.status_code == 202, run.text
    assert run.json()["locale"] == "de"
    job = await ReportJob.get(PydanticObjectId(run.json()["id"]))
    assert job is not None and job.delivery is not None
    assert [(r.address, r.locale) for r in job.delivery.recipients] == [
        ("ann@example.test", "en"),
        ("ben@example.test", None),
    ]
    retried = await client.post(f"{JOBS}/{job.id}/cancel", headers=people.headers)
    assert retried.status_code in (200, 202), retried.text
    again = await client.post(f"{JOBS}/{job.id}/retry", headers=people.headers)
    assert again.status_code == 202, again.text
    assert again.json()["locale"] == "de"  # a retry makes the same file


@pytest.mark.usefixtures("org")
async def test_german_rows_read_back_and_previews_keep_machine_values(
    client: httpx.AsyncClient, auth: TokenFactory, run_worker: Any
) -> None:
    """JSON answers are for programs: a German CSV's rows read back as the numbers they are,
    and a German preview has the locale's words but the values of every locale."""
    headers = auth("admin")
    pages = {}
    for fmt, locale in (("csv", "en"), ("csv", "de"), ("json", "de")):
        body = {
            "reportType": "learner-progress",
            "format": fmt,
            "parameters": {"dateRange": RANGE},
            "locale": locale,
        }
        created = await client.post(JOBS, json=body, headers=headers)
        assert created.status_code == 202, created.text
        await run_worker()
        page = await client.get(f"{JOBS}/{created.json()['id']}/rows", headers=headers)
        assert page.status_code == 200, page.text
        pages[fmt, locale] = page.json()
    english, german = pages["csv", "en"], pages["csv", "de"]
    assert german["rows"] == english["rows"] == pages["json", "de"]["rows"]
    assert any(isinstance(r["progressPercent"], float) for r in german["rows"])
    assert german["columns"][0]["label"] == "Lernende(r)"
    assert english["columns"][0]["label"] == "Learner"

    preview = {
        "reportType": "learner-progress",
        "format": "csv",
        "parameters": {"dateRange": RANGE},
    }
    en = await client.post("/api/v1/reports/preview", json=preview, headers=headers)
    de = await client.post(
        "/api/v1/reports/preview", json={**preview, "locale": "de"}, headers=headers
    )
    assert en.status_code == de.status_code == 200, de.text
    assert de.json()["rows"] == en.json()["rows"]  # codes, numbers, ISO dates
    assert de.json()["title"] == "Lernfortschritt"
    assert de.json()["columns"][0]["label"] == "Lernende(r)"
    figures = {f["label"]: f["value"] for f in de.json()["summary"]}
    assert (
        figures["Abschlussquote"]
        == {f["label"]: f["value"] for f in en.json()["summary"]}["Completion rate"]
    )
