"""A4 with shared solutions (audit/singletons.py) finds what the plain way finds, with fewer programs.

The plain way fixes each singleton at 1 in a region of its own and asks every primary there
(:func:`audit.singletons._one_by_one`); it is kept for releases whose true values break the
equations. Both are run here on the same regions: the pairs must be the same, and on a table
with many singletons the shared solutions must cost far fewer integer programs (issue 11, item 7:
the plain way took 564 CPU s on the stratified tiny release). Counting programs, not seconds,
keeps the test free of the machine's load.
"""

from __future__ import annotations

import numpy as np
import pytest

from audit import FeasibleRegion, cell
from audit.singletons import _one_by_one, singleton_pairs
from audit.tables import crossed_equations

ROWS, COLS = "abcdef", "uvwxy"
WIDE_ROWS, WIDE_COLS = "abcdefghij", "stuvwxyz"


def _region(inner: np.ndarray, hidden: np.ndarray, rows: str = ROWS, cols: str = COLS,
            ) -> tuple[FeasibleRegion, dict, dict]:
    """A rows x columns table with all its margins published and the ``hidden`` inner cells hidden;
    the region, the truth and the primaries (hidden cells of 1..9)."""
    variables = {"r": rows[: inner.shape[0]], "c": cols[: inner.shape[1]]}
    truth = {cell(r=r, c=c): int(inner[i, j]) for i, r in enumerate(variables["r"])
             for j, c in enumerate(variables["c"])}
    for i, r in enumerate(variables["r"]):
        truth[cell(r=r)] = int(inner[i].sum())
    for j, c in enumerate(variables["c"]):
        truth[cell(c=c)] = int(inner[:, j].sum())
    truth[cell()] = int(inner.sum())
    keys = {cell(r=r, c=c) for i, r in enumerate(variables["r"]) for j, c in enumerate(variables["c"])
            if hidden[i, j]}
    region = FeasibleRegion(crossed_equations(variables), {k: v for k, v in truth.items() if k not in keys},
                            sorted(keys, key=repr))
    primaries = {k: truth[k] for k in keys if 0 < truth[k] < 10}
    return region, truth, primaries


def _random_table(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    inner = rng.choice([1, 1, 1, 2, 4, 12, 15, 30, 45], size=(len(ROWS), len(COLS)))
    # Primaries hidden, and about a third of the rest as secondaries (some patterns leave a
    # primary exact or tied to a singleton: the pairs must then agree too).
    hidden = (inner < 10) | (rng.random(inner.shape) < 0.35)
    return inner, hidden


@pytest.mark.parametrize("seed", range(8))
def test_a4_shared_solutions_find_the_same_pairs_as_one_region_per_singleton(seed: int) -> None:
    region, truth, primaries = _region(*_random_table(seed))
    shared, _ = singleton_pairs(region, truth, primaries)
    singletons = [k for k, v in primaries.items() if v == 1]
    by_comp: dict[int, list] = {}
    for key in primaries:
        by_comp.setdefault(region.component_id(key), []).append(key)
    plain = []
    for members in by_comp.values():
        plain += _one_by_one(region, [s for s in singletons if s in members], members)[0]
    assert sorted(map(repr, shared)) == sorted(map(repr, plain))


def test_a4_a_singleton_that_pins_a_primary_is_a_pair() -> None:
    # Row a: 1 and 4 hidden, the row total 5 published; column margins leave each free alone, but
    # with the 1 known the 4 is 5 - 1.
    inner = np.array([[1, 4, 30], [20, 12, 30], [15, 25, 40]])
    hidden = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 0]], dtype=bool)
    region, truth, primaries = _region(inner, hidden)
    pairs, _ = singleton_pairs(region, truth, primaries)
    assert [(s, k) for s, k in pairs] == [(cell(r="a", c="u"), cell(r="a", c="v"))]


def test_a4_with_many_singletons_costs_a_fraction_of_the_programs_of_one_region_each() -> None:
    # 10 x 8 with about 40 singletons: the shared solutions need well under half the programs
    # (0.4 against 2.3 CPU s when written); the gap widens with the component (on the stratified
    # tiny release: 1 800 cells, 300 singletons).
    rng = np.random.default_rng(7)
    inner = rng.choice([1, 1, 1, 1, 2, 30, 45], size=(len(WIDE_ROWS), len(WIDE_COLS)))
    region, truth, primaries = _region(inner, inner < 10, WIDE_ROWS, WIDE_COLS)
    singletons = [k for k, v in primaries.items() if v == 1]
    assert len(singletons) >= 30
    _, shared = singleton_pairs(region, truth, primaries)
    before = region.milps
    plain = _one_by_one(region, singletons, list(primaries))[1] + region.milps - before
    assert shared * 2 < plain, (shared, plain)
