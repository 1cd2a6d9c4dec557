"""Joining tagged chunks into one tagged PDF (PDF/UA-1) and stamping "Page X of Y" on it.

Each chunk is a complete tagged PDF: a structure tree (``/StructTreeRoot`` with one
``/Document`` element), a parent tree mapping each page's marked content back to its elements
(keyed by the page's ``/StructParents``) and an ID tree of its header cells. The join keeps page
one's chunk as the document (its catalog carries the language, ``/MarkInfo``, the viewer's
``DisplayDocTitle``, the XMP metadata with the title and the PDF/UA identification, and its
``/Info``) and appends every other chunk: its pages, then its structure, copied as a whole, with
the top elements of its ``/Document`` put under page one's ``/Document``, its parent-tree keys
(and so its pages' ``/StructParents``) moved past the ones before it, its ID-tree entries
appended. The marked content in the pages' streams keeps its MCIDs: they count per page.

The page numbers are a second, untagged WeasyPrint document of as many pages; each of its pages
becomes a form XObject drawn over the page inside an ``/Artifact`` marked-content sequence, as
the chunks' own running header and footer are (``tagging``): assistive technology skips the
page furniture.

Imported in the render processes only (pikepdf costs a process ~20 MB), as WeasyPrint is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from io import BytesIO

import pikepdf

from app.reports.rendering.base import RenderError
from app.reports.rendering.pdf.tagging import ID_TREE

ARTIFACT = b"/Artifact <</Type /Pagination>> BDC"


# Share of the join done after each part of it (measured, see docs/performance.md).
JOINED, STAMP_RENDERED, STAMPED = 0.35, 0.62, 0.64


def join_tagged(
    chunk_paths: list[str],
    stamp: Callable[[int], bytes],
    out_path: str,
    progress: Callable[[float, float], None] | None = None,
) -> int:
    """Writes the chunks, page one's first, as one tagged PDF to ``out_path`` with
    ``stamp(pages)`` (a PDF of as many pages) laid over its pages; returns the page count.
    ``progress(share, next_share)`` is told the share of the join done as it goes."""
    report = progress or (lambda share, cap: None)
    with contextlib.ExitStack() as files:
        joined = files.enter_context(pikepdf.open(chunk_paths[0]))
        tree = _Tree(joined)
        for done, path in enumerate(chunk_paths[1:], start=1):
            with pikepdf.open(path) as chunk:
                first_page = len(joined.pages)
                tree.append(chunk)
                # qpdf copies a stream's data only when the joined file is written: copied now,
                # the chunk can be closed (its objects held no longer: ~40 % less memory).
                for page in joined.pages[first_page:]:
                    _own_streams(page.obj, set())
            report(JOINED * done / len(chunk_paths), JOINED * (done + 1) / len(chunk_paths))
        tree.close()
        pages = len(joined.pages)
        report(JOINED, STAMP_RENDERED)
        over = files.enter_context(pikepdf.open(BytesIO(stamp(pages))))
        if len(over.pages) != pages:
            raise RenderError(f"page-number stamp has {len(over.pages)} pages, expected {pages}")
        report(STAMP_RENDERED, STAMPED)
        _lay_over(joined, over)
        report(STAMPED, 1.0)
        joined.save(
            out_path,
            object_stream_mode=pikepdf.ObjectStreamMode.generate,
            compress_streams=True,
        )
    report(1.0, 1.0)
    return pages


class _Tree:
    """Page one's structure tree, growing by the chunks appended to it."""

    def __init__(self, pdf: pikepdf.Pdf) -> None:
        self.pdf = pdf
        root = pdf.Root.get("/StructTreeRoot")
        if root is None:
            raise RenderError("a PDF chunk is not tagged")
        self.root = root
        self.document = _document_element(root)
        self.nums = root.ParentTree.Nums
        self.next_key = _next_key(root)
        if ID_TREE not in root:
            root[ID_TREE] = pdf.make_indirect(pikepdf.Dictionary(Names=pikepdf.Array()))
        self.ids = root[ID_TREE].Names

    def append(self, chunk: pikepdf.Pdf) -> None:
        first_page = len(self.pdf.pages)
        self.pdf.pages.extend(chunk.pages)  # first: the elements' /Pg then point at the copies
        theirs = chunk.Root.get("/StructTreeRoot")
        if theirs is None:
            raise RenderError("a PDF chunk is not tagged")
        copied = self.pdf.copy_foreign(theirs)
        offset = self.next_key
        for kid in _document_element(copied).K:
            kid.P = self.document
            self.document.K.append(kid)
        nums = copied.ParentTree.Nums
        for i in range(0, len(nums), 2):
            self.nums.append(int(nums[i]) + offset)
            self.nums.append(nums[i + 1])
        for page in self.pdf.pages[first_page:]:
            if "/StructParents" in page.obj:
                page.obj.StructParents = int(page.obj.StructParents) + offset
            for annotation in page.obj.get("/Annots", ()):
                if "/StructParent" in annotation:
                    annotation.StructParent = int(annotation.StructParent) + offset
        self.next_key = offset + _next_key(copied)
        if ID_TREE in copied:
            self.ids.extend(copied[ID_TREE].Names)

    def close(self) -> None:
        self.root.ParentTreeNextKey = self.next_key


def _document_element(root: pikepdf.Object) -> pikepdf.Object:
    kids = root.K
    element = kids[0] if isinstance(kids, pikepdf.Array) else kids
    if element.get("/S") != pikepdf.Name.Document:
        raise RenderError("a PDF chunk's structure tree has no Document element")
    return element


def _next_key(root: pikepdf.Object) -> int:
    nums = root.ParentTree.Nums
    keys = [int(nums[i]) for i in range(0, len(nums), 2)]
    return max(keys, default=-1) + 1


_NOT_FOLLOWED = frozenset({"/Parent", "/P", "/Pg", "/StructParents"})


def _own_streams(node: pikepdf.Object, seen: set[tuple[int, int]]) -> None:
    """Gives every stream under ``node`` (a page: its contents, fonts, images) its data now, as
    read from the chunk it was copied from."""
    if isinstance(node, pikepdf.Array):
        for item in node:
            _own_streams(item, seen)
        return
    if not isinstance(node, pikepdf.Dictionary | pikepdf.Stream):
        return
    if node.is_indirect:
        if node.objgen in seen:
            return
        seen.add(node.objgen)
    if isinstance(node, pikepdf.Stream):
        encoded = node.get("/Filter")
        parms = node.get("/DecodeParms")
        node.write(
            node.read_raw_bytes(),
            filter=encoded if isinstance(encoded, pikepdf.Name | pikepdf.Array) else None,
            decode_parms=parms if isinstance(parms, pikepdf.Dictionary | pikepdf.Array) else None,
            type_check=False,
        )
    for key in list(node.keys()):
        if key not in _NOT_FOLLOWED:
            _own_streams(node[key], seen)


def _lay_over(pdf: pikepdf.Pdf, over: pikepdf.Pdf) -> None:
    save_state = pdf.make_stream(b"q\n")  # the page's own content ends inside its transform
    for page, stamp in zip(pdf.pages, over.pages, strict=True):
        form = pdf.copy_foreign(stamp.as_form_xobject())
        name = page.add_resource(form, pikepdf.Name.XObject, prefix="Pn")
        page.contents_add(save_state, prepend=True)
        drawing = b"\nQ q " + ARTIFACT + b" " + str(name).encode() + b" Do EMC Q\n"
        page.contents_add(pdf.make_stream(drawing))
