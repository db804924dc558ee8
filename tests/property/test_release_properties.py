"""Properties of releases (issue 5): every release made passes the independent audit.

For random cohorts by one or two strata with every margin (counts from 0 to 60, many of them
small), with care use and referrals of some of their persons (so complements N - n are often
small), a release is made through the whole release path (Total rows, every table linked,
complements protected) and then audited from its folder alone, and with its ledger (A5 and
verification mode: A2 and A4 with the true values). The engine and the auditor share no code:
the auditor rebuilds the equations from the manifest and bounds every hidden cell with its own
integer programs.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from study_builder import write_study

from audit import audit_release
from disclosure import Policy
from release.ledger import create_ledger
from release.make import make_release

_SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
counts = st.one_of(st.integers(0, 9), st.integers(10, 60), st.just(0), st.just(1))


@st.composite
def cohorts(draw: st.DrawFn) -> dict:
    """A cohort by one or two strata, with care use and referrals of some of its persons."""
    strata = {"region": list("ABCD")[: draw(st.integers(2, 4))]}
    if draw(st.booleans()):
        strata["sex"] = ["F", "M", "X"][: draw(st.integers(2, 3))]
    cells = list(itertools.product(*strata.values()))
    values = draw(st.lists(counts, min_size=len(cells), max_size=len(cells)))
    numerators = dict(zip(cells, values, strict=True))
    care = {k: draw(st.integers(0, v)) for k, v in numerators.items()} if draw(st.booleans()) else {}
    total = sum(values)
    base = draw(st.integers(0, total))
    return {"strata": strata, "numerators": numerators, "care": care, "referral_base": base,
            "referred": draw(st.integers(0, base))}


def _visible_small(out: Path, threshold: int) -> int:
    """Shown counts of 1..T-1 over every count column of every released table."""
    found = 0
    for path in out.glob("*.parquet"):
        frame = pl.read_parquet(path)
        for column in frame.columns:
            status = f"{column}_status"
            if status in frame.columns and frame.schema[column].is_integer():
                shown = frame.filter(pl.col(status) == "")[column]
                found += int(((shown >= 1) & (shown < threshold)).sum())
    return found


@_SETTINGS
# T from the policy floor up (disclosure.md): the auditor fails anything looser.
@given(cohort=cohorts(), threshold=st.sampled_from([10, 15]), rest=st.sampled_from([3, 1000]))
def test_every_release_passes_the_audit_and_shows_no_count_below_t(cohort, threshold, rest):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        study = write_study(root / "study", cohort["numerators"], strata=cohort["strata"], rest=rest,
                            care=cohort["care"], referral_base=cohort["referral_base"], referred=cohort["referred"])
        create_ledger(root / "ledger", Policy(threshold=threshold))
        result = make_release(study, root / "release", ledger=root / "ledger")
        assert _visible_small(result.out, threshold) == 0
        for report in (audit_release(result.out, min_threshold=threshold),
                       audit_release(result.out, ledger=root / "ledger", min_threshold=threshold)):
            assert report.passed, [f for f in report.findings if not f.advisory]
        assert report.mode == "verification"
