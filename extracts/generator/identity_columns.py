"""The contract v2 identifier columns as the suppliers deliver them, with their defects.

The GP practice records the address, insurer, insurance number, family name and initials of a
patient record; the insurer records them per insured person and year. Each side has its own
errors (rates in :class:`~extracts.generator.config.DefectRates`): typing errors in names
(a transposition or a dropped letter), only the first initial, transposed birth-date digits,
an outdated insurer, a missing address or insurance number, odd forms (``1234 ab``, ``12 a``,
``Berg, van den``, ``J.P.``) and the odd malformed postcode. The truth says which record got
which, beside the true person.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import polars as pl

from extracts.generator import names as nm
from extracts.generator.households import Households
from extracts.generator.plan import Plan

__all__ = ["IdentityColumns", "ehr_identities", "insurance_numbers", "insured_identities",
           "transpose_birth_dates"]

# Insurance numbers: 9 digits, a bijection of the person for each insurer (illustrative).
_NUMBER_SPACE = 10**9
_PERSON_FACTOR = 7_919_113  # odd, not a multiple of 5: coprime with 10**9
_INSURER_FACTOR = 104_729_371


@dataclass
class IdentityColumns:
    """Delivered identifier columns (contract names) and truth flags, one row per record."""

    columns: dict[str, pl.Series]
    truth: dict[str, pl.Series | np.ndarray]


def insurance_numbers(plan: Plan, gid: np.ndarray, insurer: np.ndarray) -> pl.Series:
    """The verzekerdennummer of persons at insurers (index into plan.insurer_codes)."""
    salt = plan.config.seed % _NUMBER_SPACE
    value = (gid.astype(np.int64) * _PERSON_FACTOR + insurer.astype(np.int64) * _INSURER_FACTOR
             + salt) % _NUMBER_SPACE
    return pl.Series("insurance_number", value).cast(pl.String).str.zfill(9)


def _names(hh: Households, person: np.ndarray, rng: np.random.Generator, rate: float,
           ) -> tuple[pl.Series, np.ndarray]:
    """Family names of persons with typing errors at ``rate`` (in the name, not the prefix)."""
    surnames = nm.surnames()
    family = hh.family[person]
    name = pl.Series(surnames.name).gather(pl.Series(family.astype(np.int64)))
    hit = np.flatnonzero(rng.random(len(person)) < rate)
    if len(hit):
        typed = nm.typing_error(rng, name.gather(pl.Series(hit)))
        name = name.scatter(hit, typed)
    changed = np.zeros(len(person), dtype=bool)
    changed[hit] = True
    return surnames.full(family, name), changed


def _scatter(values: pl.Series, mask: np.ndarray, new: pl.Series) -> pl.Series:
    idx = np.flatnonzero(mask)
    return values.scatter(idx, new.gather(pl.Series(idx))) if len(idx) else values


def ehr_identities(plan: Plan, rng: np.random.Generator, hh: Households, gid: np.ndarray,
                   rec_person: np.ndarray, insurer: np.ndarray, first_insurer: np.ndarray,
                   defects: Counter) -> IdentityColumns:
    """Identifiers of EHR patient records (``rec_person``: local person per record)."""
    d = plan.config.defects
    n = len(rec_person)
    records = pl.Series(rec_person.astype(np.int64))
    pc6, number = hh.pc6_now.gather(records), hh.number_now.gather(records)
    outdated = (rng.random(n) < d.insurer_outdated) & (first_insurer != insurer)
    held = np.where(outdated, first_insurer, insurer)
    ins_number = insurance_numbers(plan, gid[rec_person], held)
    family, typo = _names(hh, rec_person, rng, d.name_typo)
    letters, count = hh.letters[rec_person], hh.n_initials[rec_person].copy()
    first_only = (rng.random(n) < d.initials_first_only) & (count > 1)
    count[first_only] = 1
    initials = nm.initials_strings(letters, count)

    # Odd forms, then missing and malformed values.
    odd = rng.random((4, n)) < d.odd_identifier_format
    spaced = pc6.str.slice(0, 4) + " " + pc6.str.slice(4).str.to_lowercase()
    pc6 = _scatter(pc6, odd[0], pl.select(pl.when(pl.Series(rng.random(n) < 0.5)).then(spaced)
                                          .otherwise(pc6.str.to_lowercase())).to_series())
    number = _scatter(number, odd[1], number.str.replace("-", " ").str.to_lowercase())
    prefix_last = family.str.replace(r"^((?:[a-z']+ )+)(.+)$", "$2, $1").str.strip_chars()
    comma = pl.select(pl.when(family.str.contains(r"^[a-z']")).then(prefix_last)
                      .otherwise(family.str.to_uppercase())).to_series()
    family = _scatter(family, odd[2], comma)
    initials = _scatter(initials, odd[3], initials.str.replace_all(r"(.)", "$1."))
    no_address = rng.random(n) < d.address_missing
    pc6 = _scatter(pc6, no_address, pl.Series([None] * n, dtype=pl.String))
    number = _scatter(number, no_address, pl.Series([None] * n, dtype=pl.String))
    malformed = ~no_address & (rng.random(n) < d.postcode_malformed)
    pc6 = _scatter(pc6, malformed, pc6.str.slice(0, 5))
    no_number = rng.random(n) < d.insurance_number_missing
    ins_number = _scatter(ins_number, no_number, pl.Series([None] * n, dtype=pl.String))

    defects.update({
        "ehr_name_typo": int(typo.sum()), "ehr_initials_first_only": int(first_only.sum()),
        "ehr_insurer_outdated": int(outdated.sum()), "ehr_address_missing": int(no_address.sum()),
        "ehr_postcode_malformed": int(malformed.sum()),
        "ehr_insurance_number_missing": int(no_number.sum()),
        "ehr_odd_identifier_format": int(odd.sum()),
    })
    codes = pl.Series(plan.insurer_codes).gather(pl.Series(held.astype(np.int64)))
    return IdentityColumns(
        columns={"postcode6": pc6.alias("postcode6"), "house_number": number.alias("house_number"),
                 "insurer": codes.alias("insurer"), "insurance_number": ins_number,
                 "family_name": family.alias("family_name"), "initials": initials},
        truth={"name_typo": typo, "initials_first_only": first_only, "insurer_outdated": outdated,
               "address_missing": no_address, "postcode_malformed": malformed,
               "insurance_number_missing": no_number},
    )


def insured_identities(plan: Plan, rng: np.random.Generator, hh: Households, gid: np.ndarray,
                       row_person: np.ndarray, row_year: np.ndarray, row_insurer: np.ndarray,
                       defects: Counter) -> IdentityColumns:
    """Identifiers of insured rows: the address of the row's year, the number at its insurer.

    A typing error in a name is the insurer's: it is on every row of that person.
    """
    n_persons = len(hh.family)
    rate = plan.config.defects.name_typo
    family_person, typo_person = _names(hh, np.arange(n_persons), rng, rate)
    rows = pl.Series(row_person.astype(np.int64))
    pc6, number = hh.pc6_in(row_person, row_year)
    typo = typo_person[row_person]
    defects["claims_name_typo"] += int(typo_person.sum())
    return IdentityColumns(
        columns={"postcode6": pc6, "house_number": number,
                 "insurance_number": insurance_numbers(plan, gid[row_person], row_insurer),
                 "family_name": family_person.gather(rows),
                 "initials": nm.initials_strings(hh.letters, hh.n_initials).gather(rows)},
        truth={"name_typo": typo, "previous_address": row_year < hh.move_year[row_person]},
    )


def transpose_birth_dates(rng: np.random.Generator, birth: np.ndarray, rate: float,
                          before: int, open_day: int) -> tuple[np.ndarray, np.ndarray]:
    """Birth dates (int32 days) with day and month swapped, or the day's digits, at ``rate``.

    Only the day and month change, never the year (the age the method uses stays true), and
    only for persons born before day ``before`` (the registry's newborns keep their dates).
    Returns the dates and a mask of those that changed.
    """
    n = len(birth)
    hit = (rng.random(n) < rate) & (birth != open_day) & (birth < before)
    dates = birth.astype("datetime64[D]")
    year = dates.astype("datetime64[Y]")
    month = (dates.astype("datetime64[M]") - year.astype("datetime64[M]")).astype(np.int64) + 1
    dom = (dates - dates.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    swap = (dom <= 12) & (dom != month)
    digits = (dom % 10) * 10 + dom // 10
    new_month = np.where(swap, dom, month)
    new_dom = np.where(swap, month, digits)
    month_start = year.astype("datetime64[M]") + (new_month - 1)
    first_day = month_start.astype("datetime64[D]")
    month_len = ((month_start + 1).astype("datetime64[D]") - first_day).astype(np.int64)
    ok = hit & (new_dom >= 1) & (new_dom <= month_len) & ((new_dom != dom) | (new_month != month))
    new = (month_start.astype("datetime64[D]") + (new_dom - 1)).astype(np.int64)
    out = birth.copy()
    out[ok] = new[ok].astype(birth.dtype)
    return out, ok
