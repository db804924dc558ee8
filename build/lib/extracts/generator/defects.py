"""Defects real extracts have, injected at configured rates (``shared/spec/facts.md``).

Each function returns the delivered values and updates the defect counter, so that the ground
truth states exactly what was injected.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import polars as pl

from extracts.generator.persons import Persons
from extracts.generator.plan import Plan

__all__ = ["claims_bsn", "ehr_bsn", "odd_case", "odd_icpc"]


def _bsn_strings(values: np.ndarray) -> pl.Series:
    return pl.Series("bsn", values.astype(np.int64)).cast(pl.String).str.zfill(9)


def _typo(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """Change one digit: the weighted 11-test detects every single-digit substitution."""
    pos = rng.integers(0, 9, len(values))
    power = 10 ** (8 - pos)
    digit = (values // power) % 10
    new = (digit + rng.integers(1, 10, len(values))) % 10
    return values + (new - digit) * power


def ehr_bsn(
    plan: Plan, rng: np.random.Generator, p: Persons, rec_person: np.ndarray, defects: Counter
) -> tuple[pl.Series, pl.Series]:
    """The BSN as the GP practice registered it, per patient record, and the defect injected."""
    d = plan.config.defects
    n = len(rec_person)
    true = plan.bsns[p.gid[rec_person]]
    kinds = np.array(["none", "missing", "malformed", "check_digit", "shared", "odd_format"])
    rates = np.array([d.bsn_missing, d.bsn_malformed, d.bsn_check_digit, d.bsn_shared, d.bsn_odd_format])
    r = rng.random(n)
    kind = np.searchsorted(np.cumsum(rates), r, side="right") + 1
    kind[r >= rates.sum()] = 0
    value = true.copy()
    typo = kind == 3
    value[typo] = _typo(rng, true[typo])
    shared = np.flatnonzero(kind == 4)
    # Another person of the registry (same chunk): two patient records then carry one BSN.
    ehr_people = np.flatnonzero(p.in_ehr)
    donor = ehr_people[rng.integers(0, len(ehr_people), len(shared))] if len(ehr_people) else shared
    value[shared] = plan.bsns[p.gid[donor]]
    s = _bsn_strings(value)
    variant = rng.integers(0, 3, n)
    odd = pl.select(
        pl.when(pl.Series(variant) == 0).then(s.str.slice(0, 4) + "." + s.str.slice(4, 2) + "." + s.str.slice(6))
        .when(pl.Series(variant) == 1).then(s.str.slice(0, 3) + " " + s.str.slice(3, 3) + " " + s.str.slice(6))
        .otherwise(s.str.slice(0, 3) + "-" + s.str.slice(3))
    ).to_series()
    malformed = pl.select(
        pl.when(pl.Series(variant) == 0).then(s.str.slice(0, 7))
        .when(pl.Series(variant) == 1).then(s.str.slice(0, 8) + "X")
        .otherwise(s + "0")
    ).to_series()
    kind_s = pl.Series(kind)
    out = pl.select(
        pl.when(kind_s == 1).then(None)
        .when(kind_s == 2).then(malformed)
        .when(kind_s == 5).then(odd)
        .otherwise(s)
    ).to_series().alias("bsn")
    for k, name in enumerate(kinds[1:], start=1):
        defects[f"ehr_bsn_{name}"] += int((kind == k).sum())
    return out, pl.Series("bsn_defect", kinds[kind])


def claims_bsn(plan: Plan, rng: np.random.Generator, p: Persons, defects: Counter) -> tuple[pl.Series, pl.Series]:
    """The BSN on the claims side, per person of the chunk (same on every row of a person)."""
    d = plan.config.defects
    true = plan.bsns[p.gid]
    r = rng.random(len(p))
    missing = r < d.claims_bsn_missing
    malformed = ~missing & (r < d.claims_bsn_missing + d.claims_bsn_malformed)
    s = _bsn_strings(true)
    out = pl.select(
        pl.when(pl.Series(missing)).then(None)
        .when(pl.Series(malformed)).then(s.str.slice(0, 7))
        .otherwise(s)
    ).to_series().alias("bsn")
    defects["claims_bsn_missing"] += int(missing.sum())
    defects["claims_bsn_malformed"] += int(malformed.sum())
    kind = np.where(missing, "missing", np.where(malformed, "malformed", "none"))
    return out, pl.Series("bsn_defect", kind)


def _scatter_variants(values: pl.Series, odd: np.ndarray, variants: list[pl.Expr], rng: np.random.Generator) -> pl.Series:
    """Replace the values at ``odd`` by one of ``variants`` (expressions over ``pl.col("v")``)."""
    idx = np.flatnonzero(odd)
    if not len(idx):
        return values
    sub = pl.DataFrame({"v": values.gather(idx), "k": rng.integers(0, len(variants), len(idx))})
    expr = pl.when(pl.col("k") == 0).then(variants[0])
    for k, variant in enumerate(variants[1:], start=1):
        expr = expr.when(pl.col("k") == k).then(variant)
    new = sub.select(expr.otherwise(pl.col("v"))).to_series()
    return values.scatter(idx, new)


def odd_case(rng: np.random.Generator, values: pl.Series, rate: float, defects: Counter, name: str) -> pl.Series:
    """Deliver some code values in odd case or with surrounding spaces (method.md 9.8)."""
    odd = rng.random(len(values)) < rate
    defects[f"odd_case_{name}"] += int(odd.sum())
    v = pl.col("v")
    return _scatter_variants(values, odd, [v.str.to_lowercase(), " " + v, v + " "], rng)


def odd_icpc(rng: np.random.Generator, values: pl.Series, rate: float, defects: Counter) -> pl.Series:
    """ICPC codes in the odd forms of the contract: `t90.02`, ` T9002`, `T90.2`."""
    odd = (rng.random(len(values)) < rate) & values.is_not_null().to_numpy()
    defects["odd_icpc"] += int(odd.sum())
    v = pl.col("v")
    return _scatter_variants(values, odd, [
        v.str.to_lowercase(),
        " " + v.str.replace(".", "", literal=True),
        v.str.replace(".0", ".", literal=True),
        v.str.slice(0, 1) + " " + v.str.slice(1) + " ",
    ], rng)
