"""Calibration of the demo preset against the published figures (shared/spec/facts.md).

Prevalence per condition and year and the main care-use shares are computed by the direct
queries of ``calibration_queries`` and must lie within the stated tolerances:
prevalence +-0.8 percentage points (frail elderly +-1.0), care-use shares +-4 points (+-6 for the GP
share of the small intellectual-disability group, +-8 for hospital use of the all-cause groups,
whose published level is "about half"), GP and out-of-hours contact rates +-3 points.
"""

from __future__ import annotations

import pytest

from extracts.codelists import load_catalogue
from extracts.generator.run import DEFAULT_CATALOGUE, GenerationResult

from calibration_queries import calibration_table


@pytest.mark.slow
def test_demo_preset_matches_published_figures_within_tolerance(demo_extracts: GenerationResult) -> None:
    rows = calibration_table(demo_extracts.out, load_catalogue(DEFAULT_CATALOGUE))
    table = "\n".join(f"{'OK ' if abs(m - t) <= tol else 'OFF'} {name:45s} {m:7.3f} {t:7.3f} ±{tol:.3f}"
                      for name, m, t, tol in rows)
    assert len(rows) >= 40, table
    off = [name for name, m, t, tol in rows if abs(m - t) > tol]
    assert not off, f"outside tolerance: {off}\n{table}"
