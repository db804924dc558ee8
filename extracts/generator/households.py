"""Households of one chunk: who lives together, where (PC6 + house number), moves, twins, names.

Persons sharing the 4-digit postcode of their record (``Persons.postcode4``) are grouped into
households of geometric size (mean about 2.2; CBS: 2.1 persons per household, 38 % alone). A
household has one current address, whose postcode's first four digits are the members' postcode4,
and about a third moved once during 2017-2023 (CBS: about 10 % of people move each year): before
the move year they lived at a previous address in the same region. Twins are pairs of persons
of the chunk born on the same day, named alike and with different initials; they share the
household when one of them is outside the registry or both have the same postcode4 (the registry's
postcode4 is kept as it was drawn), and otherwise live apart.

Everything here comes from its own random stream, so the extracts' v1 columns are drawn exactly
as before the identifiers existed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from extracts.generator import names as nm
from extracts.generator.persons import Persons
from extracts.generator.plan import Plan

__all__ = ["Households", "make_households"]

MEAN_HOUSEHOLD = 2.2  # mean run length cut per household, before twins move in (CBS: 2.1)
MOVED_SHARE = 0.33  # households that moved once in 2017-2023 (CBS: ~10 % of persons a year)
TWIN_SHARE = 0.016  # persons who are one of twins (CBS: ~1.7 % of births are multiple)
OWN_NAME_SHARE = 0.25  # adults in a household who bear another family name than its first
ADDITION_SHARE = 0.08  # addresses with a house-number addition (huisletter or toevoeging)
PER_PC6 = 20  # households per 6-digit postcode (a street side; CBS: about 20 addresses)
# PC6 letters: not F, I, O, Q, U, Y; SA, SD and SS are never issued (PostNL).
_LETTERS = np.array(list("ABCDEGHJKLMNPRSTVWXZ"))
_PAIRS = np.array([a + b for a in _LETTERS for b in _LETTERS if a + b not in ("SA", "SD", "SS")])
_ADDITIONS = np.array(["A", "B", "C", "D", "1", "2", "3", "HS", "BIS", "ZW"])


@dataclass
class Households:
    """Per person of the chunk (local index): household, names, and addresses by year."""

    household: np.ndarray  # int64, global household id
    family: np.ndarray  # index into names.surnames()
    letters: np.ndarray  # [n, 4] initial letter indices
    n_initials: np.ndarray
    twin_of: np.ndarray  # global person id of the twin, -1 for none
    move_year: np.ndarray  # int32 year of the household's move, 0 = did not move
    pc6_now: pl.Series  # current address
    number_now: pl.Series
    pc6_before: pl.Series  # address before the move (equal to now when not moved)
    number_before: pl.Series

    def pc6_in(self, person: np.ndarray, year: np.ndarray) -> tuple[pl.Series, pl.Series]:
        """PC6 and house number of persons (local index) in the given years."""
        idx = pl.Series(person.astype(np.int64))
        before = pl.Series(year < self.move_year[person])
        pc6 = pl.select(pl.when(before).then(self.pc6_before.gather(idx))
                        .otherwise(self.pc6_now.gather(idx))).to_series()
        number = pl.select(pl.when(before).then(self.number_before.gather(idx))
                           .otherwise(self.number_now.gather(idx))).to_series()
        return pc6.alias("postcode6"), number.alias("house_number")


def _house_numbers(rng: np.random.Generator, base: np.ndarray) -> pl.Series:
    """``12`` or ``12-A`` (canonical form, docs/data-contract.md) from numbers."""
    has = rng.random(len(base)) < ADDITION_SHARE
    addition = pl.Series(_ADDITIONS).gather(pl.Series(rng.integers(0, len(_ADDITIONS), len(base))))
    number = pl.Series(base.astype(np.int64)).cast(pl.String)
    with_addition = number + "-" + addition
    return pl.select(pl.when(pl.Series(has)).then(with_addition).otherwise(number)).to_series()


def _pc6(pc4: np.ndarray, pair: np.ndarray) -> pl.Series:
    return pl.Series(pc4.astype(np.int64)).cast(pl.String) + pl.Series(_PAIRS).gather(
        pl.Series(pair.astype(np.int64) % len(_PAIRS))
    )


def _twins(rng: np.random.Generator, p: Persons) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint pairs (a, b) of persons born on the same day, about TWIN_SHARE of persons."""
    order = np.lexsort((rng.random(len(p)), p.birth))
    a, b = order[0:-1:2], order[1::2]
    same = p.birth[a] == p.birth[b]
    a, b = a[same], b[same]
    keep = rng.random(len(a)) < min(1.0, TWIN_SHARE * len(p) / 2 / max(len(a), 1))
    return a[keep], b[keep]


def make_households(plan: Plan, rng: np.random.Generator, p: Persons, chunk: int) -> Households:
    n = len(p)
    surnames = nm.surnames()
    # Households: runs of one postcode4 in random order, cut at geometric lengths.
    order = np.lexsort((rng.random(n), p.postcode4))
    pc4_sorted = p.postcode4[order]
    new_pc4 = np.concatenate([[True], pc4_sorted[1:] != pc4_sorted[:-1]])
    starts = new_pc4 | (rng.random(n) < 1 / MEAN_HOUSEHOLD)
    local = np.empty(n, dtype=np.int64)
    local[order] = np.cumsum(starts) - 1
    n_households = int(starts.sum())
    head = order[starts]  # the first member of each household, by household number
    # Rank of the household within its postcode4 (for distinct addresses).
    group_start = np.maximum.accumulate(np.where(new_pc4, np.arange(n), 0))
    rank = (np.cumsum(starts) - 1) - (np.cumsum(starts) - 1)[group_start]
    rank_hh = rank[starts]
    pc4_hh = p.postcode4[head]

    # Twins: b joins a's household when that keeps the registry's postcode4 true.
    a, b = _twins(rng, p)
    together = ~p.in_ehr[b] | (p.postcode4[a] == p.postcode4[b])
    local[b[together]] = local[a[together]]
    twin_of = np.full(n, -1, dtype=np.int64)
    twin_of[a], twin_of[b] = p.gid[b], p.gid[a]

    # Names: the household's name, except for some adults; twins share one name.
    family_hh = surnames.draw(rng, n_households)
    own = surnames.draw(rng, n)
    adult = p.age_in(2019) >= 18
    family = np.where(adult & (rng.random(n) < OWN_NAME_SHARE), own, family_hh[local])
    family[b] = family[a]
    letters, n_initials = nm.draw_initials(rng, n)
    clash = letters[a, 0] == letters[b, 0]
    shift = rng.integers(1, len(nm.INITIAL_LETTERS), len(b))
    letters[b[clash], 0] = (letters[a[clash], 0] + shift[clash]) % len(nm.INITIAL_LETTERS)

    # Addresses: PER_PC6 households per PC6, the chunk in the letters so chunks never share one.
    block = rank_hh // PER_PC6
    pair_now = pc4_hh * 7 + block * plan.n_chunks + chunk
    number_now = (rank_hh % PER_PC6) * 3 + 1 + rng.integers(0, 3, n_households)
    moves = rng.random(n_households) < MOVED_SHARE
    years = rng.integers(plan.config.first_year + 1, plan.config.last_year + 1, n_households)
    move_year = np.where(moves, years, 0)
    region = p.region[head]
    pc4_before = 1000 + region * 300 + rng.integers(0, 300, n_households)
    pc6_now_hh = _pc6(pc4_hh, pair_now)
    pc6_before_hh = _pc6(pc4_before, rng.integers(0, len(_PAIRS), n_households))
    number_now_hh = _house_numbers(rng, number_now)
    number_before_hh = _house_numbers(rng, rng.integers(1, 200, n_households))
    moved = pl.Series(move_year > 0)
    pc6_before_hh = pl.select(pl.when(moved).then(pc6_before_hh).otherwise(pc6_now_hh)).to_series()
    number_before_hh = pl.select(
        pl.when(moved).then(number_before_hh).otherwise(number_now_hh)).to_series()

    idx = pl.Series(local)
    return Households(
        household=p.gid[0] + local if n else local,
        family=family,
        letters=letters,
        n_initials=n_initials,
        twin_of=twin_of,
        move_year=move_year[local].astype(np.int32),
        pc6_now=pc6_now_hh.gather(idx),
        number_now=number_now_hh.gather(idx),
        pc6_before=pc6_before_hh.gather(idx),
        number_before=number_before_hh.gather(idx),
    )
