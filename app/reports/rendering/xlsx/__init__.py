"""Excel (.xlsx): the data rows serialised by us, the rest of the workbook by XlsxWriter.

- The data rows are the file: at 1,000,000 rows XlsxWriter's per-cell path (a call, a tuple
  and a formatted XML element per cell) costs ~94 µs a row, three times the whole rest of the
  report. So each data row is written as SpreadsheetML here, in one string per row, into a
  temporary file per sheet (the same XML XlsxWriter's constant-memory mode writes: inline
  strings, ``%.16G`` numbers, Excel date serials, the same escapes), and XlsxWriter writes the
  workbook around it: the sheets with their header row, column widths, frozen header,
  autofilter and print setup, the styles, the "Parameters" sheet. At close the rows are put
  into their sheets' ``<sheetData>`` while the package is zipped (``package.assemble``). The cell
  styles are XlsxWriter's own formats, registered first so their indexes are known.

- Typed cells: numbers are numbers, dates and datetimes are Excel dates (datetimes as the naive
  local time in the report timezone, since Excel has no timezones; the "Parameters" sheet names
  the timezone), booleans are booleans, percent columns hold the fraction (0.853 for the rows'
  85.3) with Excel's percent format ``0.0%``, so formulas over them work as Excel users expect.
- Print-ready: each data sheet prints one page wide (landscape when the columns are wide), the
  header row repeated on every page, the report title in the page header and "Page X of Y" in
  the footer.
- Each data sheet has a bold header row, frozen, with an autofilter over its rows, and column
  widths estimated from the column type, the label and the first batch of rows (the rows are
  streamed: later ones are not kept to look at).
- A new data sheet every ``rows_per_sheet`` data rows (default 1,048,575: Excel's 1,048,576 rows
  less the header): "Data", "Data (2)", ... A "Parameters" sheet comes last: title, report type,
  parameters, timezone, generated at, requested by, summary figures and the row count.
- XlsxWriter in constant-memory mode does not raise on a row past the sheet limit or written out
  of order: it returns -1 and drops the cell. Every write through it (header, Parameters) is
  checked; anything but 0 raises ``RenderError``. Data rows never pass a sheet's limit
  (``rows_per_sheet``).
- Formula injection: strings are always written as text cells, never as formulas, and, as in CSV, a string starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
  return gets a leading ``'``. The visible apostrophe is deliberate: the text stays inert when a
  user edits the cell or saves the sheet as CSV and opens it again. Text that looks like
  SpreadsheetML (``<r>...</r>``), which XlsxWriter would pass through as rich text, is escaped
  like any other text.

Modules: ``workbook`` (``XlsxRowWriter``: the workbook XlsxWriter writes around the rows, the
header, widths, print setup and the "Parameters" sheet), ``cells`` (``CellWriter``: a data row
as SpreadsheetML), ``package`` (``SheetRows``, a data sheet's rows until close, and ``assemble``,
the zipped package with the rows in each sheet's ``<sheetData>``).
"""

from app.reports.rendering.xlsx.cells import EXCEL_MAX_STRING
from app.reports.rendering.xlsx.parameters import PARAMETERS_SHEET_NAME
from app.reports.rendering.xlsx.workbook import (
    DATA_SHEET_NAME,
    EXCEL_MAX_ROWS,
    MAX_DATA_ROWS_PER_SHEET,
    PORTRAIT_WIDTH,
    XlsxRowWriter,
    XlsxSink,
)

__all__ = [
    "DATA_SHEET_NAME",
    "EXCEL_MAX_ROWS",
    "EXCEL_MAX_STRING",
    "MAX_DATA_ROWS_PER_SHEET",
    "PARAMETERS_SHEET_NAME",
    "PORTRAIT_WIDTH",
    "XlsxRowWriter",
    "XlsxSink",
]
