"""Properties of released claimed costs (issue 12): a shown magnitude never breaks a rule.

Random cells of per-person costs go through :func:`cohort.costs.cost_table` (the study's
statistics) and :func:`release.magnitudes.decide_magnitudes` (what a release shows); every shown
total is then checked with :func:`disclosure.magnitude_rule` on the raw contributions, which
knows every person's cost. For nested cells (the persons of a part within those of a whole), the
difference that two shown totals publish must pass the rules too.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohort.costs import cost_table
from disclosure import Policy, count_rule, magnitude_rule
from release.layout import COSTS
from release.magnitudes import decide_magnitudes

POLICY = Policy()
_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Costs in cents: many alike persons and up to two large claimants (what the rules look for).
cell = st.builds(lambda alike, large: alike + large, st.lists(st.integers(1, 50_000), max_size=28),
                 st.lists(st.integers(100_000, 50_000_000), max_size=2))


def statistics(cells: list[list[int]]) -> pl.DataFrame:
    """The cost table of cells 0..k-1, each person with one claim unit in 2019."""
    rows = [(f"{c}-{i}", "MSZ", date(2019, 3, 1), cents / 100) for c, values in enumerate(cells)
            for i, cents in enumerate(values)]
    units = pl.DataFrame(rows, schema={"p2": pl.String, "sector": pl.String, "service_date": pl.Date,
                                       "cost": pl.Float64}, orient="row").lazy()
    members = [(f"{c}-{i}", 2019, str(c)) for c, values in enumerate(cells) for i in range(len(values))]
    members += [(None, 2019, str(c)) for c in range(len(cells))]  # every cell exists, even over nobody
    cohort = pl.DataFrame(members, schema={"p2": pl.String, "year": pl.Int64, "cell": pl.String}, orient="row")
    return cost_table(units, cohort, ["year", "cell"], sectors=["MSZ"]).sort(pl.col("cell").cast(pl.Int64))


def exact_hidden(values: list[int]) -> bool:
    """Whether the exact rule, knowing every contribution, hides a cell of these costs."""
    if not values:
        return False
    frame = pl.DataFrame({"cell": ["c"] * len(values), "cost": values})
    return bool(magnitude_rule(frame, POLICY, cell="cell", value="cost")["hidden"].item())


@_SETTINGS
@given(cells=st.lists(cell, min_size=1, max_size=5))
def test_a_shown_total_never_breaks_the_p_percent_rule_or_dominance(cells: list[list[int]]) -> None:
    stats = statistics(cells)
    persons_hidden = count_rule(stats["persons"].to_numpy(), POLICY).hidden
    out = decide_magnitudes(stats, persons_hidden, np.zeros((0, 2), dtype=np.int64), POLICY, COSTS)
    total, status, _ = out["total"]
    mean, mean_status, _ = out["mean"]
    for i, values in enumerate(cells):
        if status[i] == "":
            assert not exact_hidden(values)
            assert total[i] == (sum(values) + 50) // 100
            assert not persons_hidden[i]
        if mean_status[i] == "":
            assert status[i] == "" and len(values) > 0
            assert abs(mean[i] - sum(values) / len(values) / 100) <= 0.5


# A part of many persons with larger costs, so that the whole often passes the rules on its own
# while the few persons it adds (the difference) would not.
big_part = st.lists(st.integers(1, 1_000_000), max_size=40)


@_SETTINGS
@given(part=st.one_of(cell, big_part), extra=cell)
def test_two_shown_nested_totals_never_publish_a_difference_that_breaks_the_rules(part: list[int],
                                                                                   extra: list[int]) -> None:
    whole = part + extra  # the whole's persons are the part's and some more
    stats = statistics([whole, part])
    persons_hidden = count_rule(stats["persons"].to_numpy(), POLICY).hidden
    _, status, _ = decide_magnitudes(stats, persons_hidden, np.array([[0, 1]]), POLICY, COSTS)["total"]
    if status[0] == "" and status[1] == "" and extra:
        assert not exact_hidden(extra)
    if status[1] != "":
        assert status[0] != "", "a hidden part under a shown whole is bounded by it"
