"""The global plan of a generated population: what must be decided once, before chunks.

Persons are numbered 0..N-1: the registry's persons first (ordered by practice), then the
insured persons outside the registry. Everything per person is generated chunk by chunk from
``(seed, chunk index)``; the plan holds only what chunks share: practices, the BSN of every
person, insurers, and the normalisation of the age profiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from extracts.bsn import valid_bsns_from_prefixes
from extracts.codelists import ConditionCatalogue
from extracts.generator import calibration as cal
from extracts.generator.config import GeneratorConfig

__all__ = ["Plan", "make_plan", "day", "year_start", "year_end"]

# Share of the registry's persons who are registered on 1 July 2019 (in-movers, out-movers,
# deaths and births over 2017-2023 make the registry's person count larger than its list size).
REGISTERED_SHARE = 0.83
REGIONS = tuple(f"R{i:02d}" for i in range(1, 29))
_BSN_SLICE = 1 << 21


def day(year: int, month: int = 1, dom: int = 1) -> int:
    """Days since 1970-01-01."""
    return int((np.datetime64(f"{year:04d}-{month:02d}-{dom:02d}") - np.datetime64("1970-01-01")).astype(int))


def year_start(year):  # type: ignore[no-untyped-def]
    """1 January of ``year`` in days; ``year`` may be an int or an integer array."""
    days = (np.asarray(year) - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
    return int(days) if np.ndim(days) == 0 else days


def year_end(year):  # type: ignore[no-untyped-def]
    """31 December of ``year`` in days; ``year`` may be an int or an integer array."""
    days = year_start(np.asarray(year) + 1) - 1
    return int(days) if np.ndim(days) == 0 else days


@dataclass(frozen=True)
class Plan:
    config: GeneratorConfig
    catalogue: ConditionCatalogue
    n_ehr: int  # persons 0..n_ehr-1 are in the registry
    n_total: int
    practice_ids: np.ndarray  # str
    practice_region: np.ndarray  # int index into REGIONS
    practice_bounds: np.ndarray  # cumulative person bounds, len = practices + 1
    referral_years: np.ndarray  # bool [practice, year]
    gap_weeks: np.ndarray  # int [practice, year]: weeks without contacts (0 = none)
    low_coding: np.ndarray  # bool [practice, year]
    bsns: np.ndarray  # int64, the true BSN of every person
    insurer_codes: np.ndarray
    insurer_p: np.ndarray
    profile_norm: dict[str, float]  # condition -> mean age profile over the 2019 population
    icpc_vocab: np.ndarray  # every ICPC code the generator writes (str); events hold indices
    claims_vocab: np.ndarray  # every claims code ("specialism:diagnosis" for MSZ)

    def icpc_index(self, codes: list[str] | tuple[str, ...]) -> np.ndarray:
        lookup = {c: i for i, c in enumerate(self.icpc_vocab.tolist())}
        return np.array([lookup[c] for c in codes], dtype=np.int32)

    def claims_index(self, codes: list[str] | tuple[str, ...]) -> np.ndarray:
        lookup = {c: i for i, c in enumerate(self.claims_vocab.tolist())}
        return np.array([lookup[c] for c in codes], dtype=np.int32)

    @property
    def years(self) -> range:
        return range(self.config.first_year, self.config.last_year + 1)

    @property
    def n_chunks(self) -> int:
        return -(-self.n_total // self.config.chunk_persons)


def _practice_sizes(rng: np.random.Generator, n_persons: int, n_practices: int, small: float) -> np.ndarray:
    # Practice list sizes vary about +-35 % around the mean (facts: ~4,400 per registry practice).
    weights = rng.lognormal(0.0, 0.35, n_practices)
    is_small = rng.random(n_practices) < small
    weights[is_small] = rng.uniform(0.03, 0.10, is_small.sum())
    sizes = np.floor(weights / weights.sum() * n_persons).astype(np.int64)
    sizes[: n_persons - sizes.sum()] += 1
    return sizes


def _bsns(rng: np.random.Generator, n: int) -> np.ndarray:
    """Distinct BSNs for n persons: an affine bijection of the 8-digit prefixes 10^7..10^8-1."""
    space = 9 * 10**7
    a = int(rng.integers(10**6, 10**7)) * 2 + 1
    while np.gcd(a, space) != 1:
        a += 2
    b = int(rng.integers(0, space))
    total = int(n * 1.12) + 1000
    found = []  # in slices of candidates: the same BSNs in a fraction of the memory (country: 24 M)
    for first in range(0, total, _BSN_SLICE):
        candidates = np.arange(first, min(first + _BSN_SLICE, total), dtype=np.int64)
        bsns, ok = valid_bsns_from_prefixes(10**7 + (candidates * a + b) % space)
        found.append(bsns[ok])
    bsns = np.concatenate(found)
    if len(bsns) < n:  # pragma: no cover - 1.12 n candidates always hold n valid ones
        msg = "internal: not enough BSN candidates"
        raise RuntimeError(msg)
    return bsns[:n]


def sample_ages_2019(rng: np.random.Generator, n: int) -> np.ndarray:
    """Age in years (float) on 1 Jan 2019, by the CBS bands; negative = born 2019-2023."""
    weights = np.array([w for _, _, w in cal.AGE_BANDS])
    n_born = int(round(n * cal.BIRTHS_PER_YEAR * 5 / (1 + cal.BIRTHS_PER_YEAR * 5)))
    band = rng.choice(len(weights), size=n - n_born, p=weights / weights.sum())
    lo = np.array([b[0] for b in cal.AGE_BANDS], dtype=np.float64)[band]
    hi = np.array([b[1] for b in cal.AGE_BANDS], dtype=np.float64)[band]
    ages = lo + rng.random(n - n_born) * (hi - lo)
    oldest = band == len(weights) - 1
    ages[oldest] = np.minimum(80 + rng.exponential(6.5, oldest.sum()), 104.9)
    born_later = -rng.random(n_born) * 4.999  # born 2019-01-01 .. 2023-12-31
    out = np.concatenate([ages, born_later])
    rng.shuffle(out)
    return out


def make_plan(config: GeneratorConfig, catalogue: ConditionCatalogue, *, bsns: np.ndarray | None = None) -> Plan:
    """The plan of ``config``; ``bsns``: the BSNs an earlier call drew (a worker maps them from a file
    rather than drawing 1.12 candidates per person again: they are the plan's last draw)."""
    rng = np.random.default_rng([config.seed, 0xB5])
    n_ehr = int(round(config.registered_patients / REGISTERED_SHARE))
    if config.insured_persons is not None:
        n_total = max(config.insured_persons, n_ehr)
    else:
        n_total = n_ehr + int(round(n_ehr * config.other_insured_factor))
    n_pr = config.practices
    sizes = _practice_sizes(rng, n_ehr, n_pr, config.defects.small_practice)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    years = config.last_year - config.first_year + 1
    delivers = rng.random(n_pr) < config.referral_practice_share
    # A few delivering practices start or stop delivering referral data during the period.
    flip = rng.random((n_pr, years)) < 0.02
    referral_years = delivers[:, None] ^ (np.cumsum(flip, axis=1) % 2 == 1)
    gaps = rng.random((n_pr, years)) < config.defects.practice_gaps
    gap_weeks = np.where(gaps, rng.integers(8, 30, (n_pr, years)), 0)
    low_coding = rng.random((n_pr, years)) < config.defects.practice_low_coding
    codes = np.array([c for c, _ in cal.INSURERS])
    shares = np.array([s for _, s in cal.INSURERS])
    ages = sample_ages_2019(np.random.default_rng([config.seed, 0xA6]), 200_000)
    norm = {}
    for cond in catalogue.conditions:
        model = cal.CONDITIONS.get(cond.name, cal.DEFAULT_CONDITION)
        norm[cond.name] = float(np.mean(cal.age_profile(*model.age_profile, ages)))
    from extracts.generator.vocab import claims_vocabulary, icpc_vocabulary

    return Plan(
        config=config,
        catalogue=catalogue,
        n_ehr=n_ehr,
        n_total=n_total,
        practice_ids=np.array([f"H{k + 1:05d}" for k in range(n_pr)]),
        practice_region=rng.integers(0, len(REGIONS), n_pr),
        practice_bounds=bounds,
        referral_years=referral_years,
        gap_weeks=gap_weeks,
        low_coding=low_coding,
        bsns=_bsns(rng, n_total) if bsns is None else bsns,
        insurer_codes=codes,
        insurer_p=shares / shares.sum(),
        profile_norm=norm,
        icpc_vocab=icpc_vocabulary(catalogue),
        claims_vocab=claims_vocabulary(catalogue),
    )
