"""Issue 11, item 3: differencing two releases whose definitions overlap, on one ledger.

A researcher releases a study, then a second one over the same linked data whose conditions
count almost the same persons under other names: the same definition renamed, a code list
widened by one code, ``diabetes_95`` (diabetes plus everyone aged 95+), a shifted age limit;
or the same conditions with one more reference year, or another stratum. The attacker knows
the definitions (they are public), so knows which cells of the second release hold which of the
first (``B = A + D``, ``D`` of 1..T-1 persons aged 95+ without diabetes), adds these equations to
the relations both manifests declare, and bounds every hidden cell and every such difference with
the auditor's own integer programs (``audit.intervals``), against the true values of the study
folders. The ledger matched quantities by name: the widened definitions gave the differences
exactly. Matching by who is counted (``release.overlaps``) protects them.
"""

from __future__ import annotations

import copy
import itertools
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from omegaconf import OmegaConf

from command_runner import assert_clean_failure, command_in_process
from study_builder import write_study

from adversarial.semantic_attack import protection, study_truth
from audit import audit_release
from audit.cells import label
from audit.intervals import Equation, FeasibleRegion
from audit.release import read_release, release_cells
from audit.structure import instantiate
from cohort.config import parse_study
from cohort.output import population_fingerprint
from cohort.output import write_study as write_study_folder
from cohort.study import run_study
from disclosure import Policy
from extracts.codelists import parse_catalogue
from release import build
from release.errors import LedgerRefusal
from release.ledger import create_ledger
from release.make import make_release
from release.overlaps import Overlaps

ROOT = Path(__file__).resolve().parents[2]
T = 10
CATALOGUE = OmegaConf.to_container(OmegaConf.load(ROOT / "conf/conditions/seed_study.yaml"))["conditions"]
SEED = OmegaConf.to_container(OmegaConf.load(ROOT / "conf/study/seed_study.yaml"))
DIABETES = CATALOGUE["diabetes"]
DISCIPLINES = SEED["disciplines"]["diabetes"]


def condition(**changes: object) -> dict:
    """The diabetes definition of the seed catalogue, changed."""
    out = copy.deepcopy(DIABETES)
    icpc = changes.pop("extra_icpc", None)
    if icpc:
        out["subconditions"]["diabetes"]["icpc"] = [*out["subconditions"]["diabetes"]["icpc"], icpc]
    return {**out, **changes}


# name -> (first study's conditions, second study's conditions, the second's other settings,
#          second condition -> (first condition, which holds the other: "second", "first" or "same"),
#          [the first's other settings])
VARIANTS = {
    "renamed": ({"diabetes": condition()}, {"sugar": condition()}, {}, {"sugar": ("diabetes", "same")}),
    "widened_code_list": ({"diabetes": condition()}, {"diabetes_wide": condition(extra_icpc="B74")}, {},
                          {"diabetes_wide": ("diabetes", "second")}),
    "diabetes_95": ({"diabetes": condition()}, {"diabetes_95": condition(min_age=95)}, {},
                    {"diabetes_95": ("diabetes", "second")}),
    "shifted_age_limit": ({"diabetes_95": condition(min_age=95)}, {"diabetes_97": condition(min_age=97)}, {},
                          {"diabetes_97": ("diabetes_95", "first")}),
    "one_more_year": ({"diabetes": condition()}, {"diabetes": condition()}, {"reference_years": [2019, 2020, 2023]},
                      {}),
    "another_stratum": ({"diabetes": condition()}, {"diabetes": condition()}, {"strata": ["sex"]}, {}),
    # Both stratified by age band: the persons aged 95+ sit in the 80+ band.
    "diabetes_95_by_age_band": ({"diabetes": condition()}, {"diabetes_95": condition(min_age=95)},
                                {"strata": ["age_band"]}, {"diabetes_95": ("diabetes", "second")},
                                {"strata": ["age_band"]}),
}


def make_study(linked: Path, folder: Path, conditions: dict, **settings: object) -> Path:
    catalogue = parse_catalogue({"conditions": conditions})
    raw = copy.deepcopy(SEED)
    raw.update({"name": folder.name, "disciplines": {c: DISCIPLINES for c in conditions}, "strata": [],
                "acsc": {"years": [], "codes": []}, **settings})
    config = parse_study(raw, catalogue)
    manifest = json.loads((linked / "manifest.json").read_text())
    return write_study_folder(run_study(linked, config), folder, config, linked_manifest=manifest,
                              population=population_fingerprint(linked))


@pytest.fixture(scope="module")
def released(tiny_linked: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """Per variant: both study folders and both releases, made on one ledger (first, then second)."""
    work = tmp_path_factory.mktemp("overlaps")
    firsts: dict[str, Path] = {}
    out = {}
    for name, (first, second, settings, _, *first_settings) in VARIANTS.items():
        options = first_settings[0] if first_settings else {}
        key = json.dumps([first, options], sort_keys=True)
        if key not in firsts:  # one first release per first study, its ledger copied for each variant
            n = len(firsts)
            study = make_study(tiny_linked, work / f"first{n}", first, **options)
            ledger = create_ledger(work / f"ledger{n}", Policy()).path
            make_release(study, work / f"first{n}-release", ledger=ledger)
            firsts[key] = n
        n = firsts[key]
        ledger = work / f"ledger-{name}"
        shutil.copytree(work / f"ledger{n}", ledger)
        study = make_study(tiny_linked, work / f"second-{name}", second, **settings)
        make_release(study, work / f"second-{name}-release", ledger=ledger)
        out[name] = (work / f"first{n}", work / f"first{n}-release", study, work / f"second-{name}-release")
    return out


def _strata(study: Path) -> tuple[str, ...]:
    columns = pl.read_parquet_schema(study / "prevalence.parquet")
    return tuple(s for s in ("age_band", "sex", "region") if s in columns)


def _swap(key: tuple, condition: str) -> tuple:
    return key[0], tuple((c, condition if c == "condition" else v) for c, v in key[1])


def attack(first_study: Path, first: Path, second_study: Path, second: Path, pairs: dict) -> list[str]:
    """What the attacker derives from both releases: hidden cells pinned or narrowed below the
    margin, and differences D of 1..T-1 persons between overlapping definitions pinned or narrowed."""
    releases = [read_release(first), read_release(second)]
    published, hidden = {}, set()
    for release in releases:
        cells = release_cells(release)
        published.update(cells.published)
        hidden |= cells.hidden
    hidden -= set(published)
    structure = instantiate([(releases[0], "earlier/"), (releases[1], "")], set(published) | hidden)
    truth = {**study_truth(first_study, _strata(first_study)), **study_truth(second_study, _strata(second_study))}
    equations = list(structure.equations)
    unknown = hidden | set(structure.derived) | set(structure.slack)
    differences: dict[tuple, int] = {}
    counter = itertools.count()
    for key in sorted(published.keys() | hidden, key=label):
        coords = dict(key[1])
        if coords.get("condition") not in pairs:
            continue
        other_condition, holder = pairs[coords["condition"]]
        other = _swap(key, other_condition)
        if other not in published and other not in hidden:
            continue
        big, small = (key, other) if holder in ("second", "same") else (other, key)
        if holder == "same":  # the same definition under another name: one quantity
            equations.append(Equation(big, (small,)))
            continue
        d = ("attacker-difference", (("n", str(next(counter))),))
        unknown.add(d)
        equations.append(Equation(big, (small, d)))
        if big in truth and small in truth:
            differences[d] = truth[big] - truth[small]
    region = FeasibleRegion(equations, published, sorted(unknown - set(published), key=label))
    found = []
    for key in sorted(hidden, key=label):
        if region.fixed((key,)) is not None:
            found.append(f"A1 {label(key)}")
        elif 1 <= truth.get(key, 0) < T and not region.reaches(key, max(0, truth[key] - protection(truth[key])),
                                                            truth[key] + protection(truth[key])):
            found.append(f"A2 {label(key)}")
    for d, value in differences.items():
        if 1 <= value < T:
            if region.fixed((d,)) is not None:
                found.append(f"exact difference {value}")
            elif not region.reaches(d, max(0, value - protection(value)), value + protection(value)):
                found.append(f"narrow difference {value}")
    return found


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_differencing_two_releases_with_overlapping_definitions_derives_nothing(released, variant) -> None:
    first_study, first, second_study, second = released[variant]
    pairs = VARIANTS[variant][3]
    assert attack(first_study, first, second_study, second, pairs) == []
    report = audit_release(second, ledger=second.parent / f"ledger-{variant}")
    assert report.passed, [f for f in report.findings if not f.advisory]


@pytest.mark.parametrize("variant", ["widened_code_list", "diabetes_95", "shifted_age_limit",
                                     "diabetes_95_by_age_band"])
def test_the_widened_definitions_differ_by_small_counts_so_the_attack_has_something_to_find(released, variant):
    first_study, _, second_study, _ = released[variant]
    (second_condition, (first_condition, _)), = VARIANTS[variant][3].items()
    first = study_truth(first_study, _strata(first_study))
    second = study_truth(second_study, _strata(second_study))
    small = [k for k, v in second.items() if dict(k[1]).get("condition") == second_condition
             and _swap(k, first_condition) in first
             and 1 <= abs(v - first[_swap(k, first_condition)]) < T]
    assert small, "no cell differs by 1..T-1 persons: the variant would prove nothing"


def test_the_ledger_keeps_the_persons_of_each_cell_for_the_steward_only(released, tiny_linked) -> None:
    _, first, second_study, second = released["diabetes_95"]
    ledger = second.parent / "ledger-diabetes_95"
    index = json.loads((ledger / "ledger.json").read_text())
    entry = index["releases"][-1]
    assert entry["overlaps"]["subset"] + entry["overlaps"]["near-equal"] >= 1
    assert entry["overlaps"]["implied_primaries"] >= 1
    rid = entry["release_id"]
    assert (ledger / "records" / f"{rid}.persons.parquet").is_file()
    assert (ledger / "records" / f"{rid}.persons.parquet").stat().st_mode & 0o077 == 0
    # The study keeps them owner-only, as person numbers of the linked layout (never pseudonyms).
    assert (second_study / "persons").stat().st_mode & 0o077 == 0
    numbers = set(pl.read_parquet(tiny_linked / "persons.parquet")["p2"].to_list())
    for path in (second_study / "persons").glob("*.parquet"):
        assert path.stat().st_mode & 0o077 == 0
        persons = pl.read_parquet(path)["person"]
        assert persons.dtype == pl.Int64
        assert set(persons.filter(persons >= 0).to_list()) <= numbers
    # The release never carries them.
    for folder in (first, second):
        assert not any("persons" in p.parts or p.suffix not in (".csv", ".parquet", ".json", ".md")
                       for p in folder.rglob("*") if p.is_file())
        assert "persons.parquet" not in (folder / "manifest.json").read_text()


def test_a_renamed_definition_is_one_quantity_with_the_earlier_one_by_its_persons(released) -> None:
    _, first, _, second = released["renamed"]
    entry = json.loads((second.parent / "ledger-renamed" / "ledger.json").read_text())["releases"][-1]
    assert entry["overlaps"]["equal"] >= 1  # sugar's cells are diabetes's, whatever the name
    statuses = [pl.read_parquet(f / "care_use.parquet").select("year", "discipline", "n_status")
                .sort("year", "discipline") for f in (first, second)]
    assert statuses[0].equals(statuses[1])


# Fail closed ---------------------------------------------------------------------------------------
def test_a_ledger_whose_earlier_release_keeps_no_person_sets_refuses_the_next_release(tmp_path: Path) -> None:
    study = write_study(tmp_path / "study", [30, 4], strata={"sex": ["F", "M"]})
    ledger = create_ledger(tmp_path / "ledger", Policy()).path
    first = make_release(study, tmp_path / "first", ledger=ledger)
    # The record as an older engine wrote it: true values, no person sets.
    path = ledger / "records" / f"{first.release_id}.json"
    record = json.loads(path.read_text())
    (ledger / "records" / record.pop("persons")["file"]).unlink()
    path.write_text(json.dumps(record))
    index = (ledger / "ledger.json").read_text()
    proc = command_in_process("pfl-release", f"study={study}", f"out={tmp_path / 'second'}", f"ledger={ledger}",
                       cwd=tmp_path)
    assert_clean_failure(proc, 11, "keep no person sets")
    assert first.release_id in proc.stderr
    # no value of the study (30, 4) in the message; the release id is random and may hold either
    message = proc.stderr.replace(first.release_id, "<id>")
    assert " 4 " not in message and "30" not in message
    assert not (tmp_path / "second").exists()
    assert (ledger / "ledger.json").read_text() == index


def test_a_study_folder_without_person_sets_is_refused(tmp_path: Path) -> None:
    study = write_study(tmp_path / "study", [30])
    shutil.rmtree(study / "persons")
    ledger = create_ledger(tmp_path / "ledger", Policy()).path
    proc = command_in_process("pfl-release", f"study={study}", f"out={tmp_path / 'out'}", f"ledger={ledger}", cwd=tmp_path)
    assert_clean_failure(proc, 4, "no person sets")
    assert not (tmp_path / "out").exists()


def test_a_name_that_counts_other_persons_than_in_an_earlier_release_is_refused(tmp_path: Path) -> None:
    first = write_study(tmp_path / "first", [30])
    # The same count under the same name, other persons (a definition changed, its name kept).
    second = write_study(tmp_path / "second", [30], persons_of=first)
    for path in (second / "persons").glob("*.parquet"):
        pl.read_parquet(path).with_columns(pl.when(pl.col("person") == 0).then(10**6).otherwise(pl.col("person"))
                                           .alias("person")).write_parquet(path)
    ledger = create_ledger(tmp_path / "ledger", Policy()).path
    make_release(first, tmp_path / "r1", ledger=ledger)
    with pytest.raises(LedgerRefusal, match="count other persons than under the same name"):
        make_release(second, tmp_path / "r2", ledger=ledger)
    assert not (tmp_path / "r2").exists()


def test_a_pair_released_by_name_only_is_differenced_and_fails_the_auditors_a5(released, monkeypatch) -> None:
    """The diabetes_95 pair as a ledger matching by name only released it: the auditor, which
    rebuilds the record-level relations from the steward's person sets, fails it (A5)."""
    first_study, first, second_study, second = released["diabetes_95"]
    work = second.parent
    n = first.name.removeprefix("first").removesuffix("-release")
    ledger = work / "ledger-by-name"
    shutil.copytree(work / f"ledger{n}", ledger)  # the first release only
    monkeypatch.setattr(build, "relate", lambda model, parts, *, threshold: Overlaps())
    make_release(second_study, work / "by-name-release", ledger=ledger)
    monkeypatch.undo()
    found = attack(first_study, first, second_study, work / "by-name-release", VARIANTS["diabetes_95"][3])
    assert any(f.startswith("exact difference") for f in found), found
    report = audit_release(work / "by-name-release", ledger=ledger)
    a5 = [f for f in report.findings if f.check == "A5" and not f.advisory]
    assert any("diabetes_95" in " ".join(f.cells) for f in a5), a5
