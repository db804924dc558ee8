"""Condition membership and qualifying contacts (method.md sections 2, 3, 5, 6, 7 and 9).

Sources are reduced early to what the study needs: netted claim units (9.4) of the persons in
the base population, qualifying GP contacts of the reference years, each with the code the
rules look at. Condition rules are then joins against small code tables built from the config.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from cohort.config import StudyConfig
from cohort.population import Linked
from extracts.codes import icpc_base

__all__ = [
    "ALL_CAUSE_ALWAYS",
    "claim_units",
    "condition_codes",
    "ehr_events",
    "membership",
]

# Disciplines counted for any reason (method.md section 3); DT joins them by default.
ALL_CAUSE_ALWAYS = ("ET", "HT", "WV", "ELV", "HAP", "SEH")
HA_TYPES = ("consult", "visite", "telefonisch", "email", "vaccinatie")
POH_GGZ_TYPES = ("consult", "visite", "telefonisch", "email", "groepsconsult")
_NET_KEY = ["p2", "sector", "service_date", "care_type", "specialism", "diagnosis_code"]


def claim_units(linked: Linked, persons: pl.LazyFrame | None) -> pl.LazyFrame:
    """Netted claim units (method.md 9.4): one row per key whose summed cost is > 0.

    ``code`` is the unit's code as the rules match it: ``specialism:diagnosis`` for MSZ,
    the diagnosis code otherwise. Restricted to ``persons`` (a frame with ``p2``) when given.
    """
    claims = linked.claims("claims").filter(pl.col("p2").is_not_null())
    if persons is not None:
        claims = claims.join(persons.select("p2").unique(), on="p2", how="semi")
    return (
        claims.group_by(_NET_KEY)
        .agg(pl.col("cost_eur").sum().alias("cost"))
        .filter(pl.col("cost") > 0)
        .select(
            "p2", "sector", "service_date", "care_type",
            pl.when(pl.col("sector") == "MSZ")
            .then(pl.concat_str("specialism", pl.lit(":"), "diagnosis_code"))
            .otherwise(pl.col("diagnosis_code"))
            .alias("code"),
        )
    )


def condition_codes(config: StudyConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(condition, icpc) and (condition, sector, code, lookback) tables of the catalogue."""
    icpc_rows, claims_rows = [], []
    for cond in config.catalogue.conditions:
        for sub in cond.subconditions:
            icpc_rows += [(cond.name, c) for c in sub.icpc]
            claims_rows += [
                (cond.name, c.sector, f"{c.specialism}:{c.code}" if c.specialism else c.code, sub.lookback_years)
                for c in sub.claims
            ]
    icpc = pl.DataFrame(icpc_rows, schema={"condition": pl.String, "icpc_base": pl.String}, orient="row").unique()
    claims = pl.DataFrame(
        claims_rows, schema={"condition": pl.String, "sector": pl.String, "code": pl.String, "lookback": pl.Int32},
        orient="row",
    )
    # A code shared by two sub-conditions: the longer lookback wins.
    claims = claims.group_by("condition", "sector", "code").agg(pl.col("lookback").max())
    return icpc, claims


def membership(
    linked: Linked, base: pl.LazyFrame, units: pl.LazyFrame, year: int, config: StudyConfig
) -> pl.LazyFrame:
    """(patient_id, condition) for base-population records with the condition in ``year``.

    method.md section 2 and 9.15: EHR episodes always; claims only for linked records (their
    ``p2`` is null otherwise); the age rule on the known birth date.
    """
    icpc_codes, claims_codes = condition_codes(config)
    jan1, dec31 = date(year, 1, 1), date(year, 12, 31)
    ehr = (
        linked.ehr("episodes")
        .filter((pl.col("start_date") <= dec31) & (pl.col("end_date").is_null() | (pl.col("end_date") >= jan1)))
        .select("patient_id", icpc_base(pl.col("icpc")).alias("icpc_base"))
        .join(icpc_codes.lazy(), on="icpc_base")
        .join(base.select("patient_id"), on="patient_id", how="semi")
        .select("patient_id", "condition")
    )
    claims = (
        units.filter(pl.col("sector") != "SEH")  # 9.9: SEH is not a prevalence source
        .join(claims_codes.lazy(), on=["sector", "code"])
        .filter(
            (pl.col("service_date").dt.year() <= year)
            & (pl.col("service_date").dt.year() >= year - pl.col("lookback"))
        )
        .select("p2", "condition")
        .unique()
        .join(base.filter(pl.col("p2").is_not_null()).select("patient_id", "p2"), on="p2")
        .select("patient_id", "condition")
    )
    parts = [ehr, claims]
    for cond in config.catalogue.conditions:
        if cond.min_age is not None:
            parts.append(
                base.filter(pl.col("age") >= cond.min_age).select("patient_id", pl.lit(cond.name).alias("condition"))
            )
    return pl.concat(parts).unique()


def ehr_events(linked: Linked, years: tuple[int, ...]) -> dict[str, pl.LazyFrame]:
    """Qualifying GP-side contacts per discipline: patient_id, year, icpc_base (9.10, section 3)."""
    contacts = linked.ehr("contacts").filter(pl.col("contact_date").dt.year().is_in(list(years)))
    select = [
        "patient_id",
        pl.col("contact_date").dt.year().alias("year"),
        icpc_base(pl.col("icpc")).alias("group"),
    ]
    ha = contacts.filter((pl.col("provider") == "HA") & pl.col("contact_type").is_in(list(HA_TYPES))).select(select)
    poh = contacts.filter(
        (pl.col("provider") == "POH-GGZ") & pl.col("contact_type").is_in(list(POH_GGZ_TYPES))
    ).select(select)
    hap = (
        linked.ehr("ooh_contacts")
        .filter(pl.col("contact_date").dt.year().is_in(list(years)))
        .select("patient_id", pl.col("contact_date").dt.year().alias("year"), icpc_base(pl.col("icpc")).alias("group"))
    )
    return {"HA": ha, "POH-GGZ": poh, "HAP": hap}
