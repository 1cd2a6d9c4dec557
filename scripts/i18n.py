"""The message catalogs (app/i18n/locale): `make i18n` extracts the marked texts of the service
into messages.pot with pybabel (babel.cfg) and merges them into every locale's .po file.

    .venv/bin/python -m scripts.i18n              # extract + update (make i18n)
    .venv/bin/python -m scripts.i18n init fr      # start the catalog of a new locale
    .venv/bin/python -m scripts.i18n check        # exit 1 when a catalog is stale or incomplete

The catalogs carry no source locations and are sorted by message, so moving code around
changes nothing and two branches adding texts merge line by line. `check` is what the tests
run (tests/test_i18n.py): messages.pot equals a fresh extraction, and every locale's .po
translates every message (none fuzzy, the same `{placeholders}`).
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from app.i18n import DEFAULT_LOCALE, supported_locales
from app.i18n.catalogs import CATALOG_DIR, DOMAIN, po_path

ROOT = Path(__file__).resolve().parents[1]
POT = CATALOG_DIR / f"{DOMAIN}.pot"
# Besides pybabel's defaults (_, gettext, ngettext, N_, ...): the functions that translate a
# literal text of theirs (argument positions; two numbers are singular and plural).
KEYWORDS = ("translate:2", "translate_plural:2,3", "_tr:2", "_t", "t")
_PLACEHOLDER = re.compile(r"\{(\w*)[^{}]*\}")  # a placeholder's name (conversions may differ)


def _pybabel(*args: str) -> None:
    CommandLineInterface().run(["pybabel", "-q", *args])  # type: ignore[no-untyped-call]


def extract(output: Path = POT) -> None:
    keywords = [arg for k in KEYWORDS for arg in ("-k", k)]
    _pybabel(
        "extract",
        "-F",
        str(ROOT / "babel.cfg"),
        *keywords,
        "--no-location",
        "--sort-output",
        "--width=100",
        "--project=report-system",
        "--copyright-holder=report-system",
        "-o",
        str(output),
        str(ROOT),
    )


def update() -> None:
    for locale in supported_locales():
        if locale != DEFAULT_LOCALE and po_path(locale).exists():
            _pybabel(
                "update",
                "-i",
                str(POT),
                "-d",
                str(CATALOG_DIR),
                "-D",
                DOMAIN,
                "-l",
                locale,
                "--no-fuzzy-matching",
                "--ignore-obsolete",
                "--width=100",
            )


def init(locale: str) -> None:
    _pybabel(
        "init", "-i", str(POT), "-d", str(CATALOG_DIR), "-D", DOMAIN, "-l", locale, "--width=100"
    )


def _read(path: Path) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh)


MessageId = str | tuple[str, ...]


def _ids(catalog: Catalog) -> set[MessageId]:
    return {
        message.id if isinstance(message.id, str) else tuple(message.id)
        for message in catalog
        if message.id
    }


def problems() -> list[str]:
    """What is stale or missing in the catalogs (empty: all good)."""
    found: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "messages.pot"
        extract(fresh)
        extracted, committed = _ids(_read(fresh)), _ids(_read(POT))
    if extracted != committed:
        added = sorted(map(str, extracted - committed))[:10]
        gone = sorted(map(str, committed - extracted))[:10]
        found.append(f"messages.pot is stale (run make i18n): new {added}, gone {gone}")
    for locale in supported_locales():
        if locale == DEFAULT_LOCALE:
            continue
        path = po_path(locale)
        if not path.exists():
            found.append(f"{locale}: no catalog at {path.relative_to(ROOT)}")
            continue
        catalog = _read(path)
        messages = {m.id if isinstance(m.id, str) else tuple(m.id): m for m in catalog if m.id}
        for msgid in sorted(extracted, key=str):
            message = messages.get(msgid)
            raw = message.string if message is not None else None
            strings = [str(s) for s in raw if s] if isinstance(raw, tuple | list) else []
            if isinstance(raw, str) and raw:
                strings = [raw]
            if message is None or not strings:
                found.append(f"{locale}: {msgid!r} is not translated")
            elif message.fuzzy:
                found.append(f"{locale}: {msgid!r} is fuzzy")
            else:
                source = msgid if isinstance(msgid, str) else str(msgid[-1])
                wanted = set(_PLACEHOLDER.findall(source))
                for text in strings:
                    if set(_PLACEHOLDER.findall(text)) != wanted:
                        found.append(f"{locale}: {msgid!r} has other placeholders: {text!r}")
    return found


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "update"
    if command == "init" and len(argv) == 2:
        extract()
        init(argv[1])
        return 0
    if command == "check":
        found = problems()
        for line in found:
            print(line)
        return 1 if found else 0
    if command == "update":
        extract()
        update()
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
