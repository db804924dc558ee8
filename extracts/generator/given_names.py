"""Dutch given names of generated persons, and the calling names GP records hold instead.

A person's first given name follows the frequencies of their sex and birth cohort
(``data/given_names.csv``: Johannes and Maria before 1945, Peter and Monique around 1970, Daan and
Emma after 2005) and starts with the person's first initial, which is drawn before it (the
initials are a contract v2 column of their own, :mod:`extracts.generator.names`). The insurer
holds the official name; a GP record often holds the calling name (roepnaam) or short form
instead: Jan or Hans for Johannes, Kees for Cornelis, Truus for Geertruida.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import polars as pl

from extracts.generator.names import INITIAL_LETTERS

__all__ = ["COHORT_STARTS", "GivenNames", "draw_given_names", "given_names", "nicknames"]

COHORT_STARTS = np.array([1945, 1965, 1985, 2005])
"""Birth years at which the cohorts of ``data/given_names.csv`` start (after the first)."""
_COHORTS = ("c1930", "c1950", "c1970", "c1990", "c2010")


@dataclass(frozen=True)
class GivenNames:
    """The vocabulary: name, sex (0 male, 1 female), weight per cohort, calling names."""

    name: np.ndarray
    sex: np.ndarray
    weight: np.ndarray  # [names, cohorts]
    calling: tuple[tuple[str, ...], ...]

    def __len__(self) -> int:
        return len(self.name)


@cache
def given_names() -> GivenNames:
    text = resources.files("extracts.generator").joinpath("data/given_names.csv").read_text("utf-8")
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    return GivenNames(
        name=np.array([r["name"] for r in rows]),
        sex=np.array([0 if r["sex"] == "M" else 1 for r in rows], dtype=np.int8),
        weight=np.array([[float(r[c]) for c in _COHORTS] for r in rows]),
        calling=tuple(tuple(n for n in r["nicknames"].split("|") if n) for r in rows),
    )


def draw_given_names(rng: np.random.Generator, first_letter: np.ndarray, sex: np.ndarray,
                     birth_year: np.ndarray) -> np.ndarray:
    """Indices into :func:`given_names` per person, starting with the person's first initial.

    ``first_letter`` indexes :data:`~extracts.generator.names.INITIAL_LETTERS`; ``sex`` indexes
    ``M F X`` (``X`` draws from both). Within a sex, cohort and letter the draw follows the
    cohort's frequencies; a letter the cohort has no name for takes the sex's names of any cohort.
    """
    vocab = given_names()
    n = len(first_letter)
    u = rng.random(n)
    cohort = np.searchsorted(COHORT_STARTS, birth_year, side="right")
    initial = np.array([name[0] for name in vocab.name])
    key = (sex.astype(np.int64) * len(_COHORTS) + cohort) * len(INITIAL_LETTERS) + first_letter
    out = np.empty(n, dtype=np.int32)
    for k in np.unique(key):
        rows = np.flatnonzero(key == k)
        s, rest = divmod(int(k), len(_COHORTS) * len(INITIAL_LETTERS))
        c, letter = divmod(rest, len(INITIAL_LETTERS))
        of_letter = initial == INITIAL_LETTERS[letter]
        of_sex = of_letter & (vocab.sex == s) if s < 2 else of_letter
        w = np.where(of_sex, vocab.weight[:, c], 0.0)
        if w.sum() == 0:
            w = np.where(of_sex, vocab.weight.sum(axis=1), 0.0)
        if w.sum() == 0:  # no name of this sex starts with the letter: any sex's
            w = np.where(of_letter, vocab.weight.sum(axis=1) + 1.0, 0.0)
        cdf = np.cumsum(w) / w.sum()
        out[rows] = np.minimum(np.searchsorted(cdf, u[rows], side="right"), len(cdf) - 1)
    return out


def nicknames(rng: np.random.Generator, index: np.ndarray, rate: float) -> tuple[pl.Series, np.ndarray]:
    """Given names as a GP record holds them: the calling name at ``rate`` where one is known.

    Returns the names and a mask of those replaced by a calling name.
    """
    vocab = given_names()
    n = len(index)
    count = np.array([len(c) for c in vocab.calling])[index]
    pick = np.floor(rng.random(n) * np.maximum(count, 1)).astype(np.int64)
    hit = (rng.random(n) < rate) & (count > 0)
    offset = np.cumsum([0] + [len(c) for c in vocab.calling])[:-1]
    flat = np.array([name for c in vocab.calling for name in c])
    calling = flat[np.where(hit, offset[index] + pick, 0)]
    names = np.where(hit, calling, vocab.name[index])
    return pl.Series("given_name", names, dtype=pl.String), hit
