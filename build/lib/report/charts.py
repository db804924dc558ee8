"""Inline SVG bar charts: categories down the side, one bar per series (year) side by side.

The seed report's figures (Figuur 59-68) in a form a browser draws without scripts, fonts or
network. A hidden value is drawn as a hatched, dashed marker labelled with the release's reason
(``hidden (suppressed)``), never as a bar: its length would be the value. Every chart carries a
``<title>`` and ``<desc>`` (``role="img"``, ``aria-labelledby``); each bar has its own
``<title>`` for a tooltip, and ``data-*`` attributes naming the category, series and status so
that a test can find it. The numbers are the release's: nothing is computed but the axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

from report.values import Value

__all__ = ["PALETTE", "bar_chart", "nice_scale"]

# Light to dark blue for successive years (distinguishable in greyscale), then two accents.
PALETTE = ("#9ecae1", "#2166ac", "#4d9221", "#b35806", "#762a83")
_WIDTH = 760
_LABEL_W = 260  # category labels, right-aligned against the plot
_RIGHT = 70  # room for the value label of the longest bar
_BAR_H = 14
_BAR_GAP = 2
_GROUP_GAP = 10
_LEGEND_H = 28
_AXIS_H = 26
_MARKER_W = 34  # the hatched marker of a hidden value


def _attr(text: object) -> str:
    return escape(str(text), quote=True)


def nice_scale(largest: float, *, ticks: int = 5) -> tuple[float, float]:
    """``(top, step)`` of an axis from 0: the smallest step of 1, 2 or 5 times a power of ten that
    reaches ``largest`` in at most ``ticks`` steps, and the first multiple of it at or above it."""
    if largest <= 0 or not math.isfinite(largest):
        return 1.0, 0.25
    rough = largest / ticks
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough * (1 - 1e-12))
    return step * math.ceil(largest / step - 1e-9), step


def _fmt_tick(value: float) -> str:
    return f"{value:g}"


def bar_chart(
    chart_id: str,
    *,
    title: str,
    description: str,
    categories: Sequence[tuple[str, str]],
    series: Sequence[tuple[str, str]],
    values: Mapping[tuple[str, str], Value],
    unit: str = "percent",
    axis_label: str = "percentage of patients",
    fmt: Callable[[Value], str] | None = None,
) -> str:
    """A horizontal grouped bar chart as an SVG element.

    Args:
        chart_id: Unique in the document: prefixes the ids of the title, desc and hatch pattern.
        title: The accessible name (``<title>``); also the caption's text.
        description: What the chart shows, for a screen reader (``<desc>``); the hidden count is
            appended.
        categories: ``(key, label)`` per group of bars, top to bottom.
        series: ``(key, label)`` per bar of a group (the years), in legend order.
        values: ``(category key, series key)`` -> value; a missing pair draws nothing.
        unit: How bar labels print: ``percent`` (0-100), ``fraction`` (0-1), ``persons``.
        axis_label: Text under the axis.
        fmt: Overrides how a shown value's label prints.

    Returns:
        The ``<svg>`` element as text.
    """
    if not categories or not series:
        msg = "bar_chart: expected at least one category and one series"
        raise ValueError(msg)
    label_of = fmt or (lambda v: v.text(unit))
    shown = [v.shown for v in values.values() if v.shown is not None]
    top, step = nice_scale(max(shown)) if shown and max(shown) > 0 else (
        (100.0, 25.0) if unit == "percent" else (1.0, 0.25))
    plot_w = _WIDTH - _LABEL_W - _RIGHT
    group_h = len(series) * (_BAR_H + _BAR_GAP) - _BAR_GAP + _GROUP_GAP
    height = _LEGEND_H + len(categories) * group_h + _AXIS_H + 8
    x0, y0 = _LABEL_W, _LEGEND_H
    hidden = sum(1 for v in values.values() if v.hidden)
    total = len(values)
    desc = f"{description} {hidden} of {total} values are hidden by disclosure control."
    hatch = f"{chart_id}-hatch"
    out = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{_attr(chart_id)}" '
        f'viewBox="0 0 {_WIDTH} {height}" width="{_WIDTH}" height="{height}" role="img" '
        f'aria-labelledby="{_attr(chart_id)}-title {_attr(chart_id)}-desc">'),
        f'<title id="{_attr(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{_attr(chart_id)}-desc">{escape(desc)}</desc>',
        (f'<defs><pattern id="{_attr(hatch)}" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#ffffff"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#6b6b6b" stroke-width="2"/></pattern></defs>'),
    ]
    # Legend: one swatch per series, and the hidden marker.
    lx = x0
    for i, (_, label) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{lx}" y="8" width="14" height="12" fill="{colour}"/>'
                   f'<text class="legend" x="{lx + 19}" y="18">{escape(label)}</text>')
        lx += 28 + 8 * len(label)
    out.append(f'<rect x="{lx}" y="8" width="20" height="12" fill="url(#{_attr(hatch)})" '
               'stroke="#6b6b6b" stroke-dasharray="3 2"/>'
               f'<text class="legend" x="{lx + 25}" y="18">hidden (reason in label)</text>')
    # Grid and axis.
    for k in range(round(top / step) + 1):
        tick = k * step
        x = x0 + plot_w * tick / top
        out.append(f'<line class="grid" x1="{x:.1f}" y1="{y0 - 2}" x2="{x:.1f}" '
                   f'y2="{height - _AXIS_H - 6}" stroke="#dddddd"/>'
                   f'<text class="tick" x="{x:.1f}" y="{height - _AXIS_H + 8}" '
                   f'text-anchor="middle">{_fmt_tick(tick)}</text>')
    out.append(f'<text class="axis" x="{x0 + plot_w / 2:.1f}" y="{height - 4}" '
               f'text-anchor="middle">{escape(axis_label)}</text>')
    for c, (ckey, clabel) in enumerate(categories):
        gy = y0 + c * group_h
        mid = gy + (group_h - _GROUP_GAP) / 2
        out.append(f'<text class="category" x="{x0 - 8}" y="{mid + 4:.1f}" '
                   f'text-anchor="end">{escape(clabel)}</text>')
        for s, (skey, slabel) in enumerate(series):
            value = values.get((ckey, skey))
            if value is None:
                continue
            y = gy + s * (_BAR_H + _BAR_GAP)
            status = value.status or ("shown" if value.shown is not None else "not-available")
            head = (f'<g class="bar{" hidden" if value.hidden else ""}" data-category="{_attr(ckey)}" '
                    f'data-series="{_attr(skey)}" data-status="{_attr(status)}">')
            if value.hidden:
                text = value.reason
                body = (f'<rect class="hidden-marker" x="{x0}" y="{y}" width="{_MARKER_W}" '
                        f'height="{_BAR_H}" fill="url(#{_attr(hatch)})" stroke="#6b6b6b" '
                        'stroke-dasharray="3 2"/>'
                        f'<text class="hidden-label" x="{x0 + _MARKER_W + 5}" y="{y + _BAR_H - 3}">'
                        f'{escape(text)}</text>')
            elif value.shown is None:
                text = "not available"
                body = f'<text class="value" x="{x0 + 4}" y="{y + _BAR_H - 3}">{text}</text>'
            else:
                text = label_of(value)
                w = max(0.0, plot_w * value.shown / top)
                body = (f'<rect x="{x0}" y="{y}" width="{w:.1f}" height="{_BAR_H}" '
                        f'fill="{PALETTE[s % len(PALETTE)]}"/>'
                        f'<text class="value" x="{x0 + w + 4:.1f}" y="{y + _BAR_H - 3}">'
                        f'{escape(text)}</text>')
            out.append(f"{head}<title>{escape(clabel)}, {escape(slabel)}: {escape(text)}</title>"
                       f"{body}</g>")
    out.append(f'<line x1="{x0}" y1="{y0 - 2}" x2="{x0}" y2="{height - _AXIS_H - 6}" '
               'stroke="#444444"/>')
    out.append("</svg>")
    return "".join(out)
