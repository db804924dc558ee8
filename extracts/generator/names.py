"""Dutch family names and initials of generated persons, and the typing errors records have.

Family names follow Dutch frequencies: the few hundred most frequent names with their prefixes
(``data/surnames.csv``: de Jong, Jansen, de Vries, van den Berg, ...) and a long tail of rarer
names composed of Dutch name parts (``Oosterveen``, ``van Holtkamp``), as most people bear a
name outside the top few hundred. Initials: one to four letters, first letters of Dutch given
names by frequency. Everything is drawn for whole arrays; strings are made once per column.
"""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources

import numpy as np
import polars as pl

__all__ = ["INITIAL_LETTERS", "Surnames", "draw_initials", "surnames", "typing_error"]

# Share of the population bearing one of the listed frequent names (Meertens: the 350 most
# frequent names cover about a fifth of the Dutch); the rest bear a tail name.
_TOP_SHARE = 0.20
_TAIL_STARTS = (
    "Ooster Wester Noorder Zuider Hooge Nieuwen Groot Klein Zand Hout Molen Kerk Brug Dijk Veld "
    "Water Steen Linde Eiken Berken Haver Rozen Wit Zwart Rood Groen Schouw Kamp Hof Heu Ley Roo "
    "Wil Lam Bos Vree Holt Weer Brand Spijk"
).split()
_TAIL_ROOTS = (
    "berg dijk veen hof bos kamp meer wijk broek horst beek hout hoek land huis kerk laar wal "
    "vliet mate brink sloot haar loo rade donk heide hoven burg stra"
).split()
_TAIL_SUFFIXES = ("", "s", "man", "er", "ink", "ing", "e", "sma")
_TAIL_PREFIXES = ("", "van", "de", "van der", "ter")

# First letters of Dutch given names (illustrative, after the Meertens first-name bank), and the
# number of initials a person has.
INITIAL_LETTERS = np.array(list("JMAHPCWESRGLKDTNBFIYVZOQUX"))
_LETTER_WEIGHTS = np.array([13, 10, 9, 6, 5, 5, 5, 5, 5, 5, 4, 4, 3, 3, 3, 3, 3, 2, 2, 1, 1,
                            0.5, 0.5, 0.2, 0.2, 0.1])
_COUNT_WEIGHTS = np.array([0.40, 0.38, 0.17, 0.05])


class Surnames:
    """The family-name vocabulary: prefix and name per entry, and the share of bearers."""

    def __init__(self, prefix: np.ndarray, name: np.ndarray, p: np.ndarray) -> None:
        self.prefix = prefix
        self.name = name
        self.p = p
        self.cdf = np.cumsum(p)
        self.cdf[-1] = 1.0

    def __len__(self) -> int:
        return len(self.name)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Indices of ``n`` family names drawn by frequency."""
        return np.searchsorted(self.cdf, rng.random(n), side="right").astype(np.int32)

    def full(self, index: np.ndarray, name: pl.Series | None = None) -> pl.Series:
        """Family names with their prefix (``van der Berg``); ``name`` replaces the name part."""
        prefix = pl.Series(self.prefix).gather(pl.Series(index.astype(np.int64)))
        if name is None:
            name = pl.Series(self.name).gather(pl.Series(index.astype(np.int64)))
        part = name
        return pl.select(
            pl.when(prefix.str.len_bytes() > 0).then(prefix + " " + part).otherwise(part)
        ).to_series().alias("family_name")


@cache
def surnames() -> Surnames:
    """The vocabulary: the listed frequent names, then the composed tail (deterministic)."""
    text = resources.files("extracts.generator").joinpath("data/surnames.csv").read_text("utf-8")
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    top_prefix = [r["prefix"] for r in rows]
    top_name = [r["name"] for r in rows]
    top_count = np.array([float(r["count"]) for r in rows])
    tail = [(pre, f"{s}{r}{x}") for s in _TAIL_STARTS for r in _TAIL_ROOTS for x in _TAIL_SUFFIXES
            for pre in dict.fromkeys(_TAIL_PREFIXES)
            if not x or (r[-1] != x[0] and not (r[-1] in "aeiou" and x[0] in "aeiou"))]
    known = set(zip(top_prefix, top_name, strict=True))
    tail = [t for t in tail if t not in known]
    # Tail frequencies fall off as a power of a fixed random rank: no structure by spelling.
    rank = np.random.default_rng(0x5A17).permutation(len(tail)) + 1.0
    # A quarter to a third of the Dutch bear a prefix: the prefixed variants weigh less.
    tail_w = (rank + 500.0) ** -0.8 * np.array([1.0 if not t[0] else 0.1 for t in tail])
    p = np.concatenate([top_count / top_count.sum() * _TOP_SHARE,
                        tail_w / tail_w.sum() * (1 - _TOP_SHARE)])
    prefix = np.array(top_prefix + [t[0] for t in tail])
    name = np.array(top_name + [t[1] for t in tail])
    return Surnames(prefix, name, p)


def draw_initials(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per person: letter indices [n, 4] into :data:`INITIAL_LETTERS` and the number used (1-4)."""
    letters = rng.choice(len(INITIAL_LETTERS), (n, 4), p=_LETTER_WEIGHTS / _LETTER_WEIGHTS.sum())
    count = rng.choice(4, n, p=_COUNT_WEIGHTS) + 1
    return letters.astype(np.int8), count.astype(np.int8)


def initials_strings(letters: np.ndarray, count: np.ndarray) -> pl.Series:
    """``JP`` from letter indices and counts (see :func:`draw_initials`)."""
    cols = [pl.Series(INITIAL_LETTERS).gather(pl.Series(letters[:, k].astype(np.int64)))
            for k in range(4)]
    c = pl.Series(count)
    parts = [cols[0]] + [pl.when(c > k).then(cols[k]).otherwise(pl.lit("")) for k in range(1, 4)]
    return pl.select(pl.concat_str(parts)).to_series().alias("initials")


def typing_error(rng: np.random.Generator, values: pl.Series) -> pl.Series:
    """One typing error per value: two neighbouring letters transposed, or a letter dropped.

    The first letter is left alone (a capital moved inside a name is not a typing slip), and
    values shorter than four letters are kept. A transposition of two equal letters changes
    nothing; the caller compares to know which values changed.
    """
    n = len(values)
    length = values.str.len_chars().fill_null(0).to_numpy()
    pos = 1 + np.floor(rng.random(n) * np.maximum(length - 2, 1)).astype(np.int64)
    frame = pl.DataFrame({"v": values, "pos": pos, "drop": rng.random(n) < 0.4})
    v, at = pl.col("v"), pl.col("pos")
    swapped = v.str.slice(at + 1, 1) + v.str.slice(at, 1)
    transposed = v.str.slice(0, at) + swapped + v.str.slice(at + 2)
    dropped = v.str.slice(0, at) + v.str.slice(at + 1)
    changed = pl.when(v.str.len_chars() < 4).then(v).when(pl.col("drop")).then(dropped)
    return frame.select(changed.otherwise(transposed)).to_series().alias(values.name)
