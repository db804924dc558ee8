"""The calibration of the generated population and its care, with the source of each figure.

Targets marked *facts* come from ``shared/spec/facts.md`` (seed 004 and CBS/Nivel); the rest
are *illustrative*: plausible values chosen so that the generated data exercise every rule of
the method (levels nobody publishes for this population, e.g. occupational therapy use).
Figures are shares of persons per year unless said otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["AGE_BANDS", "CONDITIONS", "ConditionModel", "INSURERS", "SECTOR_USE"]

# Age at 1 Jan 2019 (facts: CBS, millions): <20 3.79, 20-40 4.31, 40-65 5.87, 65-80 2.52,
# 80+ 0.80. Ages within a band are uniform, 80+ decays exponentially (mean 6.5 years above 80).
AGE_BANDS = ((0, 20, 3.79), (20, 40, 4.31), (40, 65, 5.87), (65, 80, 2.52), (80, 105, 0.80))
BIRTHS_PER_YEAR = 0.0095  # facts: ~170,000 births a year on 17.8 million
# Gompertz mortality per year: 5 % at 80, doubling about every 7 years (CBS life tables, rounded).
MORTALITY_AT_80 = 0.05
MORTALITY_SLOPE = 0.0975

# UZOVI codes are illustrative 4-digit codes; shares follow the concentration of the Dutch
# market (facts: a handful of insurer groups hold most of it).
INSURERS = (
    ("3311", 0.27), ("7095", 0.20), ("7029", 0.15), ("3358", 0.10), ("3332", 0.06),
    ("3351", 0.06), ("3343", 0.05), ("7053", 0.05), ("3313", 0.04), ("0101", 0.02),
)
INSURER_SWITCH = 0.06  # share switching insurer at a year boundary (illustrative, ~6 %)


@dataclass(frozen=True, slots=True)
class ConditionModel:
    """How one condition of the catalogue appears in the generated population.

    Attributes:
        prevalence: measured prevalence in the study population (2019, 2023) (facts).
        age_profile: relative prevalence by age, ``(kind, parameter)``.
        both_share: share of detected patients found by both sources (facts: 92 % for
            diabetes down to 6 %); the rest is split by ``ehr_only_share``.
        gp_share: share of prevalent patients with a condition-specific GP contact
            (2019, 2023) (facts where given).
        hospital_share: share with a condition-coded MSZ outpatient visit or admission.
        therapy_share: share with coded physiotherapy (FT), exercise therapy (OT),
            dietetics (DT) or GGZ care, by sector (2019, 2023).
        referral_share: share with a referral for the condition in a delivering practice.
        resolve: share of long-term episodes that end within 1-4 years.
    """

    prevalence: tuple[float, float]
    age_profile: tuple[str, float]
    both_share: float
    ehr_only_share: float
    gp_share: tuple[float, float]
    hospital_share: tuple[float, float] = (0.0, 0.0)
    therapy_share: tuple[tuple[str, float, float], ...] = ()
    referral_share: tuple[float, float] = (0.05, 0.05)
    resolve: float = 0.5
    # Model input / published level, 2019 and 2023: the liability model is fed the published
    # prevalence times this, so that what the study measures after its exclusions (Wlz
    # residents, deaths, resolved long-term episodes, ageing) lands on the published level.
    # Fitted once on the demo preset (tests/integration/test_calibration.py checks the result).
    input_scale: tuple[float, float] = (1.0, 1.0)


CONDITIONS: dict[str, ConditionModel] = {
    # facts: prevalence 6.3 -> 8.2; GGZ_S about 31 % in 2023 (+3.7); GP -1.7.
    "mental_health": ConditionModel(
        (0.063, 0.082), ("adult", 15), 0.30, 0.55, (0.42, 0.403), (0.02, 0.02),
        (("GGZ_S", 0.273, 0.31), ("GGZ_B", 0.12, 0.13)), (0.02, 0.02), input_scale=(1.09, 1.08),
    ),
    # facts: 7.9 -> 10.7; hospital about 47 % (-1.6); GP -1.5.
    "cancer": ConditionModel(
        (0.079, 0.107), ("exp", 0.06), 0.60, 0.60, (0.30, 0.285), (0.486, 0.47),
        (), (0.06, 0.06), input_scale=(1.10, 1.0),
    ),
    # facts: 7.2 -> 8.8; GP about 35 % (-1.8); hospital about 29 % (-1.9).
    "cardiovascular": ConditionModel(
        (0.072, 0.088), ("exp", 0.08), 0.50, 0.60, (0.371, 0.353), (0.309, 0.29),
        (), (0.07, 0.07), input_scale=(1.35, 1.18),
    ),
    # facts: 3.7 -> 4.8 (age >= 80 or dementia); GP about 94 % all-cause (-0.6).
    "frail_elderly": ConditionModel(
        (0.012, 0.014), ("dementia", 0.15), 0.30, 0.70, (0.30, 0.30), (0.10, 0.10),
        (), (0.05, 0.05), input_scale=(1.3, 1.3),
    ),
    # facts: 11.4 -> 12.5; GP 47 % (-1.5); physiotherapy -2.7; hospital +0.8.
    "neck_back": ConditionModel(
        (0.114, 0.125), ("plateau", 50), 0.10, 0.50, (0.485, 0.47), (0.06, 0.068),
        (("FT", 0.33, 0.303), ("OT", 0.03, 0.03)), (0.08, 0.08), input_scale=(0.96, 0.94),
    ),
    # facts: 7.8 -> 10.0; GP about 19 % (-1.3); hospital about 17 % (~0).
    "osteoarthritis": ConditionModel(
        (0.078, 0.10), ("exp", 0.07), 0.25, 0.60, (0.203, 0.19), (0.17, 0.17),
        (("FT", 0.20, 0.20), ("OT", 0.02, 0.02)), (0.06, 0.06), input_scale=(1.15, 1.04),
    ),
    # facts: 5.0 -> 6.4; GP about 53 % (-4.1); hospital -3.6.
    "diabetes": ConditionModel(
        (0.050, 0.064), ("exp", 0.05), 0.92, 0.70, (0.571, 0.53), (0.25, 0.214),
        (), (0.03, 0.021), input_scale=(0.98, 0.94),
    ),
    # facts: 10.5 -> 12.6; GP about 25 % (-1.9).
    "asthma_copd": ConditionModel(
        (0.105, 0.126), ("linear", 0.01), 0.35, 0.75, (0.269, 0.25), (0.06, 0.055),
        (("FT", 0.04, 0.04),), (0.02, 0.02), input_scale=(1.01, 0.97),
    ),
    # facts: about equal in both years (illustrative level 0.7 %); GP 83.5 % all-cause.
    "intellectual_disability": ConditionModel(
        (0.007, 0.007), ("flat", 0), 0.0, 1.0, (0.20, 0.20), (0.0, 0.0), (), (0.0, 0.0), input_scale=(1.15, 1.15),
    ),
}
# A condition of a user's catalogue that the model does not know gets this.
DEFAULT_CONDITION = ConditionModel(
    (0.03, 0.035), ("exp", 0.03), 0.4, 0.6, (0.3, 0.3), (0.1, 0.1), (), (0.03, 0.03)
)

# General care use, not tied to a condition: per sector, the share of persons with at least
# one claim in 2019 by age band (0-17, 18-64, 65-79, 80+), the yearly trend factor 2019->2023,
# and the mean number of extra claim lines per user.
# facts: ~1.85 M ED visits a year (about 8-9 % of persons); other levels illustrative.
SECTOR_USE: dict[str, tuple[tuple[float, float, float, float], float, float]] = {
    "MSZ": ((0.22, 0.33, 0.55, 0.65), 0.98, 1.2),
    "FT": ((0.06, 0.16, 0.22, 0.20), 0.97, 0.8),
    "OT": ((0.02, 0.012, 0.015, 0.02), 1.05, 0.5),
    "HT": ((0.002, 0.006, 0.004, 0.002), 1.0, 0.5),
    "DT": ((0.01, 0.025, 0.04, 0.05), 1.05, 0.4),
    "ET": ((0.005, 0.005, 0.02, 0.06), 1.20, 0.5),
    "GGZ_B": ((0.01, 0.025, 0.008, 0.004), 1.05, 0.6),
    "GGZ_S": ((0.02, 0.03, 0.01, 0.006), 1.10, 1.0),
    "WV": ((0.002, 0.01, 0.07, 0.30), 0.92, 2.0),
    "ELV": ((0.0, 0.0005, 0.004, 0.02), 1.0, 0.2),
    "SEH": ((0.08, 0.075, 0.09, 0.14), 1.0, 0.2),
}

# GP practice: probability of at least one HA contact in 2019 by age band (facts: 78 % of
# registered patients a year; about 5 contacts per patient per year) and extra contacts per user.
GP_ANY = (0.72, 0.72, 0.88, 0.94)
GP_EXTRA = (2.8, 4.4, 6.0, 8.0)
GP_TREND = 0.99  # 2023 relative to 2019
# facts: 17.8 % of inhabitants a year at a GP out-of-hours post (2019), rising to 2023.
HAP_ANY = (0.19, 0.155, 0.20, 0.33)
HAP_TREND = 1.15
# Referrals to a medical specialist, any reason, by age band (illustrative; facts: frail
# elderly 38.7 % -> 37.9 %, intellectual disability 24.2 % -> 25.8 %).
REFERRAL_ANY = (0.09, 0.15, 0.26, 0.37)
# Extra all-cause use for the two all-cause groups (illustrative, calibrated to facts' GP and
# hospital shares for intellectual disability: GP 83.5 %, hospital about half).
ALL_CAUSE_BOOST = {
    "intellectual_disability": {"GP": 0.22, "MSZ": 0.30, "HAP": 0.05, "REF": 0.12},
    "frail_elderly": {"GP": 0.08, "MSZ": 0.0, "HAP": 0.0, "REF": 0.02},
}
# Wlz institution stay by age band at 1 Jan (illustrative: mostly 80+, and people with
# intellectual disability; facts).
WLZ_BY_AGE = (0.001, 0.001, 0.005, 0.15)
WLZ_OLDEST = 0.40  # 90+
# Many of the oldest are cared for by an elderly-care physician and are not on a GP practice's
# list: the registry holds fewer of them than the population (fitted: the seed's study
# population has 3.7 % frail elderly where 5.6 % of the population reach 80 in 2019).
UNREGISTERED_80_PLUS = 0.20
# Condition-specific GP contacts: the first of a burst can fall in a practice's gap weeks or
# outside a partial year; fitted factor so the measured share lands on the published one.
GP_SPECIFIC_FIT = 1.08
WLZ_ID = 0.22
WLZ_DEMENTIA = 0.25


def age_band_index(age: np.ndarray) -> np.ndarray:
    """0: 0-17, 1: 18-64, 2: 65-79, 3: 80+ (method.md section 1)."""
    return np.digitize(age, [18, 65, 80]).astype(np.int8)


def age_profile(kind: str, parameter: float, age: np.ndarray) -> np.ndarray:
    """Relative prevalence by age (not normalised)."""
    age = np.maximum(age, 0).astype(np.float64)
    if kind == "exp":
        return np.exp(parameter * (age - 60)) * (age >= 18)
    if kind == "adult":
        return np.where(age >= parameter, 1.0, 0.15)
    if kind == "plateau":
        return np.clip((age - 15) / (parameter - 15), 0, 1)
    if kind == "linear":
        return 1.0 + parameter * age
    if kind == "dementia":
        return np.exp(parameter * (age - 80)) * (age >= 55)
    return np.ones_like(age)
