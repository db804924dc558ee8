"""Street and place of residence of a 6-digit postcode, and how GP records write them.

In the Netherlands a PC6 is one side of (part of) one street in one place. Here the street and the
place are *functions of the PC6*, so every record of an address agrees, a household's members
share them, and a move (a new PC6) changes them: the place from the 4-digit postcode
(``data/cities.csv``: ranges after PostNL's), the street from the PC6 itself (two neighbouring
PC6 letter pairs share a street, its two sides). Streets follow Dutch frequencies: the frequent
names (``data/streets.csv``: Kerkstraat, Dorpsstraat, Julianastraat, ...) for a quarter of the
PC6s, and names composed of Dutch stems and kinds (Merelstraat, Rembrandtlaan, Dijkweg) for
the rest. Nothing here draws from a random stream but the record errors.

A GP record abbreviates (``Burg. de Withstr.``, ``St. Janstraat``) and writes places in their
everyday form (``Den Haag``, ``Den Bosch``, ``Alphen a.d. Rijn``).
"""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources

import numpy as np
import polars as pl

__all__ = ["abbreviate_streets", "cities_of", "city_variants", "streets_of"]

_LISTED_SHARE = 0.25  # PC6s on a street of data/streets.csv; the rest on a composed street
_STEMS = (
    "Eiken Beuken Linden Berken Iepen Populieren Wilgen Elzen Essen Platanen Hazelaar Meidoorn "
    "Vlier Taxus Dennen Rozen Tulpen Krokus Seringen Lelie Klaver Hyacinten Margrieten Goudsbloem "
    "Zonnebloem Merel Lijster Vinken Meeuwen Kievit Reiger Ekster Mezen Koekoek Specht Roodborst "
    "Havik Valken Zwanen Ooievaar Grutto Rembrandt Ruysdael Mondriaan Breitner Mesdag Bosboom "
    "Potter Hobbema Vondel Bredero Hooft Huygens Cats Multatuli Gorter Thorbecke Erasmus Spinoza "
    "Grotius Lorentz Dijk Veld Heide Duin Polder Akker Weide Beek Sluis Brug Burg Slot Hoeve Esch "
    "Koper Zilver Tin Jupiter Saturnus Mercurius Venus Orion"
).split()
_KINDS = ("straat", "laan", "weg", "plein", "hof", "singel", "pad", "dreef", "kade", "gracht",
          "park")
_ABBREVIATIONS = ((r"straat$", "str."), (r"^Burgemeester ", "Burg. "), (r"^Dokter ", "Dr. "),
                  (r"^Koningin ", "Kon. "), (r"^Prinses ", "Pr. "), (r"^Prins ", "Pr. "),
                  (r"^Sint ", "St. "), (r"^Pastoor ", "Past. "), (r"laan$", "ln."))
_MASK = (1 << 64) - 1


def _data(name: str) -> list[dict[str, str]]:
    text = resources.files("extracts.generator").joinpath(f"data/{name}").read_text("utf-8")
    return list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))


@cache
def _streets() -> tuple[np.ndarray, np.ndarray]:
    """Street names and the cumulative share of PC6s on each (deterministic)."""
    rows = _data("streets.csv")
    listed = [r["name"] for r in rows]
    weight = np.array([float(r["weight"]) for r in rows])
    composed = [f"{s}{k}" for s in _STEMS for k in _KINDS if f"{s}{k}" not in set(listed)]
    rank = np.random.default_rng(0x57EE7).permutation(len(composed)) + 1.0
    w_composed = (rank + 50.0) ** -0.7
    p = np.concatenate([weight / weight.sum() * _LISTED_SHARE,
                        w_composed / w_composed.sum() * (1 - _LISTED_SHARE)])
    cdf = np.cumsum(p)
    cdf[-1] = 1.0
    return np.array(listed + composed), cdf


@cache
def _cities() -> tuple[np.ndarray, np.ndarray, tuple[tuple[str, ...], ...]]:
    rows = _data("cities.csv")
    return (np.array([int(r["pc4_from"]) for r in rows]), np.array([r["city"] for r in rows]),
            tuple(tuple(v for v in r["variants"].split("|") if v) for r in rows))


def _mix(code: np.ndarray) -> np.ndarray:
    """A fixed 64-bit mixer (splitmix64's finaliser) to a uniform in [0, 1)."""
    z = (code.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(_MASK)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _pc6_parts(pc6: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4-digit number, letter-pair number (0..675) and a mask of well-formed canonical PC6s."""
    ok = pc6.str.contains(r"^[1-9][0-9]{3}[A-Z]{2}$").fill_null(False).to_numpy()
    clean = pl.select(pl.when(pl.Series(ok)).then(pc6).otherwise(pl.lit("1000AA"))).to_series()
    pc4 = clean.str.slice(0, 4).cast(pl.Int64).to_numpy()
    letters = clean.str.slice(4, 2).cast(pl.Binary).to_list()  # two ASCII letters, a few per row
    pair = np.frombuffer(b"".join(letters), dtype=np.uint8).reshape(-1, 2).astype(np.int64) - 65
    return pc4, pair[:, 0] * 26 + pair[:, 1], ok


def _where_canonical(name: str, ok: np.ndarray, values: np.ndarray) -> pl.Series:
    """``values`` as text, null where ``ok`` is false (never an object array: polars types those by
    their first values, and a null first gave an ``Object`` column that cannot be cast)."""
    text = pl.Series(name, values.astype(str), dtype=pl.String)
    return pl.select(pl.when(pl.Series(ok)).then(text)).to_series().alias(name)


def streets_of(pc6: pl.Series) -> pl.Series:
    """The street of each canonical PC6 (``1234AB``); null where the PC6 is null or not canonical."""
    names, cdf = _streets()
    pc4, pair, ok = _pc6_parts(pc6)
    u = _mix(pc4 * 1_000 + pair // 2)
    street = names[np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)]
    return _where_canonical("street", ok, street)


def cities_of(pc6: pl.Series) -> pl.Series:
    """The place of residence of each canonical PC6; null where the PC6 is null or not canonical."""
    start, city, _ = _cities()
    pc4, _, ok = _pc6_parts(pc6)
    at = np.clip(np.searchsorted(start, pc4, side="right") - 1, 0, None)
    return _where_canonical("city", ok, city[at])


def city_variants(rng: np.random.Generator, pc6: pl.Series, rate: float) -> tuple[pl.Series, np.ndarray]:
    """Places as a GP record writes them: another known form at ``rate`` where the place has one.

    Returns the places and a mask of those written in another form.
    """
    start, city, variants = _cities()
    pc4, _, ok = _pc6_parts(pc6)
    at = np.clip(np.searchsorted(start, pc4, side="right") - 1, 0, None)
    count = np.array([len(v) for v in variants])[at]
    pick = np.floor(rng.random(len(at)) * np.maximum(count, 1)).astype(np.int64)
    hit = (rng.random(len(at)) < rate) & (count > 0) & ok
    offset = np.cumsum([0] + [len(v) for v in variants])[:-1]
    flat = np.array([v for vs in variants for v in vs])
    written = np.where(hit, flat[np.where(hit, offset[at] + pick, 0)], city[at])
    return _where_canonical("city", ok, written), hit


def abbreviate_streets(streets: pl.Series) -> pl.Series:
    """The usual abbreviations of a street name: ``Burgemeester de Withstraat`` -> ``Burg. de Withstr.``."""
    out = streets
    for pattern, short in _ABBREVIATIONS:
        out = out.str.replace(pattern, short)
    return out.alias(streets.name)
