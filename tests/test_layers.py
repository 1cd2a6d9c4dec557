"""Dependencies between the report packages point one way, so no import has to hide inside a
function to dodge a cycle: data modules (models, repositories, schemas, the doorbell) know no
rules; the request road knows only data; below the routers, jobs know neither templates nor
schedules and templates do not know schedules. Routers compose services of any package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "app" / "reports"
PACKAGES = ("jobs", "templates", "schedules")  # each may use the ones before it
DATA = {"models", "repository", "schemas", "dispatch", "recurrence"}


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _layer(module: str) -> int:
    """0 data, 1 the request road, 2 services, 3 routers."""
    if module == "app.reports.jobs.requests":
        return 1
    name = module.rsplit(".", 1)[-1]
    if name in DATA or name == "__init__":
        return 0
    return 3 if name == "router" else 2


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 3 and parts[2] in PACKAGES else None


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every `app.reports.*` module imported, anywhere in the file, with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                is_module = (
                    (REPORTS.parent.parent / Path(*candidate.split(".")))
                    .with_suffix(".py")
                    .exists()
                )
                found.append((node.lineno, candidate if is_module else base))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return [(line, m) for line, m in found if m.startswith("app.reports.")]


FILES = [REPORTS / "requests.py"] + [
    path for package in PACKAGES for path in sorted((REPORTS / package).glob("*.py"))
]


@pytest.mark.parametrize("path", FILES, ids=lambda p: _module(p))
def test_report_modules_depend_one_way(path: Path) -> None:
    me = _module(path)
    for line, target in _imports(path):
        if _package(target) is None and target != "app.reports.jobs.requests":
            continue  # report types, rendering, execution: outside this picture
        where = f"{me}:{line} imports {target}"
        assert _layer(target) <= _layer(me), f"{where}: a lower layer uses a higher one"
        if _layer(me) == 1:
            assert _layer(target) == 0, f"{where}: the road uses data modules only"
        mine, theirs = _package(me), _package(target)
        if _layer(me) < 3 and mine and theirs:
            assert PACKAGES.index(theirs) <= PACKAGES.index(mine), f"{where}: against the order"
