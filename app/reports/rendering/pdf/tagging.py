"""What WeasyPrint's PDF/UA-1 tagging of a chunk leaves to us, done on its ``pydyf`` objects
just before the chunk is written (WeasyPrint's ``finisher`` hook, in the render process).

- The page furniture (the running header and the footer, in the page's margin boxes) becomes
  an artifact: WeasyPrint marks its text as tagged content (``/Span <</MCID n>> BDC``) whose
  structure elements it leaves out of the tree (an ``/Artifact`` element exists only in PDF
  2.0). Its marked-content sequences become ``/Artifact <</Type /Pagination>> BDC``, its
  parent-tree entries null and its elements empty.
- Header cells get a ``/Scope`` (``/Column`` in a table head, ``/Row`` in a table body, as the
  HTML's ``scope`` says): WeasyPrint ties data cells to their headers with ``/Headers`` and
  ``/ID`` only.
- Those IDs (``<object number>-<row>-<column>``) are unique in one chunk but not across chunks,
  so each chunk prefixes its own (``c00003-``) and lists them in an ``/IDTree``, which the join
  combines (``joining``).
- The summary figures are a list; each item gets the text alternative "label: value".
- A text run's own ``/Span`` element (WeasyPrint gives every line of text one, holding one
  marked-content sequence) is folded into its parent: the parent holds the MCID itself. Half
  the elements of a table go, and with them half of what the join copies and keeps in memory.

Only ``pydyf``: this module is imported in the render processes, where WeasyPrint is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pydyf

ID_TREE = "/IDTree"


def chunk_prefix(index: int) -> str:
    """The prefix of a chunk's header-cell IDs; sorts in chunk order (the joined ID tree is
    the chunks' trees one after another)."""
    return f"c{index:05d}-"


class Tagging:
    """WeasyPrint ``finisher``: ``Tagging(index, alternatives)(document, pdf)``."""

    def __init__(self, index: int, alternatives: Sequence[str] = ()) -> None:
        self.prefix = chunk_prefix(index)
        self.alternatives = list(alternatives)

    def __call__(self, document: Any, pdf: pydyf.PDF) -> None:
        objects = pdf.objects
        root = _resolve(objects, pdf.catalog.get("StructTreeRoot"))
        if root is None:  # not tagged
            return
        reachable = _reachable(objects, root)
        furniture: set[int] = set()
        ids: list[tuple[str, bytes]] = []
        list_items: list[pydyf.Dictionary] = []
        runs: dict[bytes, int] = {}  # text runs' Span elements (reference -> their MCID)
        for number, element in enumerate(objects):
            if not isinstance(element, pydyf.Dictionary) or element.get("Type") != "/StructElem":
                continue
            if number not in reachable:
                furniture.add(number)
                continue
            tag = element.get("S")
            if tag == "/TH":
                _scope(objects, element)
                key = element.get("ID")
                if isinstance(key, pydyf.String):
                    # The same String object sits in the data cells' /Headers arrays.
                    key.string = f"{self.prefix}{key.string}"
                    ids.append((key.string, element.reference))
            elif tag == "/LI":
                list_items.append(element)
            elif tag == "/Span" and (mcid := _text_run(element)) is not None:
                runs[element.reference] = mcid
        if ids:
            names = pydyf.Array()
            for key_text, reference in sorted(ids):
                names.extend((pydyf.String(key_text), reference))
            tree = pydyf.Dictionary({"Names": names})
            pdf.add_object(tree)
            root[ID_TREE[1:]] = tree.reference
        summary_alternatives(list_items, self.alternatives)
        if furniture:
            _furniture_as_artifacts(pdf, root, furniture)
        if runs:
            _fold_text_runs(pdf, root, reachable, runs)


def summary_alternatives(items: Sequence[pydyf.Dictionary], alternatives: Sequence[str]) -> None:
    """Sets ``/Alt`` on the summary's list items (the only list of a report), in order; leaves
    them alone if their number does not match."""
    if alternatives and len(items) == len(alternatives):
        for item, text in zip(items, alternatives, strict=True):
            item["Alt"] = pydyf.String(text)


def _text_run(element: pydyf.Dictionary) -> int | None:
    """The MCID of a Span that holds one marked-content sequence and says nothing else."""
    kids = element.get("K")
    if set(element) <= {"Type", "S", "K", "Pg", "P"} and isinstance(kids, list) and len(kids) == 1:
        mcid = kids[0]
        return mcid if isinstance(mcid, int) and not isinstance(mcid, bool) else None
    return None


def _fold_text_runs(
    pdf: pydyf.PDF, root: pydyf.Dictionary, reachable: set[int], runs: dict[bytes, int]
) -> None:
    """Puts each text run's MCID in its parent's ``/K`` in place of its Span (the parent on the
    same page), points the parent tree at the parent, and empties the Span."""
    objects = pdf.objects
    marks = _page_marks(pdf, root)
    folded: list[int] = []
    for number in reachable:
        parent = objects[number]
        kids = parent.get("K") if isinstance(parent, pydyf.Dictionary) else None
        if not isinstance(kids, list) or not any(isinstance(k, bytes) and k in runs for k in kids):
            continue
        page = marks.get(parent.get("Pg"))
        if page is None:
            continue
        for i, kid in enumerate(kids):
            run = objects[int(kid.split()[0])] if isinstance(kid, bytes) and kid in runs else None
            if run is None or run.get("Pg") != parent.get("Pg"):
                continue
            mcid = runs[kid]
            if mcid < len(page) and page[mcid] == kid:
                kids[i] = mcid
                page[mcid] = parent.reference
                folded.append(int(kid.split()[0]))
    for number in folded:
        objects[number].clear()  # referenced by nothing any more: an empty dictionary


def _page_marks(pdf: pydyf.PDF, root: pydyf.Dictionary) -> dict[Any, list[Any]]:
    """Each page's parent-tree array (element per MCID), by the page's reference."""
    objects = pdf.objects
    parent_tree = _resolve(objects, root.get("ParentTree"))
    nums = parent_tree.get("Nums", []) if parent_tree is not None else []
    references = pdf.page_references
    found: dict[Any, list[Any]] = {}
    for i in range(0, len(nums) - 1, 2):
        key, marks = nums[i], _resolve_array(objects, nums[i + 1])
        if isinstance(key, int) and key < len(references) and marks is not None:
            found[references[key]] = marks
    return found


def _reachable(objects: list[Any], root: pydyf.Dictionary) -> set[int]:
    """Object numbers of the structure elements in the tree under ``root``."""
    seen: set[int] = set()
    todo = list(_kids(root))
    while todo:
        number = todo.pop()
        if number in seen:
            continue
        seen.add(number)
        todo.extend(_kids(objects[number]))
    return seen


def _kids(element: Any) -> list[int]:
    kids = element.get("K") if isinstance(element, pydyf.Dictionary) else None
    if isinstance(kids, bytes):
        kids = [kids]
    if not isinstance(kids, list):
        return []
    return [int(kid.split()[0]) for kid in kids if isinstance(kid, bytes) and kid.endswith(b" R")]


def _furniture_as_artifacts(pdf: pydyf.PDF, root: pydyf.Dictionary, furniture: set[int]) -> None:
    objects = pdf.objects
    parent_tree = _resolve(objects, root.get("ParentTree"))
    nums = parent_tree.get("Nums", []) if parent_tree is not None else []
    pages = pdf.pages["Kids"][::3]  # [number, 0, "R", ...]
    for i in range(0, len(nums) - 1, 2):
        key, marks = nums[i], _resolve_array(objects, nums[i + 1])
        if marks is None or not isinstance(key, int) or key >= len(pages):
            continue
        artifacts = set()
        for mcid, reference in enumerate(marks):
            if isinstance(reference, bytes) and int(reference.split()[0]) in furniture:
                artifacts.add(mcid)
                marks[mcid] = "null"
        if artifacts:
            _mark_as_artifacts(_resolve(objects, objects[pages[key]].get("Contents")), artifacts)
    for number in furniture:
        objects[number].clear()  # out of the tree and of the parent tree: an empty dictionary


def _mark_as_artifacts(stream: Any, mcids: set[int]) -> None:
    """``/Span <</MCID n>> BDC`` -> ``/Artifact <</Type /Pagination>> BDC`` for ``mcids``."""
    items = stream.stream if isinstance(stream, pydyf.Stream) else []
    for i, item in enumerate(items):
        if isinstance(item, pydyf.Dictionary) and item.get("MCID") in mcids and i > 0:
            items[i - 1] = "/Artifact"
            items[i] = pydyf.Dictionary({"Type": "/Pagination"})


def _resolve_array(objects: list[Any], value: Any) -> list[Any] | None:
    found = _resolve(objects, value) if isinstance(value, bytes) else value
    return found if isinstance(found, list) else None


def _scope(objects: list[Any], cell: pydyf.Dictionary) -> None:
    row = _resolve(objects, cell.get("P"))
    section = _resolve(objects, row.get("P")) if row is not None else None
    in_head = section is not None and section.get("S") == "/THead"
    attributes = cell.get("A")
    if not isinstance(attributes, pydyf.Dictionary):
        attributes = pydyf.Dictionary({"O": "/Table"})
        cell["A"] = attributes
    attributes["Scope"] = "/Column" if in_head else "/Row"


def _resolve(objects: list[Any], reference: Any) -> Any:
    """The object a ``b"12 0 R"`` reference (as pydyf keeps them) points to, else None."""
    if isinstance(reference, bytes) and reference.endswith(b" R"):
        return objects[int(reference.split()[0])]
    if isinstance(reference, pydyf.Dictionary):
        return reference
    return None
