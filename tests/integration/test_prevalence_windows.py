"""Prevalence outcomes in windows (``cohort.prevalence_windows``) agree with the seed engine on its own ground.

Care use of a prevalence cohort in the reference year (``{years: [0, 0]}``, ``cause: method``) is
counted by the seed engine (``cohort.study``); any other window, ``cause: all``, contact bands and
costs in other windows by ``cohort.prevalence_windows``. Made to count the seed's care use too, the
second must give the seed engine's tables and person sets exactly (the seed study with strata, on
the tiny linked layout), so that a window of ``[0, 0]`` means the same in both.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf
from polars.testing import assert_frame_equal

from cohort import compile as compiled
from cohort.schema import parse_study_v2
from extracts.codelists import load_catalogue

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_windowed_care_use_in_the_reference_year_is_the_seed_engines(tiny_linked: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    raw = OmegaConf.to_container(OmegaConf.load(CONF / "study" / "seed_study_v2.yaml"))
    study = parse_study_v2({**raw, "strata": ["sex", "region"]}, load_catalogue(CONF / "conditions" / "seed_study.yaml"))
    seed = compiled.run_compiled(tiny_linked, study)
    monkeypatch.setattr(compiled, "is_windowed", lambda outcome: outcome.kind == "contacts")
    windowed = compiled.run_compiled(tiny_linked, study)
    for table in ("care_use", "care_use_change"):
        assert_frame_equal(windowed[table], seed[table])
    a, b = seed.members.frames()["care_use"], windowed.members.frames()["care_use"]
    assert_frame_equal(b.sort(b.columns, nulls_last=True), a.sort(a.columns, nulls_last=True))
