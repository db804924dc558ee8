"""The optional contract v2 identifiers: given name, street and place of residence.

Drawn from a random stream of their own (``(seed, block, 0x1D, 0x6E)``), so that every other
column, the other identifiers included, is drawn exactly as before these existed. Per person: a
first given name by sex, birth cohort and first initial (:mod:`extracts.generator.given_names`).
Per address: its street and place, functions of the PC6 (:mod:`extracts.generator.addresses`), so
claims rows follow the address of their year and a move changes them.

Each side has its errors (rates in :class:`~extracts.generator.config.DefectRates`): the insurer
a typing error in the given name (on every row of the person, ``name_typo``); the GP record the
calling name instead of the official one (``given_name_nickname``), a typing error in the given
name or the street (``name_typo``), an abbreviated street (``street_abbreviated``), the place in
another form (``city_variant``), and no street or place where it has no address. The truth says
which record got which.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import polars as pl

from extracts.generator import addresses
from extracts.generator import given_names as gn
from extracts.generator import names as nm
from extracts.generator.households import Households
from extracts.generator.identity_columns import IdentityColumns
from extracts.generator.persons import Persons
from extracts.generator.plan import Plan

__all__ = ["STREAM", "ehr_optional", "insured_optional", "person_given_names"]

STREAM = 0x6E
"""Last element of the random stream ``(seed, block, 0x1D, STREAM)`` of these columns."""


def person_given_names(rng: np.random.Generator, hh: Households, p: Persons) -> np.ndarray:
    """Index into :func:`~extracts.generator.given_names.given_names` per person of the block."""
    birth_year = p.birth.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    return gn.draw_given_names(rng, hh.letters[:, 0].astype(np.int64), p.sex, birth_year)


def _typos(rng: np.random.Generator, values: pl.Series, rate: float) -> tuple[pl.Series, np.ndarray]:
    """Typing errors at ``rate`` (:func:`~extracts.generator.names.typing_error`); the mask says which
    values changed (a name under four letters, or two equal letters swapped, stays as it was)."""
    hit = np.flatnonzero((rng.random(len(values)) < rate) & values.is_not_null().to_numpy())
    changed = np.zeros(len(values), dtype=bool)
    if len(hit):
        before = values.gather(pl.Series(hit))
        typed = nm.typing_error(rng, before)
        values = values.scatter(hit, typed)
        changed[hit] = (typed != before).to_numpy()
    return values, changed


def insured_optional(plan: Plan, rng: np.random.Generator, hh: Households, given: np.ndarray,
                     row_person: np.ndarray, row_year: np.ndarray, defects: Counter) -> IdentityColumns:
    """Given name (the insurer's typing errors on every row of the person), street and place of the
    row's year."""
    official = pl.Series("given_name", gn.given_names().name[given], dtype=pl.String)
    typed, typo_person = _typos(rng, official, plan.config.defects.name_typo)
    pc6, _ = hh.pc6_in(row_person, row_year)
    defects["claims_given_name_typo"] += int(typo_person.sum())
    return IdentityColumns(
        columns={"given_name": typed.gather(pl.Series(row_person.astype(np.int64))),
                 "street": addresses.streets_of(pc6), "city": addresses.cities_of(pc6)},
        truth={"given_name_typo": typo_person[row_person]},
    )


def ehr_optional(plan: Plan, rng: np.random.Generator, hh: Households, given: np.ndarray,
                 rec_person: np.ndarray, address_missing: np.ndarray, defects: Counter) -> IdentityColumns:
    """Given name, street and place of EHR patient records (``rec_person``: local person per record)."""
    d = plan.config.defects
    n = len(rec_person)
    name, nickname = gn.nicknames(rng, given[rec_person], d.given_name_nickname)
    name, name_typo = _typos(rng, name, d.name_typo)
    pc6 = hh.pc6_now.gather(pl.Series(rec_person.astype(np.int64)))
    pc6 = pl.select(pl.when(pl.Series(address_missing)).then(None).otherwise(pc6)).to_series()
    street = addresses.streets_of(pc6)
    short = addresses.abbreviate_streets(street)
    abbreviated = (rng.random(n) < d.street_abbreviated) & (short != street).fill_null(False).to_numpy()
    street = pl.select(pl.when(pl.Series(abbreviated)).then(short).otherwise(street)).to_series()
    street, street_typo = _typos(rng, street, d.name_typo)
    city, variant = addresses.city_variants(rng, pc6, d.city_variant)
    defects.update({
        "ehr_given_name_nickname": int(nickname.sum()), "ehr_given_name_typo": int(name_typo.sum()),
        "ehr_street_abbreviated": int(abbreviated.sum()), "ehr_street_typo": int(street_typo.sum()),
        "ehr_city_variant": int(variant.sum()),
    })
    return IdentityColumns(
        columns={"given_name": name.alias("given_name"), "street": street.alias("street"),
                 "city": city.alias("city")},
        truth={"given_name_nickname": nickname, "given_name_typo": name_typo,
               "street_abbreviated": abbreviated, "street_typo": street_typo, "city_variant": variant},
    )
