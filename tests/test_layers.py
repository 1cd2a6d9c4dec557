"""The layering of docs/architecture.md, asserted over every module of `app/` and `worker/`.

Each part of the service has a layer; a module imports only parts on its own layer or below.
The few imports that run upwards are listed in `ALLOWED_UPWARD` by name, each with its reason:
a new one fails here until it is either removed or argued for in that list (and in the doc).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400

# Lowest first. A part is a top-level module or package of `app/` (or of `app/reports/`).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("app.errors", "app.error_codes"),
    ("app.config", "app.common", "app.i18n"),
    ("app.platform", "app.storage", "app.queue", "app.db", "app.observability"),
    ("app.security",),
    ("app.audit",),
    ("app.runtime", "app.deps", "app.error_handlers"),
    ("app.lookups",),
    ("app.learning_events", "app.reports.dates"),
    ("app.reports.rendering",),
    ("app.reports.reading", "app.reports.formats"),
    ("app.reports.types",),
    ("app.reports.jobs",),
    ("app.reports.deliveries",),
    ("app.reports.templates",),
    ("app.reports.schedules", "app.reports.previews"),
    ("app.reports.metadata", "app.reports.execution"),
    ("app.reports.tasks", "app.health"),
    ("app.contract", "app.apidocs", "app.documents", "app.lookup_sources"),
    ("app.main", "app.__main__"),
    ("worker",),
)

# (importing module or package, imported module or package): why it may point upwards.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {
    (
        "app.reports.jobs.router",
        "app.reports.templates",
    ): "POST /jobs {templateId} runs a template: the one job endpoint answers both bodies",
    (
        "app.reports.jobs.router",
        "app.reports.deliveries",
    ): "POST /jobs with notify / webhookUrl plans an on-demand delivery of the job it creates",
    (
        "app.reports.templates.router",
        "app.reports.schedules",
    ): "deleting a template asks the schedules whether an active one still uses it (409)",
    (
        "app.reports.jobs",
        "app.reports.deliveries.models",
    ): "a job stores the delivery plan it carries (DeliveryConfig), a data type of deliveries",
    (
        "app.reports.deliveries.router",
        "app.reports.schedules",
    ): "deleting a webhook endpoint asks the schedules whether one still calls it (409)",
    (
        "app.audit.service",
        "app.reports.jobs.models",
    ): "an audit event of a job names its report type and owner, read from the job document",
}

# Function-level imports allowed (module, imported): each keeps a heavy library out of a
# process that does not use it.
FUNCTION_LEVEL_IMPORTS: dict[tuple[str, str], str] = {
    ("app.reports.rendering.pdf.processes", "weasyprint"): "loaded in render processes only",
    ("app.reports.rendering.pdf.processes", "app"): "the join (pikepdf): render processes only",
    ("app.reports.rendering.pdf.charts", "vl_convert"): "draws charts in render processes only",
    ("app.storage", "app"): "the S3 backend (aioboto3, ~20 MB) only when STORAGE_BACKEND=s3",
}


def _modules() -> Iterator[tuple[str, Path]]:
    for base in ("app", "worker"):
        for path in sorted((ROOT / base).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join(parts), path


MODULES = dict(_modules())


def _part(module: str) -> str | None:
    """The layered part a module belongs to (the longest prefix named in LAYERS)."""
    best = None
    for layer in LAYERS:
        for part in layer:
            if (module == part or module.startswith(part + ".")) and (
                best is None or len(part) > len(best)
            ):
                best = part
    return best


LEVEL = {part: i for i, layer in enumerate(LAYERS) for part in layer}


def _resolve(node: ast.ImportFrom | ast.Import) -> list[str]:
    """The modules an import statement reads (a name imported from a package that is itself a
    module counts as that module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    found = []
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        found.append(candidate if candidate in MODULES else base)
    return found


def _type_checking_only(tree: ast.Module) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            ids.update(id(n) for child in node.body for n in ast.walk(child))
    return ids


def _imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, imported module, inside a function) for every import of `app` / `worker` code
    (and every function-level import of anything), TYPE_CHECKING blocks left out."""
    tree = ast.parse(path.read_text())
    hidden = _type_checking_only(tree)
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function.update(id(n) for n in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in hidden:
            inner = id(node) in in_function
            for target in _resolve(node):
                if inner or target.split(".")[0] in ("app", "worker"):
                    found.append((node.lineno, target, inner))
    return found


def _allowed(me: str, target: str) -> bool:
    return any(
        (me == src or me.startswith(src + ".")) and (target == dst or target.startswith(dst + "."))
        for src, dst in ALLOWED_UPWARD
    )


def test_every_module_has_a_layer() -> None:
    missing = [m for m in MODULES if _part(m) is None and m not in ("app", "app.reports")]
    assert not missing, f"give these a layer in LAYERS (and docs/architecture.md): {missing}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_or_are_listed(module: str) -> None:
    mine = _part(module)
    for line, target, _ in _imports(MODULES[module]):
        theirs = _part(target)
        if mine is None or theirs is None or target.split(".")[0] not in ("app", "worker"):
            continue
        if LEVEL[theirs] > LEVEL[mine]:
            assert _allowed(module, target), (
                f"{module}:{line} imports {target}: {theirs} sits above {mine} "
                "(move the code, or list the import with its reason in ALLOWED_UPWARD)"
            )


def test_every_listed_exception_is_still_needed() -> None:
    used = {
        (src, dst)
        for module in MODULES
        for _, target, _ in _imports(MODULES[module])
        for src, dst in ALLOWED_UPWARD
        if (module == src or module.startswith(src + "."))
        and (target == dst or target.startswith(dst + "."))
    }
    assert set(ALLOWED_UPWARD) == used, f"no longer needed: {set(ALLOWED_UPWARD) - used}"


def test_renderers_are_pure_and_low_layers_name_no_report_package() -> None:
    for module, path in MODULES.items():
        targets = [t for _, t, _ in _imports(path) if t.startswith("app.")]
        if module.startswith("app.reports.rendering"):
            # app.common names no domain (the render processes' guard lives there); the locale
            # machinery is pure too: a renderer formats with its context's locale.
            outside = [
                t
                for t in targets
                if not t.startswith(("app.reports.rendering", "app.common", "app.i18n"))
            ]
            assert not outside, f"{module} (a renderer) imports {outside}"
        if module.startswith(("app.lookups", "app.runtime", "app.db", "app.common")):
            reports = [t for t in targets if t.startswith("app.reports")]
            assert not reports, f"{module} imports report packages: {reports}"
        if module.startswith(("app.reports.types", "app.reports.reading")):
            runs = [
                t
                for t in targets
                if t.startswith(("app.reports.jobs", "app.reports.execution", "app.reports.tasks"))
            ]
            assert not runs, f"{module} (report types, reads) knows jobs or the executor: {runs}"
        if module.startswith("app"):
            worker = [t for _, t, _ in _imports(path) if t.split(".")[0] == "worker"]
            assert not worker, f"{module} imports the worker process: {worker}"


def test_no_import_circle() -> None:
    graph = {
        m: {t for _, t, inner in _imports(p) if not inner and t in MODULES}
        for m, p in MODULES.items()
    }
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> None:
        if node in trail:
            raise AssertionError("import circle: " + " -> ".join([*trail, node]))
        if node in done:
            return
        for nxt in graph.get(node, ()):
            # A package's __init__ importing its own modules is how a package exports.
            if not nxt.startswith(node + "."):
                visit(nxt, [*trail, node])
        done.add(node)

    for module in graph:
        visit(module, [])


def test_function_level_imports_are_few_and_listed() -> None:
    found = {
        (module, target.split(".")[0])
        for module, path in MODULES.items()
        for _, target, inner in _imports(path)
        if inner
    }
    assert found <= set(FUNCTION_LEVEL_IMPORTS), f"unlisted: {found - set(FUNCTION_LEVEL_IMPORTS)}"
    assert len(found) <= 4


def test_no_file_over_the_line_limit() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in [*ROOT.joinpath("app").rglob("*.py"), *ROOT.joinpath("worker").rglob("*.py")]
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"over {MAX_LINES} lines (split by responsibility): {long}"


_PATH = re.compile(r"`((?:app|worker|tests|scripts|bench|docs)/[\w./-]*)`")
_MODULE = re.compile(r"`(app(?:\.\w+)+)`")


def test_the_architecture_doc_names_only_what_exists() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    missing = [p for p in _PATH.findall(text) if not (ROOT / p.rstrip("/")).exists()]
    for name in _MODULE.findall(text):
        path = ROOT / Path(*name.split("."))
        if not (path.with_suffix(".py").exists() or path.is_dir()):
            # `app.x.y.name`: a name inside module app.x.y
            parent = ROOT / Path(*name.split(".")[:-1])
            if not parent.with_suffix(".py").exists():
                missing.append(name)
    assert not missing, f"docs/architecture.md names what does not exist: {missing}"


def test_the_architecture_doc_states_the_layers() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    for src, dst in ALLOWED_UPWARD:
        assert f"`{src}` → `{dst}`" in text, f"the doc does not list {src} → {dst}"


# Inside the report domain packages: data modules (models, repositories, schemas, the
# doorbell) know no rules; the request road knows only data; below the routers, jobs know
# neither templates nor schedules and templates do not know schedules.
REPORTS = ROOT / "app" / "reports"
PACKAGES = ("jobs", "templates", "schedules")  # each may use the ones before it
DATA = {
    "models",
    "repository",
    "quota",
    "schemas",
    "recipient_schemas",
    "run_schemas",
    "dispatch",
    "recurrence",
    "evaluation",
}


def _road_layer(module: str) -> int:
    """0 data, 1 the request road, 2 services, 3 routers."""
    if module == "app.reports.jobs.requests":
        return 1
    name = module.rsplit(".", 1)[-1]
    if name in DATA or name == "__init__":
        return 0
    return 3 if name == "router" else 2


def _report_package(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 3 and parts[2] in PACKAGES else None


def _report_imports(path: Path) -> list[tuple[int, str]]:
    """Every `app.reports.*` module imported, anywhere in the file, with its line."""
    return [(line, t) for line, t, _ in _imports(path) if t.startswith("app.reports.")]


REPORT_MODULES = sorted(
    m for m in MODULES if any(m.startswith(f"app.reports.{p}.") for p in PACKAGES)
)


@pytest.mark.parametrize("me", REPORT_MODULES)
def test_report_modules_depend_one_way(me: str) -> None:
    for line, target in _report_imports(MODULES[me]):
        if _report_package(target) is None and target != "app.reports.jobs.requests":
            continue  # report types, rendering, execution: outside this picture
        where = f"{me}:{line} imports {target}"
        assert _road_layer(target) <= _road_layer(me), f"{where}: a lower layer uses a higher one"
        if _road_layer(me) == 1:
            assert _road_layer(target) == 0, f"{where}: the road uses data modules only"
        mine, theirs = _report_package(me), _report_package(target)
        if _road_layer(me) < 3 and mine and theirs:
            assert PACKAGES.index(theirs) <= PACKAGES.index(mine), f"{where}: against the order"
