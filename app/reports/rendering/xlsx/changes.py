"""The workbook's "Changes" sheet of a scheduled change report: "Changes since <date>", the
counts in words, then one row per change (change, row, field, before, after); the first
`ChangeSection.rows` of them, with a note when the list of changes holds more."""

from __future__ import annotations

from collections.abc import Callable

from xlsxwriter import Workbook
from xlsxwriter.worksheet import Worksheet

from app.reports.rendering.base import ChangeSection, neutralise_formula

CHANGES_SHEET_NAME = "Changes"


def write_changes_sheet(
    workbook: Workbook,
    section: ChangeSection | None,
    print_setup: Callable[[Worksheet], None],
) -> str | None:
    """Adds the sheet (nothing without a change section); returns its name."""
    if section is None:
        return None
    sheet = workbook.add_worksheet(CHANGES_SHEET_NAME)
    print_setup(sheet)
    bold = workbook.add_format({"bold": True, "font_size": 12})
    header = workbook.add_format({"bold": True, "bg_color": "#E8EDF3", "bottom": 1})
    note = workbook.add_format({"italic": True, "font_color": "#475569"})
    sheet.set_column(0, 0, 12)
    sheet.set_column(1, 1, 40)
    sheet.set_column(2, 4, 18)
    sheet.write_string(0, 0, neutralise_formula(section.heading), bold)
    sheet.write_string(1, 0, neutralise_formula(section.summary))
    for c, title in enumerate(section.header):
        sheet.write_string(3, c, title, header)
    row = 4
    for cells in section.rows:
        for c, text in enumerate(cells):
            sheet.write_string(row, c, neutralise_formula(text))
        row += 1
    if section.total > len(section.rows):
        more = section.total - len(section.rows)
        sheet.write_string(row + 1, 0, section.more.format(count=more), note)
    return CHANGES_SHEET_NAME
