"""Issue 11, item 3: differencing across releases through complements, top lists, ACSC and events.

Two releases on one ledger (hand-made study folders, so that the person sets are exactly as the
attacker assumes): condition ``c`` in 2019 and ``d`` in 2020 over one population, where

- the cohorts differ by 20 persons and their GP care use by 17 (both T or more, so neither pair
  of cells is a small difference), but the complements N - n (cohort persons *without* GP care)
  differ by 3 persons: ``not:care_use[d] = not:care_use[c] + 3``;
- a top-list group's persons differ by 3 (``T90`` of HA, 2019 and 2020), and so do the ACSC
  persons (2019 and 2020): a small group of persons under other names;
- the events of those rows (the group's contacts, the ACSC admissions) differ by the events of
  the 3 persons: their difference is the events of a small group, which must not be exact.

The attacker knows the definitions, so knows which cell holds which (``B = A + D``), adds these
equations to the relations both manifests declare and bounds every difference with the auditor's
integer programs. Without relating complements, top-list groups and ACSC persons by who is
counted, every difference is exact; with them none is. A pair released without that (the ledger
relating only the counts of issue 11's first fix) fails the auditor's A5, which rebuilds the
relations from the steward's person sets.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from study_builder import write_study

from adversarial.semantic_attack import protection
from audit import audit_release
from audit.cells import label
from audit.intervals import Equation, FeasibleRegion
from audit.release import read_release, release_cells
from audit.structure import instantiate
from disclosure import Policy
from release import overlaps
from release.ledger import create_ledger
from release.make import make_release

T = 10
SMALL = 3  # persons in one release's cell and not in the other's


def _key(quantity: str, **coords: object) -> tuple:
    return quantity, tuple(sorted((c, str(v)) for c, v in coords.items()))


def study(path: Path, *, year: int, condition: str, cohort: int, care: list[int], top: int, acsc: int) -> Path:
    """A study folder of ``cohort`` persons (0..cohort-1) of 1500; ``care``: those with GP care;
    the first ``top`` persons in top-list group T90 of HA (3 contacts each), the first ``acsc``
    admitted (2 admissions each)."""
    folder = write_study(path, [cohort], rest=1500 - cohort, year=year, condition=condition,
                         care={(): len(care)})
    members = folder / "persons"
    frame = pl.read_parquet(members / "care_use.parquet")
    frame = pl.concat([frame.filter(pl.col("column") != "n"),
                       frame.filter(pl.col("column") == "n").head(1).select(pl.exclude("person")).join(
                           pl.DataFrame({"person": care}, schema={"person": pl.Int64}), how="cross")
                       .select(frame.columns)])
    frame.write_parquet(members / "care_use.parquet")
    pl.DataFrame({"year": [year], "discipline": ["HA"], "rank": [1], "group": ["T90"], "contacts": [3 * top],
                  "share": [3 * top / 1000], "persons": [top], "total_contacts": [1000]},
                 schema={"year": pl.Int64, "discipline": pl.String, "rank": pl.Int64, "group": pl.String,
                         "contacts": pl.Int64, "share": pl.Float64, "persons": pl.Int64,
                         "total_contacts": pl.Int64}).write_parquet(folder / "top.parquet")
    pl.DataFrame({"year": year, "discipline": "HA", "group": "T90", "column": "persons", "person": list(range(top))},
                 schema={"year": pl.Int64, "discipline": pl.String, "group": pl.String, "column": pl.String,
                         "person": pl.Int64}).write_parquet(members / "top.parquet")
    pl.DataFrame({"year": [year], "admissions": [2 * acsc], "persons": [acsc]},
                 schema={"year": pl.Int64, "admissions": pl.Int64, "persons": pl.Int64}).write_parquet(
        folder / "acsc.parquet")
    pl.DataFrame({"year": year, "column": "persons", "person": list(range(acsc))},
                 schema={"year": pl.Int64, "column": pl.String, "person": pl.Int64}).write_parquet(
        members / "acsc.parquet")
    return folder


FIRST = {"year": 2019, "condition": "c", "cohort": 500, "care": list(range(100)), "top": 100, "acsc": 40}
# 20 more in the cohort, 17 of them with GP care: 3 more without (persons 517..519)
SECOND = {"year": 2020, "condition": "d", "cohort": 520, "care": [*range(100), *range(500, 517)],
          "top": 100 + SMALL, "acsc": 40 + SMALL}
# (the larger cell, the smaller, the true difference, persons or events)
RELATIONS = [
    (_key("not:care_use", condition="d", discipline="HA", year=2020),
     _key("not:care_use", condition="c", discipline="HA", year=2019), SMALL, "persons"),
    (_key("contact_persons", discipline="HA", group="T90", year=2020),
     _key("contact_persons", discipline="HA", group="T90", year=2019), SMALL, "persons"),
    (_key("acsc_persons", year=2020), _key("acsc_persons", year=2019), SMALL, "persons"),
    (_key("contacts", discipline="HA", group="T90", year=2020),
     _key("contacts", discipline="HA", group="T90", year=2019), 3 * SMALL, "events"),
    (_key("acsc_admissions", year=2020), _key("acsc_admissions", year=2019), 2 * SMALL, "events"),
]


def release_pair(work: Path, name: str) -> tuple[Path, Path, Path]:
    ledger = create_ledger(work / f"ledger-{name}", Policy()).path
    first, second = work / f"first-{name}-release", work / f"second-{name}-release"
    make_release(study(work / f"first-{name}", **FIRST), first, ledger=ledger)
    make_release(study(work / f"second-{name}", **SECOND), second, ledger=ledger)
    return first, second, ledger


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path, Path]]:
    """The pair as the ledger releases it now, and as it did when only counts were related."""
    work = tmp_path_factory.mktemp("complements-events")
    out = {"now": release_pair(work, "now")}
    with pytest.MonkeyPatch.context() as mp:  # the ledger before: no complements, no top lists or ACSC
        mp.setattr(overlaps, "RELATED", overlaps.RELATED - {"contact_persons", "acsc_persons"})
        complements = overlaps._complement_columns
        mp.setattr(overlaps, "_complement_columns", lambda model, columns: complements(model, columns).clear())
        out["old"] = release_pair(work, "old")
    return out


def attack(first: Path, second: Path) -> list[str]:
    """Each difference of RELATIONS that both releases together give exactly (or, for persons,
    narrower than the margin)."""
    releases = [read_release(first), read_release(second)]
    published, hidden = {}, set()
    for release in releases:
        cells = release_cells(release)
        published.update(cells.published)
        hidden |= cells.hidden
    hidden -= set(published)
    structure = instantiate([(releases[0], "earlier/"), (releases[1], "")], set(published) | hidden)
    equations = list(structure.equations)
    unknown = hidden | set(structure.derived) | set(structure.slack)
    differences = {}
    for n, (big, small, value, unit) in enumerate(RELATIONS):
        d = ("attacker-difference", (("n", str(n)),))
        unknown |= {d} | ({big, small} - set(published))
        equations.append(Equation(big, (small, d)))
        differences[d] = (f"{label(big)} - {label(small)}", value, unit)
    region = FeasibleRegion(equations, published, sorted(unknown - set(published), key=label))
    found = []
    for d, (name, value, unit) in differences.items():
        if region.fixed((d,)) is not None:
            found.append(f"exact: {name}")
        elif unit == "persons" and not region.reaches(d, value - protection(value), value + protection(value)):
            found.append(f"narrow: {name}")
    return found


def test_the_pair_has_small_differences_under_other_names_and_big_ones_in_its_counts(pairs) -> None:
    for big, small, value, _ in RELATIONS:
        assert big != small and 1 <= value < T
    assert SECOND["cohort"] - FIRST["cohort"] >= T and len(SECOND["care"]) - len(FIRST["care"]) >= T


def test_an_attacker_differencing_complements_top_lists_acsc_and_events_finds_nothing(pairs) -> None:
    first, second, ledger = pairs["now"]
    assert attack(first, second) == []
    report = audit_release(second, ledger=ledger)
    assert report.passed, [f for f in report.findings if not f.advisory]


def test_the_pair_released_without_relating_them_is_differenced_and_fails_a5(pairs) -> None:
    first, second, ledger = pairs["old"]
    found = attack(first, second)
    # every small difference of persons came out exact, and the events of those persons with them
    assert len(found) == len(RELATIONS), found
    report = audit_release(second, ledger=ledger)
    assert not report.passed
    a5 = [f for f in report.findings if f.check == "A5"]
    named = " ".join(c for f in a5 for c in f.cells)
    for part in ("not:care_use", "contact_persons", "acsc_persons"):
        assert part in named, a5
    # the same releases without the steward's person sets pass: the relations are in no manifest
    copy = ledger.parent / "ledger-old-without-persons"
    shutil.copytree(ledger, copy)
    for path in (copy / "records").glob("*.persons.parquet"):
        path.unlink()
    assert not any(f.check == "A5" and "by-persons" in " ".join(f.cells) for f in
                   audit_release(second, ledger=copy).findings)


def test_a5_fails_closed_when_the_stewards_person_sets_are_altered(pairs) -> None:
    _, second, ledger = pairs["now"]
    copy = ledger.parent / "ledger-now-altered"
    shutil.copytree(ledger, copy)
    path = sorted((copy / "records").glob("*.persons.parquet"))[0]
    pl.read_parquet(path).slice(1).write_parquet(path)  # one person dropped, the record's SHA-256 kept
    findings = audit_release(second, ledger=copy).findings
    assert any(f.check == "A5" and "cannot be read" in f.message for f in findings), findings


def test_a5_fails_closed_when_a_cells_persons_are_missing_from_the_stewards_sets(pairs) -> None:
    """Every person set checked against its count, also a set that is absent: a record whose persons
    file lacks every row of one cell (its SHA-256 updated with it) cannot be related, A5 fails."""
    import hashlib
    import json

    _, second, ledger = pairs["now"]
    copy = ledger.parent / "ledger-now-cell-missing"
    shutil.copytree(ledger, copy)
    path = sorted((copy / "records").glob("*.persons.parquet"))[0]
    record_path = path.with_name(path.name.replace(".persons.parquet", ".json"))
    record = json.loads(record_path.read_text())
    frame = pl.read_parquet(path)
    cell = next(c for c, x in enumerate(record["cells"]) if x["keys"][0][0] == "care_use" and x["value"] > 0
                and x["kind"] == "count")
    assert frame.filter(pl.col("cell") == cell).height == record["cells"][cell]["value"]
    frame.filter(pl.col("cell") != cell).write_parquet(path)
    record["persons"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    record_path.write_text(json.dumps(record))
    findings = audit_release(second, ledger=copy).findings
    assert any(f.check == "A5" and "do not add up" in f.message for f in findings), findings


def test_the_ledger_refuses_an_earlier_record_whose_sets_lack_a_cell(tmp_path: Path) -> None:
    """The engine's side of the same check: an earlier record whose person sets lack every row of
    one related count cannot be related to the new release: refused, not released unrelated."""
    import hashlib
    import json

    from release.errors import LedgerRefusal

    ledger = create_ledger(tmp_path / "ledger", Policy()).path
    make_release(study(tmp_path / "first", **FIRST), tmp_path / "first-release", ledger=ledger)
    path = next((ledger / "records").glob("*.persons.parquet"))
    record_path = path.with_name(path.name.replace(".persons.parquet", ".json"))
    record = json.loads(record_path.read_text())
    cell = next(c for c, x in enumerate(record["cells"]) if x["keys"][0][0] == "care_use" and x["value"] > 0
                and x["kind"] == "count")
    pl.read_parquet(path).filter(pl.col("cell") != cell).write_parquet(path)
    record["persons"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    record_path.write_text(json.dumps(record))
    with pytest.raises(LedgerRefusal, match="do not add up"):
        make_release(study(tmp_path / "second", **SECOND), tmp_path / "second-release", ledger=ledger)


def test_a_cell_whose_persons_repeat_one_in_place_of_another_is_refused(tmp_path: Path) -> None:
    """A person set of the right size with one person twice (and another missing) is no set of its
    count: refused before anything is recorded (the ledger kept it, and every later release was
    refused for an earlier release's sets)."""
    from release.errors import StudyContractError

    folder = study(tmp_path / "first", **FIRST)
    path = folder / "persons" / "care_use.parquet"
    frame = pl.read_parquet(path)
    n = frame.filter(pl.col("column") == "n")
    doubled = n.with_columns(pl.when(pl.col("person") == n["person"].max()).then(n["person"].min())
                             .otherwise(pl.col("person")).alias("person"))
    pl.concat([frame.filter(pl.col("column") != "n"), doubled]).write_parquet(path)
    ledger = create_ledger(tmp_path / "ledger", Policy()).path
    with pytest.raises(StudyContractError, match="do not add up"):
        make_release(folder, tmp_path / "first-release", ledger=ledger)
    assert not list((ledger / "records").glob("*.json"))


def test_a5_fails_closed_when_a_cells_persons_repeat_one_in_place_of_another(pairs) -> None:
    import hashlib
    import json

    _, second, ledger = pairs["now"]
    copy = ledger.parent / "ledger-now-repeated"
    shutil.copytree(ledger, copy)
    path = sorted((copy / "records").glob("*.persons.parquet"))[0]
    record_path = path.with_name(path.name.replace(".persons.parquet", ".json"))
    record = json.loads(record_path.read_text())
    frame = pl.read_parquet(path)
    cell = next(c for c, x in enumerate(record["cells"]) if x["keys"][0][0] == "care_use" and x["value"] > 1
                and x["kind"] == "count")
    mine = frame.filter(pl.col("cell") == cell)["person"]
    frame.with_columns(pl.when((pl.col("cell") == cell) & (pl.col("person") == mine.max())).then(mine.min())
                       .otherwise(pl.col("person")).alias("person")).write_parquet(path)
    record["persons"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    record_path.write_text(json.dumps(record))
    findings = audit_release(second, ledger=copy).findings
    assert any(f.check == "A5" and "do not add up" in f.message for f in findings), findings


def test_a5_fails_closed_when_a_complements_part_is_not_within_its_whole(pairs) -> None:
    """The auditor counts a complement's intersections as its whole's less its part's, which holds
    only when the part is within the whole: a record whose complement has its count although one
    person of its part is outside the whole (the part's persons and the complement's value both
    altered, the persons' SHA-256 updated) fails A5 instead of being related on wrong figures."""
    import hashlib
    import json

    _, second, ledger = pairs["now"]
    copy = ledger.parent / "ledger-now-part-outside"
    shutil.copytree(ledger, copy)
    path = sorted((copy / "records").glob("*.persons.parquet"))[-1]
    record_path = path.with_name(path.name.replace(".persons.parquet", ".json"))
    record = json.loads(record_path.read_text())
    at = {json.dumps(k): c for c, x in enumerate(record["cells"]) for k in x["keys"]}
    part = rest = None  # an equation whole = part + complement of care use
    for _, children in record["equations"]:
        if len(children) != 2:
            continue
        for a, b in (children, children[::-1]):
            if b[0] == "not:care_use" and record["cells"][at[json.dumps(b)]]["kind"] == "complement":
                part, rest = at[json.dumps(a)], at[json.dumps(b)]
    assert rest is not None
    frame = pl.read_parquet(path)
    mine = frame.filter(pl.col("cell") == part)["person"]
    assert mine.len() > 0
    outsider = int(frame["person"].max()) + 1  # in no set of the record, so not in the whole
    frame.with_columns(pl.when((pl.col("cell") == part) & (pl.col("person") == mine.max())).then(outsider)
                       .otherwise(pl.col("person")).alias("person")).write_parquet(path)
    record["cells"][rest]["value"] += 1  # the whole's persons less the part's: one more now
    record["persons"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    record_path.write_text(json.dumps(record))
    findings = audit_release(second, ledger=copy).findings
    assert any(f.check == "A5" and "not its whole's persons less its part's" in f.message
               for f in findings), findings
