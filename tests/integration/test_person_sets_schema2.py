"""Every person count of every table a study can write carries its person set (issue 11, item 3).

Each example study of ``conf/study/`` (schema 1 and 2: prevalence with its own criteria, incidence,
index-date cohorts; contacts, contact bands, claimed costs, referrals, top, ACSC) is run on the
tiny linked layout and written as ``pfl-study`` writes it. Then, for every count column of
:data:`cohort.members.COLUMNS`, each cell's person set (``persons/<table>.parquet``) holds as many
distinct persons as the cell counts, checked twice: on the study's own tables, and as the release
stage reads them (``release.overlaps.study_sets``, strata Totals and the Total band included),
which refuses a release otherwise. Last, the record-level relations for a schema 2 pair: one
incidence cohort released twice on one ledger under two names merges by who is counted.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from omegaconf import OmegaConf

from cohort.compile import legacy_config, run_compiled
from cohort.convert import load_study
from cohort.members import COLUMNS, FOLDER, keys_of
from cohort.output import population_fingerprint, write_study
from disclosure import Policy
from extracts.codelists import load_catalogue
from release.layout import layout
from release.errors import LedgerRefusal
from release.ledger import create_ledger
from release.make import make_release
from release.overlaps import study_sets
from release.study_folder import read_study

CONF = Path(__file__).resolve().parents[2] / "conf"
CATALOGUE = load_catalogue(CONF / "conditions" / "seed_study.yaml")
EXAMPLES = sorted(p.stem for p in (CONF / "study").glob("*.yaml"))


def _run(linked: Path, raw: dict, out: Path) -> Path:
    study = load_study(raw, CATALOGUE)
    manifest = json.loads((linked / "manifest.json").read_text())
    tables = run_compiled(linked, study)
    return write_study(tables, out, legacy_config(study), linked_manifest=manifest,
                       population=population_fingerprint(linked), study=study)


def _mismatches(folder: Path, table: str, strata: tuple[str, ...]) -> list[str]:
    """Cells of ``table`` whose persons are not exactly their count, on the study's own table."""
    frame = pl.read_parquet(folder / f"{table}.parquet")
    members = pl.read_parquet(folder / FOLDER / f"{table}.parquet")
    out = []
    for column in COLUMNS[table]:
        rows = members.filter(pl.col("column") == column)
        if rows.is_empty():
            if frame.height and frame[column].sum() != 0:
                out.append(f"{table}.{column}: counts without persons")
            continue
        # The count's keys: those its persons are given by (a key it does not depend on is null).
        by = [k for k in keys_of(table, strata) if k in frame.columns and rows[k].null_count() < rows.height]
        sizes = rows.group_by(by).agg(pl.len().alias("rows"), pl.col("person").n_unique().alias("size"))
        cells = frame.select(*by, column).unique()
        if cells.select(by).is_duplicated().any():
            out.append(f"{table}.{column}: one cell of {by} with two counts")
        joined = cells.join(sizes, on=by, how="left", nulls_equal=True).with_columns(
            pl.col("size", "rows").fill_null(0))
        bad = joined.filter((pl.col("size") != pl.col(column)) | (pl.col("rows") != pl.col("size")))
        if bad.height:
            out.append(f"{table}.{column}: {bad.height} of {joined.height} cells")
        stray = sizes.join(cells, on=by, how="anti", nulls_equal=True)
        if stray.height and frame.height:
            out.append(f"{table}.{column}: persons of {stray.height} cells the table does not have")
    return out


@pytest.fixture(scope="module")
def studies(tiny_linked: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("person-sets")
    return {name: _run(tiny_linked, OmegaConf.to_container(OmegaConf.load(CONF / "study" / f"{name}.yaml")),
                       work / name) for name in EXAMPLES}


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_person_count_of_an_example_study_has_exactly_its_persons(studies: dict[str, Path], name: str) -> None:
    folder = studies[name]
    study = read_study(folder)
    written = {p.stem for p in folder.glob("*.parquet")}
    problems = [p for table in sorted(written & set(COLUMNS)) for p in _mismatches(folder, table, study.strata)]
    assert not problems, problems
    # As the release reads them: Totals of strata and bands united; a mismatch raises (exit 5).
    layouts = layout(study, threshold=Policy().threshold)
    sets = study_sets(study, layouts)
    counted = {quantity for quantity, _ in sets.keys}
    assert {"prevalent", "population", "attrition_before"} <= counted
    if "contact_bands" in layouts:  # the Total band: the union of the bands, as large as the cohort
        assert any(q == "band_persons" and "band" not in dict(c) for q, c in sets.keys)


def test_the_examples_cover_every_table_with_person_counts(studies: dict[str, Path]) -> None:
    checked = set()
    for folder in studies.values():
        for path in (folder / FOLDER).glob("*.parquet"):
            if (folder / path.name).is_file() and pl.read_parquet(path).height:
                checked.add(path.stem)
    assert {"incidence", "index_cohort", "contact_bands", "costs", "prevalence", "care_use", "attrition"} <= checked


INCIDENCE = """\
schema: 2
name: {name}
cohort: {{type: incidence, years: [2021], conditions: [{{name: {condition}, codes: {{icpc: [T90]}}}}],
         washout_days: 365}}
criteria:
  - {{name: X1, rule: X1}}
  - {{name: aged_18_plus, rule: age, min: 18}}
outcomes:
  - {{type: contacts, disciplines: [HA], window: {{days: [0, 365]}}}}
  - {{type: contact_bands, disciplines: [HA], window: {{days: [0, 365]}}, bands: [1, 3]}}
strata: []
"""


def test_an_incidence_cohort_renamed_merges_with_the_earlier_release_by_its_persons(tiny_linked: Path,
                                                                                    tmp_path: Path) -> None:
    first = _run(tiny_linked, OmegaConf.to_container(OmegaConf.create(
        INCIDENCE.format(name="dm_first", condition="dm"))), tmp_path / "first")
    second = _run(tiny_linked, OmegaConf.to_container(OmegaConf.create(
        INCIDENCE.format(name="sugar_second", condition="sugar"))), tmp_path / "second")
    assert pl.read_parquet(first / "incidence.parquet")["numerator"].sum() > 0
    ledger = create_ledger(tmp_path / "ledger", Policy()).path
    make_release(first, tmp_path / "r1", ledger=ledger)
    make_release(second, tmp_path / "r2", ledger=ledger)
    entry = json.loads((ledger / "ledger.json").read_text())["releases"][-1]
    # sugar's cells (the cohort, care use, its attrition chain) are dm's, whatever the name
    assert entry["overlaps"]["equal"] >= 3, entry["overlaps"]
    statuses = [pl.read_parquet(r / "incidence.parquet").select("numerator_status") for r in
                (tmp_path / "r1", tmp_path / "r2")]
    assert statuses[0].equals(statuses[1])
    # the persons-by-band cells too: each band of sugar is dm's band (one quantity by its persons)
    bands = [pl.read_parquet(r / "contact_bands.parquet") for r in (tmp_path / "r1", tmp_path / "r2")]
    assert bands[0].select("band", "persons_status").equals(bands[1].select("band", "persons_status"))
    assert entry["overlaps"]["equal"] >= 3 + bands[0].filter(pl.col("band") != "Total").height, entry["overlaps"]


ACSC = """\
schema: 2
name: {name}
cohort: {{type: prevalence, years: [2021], conditions: [{{name: dm, codes: {{icpc: [T90]}}}}]}}
criteria:
  - {{name: X1, rule: X1}}
  - {{name: aged_18_plus, rule: age, min: 18}}
outcomes:
  - {{type: top, n: 5}}
  - {{type: acsc, years: [2021], codes: {codes}}}
strata: []
"""


def test_an_acsc_code_list_widened_by_one_code_is_refused_as_two_versions(tiny_linked: Path, tmp_path: Path) -> None:
    """Issue 11, item 3: ACSC persons (and admissions) over a code list widened by one code hold the
    earlier persons and a few more under the same key (``acsc_persons[year]``): their difference
    would be the few persons admitted with the added code, so the second release is refused."""
    first = _run(tiny_linked, OmegaConf.to_container(OmegaConf.create(
        ACSC.format(name="acsc_first", codes='["0320:302"]'))), tmp_path / "first")
    second = _run(tiny_linked, OmegaConf.to_container(OmegaConf.create(
        ACSC.format(name="acsc_second", codes='["0320:302", "0322:1311"]'))), tmp_path / "second")
    persons = [set(pl.read_parquet(s / FOLDER / "acsc.parquet")["person"]) for s in (first, second)]
    assert persons[0] < persons[1] and 1 <= len(persons[1] - persons[0]) < Policy().threshold
    ledger = create_ledger(tmp_path / "ledger", Policy()).path
    make_release(first, tmp_path / "r1", ledger=ledger)
    index = (ledger / "ledger.json").read_text()
    with pytest.raises(LedgerRefusal, match="acsc"):
        make_release(second, tmp_path / "r2", ledger=ledger)
    assert not (tmp_path / "r2").exists() and (ledger / "ledger.json").read_text() == index
