"""GP-side events of one chunk: contacts, out-of-hours contacts, referrals, episodes.

Events are drawn per *slot*: one registration in one year, clipped to the person's life. A slot
covering part of a year gets proportionally fewer events. Rates come from
:mod:`extracts.generator.calibration`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from extracts.generator import calibration as cal
from extracts.generator.conditions import ConditionTruth, interpolate, noise_pool
from extracts.generator.persons import OPEN, Persons, Registrations
from extracts.generator.plan import Plan, day, year_end, year_start

__all__ = ["Events", "Slots", "make_episodes", "make_gp_events", "make_slots"]

# Referral specialisms (facts: 4-digit codes); the last entry, GGZ, is for mental-health
# referrals, which method.md section 5 leaves out of "referred to a medical specialist".
SPECIALISMS = np.array(
    "0301 0302 0303 0305 0306 0307 0310 0313 0316 0318 0320 0322 0324 0327 0329 0330 0335 0361 GGZ".split()
)
_SPECIALISM_P = np.array([6, 7, 12, 11, 6, 7, 9, 9, 5, 6, 7, 4, 3, 2, 1, 5, 1, 1, 0], dtype=float)
# Probabilities over vocab.CONTACT_TYPES (consult, telefonisch, visite, email, vaccinatie,
# overig, groepsconsult) and vocab.PROVIDERS (HA, POH-S, POH-GGZ, OTHER). Facts (CBS 2018):
# consult 2.9, visit 0.2, telephone 1.3 GP contacts per person per year.
HA_TYPES = (0.62, 0.28, 0.04, 0.03, 0.02, 0.01, 0.0)
POH_TYPES = (0.70, 0.18, 0.02, 0.05, 0.0, 0.0, 0.05)
OOH_TYPES = (0.45, 0.45, 0.10, 0.0, 0.0, 0.0, 0.0)
PROVIDER_P = (0.80, 0.09, 0.03, 0.08)
HA, POH_S, POH_GGZ = 0, 1, 2


def _choice(rng: np.random.Generator, p: tuple[float, ...], n: int) -> np.ndarray:
    w = np.array(p)
    return rng.choice(len(w), size=n, p=w / w.sum()).astype(np.int8)


@dataclass
class Slots:
    """One registration in one year: [lo, hi] is the registered and alive part of the year."""

    reg: np.ndarray
    person: np.ndarray
    record: np.ndarray
    practice: np.ndarray
    year: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    band: np.ndarray  # age band in the year

    @property
    def frac(self) -> np.ndarray:
        return (self.hi - self.lo + 1) / 365.0


def make_slots(plan: Plan, p: Persons, r: Registrations) -> Slots:
    parts = []
    for year in plan.years:
        lo = np.maximum.reduce([r.start, np.full(len(r.start), year_start(year)), p.birth[r.person]])
        hi = np.minimum.reduce([r.end, np.full(len(r.end), year_end(year)), p.death[r.person]])
        ok = np.flatnonzero(lo <= hi)
        band = cal.age_band_index(p.age_in(year)[r.person[ok]])
        parts.append((ok, np.full(len(ok), year), lo[ok], hi[ok], band))
    reg = np.concatenate([q[0] for q in parts])
    return Slots(
        reg=reg,
        person=r.person[reg],
        record=r.record[reg],
        practice=r.practice[reg],
        year=np.concatenate([q[1] for q in parts]),
        lo=np.concatenate([q[2] for q in parts]).astype(np.int32),
        hi=np.concatenate([q[3] for q in parts]).astype(np.int32),
        band=np.concatenate([q[4] for q in parts]),
    )


@dataclass
class Events:
    """Dated events of slots: the slot they belong to, a date and an ICPC code (or None)."""

    slot: np.ndarray
    date: np.ndarray
    icpc: np.ndarray  # index into plan.icpc_vocab, -1 = uncoded
    kind: np.ndarray  # int code: provider, contact type or specialism index, by table
    sub: np.ndarray  # second attribute (contact type of a contact), or empty


def _dates(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return (lo + np.floor(rng.random(len(lo)) * (hi - lo + 1))).astype(np.int32)


def _expand(counts: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts)


def _present_by_slot(
    s: Slots, truth: ConditionTruth, cond_index: int, n_persons: int, *, ehr_only: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per slot: the truth row of the person's condition that overlaps the slot, or -1."""
    rows = np.flatnonzero((truth.condition == cond_index) & (truth.ehr if ehr_only else True))
    by_person = np.full(n_persons, -1, dtype=np.int64)
    by_person[truth.person[rows]] = rows
    t = by_person[s.person]
    ok = t >= 0
    ok[ok] &= (truth.onset[t[ok]] <= s.hi[ok]) & (truth.resolved[t[ok]] >= s.lo[ok])
    lo = np.where(ok, np.maximum(s.lo, np.where(ok, truth.onset[t], 0)), 0)
    hi = np.where(ok, np.minimum(s.hi, np.where(ok, truth.resolved[t], 0)), 0)
    return np.where(ok, t, -1), lo, hi


def _all_cause_boost(plan: Plan, s: Slots, truth: ConditionTruth, n: int, key: str) -> np.ndarray:
    """Extra probability of any use for persons in an all-cause group (frail elderly, ID)."""
    miss = np.ones(len(s.reg))
    for ci, cond in enumerate(plan.catalogue.conditions):
        boost = cal.ALL_CAUSE_BOOST.get(cond.name, {}).get(key, 0.0)
        if boost:
            t, _, _ = _present_by_slot(s, truth, ci, n, ehr_only=False)
            member = t >= 0
            if cond.min_age is not None:
                member |= s.band == 3
            miss *= np.where(member, 1 - boost, 1.0)
    return 1 - miss


def make_gp_events(
    plan: Plan, rng: np.random.Generator, p: Persons, s: Slots, truth: ConditionTruth
) -> tuple[Events, Events, Events]:
    """Contacts, out-of-hours contacts and referrals of the chunk's slots."""
    n = len(p)
    trend = (s.year - 2019) / 4
    noise = noise_pool(plan)
    # --- contacts: any HA contact, then extra contacts of any provider (facts: 78 %, ~5/yr).
    boost = _all_cause_boost(plan, s, truth, n, "GP")
    p_any = 1 - (1 - np.array(cal.GP_ANY)[s.band] * cal.GP_TREND**trend) * (1 - boost)
    any_contact = rng.random(len(s.reg)) < 1 - (1 - p_any) ** s.frac
    extra = rng.poisson(np.array(cal.GP_EXTRA)[s.band] * s.frac)
    counts = np.where(any_contact, 1 + extra, 0)
    slot = _expand(counts)
    first = np.r_[True, slot[1:] != slot[:-1]] if len(slot) else np.zeros(0, bool)
    provider = np.where(first, HA, _choice(rng, PROVIDER_P, len(slot)))
    icpc = noise[rng.integers(0, len(noise), len(slot))]
    parts = [(slot, provider, icpc, s.lo[slot], s.hi[slot])]
    # Condition-specific GP (and practice nurse) contacts, for conditions the GP record knows.
    for ci, cond in enumerate(plan.catalogue.conditions):
        model = cal.CONDITIONS.get(cond.name, cal.DEFAULT_CONDITION)
        ehr_share = model.both_share + (1 - model.both_share) * model.ehr_only_share
        t, lo, hi = _present_by_slot(s, truth, ci, n, ehr_only=True)
        share = np.array([interpolate(model.gp_share, int(y)) for y in plan.years])
        q = np.minimum(cal.GP_SPECIFIC_FIT * share[s.year - plan.config.first_year] / max(ehr_share, 1e-9), 1.0)
        hit = (t >= 0) & (rng.random(len(s.reg)) < 1 - (1 - q) ** ((hi - lo + 1) / 365.0))
        k = np.where(hit, 1 + rng.poisson(1.2, len(s.reg)), 0)
        sl = _expand(k)
        # The first contact of a burst is a coded GP contact; follow-ups may be with the
        # practice nurse and may be uncoded, like any contact.
        lead = np.r_[True, sl[1:] != sl[:-1]] if len(sl) else np.zeros(0, bool)
        nurse = POH_GGZ if cond.name == "mental_health" else POH_S
        prov = np.where(lead | (rng.random(len(sl)) < 0.8), HA, nurse)
        parts.append((sl, prov, truth.icpc[t[sl]], lo[sl], hi[sl], lead))
    slot = np.concatenate([q[0] for q in parts])
    protected = np.concatenate([q[5] if len(q) > 5 else np.zeros(len(q[0]), bool) for q in parts])
    provider = np.concatenate([q[1] for q in parts]).astype(np.int8)
    icpc = np.concatenate([q[2] for q in parts])
    # Contact dates: within the slot, or within the condition's overlap for specific contacts.
    date = _dates(rng, np.concatenate([q[3] for q in parts]), np.concatenate([q[4] for q in parts]))
    ctype = np.where(
        provider == HA, _choice(rng, HA_TYPES, len(slot)), _choice(rng, POH_TYPES, len(slot))
    )
    # Uncoded contacts: 10 % normally, 45 % in practice-years with low coding (method X6).
    yi = s.year[slot] - plan.config.first_year
    low = plan.low_coding[s.practice[slot], yi]
    icpc[~protected & (rng.random(len(slot)) < np.where(low, 0.45, 0.10))] = -1
    # Practices with gaps deliver no contacts in a block of weeks (method X6).
    gaps = plan.gap_weeks[s.practice[slot], yi]
    week = (date - year_start(s.year[slot])) // 7
    first_gap_week = (s.practice[slot] * 7 + yi * 13) % np.maximum(52 - gaps, 1)
    keep = ~((gaps > 0) & (week >= first_gap_week) & (week < first_gap_week + gaps))
    contacts = Events(slot[keep], date[keep], icpc[keep], provider[keep], ctype[keep])

    # --- out-of-hours GP post (facts: 17.8 % a year in 2019, rising).
    p_hap = np.array(cal.HAP_ANY)[s.band] * cal.HAP_TREND**trend
    p_hap = 1 - (1 - p_hap) * (1 - _all_cause_boost(plan, s, truth, n, "HAP"))
    any_hap = rng.random(len(s.reg)) < 1 - (1 - p_hap) ** s.frac
    slot = _expand(np.where(any_hap, 1 + rng.poisson(0.3, len(s.reg)), 0))
    icpc = noise[rng.integers(0, len(noise), len(slot))]
    icpc[rng.random(len(slot)) < 0.08] = -1
    ooh = Events(slot, _dates(rng, s.lo[slot], s.hi[slot]), icpc, _choice(rng, OOH_TYPES, len(slot)), np.empty(0))

    # --- referrals, only from practice-years that deliver them (facts: about a quarter).
    delivers = plan.referral_years[s.practice, s.year - plan.config.first_year]
    p_ref = np.array(cal.REFERRAL_ANY)[s.band]
    p_ref = 1 - (1 - p_ref) * (1 - _all_cause_boost(plan, s, truth, n, "REF"))
    any_ref = delivers & (rng.random(len(s.reg)) < 1 - (1 - p_ref) ** s.frac)
    slot = _expand(np.where(any_ref, 1 + rng.poisson(0.3, len(s.reg)), 0))
    spec = rng.choice(len(SPECIALISMS), len(slot), p=_SPECIALISM_P / _SPECIALISM_P.sum())
    spec = np.where(rng.random(len(slot)) < 0.08, len(SPECIALISMS) - 1, spec)  # GGZ
    icpc = noise[rng.integers(0, len(noise), len(slot))]
    icpc[rng.random(len(slot)) < 0.1] = -1
    parts = [(slot, spec, icpc)]
    for ci, cond in enumerate(plan.catalogue.conditions):
        model = cal.CONDITIONS.get(cond.name, cal.DEFAULT_CONDITION)
        t, lo, hi = _present_by_slot(s, truth, ci, n, ehr_only=True)
        share = np.array([interpolate(model.referral_share, int(y)) for y in plan.years])
        hit = delivers & (t >= 0) & (rng.random(len(s.reg)) < share[s.year - plan.config.first_year])
        sl = np.flatnonzero(hit)
        msz = [c.specialism for c in cond.claims if c.sector == "MSZ"] or ["0313"]
        msz_idx = np.array([SPECIALISMS.tolist().index(m) for m in msz])
        parts.append((sl, msz_idx[rng.integers(0, len(msz), len(sl))], truth.icpc[t[sl]]))
    slot = np.concatenate([q[0] for q in parts])
    referrals = Events(
        slot, _dates(rng, s.lo[slot], s.hi[slot]), np.concatenate([q[2] for q in parts]),
        np.concatenate([q[1] for q in parts]), np.empty(0),
    )
    return contacts, ooh, referrals


def make_episodes(
    plan: Plan, rng: np.random.Generator, p: Persons, r: Registrations, truth: ConditionTruth
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Episodes of the main patient records: the study's conditions (when the GP record knows
    them) plus 0-4 episodes of other problems. Returns (person, icpc, start, end)."""
    has_record = np.zeros(len(p), dtype=bool)
    has_record[r.person[r.record == 0]] = True
    known = truth.ehr & has_record[truth.person]
    person = [truth.person[known]]
    icpc = [truth.icpc[known]]
    start = [truth.onset[known]]
    end = [truth.resolved[known]]
    noise = noise_pool(plan)
    idx = np.flatnonzero(has_record)
    k = rng.poisson(1.5, len(idx))
    who = np.repeat(idx, k)
    lo = np.maximum(p.birth[who], day(2010))
    hi = np.minimum(p.death[who], year_end(plan.config.last_year))
    ok = lo <= hi
    who, lo, hi = who[ok], lo[ok], hi[ok]
    st = _dates(rng, lo, hi)
    closes = rng.random(len(who)) < 0.6
    en = np.where(closes, st + rng.integers(7, 400, len(who)), OPEN).astype(np.int32)
    person.append(who)
    icpc.append(noise[rng.integers(0, len(noise), len(who))])
    start.append(st)
    end.append(en)
    return np.concatenate(person), np.concatenate(icpc), np.concatenate(start), np.concatenate(end)
