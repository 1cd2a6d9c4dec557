"""The structure tree of a direct chunk (PDF/UA-1), shaped as a WeasyPrint chunk's is after
``Tagging``: a ``Document`` element holding one ``Table`` a page (``THead`` with the page's
header row, ``TBody`` with its rows, the totals row last), each ``TH`` with ``/Scope /Column``
and an ``/ID`` prefixed by ``chunk_prefix`` (listed in the ID tree), each ``TD`` naming its
column's ``TH`` of the same page in ``/Headers``, and every cell holding its marked content's
MCID itself; the parent tree keyed by each page's ``/StructParents``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from app.reports.rendering.pdf.copying import literal
from app.reports.rendering.pdf.direct.pages import Cell

Reserve = Callable[[], int]
Write = Callable[[int, bytes], None]


@dataclass
class Tags:
    """The tree as it is written, page by page; ``close`` writes its root."""

    reserve: Reserve
    write: Write
    prefix: str
    root: int = 0
    document: int = 0
    tables: list[int] = field(default_factory=list)
    parent_arrays: list[int] = field(default_factory=list)  # by page (its /StructParents)
    ids: list[tuple[str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root, self.document = self.reserve(), self.reserve()

    def page(self, page: int, head: Sequence[Cell], rows: Sequence[Sequence[Cell]]) -> None:
        """Writes the elements of one page (object ``page``, the next /StructParents key)."""
        reserve, write = self.reserve, self.write
        number = len(self.parent_arrays)
        table, thead, head_row, tbody = reserve(), reserve(), reserve(), reserve()
        self.tables.append(table)
        marks: dict[int, int] = {}
        on_page = b"/Pg %d 0 R" % page
        ids: list[bytes] = []
        ths: list[int] = []
        for cell in head:
            th = reserve()
            key = f"{self.prefix}{number:04d}-{cell.column:03d}"
            ids.append(literal(key.encode("ascii")))
            self.ids.append((key, th))
            ths.append(th)
            kids = b"%d" % cell.mcid if cell.mcid is not None else b""
            if cell.mcid is not None:
                marks[cell.mcid] = th
            write(
                th,
                b"<</Type/StructElem/S/TH/P %d 0 R%s/K[%s]/ID%s/A<</O/Table/Scope/Column>>>>"
                % (head_row, on_page, kids, ids[-1]),
            )
        write(
            head_row, b"<</Type/StructElem/S/TR/P %d 0 R%s/K[%s]>>" % (thead, on_page, _refs(ths))
        )
        write(
            thead, b"<</Type/StructElem/S/THead/P %d 0 R%s/K[%d 0 R]>>" % (table, on_page, head_row)
        )
        trs: list[int] = []
        for cells in rows:
            tr = reserve()
            trs.append(tr)
            tds: list[int] = []
            for cell in cells:
                td = reserve()
                tds.append(td)
                if cell.mcid is not None:
                    marks[cell.mcid] = td
                    kids = b"%d" % cell.mcid
                else:
                    kids = b""
                write(
                    td,
                    b"<</Type/StructElem/S/TD/P %d 0 R%s/K[%s]/A<</O/Table/Headers[%s]>>>>"
                    % (tr, on_page, kids, ids[cell.column]),
                )
            write(tr, b"<</Type/StructElem/S/TR/P %d 0 R%s/K[%s]>>" % (tbody, on_page, _refs(tds)))
        write(
            tbody, b"<</Type/StructElem/S/TBody/P %d 0 R%s/K[%s]>>" % (table, on_page, _refs(trs))
        )
        write(
            table,
            b"<</Type/StructElem/S/Table/P %d 0 R%s/K[%d 0 R %d 0 R]>>"
            % (self.document, on_page, thead, tbody),
        )
        array = reserve()
        write(array, b"[%s]" % _refs([marks[m] for m in range(len(marks))]))
        self.parent_arrays.append(array)

    def close(self) -> int:
        """Writes the ``Document`` element, the parent tree, the ID tree and the structure tree
        root; returns the root's number."""
        reserve, write = self.reserve, self.write
        write(
            self.document,
            b"<</Type/StructElem/S/Document/P %d 0 R/K[%s]>>" % (self.root, _refs(self.tables)),
        )
        parent_tree, id_tree = reserve(), reserve()
        nums = b" ".join(b"%d %d 0 R" % (i, a) for i, a in enumerate(self.parent_arrays))
        write(parent_tree, b"<</Nums[%s]>>" % nums)
        names = b" ".join(
            b"%s %d 0 R" % (literal(key.encode("ascii")), element)
            for key, element in sorted(self.ids)
        )
        write(id_tree, b"<</Names[%s]>>" % names)
        write(
            self.root,
            b"<</Type/StructTreeRoot/K[%d 0 R]/ParentTree %d 0 R/ParentTreeNextKey %d/IDTree %d 0 R>>"
            % (self.document, parent_tree, len(self.parent_arrays), id_tree),
        )
        return self.root


def _refs(numbers: Sequence[int]) -> bytes:
    return b" ".join(b"%d 0 R" % n for n in numbers)
