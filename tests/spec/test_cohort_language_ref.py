"""Study schema 2: points where the engine and the DuckDB reference disagreed, each on a small table.

Found by the differential test (``tests/integration/test_study_differential_v2.py``) and decided
against ``docs/study-schema.md``; each test states the rule it pins down.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from linked_builder import CONDITIONS_YAML, LinkedBuilder

from cohort.compile import run_compiled
from cohort.schema import parse_study_v2
from extracts.codelists import load_catalogue

CATALOGUE = load_catalogue(CONDITIONS_YAML)


def _run(b: LinkedBuilder, tmp_path: Path, raw: dict) -> dict[str, pl.DataFrame]:
    return run_compiled(b.write(tmp_path), parse_study_v2(raw, CATALOGUE))


def test_stratified_care_use_of_an_index_cohort_has_the_cells_of_its_cohort_table(tmp_path: Path) -> None:
    """``care_use`` is stratified as the cohort table is: a stratum without cohort records gets n = N = 0.

    docs/study-schema.md: strata "stratify the cohort table and the contacts and costs outcomes";
    a prevalence study lists every stratum of its population in ``prevalence`` and ``care_use``
    alike. Here the man is in the population (a row of ``index_cohort`` with numerator 0) but not in
    the cohort; his stratum was missing from ``care_use`` (and so from ``care_use_change``).
    """
    b = (LinkedBuilder().patient("woman", sex="F").episode("woman", "T90", "2021-03-01")
         .contact("woman", "2021-03-10", icpc="T90").patient("man", sex="M"))
    raw = {"schema": 2, "name": "spec", "cohort": {"type": "index", "years": [2021], "conditions": ["diabetes"]},
           "outcomes": [{"type": "contacts", "disciplines": ["HA"], "window": {"days": [0, 30]}}], "strata": ["sex"]}
    tables = _run(b, tmp_path, raw)
    cohort = tables["index_cohort"].sort("sex")
    assert cohort.select("sex", "numerator", "denominator").rows() == [("F", 1, 1), ("M", 0, 1)]
    care = tables["care_use"].sort("sex")
    assert care.select("sex", "n", "N").rows() == [("F", 1, 1), ("M", 0, 0)]
