"""What an e-mail recipient may look like: exactly one plain address, nothing a mail relay could
read as a route to somewhere else.

`normalize_address` is the one syntax check of every address mail goes to: when a schedule's
recipients or a job's `notify` are saved (`recipients.admissible_address` adds the domain rule)
and again when the message is built. Refused, with the reason:

- control characters of any kind (CR / LF would start a new header: `Bcc:` injection);
- more than one address (`a@x, b@y`, `a@x; b@y`), display names, comments and angle brackets
  (`Eve <eve@x>`, `eve@x (y)`): the address is the whole value;
- quoted local parts (`"a@evil"@x`) and backslashes;
- routing syntax that relays still honour: the percent hack (`x%evil.example@demo.example`),
  bang paths (`evil.example!x@demo.example`) and source routes (`@a,@b:x@y`): their domain
  looks like ours but the message goes elsewhere;
- anything `email_validator` refuses: IP literals after the `@` (`x@[127.0.0.1]`) and
  special-use domains (`x@localhost`, `.local`, `.onion`, `.invalid`, `.arpa`) included.
"""

from __future__ import annotations

import unicodedata
from email.utils import getaddresses

from email_validator import EmailNotValidError, validate_email

MAX_LENGTH = 254  # RFC 5321's limit for a path, less the angle brackets


class AddressRefused(ValueError):
    """Why an address may not receive mail; `code` is the 422's field error type."""

    def __init__(self, message: str, code: str = "unsafe-address") -> None:
        super().__init__(message)
        self.code = code


def _control(value: str) -> bool:
    # Cc: C0/C1 controls (CR, LF, NUL, TAB); Cf: invisible format characters (bidi overrides);
    # Zl / Zp: the Unicode line and paragraph separators.
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value)


def _shape_refusal(value: str) -> str | None:
    """Why `value` is refused although a lenient parser would take it, or None."""
    if _control(value):
        return "control characters (line breaks included) are not allowed in an address"
    if value.startswith("@") or ":" in value:
        return "source routes (`@relay:user@domain`) and groups (`name: a@x;`) are not allowed"
    if "," in value or ";" in value:
        return "exactly one address is allowed, not a list"
    if any(ch in value for ch in "<>()"):
        return "display names, comments and angle brackets are not allowed: give the address only"
    if '"' in value or "\\" in value:
        return "quoted local parts and backslashes are not allowed"
    if "%" in value:
        return "`%` routes mail through another domain (the percent hack) and is not allowed"
    if "!" in value:
        return "`!` routes mail through another host (a bang path) and is not allowed"
    return None


def normalize_address(value: str) -> str:
    """`value` as one plain address, normalised (the domain lower-cased, Unicode normalised);
    AddressRefused otherwise. Surrounding spaces are ignored, nothing else is."""
    value = value.strip(" ")
    if not value or len(value) > MAX_LENGTH:
        raise AddressRefused(f"an address has 1 to {MAX_LENGTH} characters", "invalid")
    reason = _shape_refusal(value)
    if reason:
        raise AddressRefused(f"{value!r}: {reason}")
    if value.count("@") != 1 or any(ch.isspace() for ch in value):
        raise AddressRefused(f"{value!r} is not an e-mail address (one @, no spaces)", "invalid")
    if getaddresses([value]) != [("", value)]:  # how the mail libraries read a To header
        raise AddressRefused(f"{value!r}: mail software reads it as something other than it")
    try:
        # `test_environment`: `.test` (RFC 2606, never delivered on the Internet) is allowed;
        # the other special-use names (`localhost`, `local`, `onion`, `invalid`, `arpa`) are not.
        checked = validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise AddressRefused(f"{value!r} is not a valid e-mail address: {exc}", "invalid") from None
    return str(checked.normalized)


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[1].lower()
