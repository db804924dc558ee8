"""A small element tree of an HTML page (stdlib ``html.parser``), for the report's tests.

The report's own HTML and what headless Chromium dumps (``--dump-dom``) are read the same way:
elements with their attributes, children and text, and a few finders the tests need.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

import polars as pl

__all__ = ["DIGIT", "Element", "cell_keys", "expected_text", "parse"]

_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                   "source", "track", "wbr"})


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def iter(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, predicate: Callable[[Element], bool]) -> list[Element]:
        return [e for e in self.iter() if predicate(e)]

    def by_tag(self, tag: str) -> list[Element]:
        return self.find_all(lambda e: e.tag == tag)

    def has_class(self, name: str) -> bool:
        return name in self.attrs.get("class", "").split()


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in _VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Element:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


def expected_text(value: object, status: str, unit: str) -> str:
    """What the report must print for a release value: its reason when hidden, else the number
    formatted as the report's conventions say (docs/report.md), written out here on purpose."""
    if status:
        return f"hidden ({status.replace('-', ' ')})"
    if value is None:
        return "n/a"
    if unit == "percent":
        return f"{value:.1f}%"
    if unit == "fraction":
        return f"{100 * value:.1f}%"
    if unit == "pp":
        r = round(value, 1)
        return "0.0 pp" if r == 0 else f"{'+' if r > 0 else chr(0x2212)}{abs(r):.1f} pp"
    return f"{round(value):,}"


def cell_keys(table: str, frame: pl.DataFrame, coordinates: list[str], column: str) -> Iterator[tuple[str, dict]]:
    """``data-cell`` keys of a column's values with their rows (the report's key convention)."""
    for row in frame.iter_rows(named=True):
        where = ",".join(f"{c}={row[c]}" for c in coordinates)
        yield f"{table}:{column}:{where}", row


DIGIT = re.compile(r"\d")
