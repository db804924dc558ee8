"""Settings of the extract generator: presets, defect rates, output.

Sizes and defect rates are what a user has an opinion on; they come from Hydra configuration
(``conf/generate.yaml`` and ``conf/preset/*.yaml``) and are turned into these frozen dataclasses
once. The calibration of the care model itself (rates per age, condition and year) lives in
:mod:`extracts.generator.calibration`, with the source of every figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from extracts.errors import ConfigError

__all__ = ["DefectRates", "GeneratorConfig", "config_from_mapping"]

FIRST_YEAR = 2017
LAST_YEAR = 2023


@dataclass(frozen=True, slots=True)
class DefectRates:
    """Rates of the defects real extracts have (``shared/spec/facts.md``, last section).

    Each is a probability per unit named in the comment; 0 switches a defect off.
    """

    bsn_missing: float = 0.004  # EHR patient record without BSN
    bsn_malformed: float = 0.0015  # EHR record whose BSN is not 9 digits after normalisation
    bsn_check_digit: float = 0.002  # EHR record with a one-digit typo (fails the 11-test)
    bsn_shared: float = 0.001  # EHR record carrying another person's valid BSN
    bsn_odd_format: float = 0.01  # valid BSN written with spaces, dots or hyphens
    claims_bsn_missing: float = 0.001  # insured person without BSN on the claims side
    claims_bsn_malformed: float = 0.0005
    double_record: float = 0.003  # person with a second EHR patient record at another practice
    double_registration: float = 0.003  # patient registered at two practices at once
    overlapping_registration: float = 0.0005  # duplicate overlapping registration, same practice
    practice_switch: float = 0.06  # patient moves to another practice of the registry
    birth_date_unknown: float = 0.003  # EHR birth date null
    claims_birth_date_unknown: float = 0.0005
    sex_conflict: float = 0.001  # claims sex differs from EHR sex
    birth_year_conflict: float = 0.0005  # claims birth year differs by 2+ years
    duplicate_insured_row: float = 0.0005  # second insured row for a person-year
    odd_code_format: float = 0.05  # ICPC in odd form (case, spacing, dots)
    odd_case: float = 0.01  # provider, contact type, sector in odd case/spacing
    claim_correction: float = 0.03  # claim line withdrawn by a credit line
    lone_credit: float = 0.001  # credit line without its debit in the extract
    practice_gaps: float = 0.04  # practice-year with weeks missing from its contacts
    practice_low_coding: float = 0.03  # practice-year with few ICPC-coded contacts
    small_practice: float = 0.02  # practice with fewer than 500 patients
    # Contract v2 identifiers (docs/data-contract.md); drawn from their own random stream.
    name_typo: float = 0.01  # EHR record / insured person: family name with a typing error
    initials_first_only: float = 0.10  # EHR record holding only the first of several initials
    birth_date_transposed: float = 0.002  # EHR record: day and month (or the day's digits) swapped
    insurer_outdated: float = 0.03  # EHR record holding the insurer before a switch
    address_missing: float = 0.01  # EHR record without postcode6 and house number
    postcode_malformed: float = 0.001  # EHR record whose postcode6 lost its last letter
    insurance_number_missing: float = 0.03  # EHR record without insurance number
    odd_identifier_format: float = 0.05  # per EHR identifier: 1234 ab, 12 a, Berg, van den, J.P.
    # The optional given name, street and city (their own random stream; typing errors: name_typo).
    given_name_nickname: float = 0.3  # EHR record of a name with a calling name (Jan for Johannes): that
    street_abbreviated: float = 0.1  # EHR record on a street with a usual abbreviation (Burg., str.): that
    city_variant: float = 0.1  # EHR record in a place with another form (Den Haag, Den Bosch): that
    incomplete_insurer_years: tuple[tuple[str, int], ...] = (("0101", 2023), ("3313", 2017))

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or f.name == "incomplete_insurer_years":
                continue
            if not isinstance(value, int | float) or not 0.0 <= value <= 0.5:
                msg = f"generator config: defects.{f.name}: expected a rate in [0, 0.5]"
                raise ConfigError(msg)


@dataclass(frozen=True, slots=True)
class GeneratorConfig:
    """What to generate.

    Args:
        preset: name recorded in the manifest.
        registered_patients: target number of patients registered in the EHR registry mid-2019.
        practices: number of GP practices.
        insured_persons: total persons in the claims extract; ``None`` means
            ``other_insured_factor`` times the EHR persons on top of them.
        other_insured_factor: insured persons outside the registry per EHR person.
        referral_practice_share: share of practices that deliver referral data.
        seed: seed of every random draw; equal seeds give byte-identical extracts.
        chunk_persons: persons generated per chunk (bounds memory; part of the seed's meaning).
        output_format: ``parquet`` or ``csv``.
    """

    preset: str
    registered_patients: int
    practices: int
    insured_persons: int | None = None
    other_insured_factor: float = 2.0
    referral_practice_share: float = 0.25
    seed: int = 20230101
    chunk_persons: int = 200_000
    output_format: str = "parquet"
    defects: DefectRates = field(default_factory=DefectRates)
    first_year: int = FIRST_YEAR
    last_year: int = LAST_YEAR

    def __post_init__(self) -> None:
        if self.registered_patients < 100:
            msg = "generator config: registered_patients: expected at least 100"
            raise ConfigError(msg)
        if not 1 <= self.practices <= self.registered_patients // 50:
            msg = "generator config: practices: expected 1 .. registered_patients / 50"
            raise ConfigError(msg)
        if self.output_format not in {"parquet", "csv"}:
            msg = "generator config: output_format: expected 'parquet' or 'csv'"
            raise ConfigError(msg)
        if not 0 <= self.referral_practice_share <= 1:
            msg = "generator config: referral_practice_share: expected a share in [0, 1]"
            raise ConfigError(msg)
        if (self.first_year, self.last_year) != (FIRST_YEAR, LAST_YEAR):
            msg = f"generator config: years: the model covers {FIRST_YEAR}..{LAST_YEAR}"
            raise ConfigError(msg)


def config_from_mapping(raw: dict[str, Any]) -> GeneratorConfig:
    """Build a :class:`GeneratorConfig` from a plain mapping (a resolved Hydra config)."""
    raw = dict(raw)
    defects_raw = dict(raw.pop("defects", None) or {})
    known = {f.name for f in fields(DefectRates)}
    unknown = sorted(set(defects_raw) - known)
    if unknown:
        msg = f"generator config: defects: unknown keys {unknown}; expected some of {sorted(known)}"
        raise ConfigError(msg)
    if "incomplete_insurer_years" in defects_raw:
        defects_raw["incomplete_insurer_years"] = tuple(
            (str(i), int(y)) for i, y in defects_raw["incomplete_insurer_years"]
        )
    known_top = {f.name for f in fields(GeneratorConfig)}
    unknown_top = sorted(set(raw) - known_top)
    if unknown_top:
        msg = f"generator config: unknown keys {unknown_top}; expected some of {sorted(known_top)}"
        raise ConfigError(msg)
    return GeneratorConfig(defects=DefectRates(**defects_raw), **raw)
