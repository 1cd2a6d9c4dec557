"""The package: XlsxWriter's workbook zipped again with each data sheet's rows put into its
``<sheetData>``."""

from __future__ import annotations

import re
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path

from app.reports.rendering.base import RenderError

_DIMENSION = re.compile('<dimension ref="[^"]*"/>')
_BUFFER = 1 << 20  # bytes buffered per data sheet's rows file and per copy into the package


class SheetRows:
    """One data sheet's ``<row>`` elements, in a temporary file until the workbook is zipped."""

    def __init__(self, path: Path, sheet_number: int) -> None:
        self.path = path
        self.part = f"xl/worksheets/sheet{sheet_number}.xml"
        self.last_row = 1  # Excel's number of the last row with a cell (1: the header)
        self._file = path.open("w", encoding="utf-8", newline="", buffering=_BUFFER)
        self.write = self._file.write

    def close(self) -> None:
        self._file.close()


def assemble(shell: Path, target: Path, sheets: Sequence[SheetRows], last_column: str) -> None:
    """Zips XlsxWriter's workbook ``shell`` into ``target`` with each data sheet's rows put after
    its header row (and its ``<dimension>`` extended over them), the file's parts in the same
    order and compressed the same way."""
    by_part = {sheet.part: sheet for sheet in sheets}
    with (
        zipfile.ZipFile(shell) as source,
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as package,
    ):
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, info.date_time)
            entry.compress_type = info.compress_type
            entry.external_attr = info.external_attr
            rows = by_part.pop(info.filename, None)
            if rows is None:
                package.writestr(entry, source.read(info))
                continue
            head, end, tail = source.read(info).decode("utf-8").partition("</sheetData>")
            if not end:
                raise RenderError(f"{info.filename} has no <sheetData> to put the rows in")
            if rows.last_row > 1:
                dimension = f'<dimension ref="A1:{last_column}{rows.last_row}"/>'
                head = _DIMENSION.sub(dimension, head, count=1)
            before, after = head.encode("utf-8"), (end + tail).encode("utf-8")
            entry.file_size = len(before) + rows.path.stat().st_size + len(after)
            with package.open(entry, "w") as out, rows.path.open("rb") as data:
                out.write(before)
                shutil.copyfileobj(data, out, _BUFFER)
                out.write(after)
    if by_part:
        raise RenderError(f"the workbook has no part for the data sheets {sorted(by_part)}")
