"""The report's sections, one function per released table (``docs/release-format.md``, "Tables").

Each function takes the release as read and returns HTML; figures are numbered through a shared
:class:`Figures` counter. Figures show the ``Total`` rows of a stratified table; the tables under
them show every stratum. A table the release withholds, or does not hold, is said to be so with
the release's reason. Nothing is computed from the values but their formatting: percentages,
shares and changes are the release's own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from html import escape

import polars as pl

from report import labels
from report.charts import bar_chart
from report.markup import cell_key, details, figure, table, td_text, td_value, th
from report.release import KNOWN_TABLES, Release, Table
from report.values import Value

__all__ = ["Figures", "acsc", "attrition", "care_use", "change_table", "other_tables", "prevalence",
           "referrals", "top", "withheld"]


@dataclass
class Figures:
    """Numbers the figures in order and remembers their titles."""

    titles: list[str] = field(default_factory=list)

    def next(self, title: str) -> int:
        self.titles.append(title)
        return len(self.titles)


def _rows(frame: pl.DataFrame) -> Iterator[dict]:
    yield from frame.iter_rows(named=True)


def _value(tbl: Table, row: dict, column: str) -> Value:
    return Value(row[column], row[tbl.values[column]] or "")


def _key(tbl: Table, row: dict, column: str) -> str:
    return cell_key(tbl.name, column, {c: row[c] for c in tbl.coordinates})


def _td(tbl: Table, row: dict | None, column: str) -> str:
    if row is None:
        return td_value(None, "")
    return td_value(_value(tbl, row, column), tbl.unit(column), key=_key(tbl, row, column))


def _missing(release: Release, name: str, what: str) -> str:
    if name in release.withheld:
        return (f'<p class="withheld">The release withholds {escape(what)} (table '
                f"<code>{escape(name)}</code>): {escape(release.withheld[name])}.</p>")
    return (f'<p class="withheld">This release holds no {escape(what)} (no table '
            f"<code>{escape(name)}</code>).</p>")


def _empty(name: str) -> str:
    return f'<p class="withheld">The release\'s table <code>{escape(name)}</code> has no rows.</p>'


def _conditions(release: Release, present: Sequence[str]) -> list[str]:
    """The study's order of conditions (the manifest), then any other present one."""
    order = [str(c) for c in release.study.get("conditions", [])]
    return [c for c in order if c in present] + sorted(set(present) - set(order))


def _years(frame: pl.DataFrame, column: str = "year") -> list[int]:
    return sorted(int(y) for y in frame[column].unique().to_list() if y is not None)


def _strata_rows(tbl: Table, frame: pl.DataFrame) -> list[dict]:
    """The distinct strata combinations of ``frame``: Total first, then the manifest's levels."""
    strata = list(tbl.strata)
    if not strata:
        return [{}]
    dims = tbl.spec.get("dimensions", {})

    def rank(column: str, level: str) -> tuple[int, str]:
        order = [tbl.strata[column], *[str(v) for v in dims.get(column, {}).get("levels", [])]]
        return (order.index(level), "") if level in order else (len(order), level)

    combos = frame.select(strata).unique().iter_rows(named=True)
    return sorted(combos, key=lambda r: [rank(c, str(r[c])) for c in strata])


def _index(frame: pl.DataFrame, columns: Sequence[str]) -> dict[tuple, dict]:
    return {tuple(str(r[c]) for c in columns): r for r in _rows(frame)}


def care_use(release: Release, figures: Figures) -> str:
    """Figuur 59-67: per condition, the percentage with >= 1 contact per discipline and year."""
    tbl = release.tables.get("care_use")
    if tbl is None:
        return _missing(release, "care_use", "care use per discipline")
    if tbl.frame.is_empty():
        return _empty("care_use")
    change = release.tables.get("care_use_change")
    strata = list(tbl.strata)
    years = _years(tbl.frame)
    pairs = _pairs(change) if change is not None else []
    by_row = _index(tbl.frame, ["condition", "discipline", *strata, "year"])
    by_change = (_index(change.frame, ["condition", "discipline", *strata, "year_from", "year_to"])
                 if change is not None else {})
    totals = tbl.totals()
    out = []
    for condition in _conditions(release, totals["condition"].unique().to_list()):
        rows = totals.filter(pl.col("condition") == condition)
        disciplines = labels.discipline_order(rows["discipline"].to_list())
        values = {(r["discipline"], str(r["year"])): _value(tbl, r, "percentage") for r in _rows(rows)}
        name = labels.condition(condition)
        span = " and ".join(str(y) for y in years)
        title = (f"Percentage of {labels.patients(condition)} with one or more contacts in the "
                 f"year, per discipline ({span})")
        number = figures.next(title)
        svg = bar_chart(
            f"care-{condition}", title=title,
            description=(f"Horizontal bars, one group per discipline and one bar per reference "
                         f"year, length the percentage of prevalent patients with at least one "
                         f"contact. {len(disciplines)} disciplines."),
            categories=[(d, labels.discipline(d)) for d in disciplines],
            series=[(str(y), str(y)) for y in years], values=values)
        note = _all_cause_note(condition, disciplines)
        head = [[th("Discipline", scope="col"), *[th(labels.stratum(s), scope="col") for s in strata],
                 *[th(str(y), scope="colgroup", colspan=3) for y in years],
                 *[th(f"Change {a}\u2013{b}", scope="col") for a, b in pairs]],
                [td_text(""), *[td_text("") for _ in strata],
                 *[th(x, scope="col") for _ in years for x in ("n", "N", "%")],
                 *[th("pp", scope="col") for _ in pairs]]]
        body = []
        for d in disciplines:
            for combo in _strata_rows(tbl, tbl.frame.filter((pl.col("condition") == condition)
                                                            & (pl.col("discipline") == d))):
                cells = [th(labels.discipline(d)), *[td_text(str(combo[s]), cls="stratum") for s in strata]]
                for y in years:
                    row = by_row.get((condition, d, *[str(combo[s]) for s in strata], str(y)))
                    cells += [_td(tbl, row, "n"), _td(tbl, row, "N"), _td(tbl, row, "percentage")]
                for a, b in pairs:
                    row = by_change.get((condition, d, *[str(combo[s]) for s in strata], str(a), str(b)))
                    cells.append(_td(change, row, "change_pp") if change is not None else td_value(None, ""))
                body.append(cells)
        caption = f"Table for figure {number}: {name}, persons with a contact (n) of prevalent persons (N)"
        out.append(figure(number, svg, title, note)
                   + details(f"Table for figure {number} (every value{', by stratum' if strata else ''})",
                             table(caption, head, body)))
    if change is None:
        out.append(_missing(release, "care_use_change", "percentage-point changes"))
    return "".join(out)


def _pairs(change: Table) -> list[tuple[int, int]]:
    pairs = change.frame.select("year_from", "year_to").unique().sort("year_from", "year_to")
    return [(int(a), int(b)) for a, b in pairs.iter_rows()]


def _all_cause_note(condition: str, disciplines: Sequence[str]) -> str:
    """The seed's figure footnote: which disciplines count contacts for any reason."""
    if condition in ("frail_elderly", "intellectual_disability"):
        return ("Contacts for any reason are counted for every discipline of this group "
                "(method, section 3).")
    names = [d for d in disciplines if d in labels.ALL_CAUSE]
    text = f"Contacts for any reason are counted for {', '.join(names)}" if names else ""
    if "DT" in disciplines:
        text += ("; for DT as the study sets it (any reason by default)" if text
                 else "Contacts with DT are counted as the study sets it (any reason by default)")
    if not text:
        return "Contacts are counted for this condition only (method, section 3)."
    return f"{text}; the other disciplines count contacts for this condition (method, section 3)."


def change_table(release: Release) -> str:
    """The percentage-point change per condition and discipline (Total rows)."""
    change = release.tables.get("care_use_change")
    if change is None:
        return _missing(release, "care_use_change", "percentage-point changes")
    totals = change.totals()
    out = []
    for a, b in _pairs(change):
        frame = totals.filter((pl.col("year_from") == a) & (pl.col("year_to") == b))
        body = []
        for condition in _conditions(release, frame["condition"].unique().to_list()):
            rows = {r["discipline"]: r for r in _rows(frame.filter(pl.col("condition") == condition))}
            for i, d in enumerate(labels.discipline_order(rows)):
                row = rows[d]
                first = th(labels.condition(condition)) if i == 0 else td_text("")
                body.append([first, td_text(labels.discipline(d)), _td(change, row, "share_from"),
                             _td(change, row, "share_to"), _td(change, row, "change_pp")])
        head = [[th("Condition", scope="col"), th("Discipline", scope="col"),
                 th(f"{a}", scope="col"), th(f"{b}", scope="col"), th("Change", scope="col")]]
        out.append(table(f"Share of patients with one or more contacts, {a} and {b}, and the change "
                         "in percentage points", head, body, cls="change"))
    return "".join(out)


def _per_condition_figure(release: Release, tbl: Table, figures: Figures, *, chart_id: str,
                          title: str, description: str, counts: tuple[tuple[str, str], ...]) -> str:
    """A figure of ``percentage`` per condition and year (Total rows) and its table."""
    totals = tbl.totals()
    if totals.is_empty():
        return _empty(tbl.name)
    years = _years(tbl.frame)
    conditions = _conditions(release, totals["condition"].unique().to_list())
    values = {(r["condition"], str(r["year"])): _value(tbl, r, "percentage") for r in _rows(totals)}
    number = figures.next(title)
    svg = bar_chart(chart_id, title=title, description=description,
                    categories=[(c, labels.condition(c)) for c in conditions],
                    series=[(str(y), str(y)) for y in years], values=values)
    strata = list(tbl.strata)
    by_row = _index(tbl.frame, ["condition", *strata, "year"])
    columns = [c for c, _ in counts] + ["percentage"]
    head = [[th("Condition", scope="col"), *[th(labels.stratum(s), scope="col") for s in strata],
             *[th(str(y), scope="colgroup", colspan=len(columns)) for y in years]],
            [td_text(""), *[td_text("") for _ in strata],
             *[th(x, scope="col") for _ in years for x in [h for _, h in counts] + ["%"]]]]
    body = []
    for condition in conditions:
        for combo in _strata_rows(tbl, tbl.frame.filter(pl.col("condition") == condition)):
            cells = [th(labels.condition(condition)), *[td_text(str(combo[s]), cls="stratum") for s in strata]]
            for y in years:
                row = by_row.get((condition, *[str(combo[s]) for s in strata], str(y)))
                cells += [_td(tbl, row, c) for c in columns]
            body.append(cells)
    return (figure(number, svg, title)
            + table(f"Table for figure {number}", head, body))


def prevalence(release: Release, figures: Figures) -> str:
    tbl = release.tables.get("prevalence")
    if tbl is None:
        return _missing(release, "prevalence", "prevalence")
    years = " and ".join(str(y) for y in _years(tbl.frame))
    return _per_condition_figure(
        release, tbl, figures, chart_id="prevalence",
        title=f"Prevalence per condition in the study population ({years})",
        description="Horizontal bars, one group per condition and one bar per reference year, "
                    "length the percentage of the study population with the condition.",
        counts=(("numerator", "persons"), ("denominator", "population")))


def referrals(release: Release, figures: Figures) -> str:
    """Figuur 68: the percentage of patients with >= 1 referral to medical specialist care."""
    tbl = release.tables.get("referrals")
    if tbl is None:
        return _missing(release, "referrals", "referrals")
    years = " and ".join(str(y) for y in _years(tbl.frame))
    return _per_condition_figure(
        release, tbl, figures, chart_id="referrals",
        title=f"Percentage of patients with at least one referral to medical specialist care ({years})",
        description="Horizontal bars, one group per condition and one bar per reference year, "
                    "length the percentage of prevalent patients of practices that deliver "
                    "referral data with at least one referral (mental health care not counted).",
        counts=(("n", "referred"), ("N", "of")))


def attrition(release: Release) -> str:
    """Per year: the study population after each exclusion step (condition ``all``), then per condition."""
    tbl = release.tables.get("attrition")
    if tbl is None:
        return _missing(release, "attrition", "attrition")
    head = [[th("Step", scope="col"), th("Before", scope="col"), th("Excluded", scope="col"),
             th("After", scope="col")]]
    out = []
    fallback = release.tables.get("fallback_links")
    for year in _years(tbl.frame):
        frame = tbl.frame.filter(pl.col("year") == year)
        body = [[th(labels.step(r["step"])), _td(tbl, r, "before"), _td(tbl, r, "excluded"),
                 _td(tbl, r, "after")] for r in _rows(frame.filter(pl.col("condition") == "all"))]
        if fallback is not None:  # informational, not a step: of the study population, linked without BSN
            body += [[th("of whom linked without their BSN (TTP fallback)"), td_text(""), td_text(""),
                      _td(fallback, r, "persons")] for r in _rows(fallback.frame.filter(pl.col("year") == year))]
        out.append(table(f"Study population {year}: persons before and after each exclusion", head, body,
                         cls="attrition"))
        others = frame.filter(pl.col("condition") != "all")
        if others.height:
            body = []
            for condition in _conditions(release, others["condition"].unique().to_list()):
                for i, r in enumerate(_rows(others.filter(pl.col("condition") == condition))):
                    first = th(labels.condition(condition)) if i == 0 else td_text("")
                    body.append([first, td_text(labels.step(r["step"])), _td(tbl, r, "before"),
                                 _td(tbl, r, "excluded"), _td(tbl, r, "after")])
            head_c = [[th("Condition", scope="col"), *head[0]]]
            out.append(details(f"Per condition, {year}",
                               table(f"Persons with each condition before and after each exclusion, {year}",
                                     head_c, body)))
    return "".join(out)


def top(release: Release) -> str:
    """The top groups per discipline and year (contacts, share of contacts, persons)."""
    tbl = release.tables.get("top")
    if tbl is None:
        return _missing(release, "top", "top lists")
    withheld_rows = tbl.spec.get("withheld_rows", {})
    out = []
    for d in labels.discipline_order(tbl.frame["discipline"].unique().to_list()):
        parts = []
        for year in _years(tbl.frame.filter(pl.col("discipline") == d)):
            rows = list(_rows(tbl.frame.filter((pl.col("discipline") == d) & (pl.col("year") == year))
                              .sort("rank")))
            listed = {int(r["rank"]): r for r in rows}
            last = max(listed, default=0)
            n_withheld = int(withheld_rows.get(f"{year} {d}", 0))
            # Withheld rows keep their ranks: gaps, then any after the last listed row.
            trailing = max(0, n_withheld - (last - len(listed)))
            body = []
            for rank in range(1, last + trailing + 1):
                r = listed.get(rank)
                if r is None:  # a rank gap: a withheld row (fewer than T persons)
                    body.append([td_text(str(rank)), ('<td class="hidden" colspan="4" data-status="withheld">'
                                 '<span class="marker" aria-hidden="true"></span>withheld (fewer than '
                                 "T persons; its contacts are in the remainder)</td>")])
                    continue
                body.append([td_text(str(rank)), th(str(r["group"])), _td(tbl, r, "contacts"),
                             _td(tbl, r, "share"), _td(tbl, r, "persons")])
            total = _td(tbl, rows[0], "total_contacts") if rows else td_value(None, "")
            body.append([td_text(""), th("All contacts of the discipline"), total, td_text(""), td_text("")])
            head = [[th("Rank", scope="col"), th("Group", scope="col"), th("Contacts", scope="col"),
                     th("Share", scope="col"), th("Persons", scope="col")]]
            caption = f"{labels.discipline(d)}, {year}"
            if n_withheld:
                caption += f" ({n_withheld} row(s) withheld: fewer than T persons)"
            parts.append(table(caption, head, body, cls="top"))
        out.append(details(f"{labels.discipline(d)}: top groups", "".join(parts)))
    return "".join(out)


def acsc(release: Release) -> str:
    tbl = release.tables.get("acsc")
    if tbl is None:
        return _missing(release, "acsc", "ACSC admissions")
    head = [[th("Year", scope="col"), th("Admissions", scope="col"), th("Persons", scope="col")]]
    body = [[th(str(r["year"])), _td(tbl, r, "admissions"), _td(tbl, r, "persons")]
            for r in _rows(tbl.frame.sort("year"))]
    return ("<p>Hospital admissions for ambulatory-care-sensitive conditions, all insured persons "
            "outside long-term care (Wlz) institutions, from the claims alone (method, section 7).</p>"
            + table("ACSC admissions per year", head, body))


def withheld(release: Release) -> str:
    """The withheld tables and withheld rows, each with the release's reason."""
    items = [f"<li>table <code>{escape(n)}</code>: {escape(r)}</li>" for n, r in release.withheld.items()]
    for name, tbl in release.tables.items():
        for where, n in tbl.spec.get("withheld_rows", {}).items():
            items.append(f"<li>table <code>{escape(name)}</code>, {escape(str(where))}: {int(n)} row(s) "
                         "withheld (fewer than T persons; not listed)</li>")
    if not items:
        return "<p>Nothing is withheld: every table of the study is in the release.</p>"
    return f"<ul>{''.join(items)}</ul>"


KNOWN = tuple(KNOWN_TABLES)


def other_tables(release: Release) -> str:
    """Tables the report has no section for, shown as they are (coordinates and values)."""
    out = []
    for name, tbl in release.tables.items():
        if name in KNOWN:
            continue
        values = list(tbl.values)
        head = [[*[th(c, scope="col") for c in tbl.coordinates], *[th(v, scope="col") for v in values]]]
        body = [[*[td_text(str(r[c])) for c in tbl.coordinates], *[_td(tbl, r, v) for v in values]]
                for r in _rows(tbl.frame)]
        out.append(table(f"Table {name}", head, body))
    return "".join(out)
