"""Persons of one chunk: demography, GP registrations, EHR patient records, insurance.

All arrays are numpy, one element per person (or per registration / record / person-year);
dates are int32 days since 1970-01-01 and :data:`OPEN` stands for "no date" (alive, still
registered), so that comparisons need no null handling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from extracts.generator import calibration as cal
from extracts.generator.plan import REGIONS, Plan, day, sample_ages_2019, year_end, year_start

__all__ = ["OPEN", "SEXES", "Persons", "Registrations", "make_persons", "make_registrations"]

OPEN = np.int32(2**31 - 1)
SEXES = np.array(["M", "F", "X"])
DAY_2019 = day(2019)


@dataclass
class Persons:
    gid: np.ndarray  # global person index
    in_ehr: np.ndarray  # bool
    sex: np.ndarray  # index into SEXES
    birth: np.ndarray  # int32 days
    death: np.ndarray  # int32 days or OPEN
    practice: np.ndarray  # practice index, -1 outside the registry
    region: np.ndarray  # region index
    postcode4: np.ndarray  # int

    def __len__(self) -> int:
        return len(self.gid)

    def age_in(self, year: int) -> np.ndarray:
        """Age reached in ``year`` (method.md section 1: Y minus birth year)."""
        birth_year = (self.birth.astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970)
        return year - birth_year

    def alive_in(self, year: int) -> np.ndarray:
        return (self.birth <= year_end(year)) & (self.death >= year_start(year))


def _deaths(rng: np.random.Generator, birth: np.ndarray, last_year: int) -> np.ndarray:
    """Gompertz deaths from 1 Jan 2019 on (the population is alive on that day)."""
    death = np.full(len(birth), OPEN, dtype=np.int32)
    for year in range(2019, last_year + 1):
        lo, hi = year_start(year), year_end(year)
        exposed_from = np.maximum(birth, lo)
        at_risk = (death == OPEN) & (exposed_from <= hi)
        age = (lo - birth) / 365.25 + 0.5
        hazard = cal.MORTALITY_AT_80 * np.exp(cal.MORTALITY_SLOPE * (age - 80))
        exposure = (hi - exposed_from + 1) / 365.0
        dies = at_risk & (rng.random(len(birth)) < 1 - np.exp(-hazard * exposure))
        when = exposed_from + np.floor(rng.random(len(birth)) * (hi - exposed_from + 1))
        death[dies] = when[dies].astype(np.int32)
    return death


def make_persons(plan: Plan, rng: np.random.Generator, start: int, stop: int) -> Persons:
    n = stop - start
    gid = np.arange(start, stop, dtype=np.int64)
    in_ehr = gid < plan.n_ehr
    ages = sample_ages_2019(rng, n)
    birth = (DAY_2019 - np.floor(ages * 365.25)).astype(np.int32)
    sex = np.where(rng.random(n) < 0.497, 0, 1).astype(np.int8)
    sex[rng.random(n) < 0.0002] = 2
    practice = np.where(in_ehr, np.searchsorted(plan.practice_bounds, gid, side="right") - 1, -1)
    region = np.where(
        in_ehr,
        plan.practice_region[np.clip(practice, 0, None)],
        rng.integers(0, len(REGIONS), n),
    )
    postcode = 1000 + region * 300 + rng.integers(0, 300, n)
    return Persons(
        gid=gid,
        in_ehr=in_ehr,
        sex=sex,
        birth=birth,
        death=_deaths(rng, birth, plan.config.last_year),
        practice=practice,
        region=region,
        postcode4=postcode,
    )


@dataclass
class Registrations:
    person: np.ndarray  # local person index
    record: np.ndarray  # 0 = the person's main patient record, 1 = a second record
    practice: np.ndarray
    start: np.ndarray
    end: np.ndarray  # OPEN = still registered


def make_registrations(plan: Plan, rng: np.random.Generator, p: Persons) -> Registrations:
    """GP registrations of the registry's persons over 2017-2023 (facts: moves, births, deaths).

    Each person has a main registration; some move within the registry (a second practice),
    some hold a second patient record elsewhere (double record), some are registered at two
    practices at once (double registration) or twice at one practice (overlap defect).
    """
    d = plan.config.defects
    first, last = year_start(plan.config.first_year), year_end(plan.config.last_year)
    idx = np.flatnonzero(p.in_ehr)
    n = len(idx)
    birth, death = p.birth[idx], p.death[idx]
    n_practices = len(plan.practice_ids)
    # Start: 80 % registered before 2017 (or from birth), the others move in during the period.
    moved_in = rng.random(n) < 0.20
    early = np.maximum(birth, day(2000)) + np.floor(rng.random(n) * np.maximum(first - np.maximum(birth, day(2000)), 1))
    start = np.where(moved_in, first + np.floor(rng.random(n) * (last - first)), np.minimum(early, first - 1))
    late_birth = birth >= first
    birth_delay = np.where(rng.random(n) < 0.9, 0, rng.integers(1, 31, n))
    start = np.where(late_birth & ~moved_in, birth + birth_delay, start)
    start = np.maximum(start, birth).astype(np.int64)
    # End: out-movers leave during the period; death ends a registration.
    moves_out = rng.random(n) < 0.16
    out_date = start + np.floor(rng.random(n) * np.maximum(last - start, 1))
    end = np.where(moves_out & (out_date > first), out_date, OPEN).astype(np.int64)
    end = np.minimum(end, death)
    oldest = (DAY_2019 - birth) / 365.25 >= 79
    keep = (start <= last) & (start <= end) & ~(oldest & (rng.random(n) < cal.UNREGISTERED_80_PLUS))
    parts = []
    main_practice = p.practice[idx]

    # Practice switch inside the registry: the first registration ends on m, the next starts
    # on m+1 (15 % after a gap of 1-90 days, which breaks whole-year coverage).
    switch = keep & (rng.random(n) < d.practice_switch) & (np.minimum(end, last) - start > 60)
    m = start + 1 + np.floor(rng.random(n) * np.maximum(np.minimum(end, last) - start - 2, 1))
    gap = np.where(rng.random(n) < 0.85, 0, rng.integers(1, 91, n))
    other = (main_practice + rng.integers(1, max(n_practices, 2), n)) % n_practices
    end_first = np.where(switch, m, end)
    parts.append((idx[keep], 0, main_practice[keep], start[keep], end_first[keep]))
    s2 = switch & (m + 1 + gap <= end)
    parts.append((idx[s2], 0, other[s2], (m + 1 + gap)[s2], end[s2]))

    # Double registration: the same patient record also registered at another practice for a
    # stretch of 30-200 days (method X4).
    dbl = keep & (rng.random(n) < d.double_registration)
    dstart = start + np.floor(rng.random(n) * np.maximum(np.minimum(end, last) - start, 1))
    dend = np.minimum(dstart + rng.integers(30, 201, n), end)
    dbl &= dstart <= dend
    parts.append((idx[dbl], 0, other[dbl], dstart[dbl], dend[dbl]))
    # Overlap defect: the same registration delivered twice with shifted dates.
    ovl = keep & (rng.random(n) < d.overlapping_registration)
    parts.append((idx[ovl], 0, main_practice[ovl], (start + 10)[ovl], end_first[ovl]))
    # Second patient record (same person, same BSN) at another practice.
    rec2 = keep & (rng.random(n) < d.double_record)
    r2end = np.minimum(dstart + rng.integers(60, 366, n), end)
    rec2 &= dstart <= r2end
    parts.append((idx[rec2], 1, other[rec2], dstart[rec2], r2end[rec2]))

    person = np.concatenate([q[0] for q in parts])
    record = np.concatenate([np.full(len(q[0]), q[1], dtype=np.int8) for q in parts])
    return Registrations(
        person=person,
        record=record,
        practice=np.concatenate([q[2] for q in parts]).astype(np.int64),
        start=np.concatenate([q[3] for q in parts]).astype(np.int32),
        end=np.concatenate([q[4] for q in parts]).astype(np.int32),
    )
