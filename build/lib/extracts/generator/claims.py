"""Claims side of one chunk: insured person-years and claim lines.

Every person alive in a year is insured that year (facts: claims cover every insured person).
Claim lines are drawn per person-year and sector: general use by age band, plus care coded for
the person's conditions where claims know them, plus a coded marker line in years without
coded care so that claims find the condition (method: lookback windows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from extracts.generator import calibration as cal
from extracts.generator.conditions import ConditionTruth, interpolate
from extracts.generator.persons import Persons
from extracts.generator.plan import Plan, year_end, year_start
from extracts.generator.vocab import CLAIMS_NOISE, SECTORS, claims_code

__all__ = ["ClaimLines", "InsuredRows", "make_claims", "make_insured"]

COST = {"MSZ": (6.5, 1.0), "FT": (5.5, 0.6), "OT": (5.3, 0.6), "HT": (5.0, 0.5), "DT": (4.8, 0.5),
        "ET": (5.2, 0.5), "GGZ_B": (6.8, 0.5), "GGZ_S": (7.8, 0.9), "WV": (7.0, 1.0),
        "ELV": (8.0, 0.6), "SEH": (5.8, 0.5)}


@dataclass
class InsuredRows:
    person: np.ndarray
    year: np.ndarray
    insurer: np.ndarray
    wlz: np.ndarray


KINDS = np.array(["general", "coded", "marker", "credit", "redebit", "lone_credit"])
GENERAL, CODED, MARKER, CREDIT, REDEBIT, LONE_CREDIT = range(6)
_NO_DIAGNOSIS = ("HT", "ET", "WV", "ELV")  # data contract: "others: null"


@dataclass
class ClaimLines:
    person: np.ndarray
    insurer: np.ndarray
    date: np.ndarray
    sector: np.ndarray  # index into vocab.SECTORS
    care_type: np.ndarray  # index into vocab.CARE_TYPES, -1 outside MSZ
    code: np.ndarray  # index into plan.claims_vocab ("specialism:diagnosis" for MSZ), -1 = none
    cost_cents: np.ndarray  # int64
    kind: np.ndarray  # index into KINDS
    condition: np.ndarray  # int16, -1 for none


def make_insured(plan: Plan, rng: np.random.Generator, p: Persons, truth: ConditionTruth) -> InsuredRows:
    n = len(p)
    insurer = rng.choice(len(plan.insurer_codes), n, p=plan.insurer_p)
    wlz_liability = rng.random(n)
    names = plan.catalogue.names
    special = np.zeros(n)
    for name, extra in (("intellectual_disability", cal.WLZ_ID), ("frail_elderly", cal.WLZ_DEMENTIA)):
        if name in names:
            rows = truth.condition == names.index(name)
            special[truth.person[rows]] = extra
    parts = []
    for year in plan.years:
        if year > plan.config.first_year:
            switch = rng.random(n) < cal.INSURER_SWITCH
            insurer = np.where(switch, rng.choice(len(plan.insurer_codes), n, p=plan.insurer_p), insurer)
        alive = np.flatnonzero(p.alive_in(year))
        age = p.age_in(year)[alive]
        base = np.array(cal.WLZ_BY_AGE)[cal.age_band_index(age)]
        base = np.where(age >= 90, cal.WLZ_OLDEST, base)
        p_wlz = 1 - (1 - base) * (1 - special[alive])
        parts.append((alive, np.full(len(alive), year, dtype=np.int32), insurer[alive],
                      wlz_liability[alive] < p_wlz))
    return InsuredRows(
        person=np.concatenate([q[0] for q in parts]),
        year=np.concatenate([q[1] for q in parts]),
        insurer=np.concatenate([q[2] for q in parts]).astype(np.int8),  # index into plan.insurer_codes
        wlz=np.concatenate([q[3] for q in parts]),
    )


def _noise(plan: Plan, sector: str) -> np.ndarray:
    """Vocabulary indices of the sector's codes that no condition of the catalogue uses."""
    used = {(c.sector, claims_code(c)) for cond in plan.catalogue.conditions for c in cond.claims}
    return plan.claims_index([c for c in CLAIMS_NOISE.get(sector, ()) if (sector, c) not in used])


def make_claims(plan: Plan, rng: np.random.Generator, p: Persons, ins: InsuredRows, truth: ConditionTruth) -> ClaimLines:
    first = plan.config.first_year
    lo = np.maximum(year_start(ins.year), p.birth[ins.person])
    hi = np.minimum(year_end(ins.year), p.death[ins.person])
    frac = (hi - lo + 1) / 365.0
    band = cal.age_band_index(p.age_in(0)[ins.person] + ins.year)
    trend = (ins.year - 2019) / 4
    names = plan.catalogue.names
    id_member = np.zeros(len(ins.year), dtype=bool)
    if "intellectual_disability" in names:
        by_person = np.zeros(len(p), dtype=bool)
        by_person[truth.person[truth.condition == names.index("intellectual_disability")]] = True
        id_member = by_person[ins.person]
    out: list[tuple] = []
    for sector, (by_band, yearly, extra) in cal.SECTOR_USE.items():
        prob = np.array(by_band)[band] * yearly**trend
        if sector == "MSZ":
            boost = cal.ALL_CAUSE_BOOST.get("intellectual_disability", {}).get("MSZ", 0.0)
            prob = np.where(id_member, 1 - (1 - prob) * (1 - boost), prob)
        uses = rng.random(len(ins.year)) < 1 - (1 - prob) ** frac
        row = np.repeat(np.arange(len(ins.year)), np.where(uses, 1 + rng.poisson(extra, len(uses)), 0))
        codes = _noise(plan, sector)
        diag = codes[rng.integers(0, len(codes), len(row))] if len(codes) else np.full(len(row), -1)
        out.append((row, sector, diag, GENERAL, -1))
    # Coded care and markers for conditions that claims know (truth.claims).
    key = ins.person.astype(np.int64) * 100 + (ins.year - first)
    order = np.argsort(key)
    for ci, cond in enumerate(plan.catalogue.conditions):
        model = cal.CONDITIONS.get(cond.name, cal.DEFAULT_CONDITION)
        claims_share = model.both_share + (1 - model.both_share) * (1 - model.ehr_only_share)
        t_rows = np.flatnonzero((truth.condition == ci) & truth.claims)
        if not len(t_rows):
            continue
        for year in plan.years:
            present = (truth.onset[t_rows] <= year_end(year)) & (truth.resolved[t_rows] >= year_start(year))
            tr = t_rows[present]
            k = truth.person[tr].astype(np.int64) * 100 + (year - first)
            pos = np.searchsorted(key, k, sorter=order)
            pos = np.minimum(pos, len(order) - 1)
            rows = order[pos]
            found = key[rows] == k
            tr, rows = tr[found], rows[found]
            got_any = np.zeros(len(tr), dtype=bool)
            plans = [("MSZ", model.hospital_share)] + [(sec, (a, b)) for sec, a, b in model.therapy_share]
            for sector, share in plans:
                codes = [c for c in cond.claims if c.sector == sector]
                if not codes:
                    continue
                q = min(interpolate(share, year) / max(claims_share, 1e-9), 1.0)
                hit = rng.random(len(tr)) < q
                got_any |= hit
                r = np.repeat(rows[hit], 1 + rng.poisson(0.8, hit.sum()))
                pick = plan.claims_index([claims_code(c) for c in codes])
                out.append((r, sector, pick[rng.integers(0, len(pick), len(r))], CODED, ci))
            # A marker line (MSZ 'overig', or the first coded sector) keeps the lookback finding it.
            marker_codes = [c for c in cond.claims if c.sector == "MSZ"] or list(cond.claims)
            r = rows[~got_any]
            c = marker_codes[0]
            pick = plan.claims_index([claims_code(m) for m in marker_codes if m.sector == c.sector])
            out.append((r, c.sector, pick[rng.integers(0, len(pick), len(r))], MARKER, ci))
    sector_index = {name: i for i, name in enumerate(SECTORS.tolist())}
    row = np.concatenate([q[0] for q in out])
    sector = np.concatenate([np.full(len(q[0]), sector_index[q[1]], dtype=np.int8) for q in out])
    code = np.concatenate([q[2] for q in out]).astype(np.int32)
    kind = np.concatenate([np.full(len(q[0]), q[3], dtype=np.int8) for q in out])
    condition = np.concatenate([np.full(len(q[0]), q[4], dtype=np.int16) for q in out])
    is_msz = sector == sector_index["MSZ"]
    ct = np.where(rng.random(len(row)) < 0.9, 0, 1)  # poli, opname
    ct = np.where((kind == GENERAL) & (rng.random(len(row)) < 0.07), 2, ct)  # overig
    care_type = np.where(is_msz, np.where(kind == MARKER, 2, ct), -1).astype(np.int8)
    code[np.isin(sector, [sector_index[x] for x in _NO_DIAGNOSIS])] = -1
    mu = np.array([COST[x][0] for x in SECTORS])[sector]
    sd = np.array([COST[x][1] for x in SECTORS])[sector]
    cost = np.maximum(np.round(np.exp(mu + sd * rng.standard_normal(len(row))) * 100), 100).astype(np.int64)
    date = lo[row] + np.floor(rng.random(len(row)) * (hi - lo + 1)[row])
    lines = ClaimLines(
        person=ins.person[row], insurer=ins.insurer[row], date=date.astype(np.int32),
        sector=sector, care_type=care_type, code=code, cost_cents=cost, kind=kind, condition=condition,
    )
    return _corrections(plan, rng, lines)


def _take(lines: ClaimLines, idx: np.ndarray) -> dict:
    return {f: getattr(lines, f)[idx] for f in ClaimLines.__dataclass_fields__}


def _corrections(plan: Plan, rng: np.random.Generator, lines: ClaimLines) -> ClaimLines:
    """Credit lines (facts: claim corrections): withdrawn claims, re-debits and lone credits."""
    d = plan.config.defects
    n = len(lines.person)
    withdrawn = np.flatnonzero(rng.random(n) < d.claim_correction)
    credit = _take(lines, withdrawn)
    credit["cost_cents"] = -credit["cost_cents"]
    credit["kind"] = np.full(len(withdrawn), CREDIT, dtype=np.int8)
    redo = withdrawn[rng.random(len(withdrawn)) < 0.5]
    redebit = _take(lines, redo)
    redebit["cost_cents"] = np.maximum((redebit["cost_cents"] * rng.uniform(0.8, 1.2, len(redo))).astype(np.int64), 100)
    redebit["kind"] = np.full(len(redo), REDEBIT, dtype=np.int8)
    lone_idx = np.flatnonzero(rng.random(n) < d.lone_credit)
    lone = _take(lines, lone_idx)
    lone["cost_cents"] = -lone["cost_cents"]
    lone["date"] = lone["date"] - rng.integers(1, 30, len(lone_idx)).astype(np.int32)
    lone["kind"] = np.full(len(lone_idx), LONE_CREDIT, dtype=np.int8)
    base = _take(lines, np.arange(n))
    merged = {f: np.concatenate([base[f], credit[f], redebit[f], lone[f]]) for f in base}
    return ClaimLines(**merged)
