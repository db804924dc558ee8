"""The report of an engine release, opened in headless Chromium (issue 6, item 1).

The tiny extracts go through the study and ``make_release``; ``pfl-report`` renders the release
folder, and Chromium (Debian's ``chromium``; ``./run tests`` installs it) loads the file offline:
the page must render without a console message, show every figure with an accessible title,
draw a hidden marker wherever the release hides a value, and never show a hidden value. The
test knows the hidden values (it has the study folder); the report does not.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import polars as pl
import pytest
import yaml
from command_runner import run_command
from report_dom import DIGIT, Element, cell_keys, expected_text, parse

from cohort.config import parse_study
from disclosure import Policy
from cohort.output import population_fingerprint, write_study
from release.ledger import create_ledger
from release.make import make_release
from cohort.study import run_study
from extracts.codelists import load_catalogue
from report.document import CSP

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"


def chromium() -> str:
    found = os.environ.get("PFL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is missing in CI: ./run tests installs it (apt-get install chromium)")
    pytest.skip("chromium is not installed (./run tests installs it; apt-get install chromium)")
    raise AssertionError("unreachable")


def open_in_chromium(page: Path, tmp: Path, *, screenshot: Path | None = None) -> tuple[str, list[str]]:
    """Load ``page`` offline; return the DOM after rendering and Chromium's console messages."""
    profile = tmp / f"profile-{page.stem}-{'shot' if screenshot else 'dom'}"
    profile.mkdir(parents=True)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0"]
    action = [f"--screenshot={screenshot}", "--window-size=1100,3000"] if screenshot else ["--dump-dom"]
    proc = subprocess.run([chromium(), *flags, *action, page.resolve().as_uri()], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


# --- an engine release of the tiny extracts ---------------------------------------------------------


@pytest.fixture(scope="module")
def engine_release(tiny_linked: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(study folder, release folder) of the seed study on the tiny extracts."""
    work = tmp_path_factory.mktemp("report")
    config = parse_study(yaml.safe_load((CONF / "study" / "seed_study.yaml").read_text()),
                         load_catalogue(CONF / "conditions" / "seed_study.yaml"))
    tables = run_study(tiny_linked, config)
    write_study(tables, work / "study", config,
                linked_manifest=json.loads((tiny_linked / "manifest.json").read_text()),
                population=population_fingerprint(tiny_linked))
    make_release(work / "study", work / "release", ledger=create_ledger(work / "ledger", Policy()).path)
    return work / "study", work / "release"


@pytest.fixture(scope="module")
def rendered(engine_release: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Element, list[str], Path]:
    """The report made by the installed command, its DOM in Chromium, the console, a screenshot."""
    _, release = engine_release
    tmp = tmp_path_factory.mktemp("chromium")
    html = tmp / "report.html"
    proc = run_command("pfl-report", f"release={release}", f"out={html}", cwd=tmp / "cwd")
    assert proc.returncode == 0, proc.stderr
    dom, console = open_in_chromium(html, tmp)
    shot = tmp / "report.png"
    _, console_shot = open_in_chromium(html, tmp, screenshot=shot)
    return parse(dom), console + console_shot, shot


def _released(release: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(release / f"{name}.parquet")


def _charts(page: Element) -> list[Element]:
    return [s for s in page.by_tag("svg") if s.has_class("chart")]


# --- the tests ---------------------------------------------------------------------------------------


def test_chromium_renders_the_report_without_console_messages(rendered: tuple[Element, list[str], Path]) -> None:
    page, console, _ = rendered
    assert console == []
    assert page.by_tag("main") and page.by_tag("h1")


def test_the_console_check_catches_a_page_that_loads_something_or_runs_a_script(tmp_path: Path) -> None:
    # The check above can fail: under the report's content security policy, an image from the
    # network or a script is blocked, and Chromium logs each to the console.
    page = tmp_path / "broken.html"
    page.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"><meta http-equiv='
                    f'"Content-Security-Policy" content="{CSP}"><title>x</title></head><body>'
                    '<img src="http://example.invalid/x.png" alt="x"><script>document.title = 1;</script>'
                    "</body></html>")
    _, console = open_in_chromium(page, tmp_path)
    assert len(console) == 2 and "example.invalid" in console[0] and "script" in console[1]


def test_every_figure_is_shown_with_an_accessible_title(rendered: tuple[Element, list[str], Path],
                                                        engine_release: tuple[Path, Path]) -> None:
    page, _, _ = rendered
    _, release = engine_release
    manifest = json.loads((release / "manifest.json").read_text())
    released = {n for n, t in manifest["tables"].items() if t["status"] == "released"}
    conditions = (_released(release, "care_use")["condition"].n_unique() if "care_use" in released else 0)
    expected = conditions + ("prevalence" in released) + ("referrals" in released)
    charts = _charts(page)
    assert len(charts) == expected == len(page.by_tag("figure"))
    for svg in charts:
        assert svg.attrs["role"] == "img"
        title_id, desc_id = svg.attrs["aria-labelledby"].split()
        named = {e.attrs.get("id"): e for e in svg.iter()}
        assert named[title_id].tag == "title" and named[title_id].text.strip()
        assert named[desc_id].tag == "desc" and named[desc_id].text.strip()


def test_hidden_markers_are_drawn_where_the_release_hides_a_percentage(
    rendered: tuple[Element, list[str], Path], engine_release: tuple[Path, Path]
) -> None:
    page, _, _ = rendered
    _, release = engine_release
    care = _released(release, "care_use")
    charts = {s.attrs["id"]: s for s in _charts(page)}
    hidden = 0
    for row in care.iter_rows(named=True):
        svg = charts[f"care-{row['condition']}"]
        bar = next(g for g in svg.by_tag("g") if g.has_class("bar")
                   and (g.attrs["data-category"], g.attrs["data-series"]) == (row["discipline"], str(row["year"])))
        label = "".join(t.text for t in bar.by_tag("text"))
        assert label == expected_text(row["percentage"], row["percentage_status"], "percent")
        if row["percentage_status"]:
            hidden += 1
            assert bar.attrs["data-status"] == row["percentage_status"]
            assert bar.find_all(lambda e: e.has_class("hidden-marker")) and not DIGIT.search(label)
    assert hidden > 0, "the tiny release hides care-use percentages"


def _percent_texts(release: Path) -> set[str]:
    """Every percentage the report may print: the release's shown percentages and shares."""
    manifest = json.loads((release / "manifest.json").read_text())
    texts = set()
    for name, spec in manifest["tables"].items():
        if spec["status"] != "released":
            continue
        frame = _released(release, name)
        for column, entry in spec.get("percentages", {}).items():
            unit = "percent" if entry["scale"] == 100 else "fraction"
            shown = frame.filter(pl.col(entry["status"]) == "")[column].drop_nulls()
            texts |= {expected_text(v, "", unit) for v in shown.to_list()}
    return texts


def test_no_hidden_value_appears_in_the_rendered_page(rendered: tuple[Element, list[str], Path],
                                                      engine_release: tuple[Path, Path]) -> None:
    page, _, _ = rendered
    study, release = engine_release
    cells: dict[str, list[Element]] = {}
    for e in page.find_all(lambda e: "data-cell" in e.attrs):
        cells.setdefault(e.attrs["data-cell"], []).append(e)
    text = page.text
    allowed = _percent_texts(release)
    coordinates = ["year", "condition", "discipline"]
    truth = pl.read_parquet(study / "care_use.parquet").with_columns(
        percentage=100 * pl.col("n") / pl.col("N"))
    released = _released(release, "care_use").join(truth, on=coordinates, suffix="_true")
    leaks_checked = 0
    for column in ("n", "percentage"):
        for key, row in cell_keys("care_use", released, coordinates, column):
            if not row[f"{column}_status"]:
                continue
            # Where the report prints this value's cell, it prints the reason and no number.
            assert cells[key], key
            for element in cells[key]:
                assert element.attrs["data-status"] == row[f"{column}_status"]
                assert not DIGIT.search(element.text), key
            if column == "percentage" and row["N_true"]:
                true_text = expected_text(row["percentage_true"], "", "percent")
                if true_text not in allowed:  # a figure the release never shows for anything
                    assert not re.search(rf"(?<![\d.]){re.escape(true_text)}", text), key
                    leaks_checked += 1
    assert leaks_checked > 0


def test_the_screenshot_is_a_full_page_image(rendered: tuple[Element, list[str], Path]) -> None:
    _, _, shot = rendered
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1100, 3000)
    # A blank page compresses to a few kilobytes; text, bars and hatching do not.
    assert len(data) > 50_000


def test_the_report_names_the_release_and_its_policy(rendered: tuple[Element, list[str], Path],
                                                     engine_release: tuple[Path, Path]) -> None:
    page, _, _ = rendered
    _, release = engine_release
    manifest = json.loads((release / "manifest.json").read_text())
    header = page.by_tag("header")[0].text
    assert manifest["release_id"] in header and manifest["created"] in header
    assert manifest["engine"]["version"] in header and manifest["study"]["name"] in header
    assert re.search(rf"threshold T = {manifest['policy']['threshold']}\b", header)
