"""HTML building blocks of the report: escaped text, value cells, tables, figures.

Every text that reaches the page goes through :func:`html.escape` here. A value cell carries
``data-cell="<table>:<column>:<coordinate>=<value>,..."`` and ``data-status`` so that a reader's
script (or a test) can find the release cell behind it; a hidden cell prints the release's reason
and no number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape

from report.values import Value

__all__ = ["cell_key", "details", "figure", "table", "td_text", "td_value", "th"]


def cell_key(table: str, column: str, coordinates: Mapping[str, object]) -> str:
    """``care_use:percentage:year=2019,condition=cancer,discipline=HA``."""
    where = ",".join(f"{k}={v}" for k, v in coordinates.items())
    return f"{table}:{column}:{where}"


def th(text: str, *, scope: str = "row", colspan: int = 1, cls: str = "") -> str:
    span = f' colspan="{colspan}"' if colspan > 1 else ""
    klass = f' class="{cls}"' if cls else ""
    return f'<th scope="{scope}"{span}{klass}>{escape(text)}</th>'


def td_text(text: str, *, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f"<td{klass}>{escape(text)}</td>"


def td_value(value: Value | None, unit: str, *, key: str = "") -> str:
    """A released value: right-aligned number, or the hidden marker and the release's reason."""
    data = f' data-cell="{escape(key, quote=True)}"' if key else ""
    if value is None:
        return f'<td class="absent"{data}>\u2014</td>'
    if value.hidden:
        return (f'<td class="hidden"{data} data-status="{escape(value.status, quote=True)}">'
                f'<span class="marker" aria-hidden="true"></span>{escape(value.reason)}</td>')
    return f'<td class="num"{data} data-status="shown">{escape(value.text(unit))}</td>'


def table(caption: str, head: Sequence[Sequence[str]], body: Iterable[Sequence[str]], *,
          cls: str = "") -> str:
    """A table with a caption; ``head`` rows and ``body`` rows are lists of ``<th>``/``<td>``."""
    klass = f' class="{cls}"' if cls else ""
    rows_head = "".join(f"<tr>{''.join(r)}</tr>" for r in head)
    rows_body = "".join(f"<tr>{''.join(r)}</tr>" for r in body)
    return (f'<div class="table-wrap"><table{klass}><caption>{escape(caption)}</caption>'
            f"<thead>{rows_head}</thead><tbody>{rows_body}</tbody></table></div>")


def details(summary: str, content: str, *, open_: bool = False) -> str:
    state = " open" if open_ else ""
    return f"<details{state}><summary>{escape(summary)}</summary>{content}</details>"


def figure(number: int, svg: str, caption: str, note: str = "") -> str:
    """A numbered figure: the SVG, its caption and an optional note under it."""
    extra = f'<p class="note">{escape(note)}</p>' if note else ""
    return (f'<figure id="figure-{number}"><figcaption><span class="fig-no">Figure {number}.</span> '
            f"{escape(caption)}</figcaption>{svg}{extra}</figure>")
