"""Joining tagged chunks into one tagged PDF (PDF/UA-1), written as it goes, with "Page X of Y"
stamped on it.

Each chunk is a complete tagged PDF: a structure tree (``/StructTreeRoot`` with one
``/Document`` element), a parent tree mapping each page's marked content back to its elements
(keyed by the page's ``/StructParents``) and an ID tree of its header cells. The join opens one
chunk at a time, page one's first, and copies it out to the joined file (``pdfwriter``, objects
serialised by ``copying``) under new object numbers: its pages (contents, resources, fonts,
images), then the elements under its ``Document``; the chunk is then closed. Its parent-tree
keys (and so its pages' ``/StructParents``) move past the ones before it; the marked content
in the pages' streams keeps its MCIDs (they count per page). What only the end knows is written
last from a small index (a few numbers a page, one entry a header cell): the page tree, the
``Document`` element holding every chunk's top elements, the parent tree, the ID tree, the
structure tree root, and the catalog and ``/Info`` of page one's chunk (the language,
``/MarkInfo``, the viewer's ``DisplayDocTitle``, the XMP metadata with the title and the PDF/UA
identification). Memory is one chunk's, whatever the document's length.

A chunk the direct writer wrote is copied as bytes (``rebasing``): pikepdf reads only its pages
and its trees' entries, and every other object gets its new number up front.

The page numbers are drawn over each page by a form XObject (its number reserved while the page
was written) inside an ``/Artifact`` sequence, as the chunks' own running header and footer are
(``tagging``): assistive technology skips the page furniture. Once the page count is known the
forms are written by the direct writer (``direct.stamp``), or are the pages of second, untagged
WeasyPrint documents of ``STAMP_PAGES`` pages each.

Imported in the render processes only (pikepdf costs a process ~20 MB), as WeasyPrint is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterator, Sequence
from io import BytesIO
from pathlib import Path
from typing import Any, Protocol

import pikepdf

from app.reports.rendering.base import RenderError
from app.reports.rendering.pdf.copying import ObjectCopier, literal, name
from app.reports.rendering.pdf.pdfwriter import PdfWriter
from app.reports.rendering.pdf.rebasing import OwnFile
from app.reports.rendering.pdf.tagging import ID_TREE

ARTIFACT = b"/Artifact <</Type /Pagination>> BDC"
# Share of the join done once the chunks are copied and once the pages are stamped (measured,
# see docs/performance.md).
JOINED, STAMPED = 0.78, 0.99
# Pages of the page-number stamp laid out at a time (WeasyPrint keeps ~100 KB a page).
STAMP_PAGES = 200
# What a page inherits from the page tree when it does not say it itself.
_INHERITED = ("/Resources", "/MediaBox", "/CropBox", "/Rotate")
# The structure tree root's entries the join writes itself.
_ROOT_OWN = frozenset(
    {"/Type", "/K", "/ParentTree", "/ParentTreeNextKey", ID_TREE, "/RoleMap", "/ClassMap"}
)


def join_tagged(
    chunk_paths: list[str],
    stamp: Callable[[int, int, int], bytes],
    out_path: str,
    progress: Callable[[float, float], None] | None = None,
    own: Collection[str] = (),
    forms: PageForms | None = None,
) -> int:
    """Writes the chunks, page one's first, as one tagged PDF to ``out_path`` with the page
    numbers laid over its pages: ``stamp(first, pages, total)`` is a PDF of ``pages`` pages
    numbered from ``first``, of ``total``, or ``forms`` writes each page's as a form XObject
    itself. Returns the page count. ``progress(share, next_share)`` is told the share of the
    join done as it goes. The chunks in ``own`` were written by ``PdfWriter`` (direct chunks):
    their objects are copied as bytes (``rebasing``)."""
    report = progress or (lambda share, cap: None)
    join: _Join | None = None
    joined = JOINED if forms is None else STAMPED  # written forms take next to no time
    try:
        for done, path in enumerate(chunk_paths):
            with pikepdf.open(path) as chunk:
                if join is None:  # page one's chunk: the file starts with its PDF version
                    join = _Join(PdfWriter(out_path, max(chunk.pdf_version, "1.5")))
                join.append(chunk, first=done == 0, own=OwnFile(path) if path in own else None)
            report(joined * (done + 1) / len(chunk_paths), joined * (done + 2) / len(chunk_paths))
        if join is None:
            raise RenderError("no PDF chunks to join")
        pages = len(join.pages)
        if forms is not None:
            forms.write(join.writer, join.forms, pages)
        else:
            _stamp_with(join, stamp, pages, report)
        report(STAMPED, 1.0)
        join.close()
    except BaseException:
        if join is not None:
            join.writer.abort()
            Path(out_path).unlink(missing_ok=True)
        raise
    report(1.0, 1.0)
    return pages


def _stamp_with(
    join: _Join,
    stamp: Callable[[int, int, int], bytes],
    pages: int,
    report: Callable[[float, float], None],
) -> None:
    """The page numbers laid out by ``stamp`` (WeasyPrint), ``STAMP_PAGES`` pages at a time."""
    for first in range(0, pages, STAMP_PAGES):
        count = min(STAMP_PAGES, pages - first)
        with pikepdf.open(BytesIO(stamp(first + 1, count, pages))) as over:
            if len(over.pages) != count:
                raise RenderError(
                    f"page-number stamp has {len(over.pages)} pages, expected {count}"
                )
            join.stamp(over, first)
        share = (STAMPED - JOINED) / pages
        report(JOINED + share * (first + count), JOINED + share * min(pages, first + 2 * count))


class PageForms(Protocol):
    def write(self, writer: PdfWriter, forms: Sequence[int], total: int) -> None:
        """Writes page ``n``'s "Page n of ``total``" as the form XObject ``forms[n - 1]``."""


class _Join:
    """The joined file being written and the index of what its end needs."""

    def __init__(self, writer: PdfWriter) -> None:
        self.writer = writer
        reserve = writer.reserve
        self.catalog, self.page_tree, self.struct_root = reserve(), reserve(), reserve()
        self.document, self.parent_tree = reserve(), reserve()
        self.save_state = reserve()  # "q": the page's own content ends inside its transform
        writer.write_stream(self.save_state, b"", b"q\n")
        self.pages: list[int] = []  # each page's number, in order
        self.forms: list[int] = []  # each page's stamp (a form XObject), written last
        self.top: list[bytes] = []  # the Document element's kids
        self.other_top: list[bytes] = []  # kids of the structure tree root besides Document
        self.keys: list[tuple[int, int]] = []  # parent tree: (key, its array or element)
        self.next_key = 0
        self.ids: list[tuple[bytes, bytes]] = []  # ID tree: (header cell ID, its element)
        self.role_map: dict[bytes, bytes] = {}
        self.class_map: dict[bytes, bytes] = {}
        # From page one's chunk: its catalog's, Document element's and structure tree root's
        # other entries, its /Info and /ID.
        self.catalog_entries = b""
        self.document_entries = b""
        self.root_entries = b""
        self.info: bytes | None = None
        self.first_id = b""

    def append(self, chunk: pikepdf.Pdf, *, first: bool, own: OwnFile | None = None) -> None:
        root = chunk.Root.get("/StructTreeRoot")
        if root is None:
            raise RenderError("a PDF chunk is not tagged")
        kids = _items(root.get("/K"))
        document = kids[0] if kids else None
        if not isinstance(document, pikepdf.Dictionary) or document.get("/S") != "/Document":
            raise RenderError("a PDF chunk's structure tree has no Document element")
        fixed = {
            chunk.Root.objgen: self.catalog,
            root.objgen: self.struct_root,
            document.objgen: self.document,
        }
        fixed.update((node.objgen, self.page_tree) for node in _page_tree_nodes(chunk.Root.Pages))
        offset = self.next_key
        copier = ObjectCopier(self.writer, fixed, key_offset=offset)
        if own is not None:  # every object but those rebuilt here gets its number up front
            rebuilt = {*fixed, *(page.objgen for page in chunk.pages), *_tree_nodes(chunk, root)}
            bulk = [n for n in own.numbers if (n, 0) not in rebuilt]
            copier.numbers.update(((n, 0), self.writer.reserve()) for n in bulk)
        for page in chunk.pages:
            self._page(copier, page.obj)
        page_of_document = document.get("/Pg")
        for kid in _items(document.get("/K")):
            if isinstance(kid, int) and page_of_document is not None:  # its page's MCID
                mcr = b"<</Type/MCR/Pg %s/MCID %d>>"
                self.top.append(mcr % (copier.value(page_of_document), kid))
            else:
                self.top.append(copier.value(kid))
        self.other_top.extend(copier.value(kid) for kid in kids[1:])
        keys = []
        for key, marks in _number_tree(root.get("/ParentTree")):
            keys.append(key)
            # A direct array is written as an object of its own: the index stays small.
            self.keys.append((key + offset, _indirect(self.writer, copier, marks)))
        self.next_key = offset + max(keys, default=-1) + 1
        self.ids.extend(
            (bytes(key), copier.value(element)) for key, element in _name_tree(root.get(ID_TREE))
        )
        for entries, into in (
            (root.get("/RoleMap"), self.role_map),
            (root.get("/ClassMap"), self.class_map),
        ):
            for role, value in (entries or {}).items():
                into.setdefault(name(role), copier.value(value))
        if first:
            self._first(chunk, copier, root, document)
        copier.drain()  # the pages (the bulk of an own chunk is numbered, so never queued)
        if own is not None:
            numbers = {number: new for (number, _), new in copier.numbers.items()}
            own.copy(self.writer, numbers, bulk, key_offset=offset)

    def _first(self, chunk: pikepdf.Pdf, copier: ObjectCopier, root: Any, document: Any) -> None:
        """What the joined file takes from page one's chunk alone."""
        own = {"/Type": None, "/Pages": None, "/StructTreeRoot": None}
        self.catalog_entries = copier.entries(chunk.Root, own)
        self.document_entries = copier.entries(document, {"/K": None, "/P": None})
        self.root_entries = copier.entries(root, dict.fromkeys(_ROOT_OWN))
        info = chunk.trailer.get("/Info")
        if isinstance(info, pikepdf.Dictionary):
            self.info = b"%d 0 R" % _indirect(self.writer, copier, info)
        ids = chunk.trailer.get("/ID")
        if isinstance(ids, pikepdf.Array) and len(ids) and isinstance(ids[0], pikepdf.String):
            self.first_id = bytes(ids[0])

    def _page(self, copier: ObjectCopier, page: Any) -> None:
        """Writes ``page`` with its parent the joined page tree (its parent-tree key moved by
        the copier) and the page-number stamp (a form XObject written later) drawn over it."""
        number = copier.ref(page)
        form = self.writer.reserve()
        self.pages.append(number)
        self.forms.append(form)
        patch: dict[str, bytes | None] = {"/Parent": b"%d 0 R" % self.page_tree}
        for key in _INHERITED:
            if key not in page and (inherited := _inherited(page, key)) is not None:
                patch[key] = copier.value(inherited)
        resources = page.get("/Resources") or _inherited(page, "/Resources") or {}
        xobjects = resources.get("/XObject") or {}
        label = _unused(xobjects, "/Pn")
        own = {label: b"%d 0 R" % form}
        with_stamp = b"<<" + copier.entries(xobjects, own) + b">>"
        patch["/Resources"] = b"<<" + copier.entries(resources, {"/XObject": with_stamp}) + b">>"
        drawing = self.writer.reserve()
        self.writer.write_stream(
            drawing, b"", b"\nQ q " + ARTIFACT + b" " + name(label) + b" Do EMC Q\n"
        )
        contents = [copier.value(c) for c in _items(page.get("/Contents"))]
        patch["/Contents"] = b"[%d 0 R %s %d 0 R]" % (
            self.save_state,
            b" ".join(contents),
            drawing,
        )
        copier.patches[page.objgen] = patch

    def stamp(self, over: pikepdf.Pdf, first: int) -> None:
        """Writes the stamps of pages ``first`` (from 0) on: the pages of ``over`` as form
        XObjects."""
        copier = ObjectCopier(self.writer)  # the stamp's font is written once, for its pages
        forms = self.forms[first : first + len(over.pages)]
        for page, number in zip(over.pages, forms, strict=True):
            copier.copy_as(page.as_form_xobject(), number)
            copier.drain()

    def close(self) -> None:
        write, refs = self.writer.write, _refs
        write(
            self.page_tree,
            b"<</Type/Pages/Count %d/Kids[%s]>>" % (len(self.pages), refs(self.pages)),
        )
        write(
            self.document,
            b"<<%s/P %d 0 R/K[%s]>>"
            % (self.document_entries, self.struct_root, b" ".join(self.top)),
        )
        nums = b" ".join(b"%d %d 0 R" % pair for pair in self.keys)
        write(self.parent_tree, b"<</Nums[%s]>>" % nums)
        root = [b"<</Type/StructTreeRoot/K[%d 0 R" % self.document, *self.other_top, b"]"]
        root.append(b"/ParentTree %d 0 R/ParentTreeNextKey %d" % (self.parent_tree, self.next_key))
        if self.ids:
            tree = self.writer.reserve()
            self.ids.sort(key=lambda pair: pair[0])
            names = b" ".join(b"%s %s" % (literal(key), element) for key, element in self.ids)
            write(tree, b"<</Names[%s]>>" % names)
            root.append(b"%s %d 0 R" % (name(ID_TREE), tree))
        for key, entries in ((b"/RoleMap", self.role_map), (b"/ClassMap", self.class_map)):
            if entries:
                root.append(
                    key + b"<<" + b"".join(k + b" " + v for k, v in entries.items()) + b">>"
                )
        root.append(self.root_entries + b">>")
        write(self.struct_root, b" ".join(root))
        write(
            self.catalog,
            b"<</Type/Catalog/Pages %d 0 R/StructTreeRoot %d 0 R%s>>"
            % (self.page_tree, self.struct_root, self.catalog_entries),
        )
        digest = hashlib.md5(usedforsecurity=False)
        digest.update(self.first_id + b"%d %d" % (len(self.pages), self.writer.objects))
        self.writer.close(
            self.catalog, self.info, (self.first_id or digest.digest(), digest.digest())
        )


def _indirect(writer: PdfWriter, copier: ObjectCopier, obj: Any) -> int:
    """The new number of ``obj``, written as an object of its own if it is a direct one."""
    if isinstance(obj, pikepdf.Dictionary | pikepdf.Array) and obj.is_indirect:
        return copier.ref(obj)
    number = writer.reserve()
    writer.write(number, copier.value(obj))
    return number


def _refs(numbers: list[int]) -> bytes:
    return b" ".join(b"%d 0 R" % n for n in numbers)


def _items(value: Any) -> list[Any]:
    """An array's items, or a single value as a list of one (``/K``, ``/Contents``)."""
    if value is None:
        return []
    return list(value) if isinstance(value, pikepdf.Array) else [value]


def _unused(entries: Any, prefix: str) -> str:
    n = 0
    while f"{prefix}{n}" in entries:
        n += 1
    return f"{prefix}{n}"


def _inherited(page: Any, key: str) -> Any:
    node = page.get("/Parent")
    for _ in range(64):  # a page tree deeper than this is broken
        if not isinstance(node, pikepdf.Dictionary):
            return None
        if key in node:
            return node[key]
        node = node.get("/Parent")
    return None


def _tree_nodes(chunk: pikepdf.Pdf, root: Any) -> Iterator[tuple[int, int]]:
    """The chunk's objects the join reads but does not copy: its trailer's ``/Info`` and the
    nodes of its structure tree root's parent tree and ID tree."""
    for node in (chunk.trailer.get("/Info"), root.get("/ParentTree"), root.get(ID_TREE)):
        for each in _tree(node):
            if each.is_indirect:
                yield each.objgen


def _tree(node: Any) -> Iterator[Any]:
    if isinstance(node, pikepdf.Dictionary):
        yield node
        for kid in node.get("/Kids", ()):
            yield from _tree(kid)


def _page_tree_nodes(node: Any) -> Iterator[Any]:
    yield node
    for kid in node.get("/Kids", ()):
        if isinstance(kid, pikepdf.Dictionary) and kid.get("/Type") == "/Pages":
            yield from _page_tree_nodes(kid)


def _number_tree(node: Any) -> Iterator[tuple[int, Any]]:
    """A number tree's (key, value) pairs, in order."""
    if not isinstance(node, pikepdf.Dictionary):
        return
    nums = node.get("/Nums", ())
    for i in range(0, len(nums) - 1, 2):
        yield int(nums[i]), nums[i + 1]
    for kid in node.get("/Kids", ()):
        yield from _number_tree(kid)


def _name_tree(node: Any) -> Iterator[tuple[Any, Any]]:
    """A name tree's (key, value) pairs, in order."""
    if not isinstance(node, pikepdf.Dictionary):
        return
    names = node.get("/Names", ())
    for i in range(0, len(names) - 1, 2):
        yield names[i], names[i + 1]
    for kid in node.get("/Kids", ()):
        yield from _name_tree(kid)
