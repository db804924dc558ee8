"""The report (``pfl-report``): rendering functions, refusing bad releases, showing only the release.

Releases here are written by hand (``tests/release_builder.py``) following docs/release-format.md;
the browser test (``tests/integration/test_report_browser.py``) renders a release of the engine.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import polars as pl
import pytest
from release_builder import rewrite_checksums, small_release
from report_dom import DIGIT, Element, cell_keys, expected_text, parse

from report import (
    ReleaseFormatError,
    ReleaseNotFoundError,
    ReleaseTamperedError,
    Value,
    bar_chart,
    read_release,
    render,
    write_report,
)
from report.__main__ import run
from report.charts import nice_scale

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"


# --- the bar chart --------------------------------------------------------------------------------


def _chart(values: dict[tuple[str, str], Value]) -> Element:
    svg = bar_chart("t", title="Care use of c", description="Bars.",
                    categories=[("HA", "GP (HA)"), ("DT", "Dietetics (DT)")],
                    series=[("2019", "2019"), ("2023", "2023")], values=values)
    return parse(svg).by_tag("svg")[0]


def _bars(svg: Element) -> dict[tuple[str, str], Element]:
    return {(g.attrs["data-category"], g.attrs["data-series"]): g
            for g in svg.by_tag("g") if g.has_class("bar")}


def test_bar_chart_draws_a_hidden_value_as_a_hatched_marker_with_its_reason_and_no_number() -> None:
    svg = _chart({("HA", "2019"): Value(40.0), ("HA", "2023"): Value(35.5),
                  ("DT", "2019"): Value(None, "suppressed"), ("DT", "2023"): Value(None, "below-threshold")})
    bars = _bars(svg)
    assert len(bars) == 4
    for key, status in ((("DT", "2019"), "suppressed"), (("DT", "2023"), "below-threshold")):
        bar = bars[key]
        assert bar.attrs["data-status"] == status and bar.has_class("hidden")
        marker = bar.by_tag("rect")[0]
        assert marker.has_class("hidden-marker") and marker.attrs["fill"] == "url(#t-hatch)"
        label = "".join(t.text for t in bar.by_tag("text"))
        assert label == f"hidden ({status.replace('-', ' ')})"
        assert not DIGIT.search(label)
    assert svg.find_all(lambda e: e.tag == "pattern" and e.attrs.get("id") == "t-hatch")
    assert "".join(t.text for t in bars[("HA", "2023")].by_tag("text")) == "35.5%"


def test_bar_chart_is_an_accessible_image_with_a_title_and_a_description() -> None:
    svg = _chart({("HA", "2019"): Value(40.0), ("DT", "2019"): Value(None, "suppressed")})
    assert svg.attrs["role"] == "img"
    ids = svg.attrs["aria-labelledby"].split()
    named = {e.attrs.get("id"): e for e in svg.iter()}
    assert [named[i].tag for i in ids] == ["title", "desc"]
    assert named[ids[0]].text == "Care use of c"
    assert "1 of 2 values are hidden" in named[ids[1]].text
    # every bar has its own tooltip naming category, series and what is shown
    assert [t.text for g in _bars(svg).values() for t in g.by_tag("title")] == [
        "GP (HA), 2019: 40.0%", "Dietetics (DT), 2019: hidden (suppressed)"]


def test_bar_lengths_are_proportional_to_the_values_on_a_round_axis() -> None:
    svg = _chart({("HA", "2019"): Value(40.0), ("HA", "2023"): Value(20.0), ("DT", "2019"): Value(0.0)})
    widths = {k: float(g.by_tag("rect")[0].attrs["width"]) for k, g in _bars(svg).items()}
    assert widths[("HA", "2019")] == pytest.approx(2 * widths[("HA", "2023")], abs=0.11)
    assert widths[("DT", "2019")] == 0
    ticks = [t.text for t in svg.by_tag("text") if t.has_class("tick")]
    assert ticks == ["0", "10", "20", "30", "40"]


@pytest.mark.parametrize(("largest", "top", "step"), [
    (40.0, 40.0, 10.0), (40.8, 50.0, 10.0), (96.2, 100.0, 20.0), (0.7, 0.8, 0.2), (12.4, 15.0, 5.0),
    (3.0, 3.0, 1.0), (0.0004, 0.0004, 0.0001)])
def test_axis_scale_is_a_round_step_and_covers_the_largest_value(largest: float, top: float,
                                                                   step: float) -> None:
    got_top, got_step = nice_scale(largest)
    assert (got_top, got_step) == pytest.approx((top, step))
    assert got_top >= largest


@pytest.mark.parametrize(("value", "unit", "text"), [
    (Value(12345), "persons", "12,345"), (Value(12.64), "percent", "12.6%"),
    (Value(0.2567), "fraction", "25.7%"), (Value(2.06), "pp", "+2.1 pp"), (Value(-0.44), "pp", "\u22120.4 pp"),
    (Value(0.04), "pp", "0.0 pp"), (Value(None, "suppressed"), "persons", "hidden (suppressed)"),
    (Value(None, "below-threshold"), "percent", "hidden (below threshold)"), (Value(None), "persons", "n/a"),
])
def test_values_print_as_the_seed_report_prints_them(value: Value, unit: str, text: str) -> None:
    assert value.text(unit) == text


# --- reading: what the report refuses --------------------------------------------------------------


def _cli(tmp_path: Path, release: Path, *extra: str) -> tuple[int, Path]:
    out = tmp_path / "out" / "report.html"
    return run([f"release={release}", f"out={out}", *extra]), out


def _nothing_written(out: Path) -> bool:
    return not out.parent.exists() or not any(out.parent.iterdir())


def test_a_tampered_release_is_refused_with_exit_1_and_nothing_written(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    release = small_release(tmp_path / "release")
    frame = pl.read_parquet(release / "care_use.parquet")
    # Fill one hidden value in, as someone editing the released file would.
    frame.with_columns(pl.col("n").fill_null(3)).write_parquet(release / "care_use.parquet")
    with pytest.raises(ReleaseTamperedError, match="care_use.parquet"):
        read_release(release)
    code, out = _cli(tmp_path, release)
    err = capsys.readouterr().err
    assert code == 1 and "SHA-256" in err and "Traceback" not in err
    assert _nothing_written(out)


def test_a_changed_csv_alone_is_refused_too(tmp_path: Path) -> None:
    release = small_release(tmp_path / "release")
    text = (release / "acsc.csv").read_text()
    (release / "acsc.csv").write_text(text.replace("40", "41", 1))
    with pytest.raises(ReleaseTamperedError, match="acsc.csv"):
        read_release(release)


@pytest.mark.parametrize(("damage", "error", "code", "says"), [
    ("no manifest", ReleaseNotFoundError, 3, "no manifest.json"),
    ("listed file missing", ReleaseNotFoundError, 3, "not a file of the release"),
    ("other format", ReleaseFormatError, 4, "not a release manifest"),
    ("manifest not JSON", ReleaseFormatError, 4, "not a readable JSON manifest"),
    ("value under a hidden status", ReleaseFormatError, 4, "present under a hidden status"),
    ("column not described", ReleaseFormatError, 4, "not described: patient_id"),
    ("unknown status", ReleaseFormatError, 4, "not a status of the format"),
    ("table without checksum", ReleaseFormatError, 4, "no Parquet file with a checksum"),
])
def test_a_broken_release_is_refused_naming_what_is_wrong(
    tmp_path: Path, damage: str, error: type, code: int, says: str, capsys: pytest.CaptureFixture
) -> None:
    release = small_release(tmp_path / "release")
    manifest_path = release / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    care = pl.read_parquet(release / "care_use.parquet")
    if damage == "no manifest":
        manifest_path.unlink()
    elif damage == "listed file missing":
        (release / "top.csv").unlink()
    elif damage == "other format":
        manifest_path.write_text(json.dumps({**manifest, "format": "pfl-release/0"}))
    elif damage == "manifest not JSON":
        manifest_path.write_text("{not json")
    elif damage == "table without checksum":
        del manifest["files"]["care_use.parquet"]
        manifest_path.write_text(json.dumps(manifest))
    else:
        if damage == "value under a hidden status":
            care = care.with_columns(pl.col("n").fill_null(4))
        elif damage == "column not described":
            care = care.with_columns(pl.lit("x").alias("patient_id"))
        else:
            care = care.with_columns(pl.col("n_status").replace("suppressed", "secondary"))
        care.write_parquet(release / "care_use.parquet")
        rewrite_checksums(release)  # checksums right: the content itself is wrong
    with pytest.raises(error, match=re.escape(says)):
        read_release(release)
    got, out = _cli(tmp_path, release)
    err = capsys.readouterr().err
    assert got == code and says in err and "Traceback" not in err
    assert _nothing_written(out)


def test_an_existing_report_is_kept_unless_overwrite_is_given(tmp_path: Path) -> None:
    release = small_release(tmp_path / "release")
    code, out = _cli(tmp_path, release)
    assert code == 0 and out.is_file()
    out.write_text("mine")
    assert _cli(tmp_path, release)[0] == 9 and out.read_text() == "mine"
    assert _cli(tmp_path, release, "overwrite=true")[0] == 0 and out.read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]  # no partial file left


@pytest.mark.parametrize(("args", "says"), [
    ((), "missing setting(s): release, out"),
    (("release=x", "out=y", "colour=red"), "unknown setting 'colour'"),
    (("release=x", "out=y", "overwrite=maybe"), "overwrite: expected true or false"),
    (("release",), "'release' is not key=value"),
])
def test_settings_errors_exit_2_and_name_every_problem(args: tuple[str, ...], says: str,
                                                       capsys: pytest.CaptureFixture) -> None:
    assert run(list(args)) == 2
    assert says in capsys.readouterr().err


def test_the_report_is_never_written_into_the_release(tmp_path: Path) -> None:
    release = small_release(tmp_path / "release")
    assert run([f"release={release}", f"out={release / 'report.html'}"]) == 2
    assert not (release / "report.html").exists()


# --- what the report shows ---------------------------------------------------------------------------


def _cells(page: Element) -> dict[str, list[Element]]:
    found: dict[str, list[Element]] = {}
    for e in page.find_all(lambda e: "data-cell" in e.attrs):
        found.setdefault(e.attrs["data-cell"], []).append(e)
    return found


@pytest.mark.parametrize("sex", [False, True], ids=["unstratified", "by sex"])
def test_every_value_of_the_release_is_shown_as_released_or_as_hidden_with_its_reason(
    tmp_path: Path, sex: bool
) -> None:
    release = read_release(small_release(tmp_path / "release", sex=sex))
    cells = _cells(parse(render(release)))
    checked = hidden = 0
    for name, table in release.tables.items():
        for column, status in table.values.items():
            keys = list(cell_keys(name, table.frame, table.coordinates, column))
            for key, row in keys:
                elements = cells.get(key, [])
                # total_contacts is one value per list, printed once under it
                if column != "total_contacts" and name != "care_use_change":
                    assert elements, key
                for element in elements:
                    text = element.text.strip()
                    assert text == expected_text(row[column], row[status], table.unit(column)), key
                    if row[status]:
                        assert element.attrs["data-status"] == row[status] and not DIGIT.search(text)
                        hidden += 1
                    checked += 1
    assert checked > 100 and hidden >= 10
    # every cell on the page is one of the release's
    known = {k for n, t in release.tables.items() for c in t.values
             for k, _ in cell_keys(n, t.frame, t.coordinates, c)}
    assert set(cells) <= known


def test_one_figure_per_condition_then_prevalence_and_referrals_each_with_a_title(tmp_path: Path) -> None:
    release = read_release(small_release(tmp_path / "release"))
    page = parse(render(release))
    charts = [s for s in page.by_tag("svg") if s.has_class("chart")]
    assert [s.attrs["id"] for s in charts] == ["care-diabetes", "care-asthma_copd", "prevalence", "referrals"]
    for svg in charts:
        title = next(e for e in svg.iter() if e.attrs.get("id") == svg.attrs["aria-labelledby"].split()[0])
        assert title.tag == "title" and title.text.strip()
    figures = page.by_tag("figure")
    assert len(figures) == 4 and all(f.by_tag("figcaption") for f in figures)


def test_figures_of_a_stratified_release_draw_the_total_rows(tmp_path: Path) -> None:
    release = read_release(small_release(tmp_path / "release", sex=True))
    page = parse(render(release))
    care = release.tables["care_use"].frame.filter(pl.col("sex") == "Total")
    svg = next(s for s in page.by_tag("svg") if s.attrs.get("id") == "care-diabetes")
    bars = _bars(svg)
    rows = care.filter(pl.col("condition") == "diabetes")
    assert len(bars) == rows.height
    for row in rows.iter_rows(named=True):
        bar = bars[(row["discipline"], str(row["year"]))]
        label = "".join(t.text for t in bar.by_tag("text"))
        assert label == expected_text(row["percentage"], row["percentage_status"], "percent")
    # and the table under it has every stratum
    strata = {td.text for td in page.by_tag("td") if td.text in ("F", "M", "Total")}
    assert strata == {"F", "M", "Total"}


def test_a_withheld_table_is_listed_with_the_release_reason_and_has_no_figure(tmp_path: Path) -> None:
    release = read_release(small_release(tmp_path / "release", top_gap=True,
                                         withheld={"referrals": "no safe suppression pattern: A4"}))
    html = render(release)
    page = parse(html)
    assert "referrals" not in [s.attrs.get("id") for s in page.by_tag("svg")]
    withheld = next(s for s in page.by_tag("section") if s.attrs.get("id") == "withheld")
    assert "referrals" in withheld.text and "no safe suppression pattern: A4" in withheld.text
    assert "1 row(s) withheld" in withheld.text  # the top list's row, from an older manifest


def test_the_report_says_the_release_carries_no_linkage_summary(tmp_path: Path) -> None:
    page = parse(render(read_release(small_release(tmp_path / "release"))))
    linkage = next(s for s in page.by_tag("section") if s.attrs.get("id") == "linkage")
    assert "carries no linkage summary" in linkage.text


def test_the_page_is_self_contained_and_the_same_release_gives_the_same_bytes(tmp_path: Path) -> None:
    release = read_release(small_release(tmp_path / "release"))
    html = render(release)
    assert html == render(read_release(release.path))
    assert "<script" not in html.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!#)""", html), "only in-page links"
    assert not re.search(r"url\((?!#)", html), "no external images or fonts in CSS or SVG"
    assert re.findall(r"https?://[^\s\"'<>]+", html) == ["http://www.w3.org/2000/svg"] * html.count("<svg")


_IDENTIFIER_LIKE = [
    (re.compile(r"(?i)\b(?:p1|p2|tk)v\d+\."), "labelled pseudonym or token"),
    (re.compile(r"\b\d{9,}\b"), "a run of nine or more digits (BSN, id)"),
    (re.compile(r"\b[0-9a-f]{17,}\b"), "a long hex string (hash, key, pseudonym body)"),
    (re.compile(r"(?i)\b(?:bsn|patient_id|claim_id|pseudonym|token)\b"), "an identifier's column name"),
]


def test_the_report_holds_no_identifier_like_content(tmp_path: Path) -> None:
    release = small_release(tmp_path / "release", sex=True)
    # Person-level files beside the release (where a careless steward might keep them) are never read.
    (tmp_path / "persons.csv").write_text("bsn,patient_id\n123456782,P2v1.0badcafe.0123\n")
    page = parse(render(read_release(release)))
    text = page.text + " ".join(v for e in page.iter() for v in e.attrs.values())
    for pattern, what in _IDENTIFIER_LIKE:
        assert not pattern.search(text), what


def test_the_report_stands_alone_importing_nothing_of_the_engine() -> None:
    # It may import the independent auditor (audit/), which imports nothing of the engine either.
    engine = {"extracts", "pseudonymisation", "linkage", "cohort", "disclosure", "release", "pipeline"}
    for path in (ROOT / "report").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            assert not {n.split(".")[0] for n in names} & engine, path


def test_write_report_counts_the_hidden_values_of_the_release(tmp_path: Path) -> None:
    folder = small_release(tmp_path / "release")
    result = write_report(folder, tmp_path / "r.html")
    release = read_release(folder)
    expected: dict[str, int] = {}
    for table in release.tables.values():
        for status in table.values.values():
            for s in table.frame[status].to_list():
                if s:
                    expected[s] = expected.get(s, 0) + 1
    assert result.hidden == expected
    assert len(result.figures) == 4


@pytest.mark.parametrize(("change", "says"), [
    (lambda f: f.drop("discipline"), "lacks discipline"),
    (lambda f: f.with_columns(pl.col("year").cast(pl.String)), "wrong type (year"),
    (lambda f: f.with_columns(pl.col("N").cast(pl.String)), "wrong type (N"),
])
def test_a_table_without_what_the_format_gives_it_is_refused(tmp_path: Path, change, says: str) -> None:
    release = small_release(tmp_path / "release")
    manifest = json.loads((release / "manifest.json").read_text())
    frame = change(pl.read_parquet(release / "care_use.parquet"))
    frame.write_parquet(release / "care_use.parquet")
    spec = manifest["tables"]["care_use"]
    spec["coordinates"] = [c for c in spec["coordinates"] if c in frame.columns]
    (release / "manifest.json").write_text(json.dumps(manifest))
    rewrite_checksums(release)
    with pytest.raises(ReleaseFormatError, match=re.escape(says)):
        read_release(release)


def test_an_empty_table_is_said_to_be_empty_not_drawn(tmp_path: Path) -> None:
    release = small_release(tmp_path / "release")
    frame = pl.read_parquet(release / "prevalence.parquet").clear()
    frame.write_parquet(release / "prevalence.parquet")
    manifest = json.loads((release / "manifest.json").read_text())
    manifest["tables"]["prevalence"]["rows"] = 0
    (release / "manifest.json").write_text(json.dumps(manifest))
    rewrite_checksums(release)
    page = parse(render(read_release(release)))
    assert "prevalence" not in [s.attrs.get("id") for s in page.by_tag("svg")]
    section = next(s for s in page.by_tag("section") if s.attrs.get("id") == "prevalence")
    assert "has no rows" in section.text


@pytest.mark.parametrize(("withheld", "ranks"), [(1, ["2"]), (2, ["2", "4"])])
def test_withheld_top_rows_are_marked_at_their_ranks(tmp_path: Path, withheld: int, ranks: list[str]) -> None:
    # The small release lists ranks 1 and 3 of HA 2019: rank 2 is withheld, and a second
    # withheld row can only come after the last listed one (releases made before issue 11.5; the
    # report still marks them).
    release = small_release(tmp_path / "release", top_gap=True)
    manifest = json.loads((release / "manifest.json").read_text())
    manifest["tables"]["top"]["withheld_rows"] = {"2019 HA": withheld}
    (release / "manifest.json").write_text(json.dumps(manifest))
    page = parse(render(read_release(release)))
    rows = [tr for tr in page.by_tag("tr") if tr.find_all(lambda e: e.attrs.get("data-status") == "withheld")]
    assert [tr.by_tag("td")[0].text for tr in rows] == ranks
    assert all("withheld" in tr.text and not DIGIT.search(tr.by_tag("td")[1].text) for tr in rows)
