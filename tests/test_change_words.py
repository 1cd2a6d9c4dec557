"""A schedule's alert and change lines in each recipient's language, on real servers: the same
run mails a German recipient German condition lines, counts and change lines (numbers, dates and
coded values as German reads them) and an English one English; `/metrics` counts each committed
change evaluation once, by outcome."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.runtime.resources import Resources
from tests.helpers.api import api_client
from tests.helpers.deliveries import (
    Mailbox,
    completed_run,
    delivery_people,
    mandatory_enrollments,
    set_compliance_rate,
)
from tests.helpers.tokens import TokenFactory

SCHEDULES = "/api/v1/reports/schedules"
WEEK = timedelta(days=7)  # the learners were due a week ago


def _text(message: Any) -> str:
    return str(message.get_body(preferencelist=("plain",)).get_content())


async def _evaluations(api: httpx.AsyncClient) -> dict[str, float]:
    """`report_change_evaluations_total` for compliance-status, by outcome, as /metrics says."""
    text = (await api.get("/metrics")).text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "report_change_evaluations_total"
                and sample.labels.get("report_type") == "compliance-status"
            ):
                found[sample.labels["outcome"]] = sample.value
    return found


def _grew(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


async def test_a_german_recipient_reads_the_alert_and_the_changes_in_german(
    delivery_resources: Resources, auth: TokenFactory, smtp_server: Mailbox, run_worker: Any
) -> None:
    people = await delivery_people(auth)
    await people.ann.set({"locale": "de"})  # Ben reads English (no locale: the schedule's)
    enrollments = await mandatory_enrollments([f"Learner {n}" for n in range(10)], due_in=-WEEK)
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as api:
        created = await api.post(
            SCHEDULES,
            json={
                "name": "Mandatory training",
                "reportType": "compliance-status",
                "format": "csv",
                "parameters": {},
                "frequency": "daily",
                "timeOfDay": "05:00",
                "timezone": "UTC",
                "recipients": [str(people.ann.id), str(people.ben.id)],
                "alert": {
                    "conditions": [{"metric": "complianceRate", "op": "<", "value": 80}],
                    "notifyRecovery": True,
                },
                "changes": {"mode": "both", "unchanged": "notice"},
            },
            headers=people.headers,
        )
        assert created.status_code == 201, created.text
        schedule_id = created.json()["id"]
        counted = await _evaluations(api)

        # 1st run: 50 % fires; the first run of the change report is its baseline.
        await set_compliance_rate(enrollments, 5)
        await completed_run(api, schedule_id, people.headers, run_worker, delivery_resources)
        mails = {m["To"]: m for m in smtp_server.messages()}
        german, english = mails["ann@example.test"], mails["ben@example.test"]
        assert german["Subject"] == "Warnung: Mandatory training"
        assert german["Content-Language"] == "de"
        text = _text(german)
        assert "- Compliance-Quote: 50 % < 80 %: erfüllt" in text
        assert (
            "Erster Lauf: 10 Einschreibungen bilden die Ausgangsbasis; die nächsten Läufe "
            "melden, was sich seitdem geändert hat." in text
        )
        assert english["Subject"] == "Alert: Mandatory training"
        assert "- Compliance rate: 50 % < 80 %: met" in _text(english)
        assert "First run: 10 enrollments form the baseline" in _text(english)
        assert _grew(counted, after := await _evaluations(api)) == {"first-run": 1.0}

        # 2nd run: 90 % recovers ("back to normal" is asked for); four learners completed.
        smtp_server.clear()
        await set_compliance_rate(enrollments, 9)
        run = await completed_run(api, schedule_id, people.headers, run_worker, delivery_resources)
        mails = {m["To"]: m for m in smtp_server.messages()}
        german, english = mails["ann@example.test"], mails["ben@example.test"]
        assert german["Subject"] == "Wieder im Normalbereich: Mandatory training"
        text = _text(german)
        assert "- Compliance-Quote: 90 % < 80 %: nicht erfüllt" in text
        [heading] = [line for line in text.splitlines() if line.startswith("Änderungen seit ")]
        assert heading.endswith(" UTC: 4 abgeschlossen"), heading
        day = heading.removeprefix("Änderungen seit ").split(",")[0]  # 04.12.2026
        assert len(day) == 10 and day[2] == day[5] == ".", heading
        assert (
            "- Learner 5 · SAF-1: Status In Bearbeitung → Abgeschlossen; "
            "Compliance Überfällig → Konform" in text
        )
        assert english["Subject"] == "Back to normal: Mandatory training"
        english_text = _text(english)
        assert "- Compliance rate: 90 % < 80 %: not met" in english_text
        assert (
            "- Learner 5 · SAF-1: Status in-progress → completed; Compliance overdue → compliant"
            in (english_text)
        )
        assert any(
            line.startswith("Changes since ") and line.endswith(" UTC: 4 completed")
            for line in english_text.splitlines()
        )
        # The run's record keeps the English words (the API's language).
        assert run["evaluation"]["changes"]["summary"] == "4 completed"
        assert _grew(after, after := await _evaluations(api)) == {"changed": 1.0}

        # 3rd run: nothing changed and the alert is not met: no message, counted unchanged.
        smtp_server.clear()
        await completed_run(api, schedule_id, people.headers, run_worker, delivery_resources)
        assert smtp_server.messages() == []
        assert _grew(after, await _evaluations(api)) == {"unchanged": 1.0}


async def test_an_unchanged_notice_is_in_the_recipients_language(
    delivery_resources: Resources, auth: TokenFactory, smtp_server: Mailbox, run_worker: Any
) -> None:
    people = await delivery_people(auth)
    await people.ann.set({"locale": "de"})
    await mandatory_enrollments([f"Learner {n}" for n in range(3)], due_in=-WEEK)
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as api:
        created = await api.post(
            SCHEDULES,
            json={
                "name": "Mandatory training",
                "reportType": "compliance-status",
                "format": "csv",
                "parameters": {},
                "frequency": "daily",
                "timeOfDay": "05:00",
                "timezone": "UTC",
                "recipients": [str(people.ann.id)],
                "changes": {"mode": "changes", "unchanged": "notice"},
            },
            headers=people.headers,
        )
        assert created.status_code == 201, created.text
        schedule_id = created.json()["id"]
        for _ in range(2):
            await completed_run(api, schedule_id, people.headers, run_worker, delivery_resources)
    first, notice = smtp_server.messages()
    assert first["Subject"] == "Änderungen: Mandatory training"
    assert "Erster Lauf: 3 Einschreibungen bilden die Ausgangsbasis" in _text(first)
    assert notice["Subject"] == "Mandatory training: keine Änderungen"
    assert "seit " in _text(notice) and "hat sich nichts geändert" in _text(notice)
    assert not list(notice.iter_attachments())
