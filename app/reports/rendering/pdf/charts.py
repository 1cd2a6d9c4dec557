"""The report's charts on the PDF's first page: each chart's Vega-Lite specification
(`rendering.charts.vega_lite`, the one the preview and the JSON Lines header carry) drawn as SVG
by vl-convert (offline, no browser) in the render process that lays out page one, and embedded
inline so WeasyPrint draws it as vector paths and text, not a picture.

Accessibility (PDF/UA): the inline ``<svg>`` is tagged ``/Figure`` by WeasyPrint, whose ``/Alt``
is the SVG's ``<title>``: the chart in words (`ChartSpec.alternative`); the ``<figcaption>``
(tagged ``/Caption``) says what the chart shows.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from app.reports.rendering.charts import ChartSpec, vega_lite

# The page-one box a chart fits in (millimetres): two side by side, or one alone.
_WIDTH_MM = {1: 160.0, 2: 92.0}
_HEIGHT_MM = 80.0
_PX_MM = 25.4 / 96  # a CSS pixel
_ROOT = re.compile(r"<svg\b[^>]*>")
_SIZE = re.compile(r'\s(width|height)="([\d.]+)(px)?"')


def chart_svg(chart: ChartSpec, width_mm: float, height_mm: float = _HEIGHT_MM) -> str:
    """The chart as an inline SVG element scaled to fit the box, its text alternative as its
    ``<title>``."""
    import vl_convert  # in the render processes only: the worker never loads it (~9 MB)

    svg = vl_convert.vegalite_to_svg(vega_lite(chart))
    root = _ROOT.search(svg)
    if root is None:  # not what vl-convert writes
        raise ValueError("vl-convert returned no <svg> element")
    tag = root.group(0)
    sizes = {m.group(1): float(m.group(2)) for m in _SIZE.finditer(tag)}
    width, height = sizes.get("width", 600.0), sizes.get("height", 400.0)
    scale = min(1.0, width_mm / (width * _PX_MM), height_mm / (height * _PX_MM))
    sized = _SIZE.sub("", tag)[:-1]
    sized += (
        f' width="{width * _PX_MM * scale:.1f}mm" height="{height * _PX_MM * scale:.1f}mm"'
        f' role="img" aria-label="{html.escape(chart.title, quote=True)}">'
    )
    title = f"<title>{html.escape(chart.alternative(), quote=False)}</title>"
    return svg[: root.start()] + sized + title + svg[root.end() :]


def charts_html(charts: Sequence[ChartSpec]) -> str:
    """Page one's block of charts (empty without charts): at most two a row."""
    if not charts:
        return ""
    width = _WIDTH_MM[1 if len(charts) == 1 else 2]
    figures = "".join(
        f'<figure class="chart">{chart_svg(chart, width)}'
        f"<figcaption>{html.escape(chart.description, quote=False)}</figcaption></figure>"
        for chart in charts
    )
    return f'<div class="charts">{figures}</div>'


__all__ = ["chart_svg", "charts_html"]
