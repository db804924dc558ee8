"""A frequency attack on the surname Bloom filters the TTP holds (issue 13, item 8).

The attacker is the TTP (or whoever obtains its ``encodings.parquet``): it holds one filter per
record, knows the encoding scheme (Kerckhoffs: the standardisation, the filter length, the number of
positions per bigram, balancing; ``pseudonymisation/encodings.py`` is public) and the true
frequency of every surname in the population (the generator's Dutch surname data,
``extracts/generator/data/surnames.csv`` and its tail), but not the key. It tries to tell, for every
record, which surname it encodes, with everything the filters show:

1. **dictionary**: it encodes every surname of its table under the key it has and looks its
   filters up among the observed ones. Without ``K_net`` (the TTP never holds it) its key is a
   guess; with an unkeyed scheme (positions from public hash functions) it is the right one;
2. **bit patterns**: it reads the Hamming weight of each filter, which for an unbalanced filter
   grows with the number of distinct bigrams of the name, so it sorts filters and names into
   classes by that number (a balanced filter always has ``base`` bits set: one class);
3. **frequencies**: within each class it ranks the distinct filters by how many records carry them
   and gives the k-th most frequent filter the k-th most frequent surname of the class (filters
   with equal counts share the names of their ranks at random: scored as the expectation).

Its re-identification rate is the share of records whose surname it names correctly.

Chance: an attacker who cannot read anything from the encodings but which records carry equal
ones (equal names give equal filters, as equal values give equal exact tokens: the *equality and
frequency* leak of any deterministic encoding, stated in ``docs/security-boundaries.md``) can do
step 3 only, on opaque labels; that is the level the hardening must hold the attack to. Below it is
the uninformed guess (everyone bears the most frequent name).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import polars as pl

from extracts.generator.names import surnames
from pseudonymisation.encodings import (
    BLOOM_FIELDS,
    BloomSpec,
    _bigram_masks,
    _filters_chunk,
    bloom_filters,
    fallback_keys,
    normalise_surname,
)
from pseudonymisation.keys import Key

__all__ = ["SPEC", "Population", "attack", "hardened", "opaque_rate", "population", "unbalanced",
           "uninformed_rate"]

SPEC: BloomSpec = BLOOM_FIELDS["bf_family_name"]


def _bigram_count(core: str) -> int:
    padded = f"_{core}_"
    return len({padded[i: i + 2] for i in range(len(padded) - 1)})


@dataclass(frozen=True)
class Population:
    """Standardised surnames of ``n`` records drawn by frequency, and the attacker's table."""

    names: pl.Series
    table: pl.DataFrame  # core, p (share of bearers), bigrams


def population(n: int, seed: int) -> Population:
    vocabulary = surnames()
    cores = pl.select(normalise_surname(pl.lit(vocabulary.full(np.arange(len(vocabulary)))))).to_series()
    table = (pl.DataFrame({"core": cores, "p": vocabulary.p}).drop_nulls("core")
             .group_by("core").agg(pl.col("p").sum()).sort("core")
             .with_columns(bigrams=pl.col("core").map_elements(_bigram_count, return_dtype=pl.Int64)))
    drawn = vocabulary.draw(np.random.default_rng(seed), n)
    names = pl.select(normalise_surname(pl.lit(vocabulary.full(drawn)))).to_series().alias("name")
    return Population(names, table)


def hardened(network_key: Key, names: pl.Series) -> np.ndarray:
    """The filters the TTP holds: the engine's encoder under the sub-key of ``K_net``."""
    return bloom_filters(fallback_keys(network_key).blooms["bf_family_name"], SPEC, names)


def unbalanced(network_key: Key, names: pl.Series) -> np.ndarray:
    """The same keyed filters without balancing (no complement half): weight follows length."""
    first, _, _ = _bigram_masks(fallback_keys(network_key).blooms["bf_family_name"], SPEC)
    first = np.vstack([first, np.zeros((1, SPEC.words), np.uint64)])
    zeros = np.zeros_like(first)
    return _filters_chunk(names, first, zeros, np.zeros(SPEC.words, np.uint64), SPEC.words)


def _expected_weight(bigrams: np.ndarray) -> np.ndarray:
    return SPEC.base * (1 - (1 - 1 / SPEC.base) ** (SPEC.k * bigrams))


def _align(classes: pl.DataFrame, table: pl.DataFrame) -> float:
    """Expected correct records of frequency alignment per class ``g`` (ties shared at random).

    ``classes``: one row per distinct encoding: ``g`` (class), ``n`` (records), ``name`` (truth);
    ``table``: ``core``, ``p``, ``g``.
    """
    ranked = classes.sort(["g", "n"], descending=[False, True]).with_columns(
        rank=pl.int_range(pl.len()).over("g"))
    names = table.sort(["g", "p", "core"], descending=[False, True, False]).with_columns(
        rank=pl.int_range(pl.len()).over("g")).select("g", "rank", "core")
    guessed = ranked.join(names, on=["g", "rank"], how="left")
    # Filters with equal counts are indistinguishable: each gets one of their ranks' names at random.
    offered = guessed.drop_nulls("core").select("g", "n", pl.col("core").alias("name")).unique()
    ties = guessed.group_by("g", "n").agg(pl.len().alias("m"))
    hits = classes.join(offered, on=["g", "n", "name"], how="semi").join(ties, on=["g", "n"])
    return float((hits["n"] / hits["m"]).sum()) if hits.height else 0.0


def _as_bytes(filters: np.ndarray) -> pl.Series:
    return pl.Series([bytes(row) for row in filters.view(np.uint8).reshape(len(filters), -1)], dtype=pl.Binary)


def attack(filters: np.ndarray, pop: Population, *, attacker_key: Key, balanced: bool) -> dict:
    """Run the attack (module docstring); returns its rate and how many records the dictionary named."""
    observed = pl.DataFrame({"f": _as_bytes(filters), "name": pop.names}).with_row_index("row")
    # Step 1: the attacker's own encodings of its table, looked up among the observed filters.
    encode = hardened if balanced else unbalanced
    dictionary = pl.DataFrame({"f": _as_bytes(encode(attacker_key, pop.table["core"])), "core": pop.table["core"]})
    classes = observed.group_by("f").agg(pl.len().alias("n"), pl.col("name").first(), pl.col("row").first())
    named = classes.join(dictionary, on="f", how="inner")
    by_dictionary = int(named.filter(pl.col("core") == pl.col("name"))["n"].sum())
    rest = classes.join(named.select("f"), on="f", how="anti")
    table = pop.table.join(named.select("core"), on="core", how="anti")
    # Step 2: classes by Hamming weight (one class when every filter has the same weight).
    if balanced:
        rest = rest.with_columns(g=pl.lit(0, pl.Int64))
        table = table.with_columns(g=pl.lit(0, pl.Int64))
    else:
        weight = np.bitwise_count(filters[rest["row"].to_numpy()]).sum(axis=1).astype(float)
        grid = np.arange(1, int(table["bigrams"].max()) + 1)
        nearest = grid[np.abs(weight[:, None] - _expected_weight(grid)[None, :]).argmin(axis=1)]
        rest = rest.with_columns(g=pl.Series(nearest.astype(np.int64)))
        table = table.with_columns(g=pl.col("bigrams"))
    # Step 3: frequency alignment within each class.
    correct = by_dictionary + _align(rest.select("g", "n", "name"), table)
    return {"rate": correct / len(filters), "named_by_dictionary": by_dictionary}


def opaque_rate(pop: Population) -> float:
    """Chance: step 3 alone on opaque labels of the names (equality and frequency only)."""
    classes = pl.DataFrame({"name": pop.names}).group_by("name").agg(pl.len().alias("n"))
    return _align(classes.with_columns(g=pl.lit(0, pl.Int64)), pop.table.with_columns(g=pl.lit(0, pl.Int64))) / len(
        pop.names)


def uninformed_rate(pop: Population) -> float:
    """Everyone guessed to bear the most frequent surname."""
    top = pop.table.sort("p", descending=True)["core"][0]
    return float((pop.names == top).mean())


def seeded_key(seed: str) -> Key:
    """A network key fixed by ``seed``: as good as a random one to every attack here, and the same
    in every run (the unbalanced filters' leak varies with the key: 7 to 136 standard errors above
    chance over random keys, so a random one made the test fail now and then)."""
    return Key(role="network", material=hashlib.sha256(f"frequency-attack:{seed}".encode()).digest())
