"""Which persons have which condition when, and in which source it shows.

Each person has a fixed liability per condition; the condition is present in year Y when the
liability is below the prevalence of the person's age in Y (age profile times the year's
level, interpolated between the facts' 2019 and 2023 figures). Chronic conditions stay once
present; long-term ones may resolve after 1-4 years. A present condition is found by the GP
record, by claims, or by both, in condition-dependent shares (facts: "Overlap of the two
sources").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from extracts.generator import calibration as cal
from extracts.generator.persons import OPEN, Persons
from extracts.generator.vocab import ICPC_NOISE
from extracts.generator.plan import Plan, day, year_end, year_start

__all__ = ["ConditionTruth", "interpolate", "make_conditions", "noise_pool"]

FIRST_ONSET_YEAR = 2010
def interpolate(pair: tuple[float, float], year: int) -> float:
    """Linear in the year through (2019, pair[0]) and (2023, pair[1]), kept positive."""
    value = pair[0] + (pair[1] - pair[0]) * (year - 2019) / 4
    return max(value, 0.25 * pair[0])


@dataclass
class ConditionTruth:
    """One row per (person, condition) present at some time up to the last year."""

    person: np.ndarray  # local person index
    condition: np.ndarray  # index into the catalogue
    sub: np.ndarray  # index of the sub-condition
    icpc: np.ndarray  # the person's ICPC code: index into plan.icpc_vocab (may carry a sub-code)
    onset: np.ndarray  # int32 days
    resolved: np.ndarray  # int32 days or OPEN
    ehr: np.ndarray  # bool: found in the GP record
    claims: np.ndarray  # bool: found in claims

    def present(self, lo: int | np.ndarray, hi: int | np.ndarray) -> np.ndarray:
        """Rows whose condition overlaps [lo, hi]."""
        return (self.onset <= hi) & (self.resolved >= lo)


def make_conditions(plan: Plan, rng: np.random.Generator, p: Persons) -> ConditionTruth:
    last = plan.config.last_year
    years = np.arange(FIRST_ONSET_YEAR, last + 1)
    ages = np.stack([p.age_in(int(y)) for y in years], axis=1)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ConditionTruth.__dataclass_fields__}
    for ci, cond in enumerate(plan.catalogue.conditions):
        model = cal.CONDITIONS.get(cond.name, cal.DEFAULT_CONDITION)
        target = (model.prevalence[0] * model.input_scale[0], model.prevalence[1] * model.input_scale[1])
        level = np.array([interpolate(target, int(y)) for y in years])
        prof = cal.age_profile(*model.age_profile, ages.ravel()).reshape(ages.shape)
        prob = np.minimum(prof / plan.profile_norm[cond.name] * level[None, :], 0.95)
        liability = rng.random(len(p))
        born = ages >= 0
        present = (liability[:, None] < prob) & born
        ever = present.any(axis=1)
        first = np.argmax(present, axis=1)
        rows = np.flatnonzero(ever)
        onset_year = years[first[rows]]
        birth = p.birth[rows]
        # Present already in 2010: onset some time between birth (or 1995) and 2010.
        early_lo = np.maximum(birth, day(1995))
        early = early_lo + np.floor(rng.random(len(rows)) * np.maximum(day(FIRST_ONSET_YEAR) - early_lo, 1))
        in_year = np.maximum(year_start(onset_year), birth) + np.floor(rng.random(len(rows)) * 365)
        onset = np.where(onset_year == FIRST_ONSET_YEAR, early, in_year)
        onset = np.minimum(onset, year_end(onset_year))
        keep = onset < p.death[rows]
        rows, onset = rows[keep], onset[keep].astype(np.int32)
        n = len(rows)
        sub = rng.integers(0, len(cond.subconditions), n)
        codes = np.zeros(n, dtype=np.int32)
        # About 30 % of codes carry a Dutch sub-code (T90 -> T90.01 / T90.02).
        suffix = np.where(rng.random(n) < 0.3, rng.integers(1, 3, n), 0)
        resolved = np.full(n, OPEN, dtype=np.int32)
        for si, s in enumerate(cond.subconditions):
            mask = sub == si
            variants = np.stack([plan.icpc_index([f"{c}{x}" for c in s.icpc]) for x in ("", ".01", ".02")])
            pick = rng.integers(0, len(s.icpc), mask.sum())
            codes[mask] = variants[suffix[mask], pick]
            if s.chronicity == "long_term":
                ends = mask & (rng.random(n) < model.resolve)
                resolved[ends] = onset[ends] + rng.integers(365, 1461, ends.sum())
        r = rng.random(n)
        both = r < model.both_share
        ehr_only = ~both & (r < model.both_share + (1 - model.both_share) * model.ehr_only_share)
        has_claims_codes = bool(cond.claims)
        ehr = both | ehr_only | (not has_claims_codes)
        claims = (both | ~ehr_only) & has_claims_codes
        out["person"].append(rows)
        out["condition"].append(np.full(n, ci, dtype=np.int16))
        out["sub"].append(sub.astype(np.int16))
        out["icpc"].append(codes)
        out["onset"].append(onset)
        out["resolved"].append(resolved)
        out["ehr"].append(ehr)
        out["claims"].append(claims)
    return ConditionTruth(**{k: np.concatenate(v) for k, v in out.items()})


def noise_pool(plan: Plan) -> np.ndarray:
    """Vocabulary indices of ICPC codes outside every condition of the catalogue."""
    used = {c for cond in plan.catalogue.conditions for c in cond.icpc}
    return plan.icpc_index([c for c in ICPC_NOISE if c not in used])
