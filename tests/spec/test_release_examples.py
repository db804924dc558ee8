"""The worked examples of ``shared/spec/disclosure.md`` through the release path and the auditor.

Each example is written as a study folder (the cohort of one condition by strata, T = 10), made
into a release by :func:`release.make.make_release` — Total margins added, every table
linked — and audited from the folder alone by :func:`audit.audit_release`. The tests assert the
hidden cells the spec names, the intervals it quotes, that the audit passes, and the two-release
example: the ledger refuses the second release and nothing is written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
from study_builder import write_study

from audit import FeasibleRegion, audit_release, read_release
from audit.release import release_cells
from audit.structure import instantiate
from disclosure import Policy
from release.errors import LedgerRefusal
from release.ledger import create_ledger
from release.make import make_release
from release.public_ids import RELEASE_ID

KEY_YEAR = "2019"


def release(tmp_path: Path, numerators, strata, *, name: str = "r", ledger: str = "ledger", rest: int = 1000,
            persons_of: str | None = None):
    study = write_study(tmp_path / f"study-{name}", numerators, strata=strata, rest=rest,
                        persons_of=None if persons_of is None else tmp_path / f"study-{persons_of}")
    if not (tmp_path / ledger / "ledger.json").exists():
        create_ledger(tmp_path / ledger, Policy())
    return make_release(study, tmp_path / name, ledger=tmp_path / ledger)


def hidden_cells(out: Path, strata: list[str]) -> set[tuple[str, ...]]:
    """Inner cells (no Total) of the released prevalence numerators that are suppressed."""
    frame = pl.read_parquet(out / "prevalence.parquet")
    inner = frame.filter(*(pl.col(s) != "Total" for s in strata))
    return {tuple(row) for row in inner.filter(pl.col("numerator_status") == "suppressed").select(strata).rows()}


def assert_audit_passes(out: Path, ledger: Path) -> None:
    for report in (audit_release(out), audit_release(out, ledger=ledger)):
        assert report.passed, [f for f in report.findings if not f.advisory]
    assert audit_release(out, ledger=ledger).mode == "verification"


# -- 1-D tables with a published total ---------------------------------------------------------

ONE_WAY = [
    pytest.param([3, 8, 16, 23], {"a", "b"}, id="3,8,16,23|50:two_primaries_protect_each_other"),
    pytest.param([3, 12, 16, 23], {"a", "b"}, id="3,12,16,23|54:lone_primary_and_the_smallest_secondary"),
    pytest.param([2, 3, 40, 55], {"a", "b", "c"}, id="2,3,40,55|100:a3_hidden_sum_5"),
    pytest.param([1, 9, 30, 60], {"a", "b", "c"}, id="1,9,30,60|100:a4_the_singleton_knows_itself"),
    pytest.param([0, 4, 30, 60], {"b", "c"}, id="0,4,30,60|94:zero_published_never_secondary"),
]


@pytest.mark.parametrize(("values", "expected"), ONE_WAY)
def test_release_one_way_hides_the_spec_cells_and_passes_the_audit(tmp_path, values, expected):
    result = release(tmp_path, values, {"region": list("abcd")})
    assert hidden_cells(result.out, ["region"]) == {(r,) for r in expected}
    total = pl.read_parquet(result.out / "prevalence.parquet").filter(pl.col("region") == "Total")
    assert total["numerator_status"].to_list() == [""]  # the total stays published
    assert_audit_passes(result.out, tmp_path / "ledger")


def test_release_one_way_two_primaries_each_lie_in_0_to_11(tmp_path):
    result = release(tmp_path, [3, 8, 16, 23], {"region": list("abcd")})
    rel = read_release(result.out)
    cells = release_cells(rel)
    structure = instantiate([(rel, "")], set(cells.published) | cells.hidden)
    region = FeasibleRegion(structure.equations, cells.published, sorted(cells.hidden | structure.derived, key=repr))
    for level in "ab":
        interval = region.interval(("prevalent", (("condition", "c"), ("region", level), ("year", KEY_YEAR))))
        assert (interval.lo, interval.hi) == (0, 11)


# -- 2-D region x sex ---------------------------------------------------------------------------

REGION_SEX = {("A", "M"): 18, ("A", "F"): 2, ("B", "M"): 14, ("B", "F"): 19,
              ("C", "M"): 12, ("C", "F"): 10, ("D", "M"): 11, ("D", "F"): 14}  # fmt: skip
STRATA_2D = {"region": list("ABCD"), "sex": ["M", "F"]}


def test_release_region_by_sex_hides_a_and_c_and_a_f_lies_in_0_to_12(tmp_path):
    result = release(tmp_path, REGION_SEX, STRATA_2D)
    assert hidden_cells(result.out, ["region", "sex"]) == {("A", "M"), ("A", "F"), ("C", "M"), ("C", "F")}
    rel = read_release(result.out)
    cells = release_cells(rel)
    structure = instantiate([(rel, "")], set(cells.published) | cells.hidden)
    region = FeasibleRegion(structure.equations, cells.published, sorted(cells.hidden | structure.derived, key=repr))
    af = ("prevalent", (("condition", "c"), ("region", "A"), ("sex", "F"), ("year", KEY_YEAR)))
    assert (region.interval(af).lo, region.interval(af).hi) == (0, 12)
    # The same cohort sizes in care_use are the same cells: hidden exactly where prevalence hides them.
    care = pl.read_parquet(result.out / "care_use.parquet").filter(pl.col("sex") != "Total", pl.col("region") != "Total")
    assert {tuple(r) for r in care.filter(pl.col("N_status") == "suppressed").select("region", "sex").rows()} == \
        {("A", "M"), ("A", "F"), ("C", "M"), ("C", "F")}
    assert_audit_passes(result.out, tmp_path / "ledger")


# -- 3-D sex x age x region ---------------------------------------------------------------------

CUBE = {("Y", "M", "N"): 12, ("Y", "M", "S"): 15, ("O", "M", "N"): 20, ("O", "M", "S"): 3,
        ("Y", "F", "N"): 14, ("Y", "F", "S"): 11, ("O", "F", "N"): 16, ("O", "F", "S"): 18}  # fmt: skip


def test_release_cube_with_primary_m_o_s_hides_all_8_inner_cells(tmp_path):
    result = release(tmp_path, CUBE, {"age_band": ["Y", "O"], "sex": ["M", "F"], "region": ["N", "S"]})
    assert hidden_cells(result.out, ["age_band", "sex", "region"]) == set(CUBE)
    assert_audit_passes(result.out, tmp_path / "ledger")


# -- the 4 x 4 pattern the auditor must flag ------------------------------------------------------

GRID = [[30, 47, 64, 89], [90, 124, 5, 31], [92, 100, 59, 85], [800, 991, 651, 685]]
GRID_PATTERN = {("w", "a"), ("w", "b"), ("w", "c"), ("x", "a"), ("x", "c"), ("y", "b"), ("y", "d"),
                ("z", "b"), ("z", "d")}  # fmt: skip


def test_release_of_the_4x4_grid_passes_and_the_spec_pattern_is_flagged(tmp_path):
    grid = {(r, c): GRID[i][j] for i, r in enumerate("wxyz") for j, c in enumerate("abcd")}
    result = release(tmp_path, grid, {"region": list("wxyz"), "age_band": list("abcd")})
    assert ("x", "c") in {(r, a) for a, r in hidden_cells(result.out, ["age_band", "region"])}
    assert_audit_passes(result.out, tmp_path / "ledger")
    # Rewrite the release with the spec's pattern (every line has two hidden cells) and its
    # checksums: the auditor finds w-b exactly 47 (A1).
    broken = repattern(result.out, tmp_path / "broken", GRID_PATTERN)
    report = audit_release(broken)
    a1 = {f.cells for f in report.findings if f.check == "A1"}
    assert ("prevalent[age_band=b, condition=c, region=w, year=2019]",) in a1
    assert not report.passed


def repattern(out: Path, target: Path, pattern: set[tuple[str, str]]) -> Path:
    """A copy of a release whose prevalence and care use hide exactly ``pattern`` (checksums redone)."""
    import shutil

    from audit.release import _sha256

    shutil.copytree(out, target)
    manifest = json.loads((target / "manifest.json").read_text())
    for table, n_col in (("prevalence", "numerator"), ("care_use", "N")):
        frame = pl.read_parquet(target / f"{table}.parquet")
        full = pl.read_parquet(out / f"{table}.parquet")
        truth = write_truth(full, n_col)
        hide = pl.struct("region", "age_band").map_elements(lambda s: (s["region"], s["age_band"]) in pattern,
                                                            return_dtype=pl.Boolean)
        frame = frame.with_columns(truth.alias(n_col)).with_columns(
            pl.when(hide).then(None).otherwise(pl.col(n_col)).alias(n_col),
            pl.when(hide).then(pl.lit("suppressed")).otherwise(pl.lit("")).alias(f"{n_col}_status"),
            pl.lit(None, pl.Float64).alias("percentage"), pl.lit("suppressed").alias("percentage_status"))
        frame.write_parquet(target / f"{table}.parquet")
        frame.write_csv(target / f"{table}.csv")
        for name in (f"{table}.parquet", f"{table}.csv"):
            manifest["files"][name] = _sha256(target / name)
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def write_truth(frame: pl.DataFrame, column: str) -> pl.Series:
    """The true values of a released column: the grid's values, margins summed (test helper)."""
    grid = {(r, c): GRID[i][j] for i, r in enumerate("wxyz") for j, c in enumerate("abcd")}
    out = []
    for region, age in frame.select("region", "age_band").rows():
        out.append(sum(v for (r, a), v in grid.items() if region in (r, "Total") and age in (a, "Total")))
    return pl.Series(column, out, dtype=pl.Int64)


# -- two releases (A5) -----------------------------------------------------------------------------


def test_two_releases_a_margin_in_two_versions_is_refused_and_nothing_is_written(tmp_path):
    # Release 1 (region x sex) from data where A-F is 0: region A shows 18. Release 2 (region
    # only) from data where A-F became 2: A = 20. Together they give A-F = 2.
    first = dict(REGION_SEX)
    first[("A", "F")] = 0
    release(tmp_path, first, STRATA_2D, name="r1")
    index = (tmp_path / "ledger" / "ledger.json").read_text()
    regions = {r: sum(v for (rr, _), v in REGION_SEX.items() if rr == r) for r in "ABCD"}
    with pytest.raises(LedgerRefusal, match="two versions") as refused:
        release(tmp_path, [regions[r] for r in "ABCD"], {"region": list("ABCD")}, name="r2")
    message = re.sub(rf"{RELEASE_ID.pattern}|year=2019", "", str(refused.value))
    assert "prevalent[condition=c, region=A, ]" in message
    assert not re.search(r"\b(18|20)\b", message)  # labels, never values
    assert not (tmp_path / "r2").exists()
    assert (tmp_path / "ledger" / "ledger.json").read_text() == index


def test_two_releases_consistent_with_each_other_pass_a5_and_keep_earlier_suppression(tmp_path):
    release(tmp_path, REGION_SEX, STRATA_2D, name="r1")
    regions = [sum(v for (r, _), v in REGION_SEX.items() if r == region) for region in "ABCD"]
    # The same population by region only: each region's persons without the condition are its
    # two sex strata's.
    second = release(tmp_path, regions, {"region": list("ABCD")}, name="r2", rest=2000, persons_of="r1")
    assert second.content.earlier_releases == 1
    report = audit_release(second.out, ledger=tmp_path / "ledger")
    assert report.passed and report.earlier_releases == 1
    assert len(json.loads((tmp_path / "ledger" / "ledger.json").read_text())["releases"]) == 2


# -- fail closed ---------------------------------------------------------------------------------


def test_release_withholds_the_tables_of_a_component_with_no_safe_pattern_and_says_why(tmp_path, monkeypatch):
    from disclosure import secondary

    # 1, 9, 30, 60 needs a repair step; with no helping cell the cells' tables cannot be released.
    monkeypatch.setattr(secondary._Solver, "helper", lambda *_: __import__("numpy").array([], dtype=int))
    result = release(tmp_path, [1, 9, 30, 60], {"region": list("abcd")})
    withheld = result.content.withheld
    assert {"prevalence", "care_use", "care_use_change", "attrition", "referrals"} <= set(withheld)
    assert "no safe suppression pattern" in withheld["prevalence"]
    assert "care_use, which is withheld" in withheld["care_use_change"]
    manifest = json.loads((result.out / "manifest.json").read_text())
    assert manifest["tables"]["prevalence"] == {"status": "withheld", "reason": withheld["prevalence"]}
    assert not (result.out / "prevalence.csv").exists()
    assert "table `prevalence`: no safe suppression pattern" in (result.out / "summary.md").read_text()
    report = audit_release(result.out, ledger=tmp_path / "ledger")
    assert report.passed and report.tables["prevalence"]["verdict"] == "withheld"
