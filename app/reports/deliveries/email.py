"""The e-mail channel: a multipart text + HTML message sent with aiosmtplib.

The Message-ID is `<delivery id@sender's domain>` on every attempt, so a mailbox (or a person)
can tell a resend after a crash from a new message. A message that cannot be built (a recipient
that is not one plain address, a header with a line break) raises `MessageRefused`: trying again
would not change it, so the sender fails the delivery at once with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from email.errors import MessageError
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr

import aiosmtplib
from babel import Locale
from babel.dates import format_date, format_time

from app.common.time import as_utc, utcnow, zone
from app.config import Settings
from app.i18n import LOCALES, human_formats, translate
from app.reports.deliveries.addresses import AddressRefused, normalize_address
from app.reports.deliveries.change_text import change_lines
from app.reports.deliveries.mail_body import MailBody, html_part, text_part
from app.reports.deliveries.models import DeliveryContent, DeliveryKind, ReportDelivery
from app.reports.deliveries.unsubscribe_links import unsubscribe_url


class MessageRefused(ValueError):
    """The message cannot be built as it stands: a permanent failure, not a retry."""


@dataclass(frozen=True)
class Attachment:
    """What is attached to a message: the bytes, the name they go by, their type (the
    report's file as stored, or that file zipped: app/reports/deliveries/zipping.py)."""

    data: bytes
    file_name: str
    content_type: str


@dataclass(frozen=True)
class SmtpOutcome:
    ok: bool
    permanent: bool = False
    provider_message_id: str | None = None
    error: str | None = None


def alert_subject(content: DeliveryContent, locale: str) -> str:
    """The subject of a message an alert sent: `Alert: …` or `Back to normal: …`."""
    if content.alert is not None and content.alert.state == "recovered":
        return translate(locale, "Back to normal: {report}").format(report=content.report_name)
    return translate(locale, "Alert: {report}").format(report=content.report_name)


def alert_lines(content: DeliveryContent, locale: str) -> list[str]:
    """Why the message was sent: the alert's state and each condition as measured."""
    assert content.alert is not None
    if content.alert.state == "recovered":
        head = translate(locale, "Back to normal: the alert's conditions no longer hold.")
    else:
        head = translate(locale, "Alert: the schedule's conditions are met.")
    return [head, *(f"- {line}" for line in content.alert.lines), ""]


def message_id(settings: Settings, delivery: ReportDelivery) -> str:
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "report-system.local"
    return f"<{delivery.idempotency_id}@{domain}>"


def _locale(content: DeliveryContent) -> str:
    return content.locale if content.locale in LOCALES else "en"


def _local(value: datetime, tz: str, locale: str) -> str:
    formats = human_formats(locale)
    try:
        return formats.datetime(as_utc(value).astimezone(zone(tz)))
    except ValueError:
        return f"{formats.datetime(as_utc(value))} UTC"


def _day(value: str, locale: str) -> str:
    try:
        return human_formats(locale).date(date.fromisoformat(value))
    except ValueError:
        return value


def period_text(content: DeliveryContent) -> str | None:
    """The period as the file states it (first – last day, both included, local dates)."""
    locale = _locale(content)
    if content.period_first_day and content.period_last_day:
        first = _day(content.period_first_day, locale)
        last = _day(content.period_last_day, locale)
        return f"{first} – {last} ({content.timezone})"
    if content.period_start is None or content.period_end is None:
        return None
    start = _local(content.period_start, content.timezone, locale)
    end = _local(content.period_end, content.timezone, locale)
    return translate(locale, "{start} to {end} ({timezone})").format(
        start=start, end=end, timezone=content.timezone
    )


def _size(n: int, locale: str) -> str:
    formats = human_formats(locale)
    if n >= 1_048_576:
        return f"{formats.decimal(n / 1_048_576, 1)} MB"
    return f"{formats.integer(max(1, round(n / 1024)))} KB"


def build_message(
    settings: Settings,
    delivery: ReportDelivery,
    *,
    link: str | None,
    attachment: Attachment | None,
) -> EmailMessage:
    """The message to the delivery's one recipient; MessageRefused when it cannot be built."""
    try:
        to = normalize_address(delivery.recipient.address or "")
    except AddressRefused as exc:
        raise MessageRefused(f"recipient refused: {exc}") from None
    try:
        return _build(settings, delivery, to, link=link, attachment=attachment)
    except (ValueError, MessageError) as exc:  # e.g. a line break in a header
        raise MessageRefused(f"the message cannot be built: {exc}") from None


def _build(
    settings: Settings,
    delivery: ReportDelivery,
    to: str,
    *,
    link: str | None,
    attachment: Attachment | None,
) -> EmailMessage:
    content = delivery.content
    locale = _locale(content)

    def t(message: str, **values: object) -> str:
        return translate(locale, message).format(**values)

    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = message_id(settings, delivery)
    msg["X-Report-Delivery-Id"] = delivery.idempotency_id
    body = mail_body(settings, delivery, link=link, attachment=attachment)
    if delivery.kind == DeliveryKind.NOTICE:
        msg["Subject"] = content.subject or content.report_name
    elif content.alert is not None:  # sent because an alert fired or recovered: said first
        msg["Subject"] = alert_subject(content, locale)
        said = [*alert_lines(content, locale), *change_lines(content)]
        if content.changes is not None:  # the change lines, then a blank line as below
            said.append("")
        body.intro = "\n".join([*said, body.intro])
    elif content.changes is not None:  # a change report: what changed, said first
        msg["Subject"] = t("Changes: {report}", report=content.report_name)
        body.intro = "\n".join([*change_lines(content), "", body.intro])
    else:
        msg["Subject"] = t("Report: {report}", report=content.report_name)
    if body.unsubscribe_url:  # RFC 2369 and RFC 8058: one-click, by a POST without a login
        msg["List-Unsubscribe"] = f"<{body.unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(text_part(body))
    msg.add_alternative(html_part(body), subtype="html")
    if attachment is not None:
        maintype, _, subtype = attachment.content_type.partition("/")
        subtype = subtype.split(";")[0].strip() or "octet-stream"
        msg.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.file_name
        )
    msg["Content-Language"] = locale  # last: setting the content clears Content-* headers
    return msg


def expiry_text(value: datetime, tz: str, locale: str) -> str:
    """When a link stops working, as its reader says it: a long date and a short time in their
    timezone (Babel's CLDR patterns for the locale), with the timezone named."""
    try:
        local = as_utc(value).astimezone(zone(tz))
    except ValueError:
        local, tz = as_utc(value), "UTC"
    place = Locale.parse(locale)
    day = format_date(local.date(), format="long", locale=place)
    clock = format_time(local.time(), format="short", locale=place)
    return f"{day}, {clock} ({tz})"


def mail_body(
    settings: Settings,
    delivery: ReportDelivery,
    *,
    link: str | None,
    attachment: Attachment | None,
) -> MailBody:
    """What the message says, in its recipient's locale (text and HTML are made from it)."""
    content = delivery.content
    locale = _locale(content)

    def t(message: str, **values: object) -> str:
        return translate(locale, message).format(**values)

    unsubscribe = unsubscribe_url(settings, delivery)
    body = MailBody(
        lang=locale,
        title=content.report_name,
        intro="",
        unsubscribe_url=unsubscribe,
        unsubscribe_text=t(
            "You receive this because you are a recipient of the scheduled report {report!r}. "
            "To stop receiving it:",
            report=content.report_name,
        ),
        unsubscribe_button=t("Unsubscribe"),
    )
    if delivery.kind == DeliveryKind.NOTICE:
        body.title = content.subject or content.report_name
        body.intro = content.text or ""
        return body
    body.intro = t("Your report {report!r} is ready.", report=content.report_name)
    period = period_text(content)
    if period:
        body.facts.append((t("Period"), period))
    if content.row_count is not None:
        body.facts.append((t("Rows"), human_formats(locale).integer(content.row_count)))
    body.parameters_heading = t("Filters:")
    body.parameters = [(p.label, p.value) for p in content.parameters]
    body.figures_heading = t("Summary")
    body.figures = [(f.label, f.value) for f in content.figures]
    body.definitions_heading = t("What these figures mean:")
    body.definitions = [(f.label, f.definition) for f in content.figures if f.definition]
    if attachment is not None:
        body.file_note = t("The file {file} is attached.", file=attachment.file_name)
    elif content.size_bytes is not None and delivery.mode != "link":
        body.file_note = t(
            "The file ({size}) is too large to attach: download it with the link below.",
            size=_size(content.size_bytes, locale),
        )
    if link:
        body.link = link
        body.link_text = t("Download: {link}", link=link)
        body.link_button = t("Download the report")
        body.expiry = t("The link is for you only and expires; do not forward it.")
        if delivery.link_expires_at is not None:
            body.expiry = t(
                "The link is for you only and works until {date}; do not forward it.",
                date=expiry_text(delivery.link_expires_at, content.timezone, locale),
            )
    return body


def _sender(settings: Settings) -> str:
    return parseaddr(settings.mail_from)[1]


async def send_message(settings: Settings, msg: EmailMessage) -> SmtpOutcome:
    """Sends one message; a refusal of every recipient or a 5xx reply to the data is
    permanent, anything else (server down, 4xx, timeout) is worth another attempt."""
    recipients = [addr for _, addr in getaddresses(msg.get_all("To", []))]
    if len(recipients) != 1:
        return SmtpOutcome(
            ok=False, permanent=True, error=f"a message has one recipient, not {len(recipients)}"
        )
    try:
        errors, response = await aiosmtplib.send(
            msg,
            sender=_sender(settings),
            recipients=recipients,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            use_tls=settings.smtp_tls,
            start_tls=settings.smtp_starttls,
            username=settings.smtp_username or None,
            password=settings.smtp_password or None,
            timeout=settings.smtp_timeout_seconds,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        permanent = all(r.code >= 500 for r in exc.recipients)
        reason = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        return SmtpOutcome(ok=False, permanent=permanent, error=f"recipient refused: {reason}")
    except aiosmtplib.SMTPAuthenticationError as exc:
        return SmtpOutcome(ok=False, error=f"SMTP authentication failed: {exc.code} {exc.message}")
    except aiosmtplib.SMTPResponseException as exc:
        return SmtpOutcome(
            ok=False, permanent=exc.code >= 500, error=f"SMTP {exc.code}: {exc.message}"[:300]
        )
    except (aiosmtplib.SMTPTimeoutError, TimeoutError):
        return SmtpOutcome(ok=False, error="the SMTP server did not answer in time")
    except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, OSError) as exc:
        return SmtpOutcome(
            ok=False, error=f"SMTP server unreachable: {type(exc).__name__}: {exc}"[:300]
        )
    except aiosmtplib.SMTPException as exc:
        return SmtpOutcome(ok=False, error=f"SMTP error: {type(exc).__name__}: {exc}"[:300])
    if errors:  # some recipients refused (there is only one per message)
        reason = "; ".join(f"{code} {text}" for code, text in errors.values())
        return SmtpOutcome(ok=False, permanent=True, error=f"recipient refused: {reason}")
    return SmtpOutcome(ok=True, provider_message_id=response[:200])
