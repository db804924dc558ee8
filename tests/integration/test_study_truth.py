"""End to end on generated data whose true answer is known: the study finds the right people.

The tiny extracts go through the real supplier, TTP and linkage steps; the generator's ground
truth says which person behind each EHR record has which condition, and when. For the study
population of each reference year:

- every condition the GP record knows (an episode overlapping the year) is found (recall 1);
- (almost) every condition found is true: the only false finds come from an EHR record that
  carries another person's valid BSN and so links to that person's claims (an injected defect).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
from omegaconf import OmegaConf

from cohort.config import parse_study
from cohort.outcomes import claim_units, membership
from cohort.population import Linked, base_population
from extracts.codelists import load_catalogue
from extracts.generator.run import GenerationResult

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_study_finds_true_conditions_of_the_study_population(tiny_linked: Path, tiny_extracts: GenerationResult) -> None:
    config = parse_study(OmegaConf.to_container(OmegaConf.load(CONF / "study" / "seed_study.yaml")),
                         load_catalogue(CONF / "conditions" / "seed_study.yaml"))
    linked = Linked(tiny_linked)
    truth = tiny_extracts.out / "truth"
    who = pl.read_parquet(truth / "patients.parquet").select("patient_id", "person", "bsn_defect")
    conditions = pl.read_parquet(truth / "conditions.parquet")
    for year in config.reference_years:
        base = base_population(linked, year, config).collect()
        study = base.filter(pl.col("excluded_by").is_null()).join(who, on="patient_id")
        assert study.height > 1000
        units = claim_units(linked, study.lazy().select("p2"))
        found = membership(linked, base.lazy(), units, year, config).collect().join(
            study.select("patient_id", "person", "bsn_defect"), on="patient_id"
        )
        lo, hi = date(year, 1, 1), date(year, 12, 31)
        # Recall on the GP side: a true condition with an EHR episode overlapping the year.
        known = conditions.filter(
            pl.col("in_ehr") & (pl.col("onset") <= hi) & (pl.col("resolved").is_null() | (pl.col("resolved") >= lo))
        ).join(study.select("person"), on="person")
        missed = known.join(found, on=["person", "condition"], how="anti")
        assert missed.height == 0, f"{year}: {missed.height} true GP-recorded conditions not found"
        # Precision: a found condition is true (any time up to the year, incl. the claims lookback),
        # or the age rule, or a record carrying another person's BSN.
        true_any = conditions.filter(pl.col("onset") <= hi).select("person", "condition")
        by_age = found.filter(pl.col("condition") == "frail_elderly").join(
            study.filter(pl.col("age") >= 80).select("patient_id"), on="patient_id", how="semi"
        )
        wrong = found.join(true_any, on=["person", "condition"], how="anti").join(by_age, on=["patient_id", "condition"], how="anti")
        assert wrong.filter(pl.col("bsn_defect") != "shared").height == 0, f"{year}: false finds"
        assert wrong.height <= 0.01 * found.height
