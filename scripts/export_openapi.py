"""Writes the API contract: `openapi.json` at the repo root (and the Postman collection
generated from it, and docs/errors.md from the error-code registry).

    python -m scripts.export_openapi [--check]

`--check` exits 1 when the committed files differ from what the app serves."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.config import Settings
from app.main import create_app
from scripts.error_docs import render as render_error_codes
from scripts.postman import build_collection

ROOT = Path(__file__).resolve().parents[1]
OPENAPI = ROOT / "openapi.json"
POSTMAN = ROOT / "docs" / "postman_collection.json"
ERRORS_DOC = ROOT / "docs" / "errors.md"


def current_openapi() -> dict[str, Any]:
    schema: dict[str, Any] = create_app(Settings()).openapi()
    return schema


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def outputs() -> dict[Path, str]:
    schema = current_openapi()
    files = {OPENAPI: render(schema)}
    files[POSTMAN] = render(build_collection(schema))
    files[ERRORS_DOC] = render_error_codes()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.relative_to(ROOT).as_posix())
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"out of date: {', '.join(stale)} (run `make openapi`)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
