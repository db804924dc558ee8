"""Direct, simple queries over generated extracts and their ground truth, for calibration.

Deliberately independent of the engine's stages: persons are linked through the generator's
ground truth, the study population is approximated (whole-year registration at one practice,
not in a Wlz institution), codes are normalised inline. Good enough to check that generated
data match the published figures within stated tolerances, and nothing more.
"""

from __future__ import annotations

from datetime import date
from functools import cached_property
from pathlib import Path

import polars as pl

from extracts.codelists import ConditionCatalogue


def _norm_icpc(col: str) -> pl.Expr:
    return pl.col(col).str.replace_all(r"[\s.]", "").str.to_uppercase().str.slice(0, 3)


class Extracts:
    """The extracts' tables each query needs, read (and joined to the truth's persons) once.

    Every query below used to read and join its tables anew: 40-odd checks read the claims and
    grouped them into net claims once per condition and year (a minute of the suite on the demo
    preset). The frames are the same; each is made the first time a query asks for it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    @cached_property
    def patients(self) -> pl.DataFrame:
        """EHR patient record -> person (truth)."""
        return pl.read_parquet(self.root / "truth" / "patients.parquet").select("patient_id", "person")

    @cached_property
    def episodes(self) -> pl.DataFrame:
        """Episodes by person, with the normalised ICPC code."""
        episodes = pl.read_parquet(self.root / "ehr" / "episodes.parquet").join(self.patients, on="patient_id")
        return episodes.with_columns(_norm_icpc("icpc").alias("icpc3"))

    @cached_property
    def net_claims(self) -> pl.DataFrame:
        """Claim lines by person, netted per service (credit lines withdraw their debits)."""
        claims = pl.read_parquet(self.root / "claims" / "claims.parquet").join(
            pl.read_parquet(self.root / "truth" / "claims.parquet", columns=["claim_id", "person"]), on="claim_id"
        ).with_columns(pl.col("sector").str.strip_chars().str.to_uppercase(), pl.col("specialism").fill_null(""))
        return claims.group_by("person", "sector", "service_date", "care_type", "specialism", "diagnosis_code").agg(
            pl.col("cost_eur").sum()
        ).filter(pl.col("cost_eur") > 0)

    @cached_property
    def gp_contacts(self) -> pl.DataFrame:
        """Qualifying GP (HA) contacts by person: year and normalised ICPC code."""
        return pl.read_parquet(self.root / "ehr" / "contacts.parquet").join(self.patients, on="patient_id").filter(
            (pl.col("provider").str.strip_chars().str.to_uppercase() == "HA")
            & pl.col("contact_type").str.strip_chars().str.to_lowercase().is_in(
                ["consult", "visite", "telefonisch", "email", "vaccinatie"])
        ).select("person", pl.col("contact_date").dt.year().alias("year"), _norm_icpc("icpc").alias("icpc3"))

    @cached_property
    def ooh_contacts(self) -> pl.DataFrame:
        """Out-of-hours (HAP) contacts by person and year."""
        return pl.read_parquet(self.root / "ehr" / "ooh_contacts.parquet").join(self.patients, on="patient_id").select(
            "person", pl.col("contact_date").dt.year().alias("year"))


def study_population(root: Path, year: int) -> pl.DataFrame:
    """Persons (truth ids) registered all year at one practice (from birth / to death), not Wlz."""
    lo, hi = date(year, 1, 1), date(year, 12, 31)
    patients = pl.read_parquet(root / "truth" / "patients.parquet").filter(pl.col("record") == 0)
    persons = pl.read_parquet(root / "truth" / "persons.parquet")
    reg = pl.read_parquet(root / "ehr" / "registrations.parquet").join(
        patients.select("patient_id", "person"), on="patient_id"
    )
    reg = reg.join(persons.select("person", "birth_date", "death_date"), on="person")
    reg = reg.filter(
        (pl.col("start_date") <= hi) & (pl.col("end_date").is_null() | (pl.col("end_date") >= lo))
    )
    whole = reg.group_by("person").agg(
        pl.col("practice_id").n_unique().alias("practices"),
        pl.len().alias("n"),
        (pl.col("start_date") <= pl.max_horizontal(pl.lit(lo), pl.col("birth_date"))).all().alias("from_start"),
        (pl.col("end_date").is_null() | (pl.col("end_date") >= pl.min_horizontal(pl.lit(hi), pl.col("death_date").fill_null(hi)))).all().alias("to_end"),
    ).filter((pl.col("practices") == 1) & (pl.col("n") == 1) & pl.col("from_start") & pl.col("to_end"))
    insured = pl.read_parquet(root / "claims" / "insured.parquet", columns=["year", "wlz_institution"])
    truth_ins = pl.read_parquet(root / "truth" / "insured.parquet", columns=["person"])
    wlz = pl.concat([insured, truth_ins], how="horizontal").filter(
        (pl.col("year") == year) & pl.col("wlz_institution")
    ).select("person").unique()
    pop = whole.join(wlz, on="person", how="anti").select("person")
    ages = persons.select("person", (year - pl.col("birth_date").dt.year()).alias("age"))
    return pop.join(ages, on="person")


def prevalent(data: Extracts, catalogue: ConditionCatalogue, condition: str, year: int, pop: pl.DataFrame) -> pl.DataFrame:
    cond = catalogue[condition]
    lo, hi = date(year, 1, 1), date(year, 12, 31)
    ehr = data.episodes.filter(
        pl.col("icpc3").is_in(list(cond.icpc))
        & (pl.col("start_date") <= hi)
        & (pl.col("end_date").is_null() | (pl.col("end_date") >= lo))
    ).select("person")
    found = [ehr]
    codes = pl.DataFrame(
        {"sector": [c.sector for c in cond.claims], "spec": [c.specialism or "" for c in cond.claims],
         "code": [c.code for c in cond.claims],
         "back": [next(s.lookback_years for s in cond.subconditions if c in s.claims) for c in cond.claims]},
        schema={"sector": pl.String, "spec": pl.String, "code": pl.String, "back": pl.Int64},
    )
    if codes.height:
        hit = data.net_claims.join(codes, left_on=["sector", "specialism", "diagnosis_code"],
                                   right_on=["sector", "spec", "code"])
        hit = hit.filter(
            (pl.col("service_date").dt.year() <= year) & (pl.col("service_date").dt.year() >= year - pl.col("back"))
        ).select("person")
        found.append(hit)
    out = pl.concat(found).unique().join(pop, on="person", how="semi")
    if cond.min_age is not None:
        out = pl.concat([out, pop.filter(pl.col("age") >= cond.min_age).select("person")]).unique()
    return out


def gp_contact_share(data: Extracts, year: int, persons: pl.DataFrame, icpc: tuple[str, ...] | None) -> float:
    """Share of ``persons`` with a qualifying HA contact in ``year`` (for ICPC codes, if given)."""
    c = data.gp_contacts.filter(pl.col("year") == year)
    if icpc is not None:
        c = c.filter(pl.col("icpc3").is_in(list(icpc)))
    return persons.join(c.select("person").unique(), on="person", how="semi").height / max(persons.height, 1)


def claims_share(data: Extracts, year: int, persons: pl.DataFrame, sector: str, codes=None) -> float:  # noqa: ANN001
    # Netting groups by sector: the services of one sector are netted alike among all sectors'.
    net = data.net_claims.filter((pl.col("sector") == sector) & (pl.col("service_date").dt.year() == year))
    if sector == "MSZ":
        net = net.filter(pl.col("care_type").is_in(["poli", "opname"]))
    if codes is not None:
        net = net.join(codes, left_on=["specialism", "diagnosis_code"], right_on=["spec", "code"], how="semi")
    return persons.join(net.select("person").unique(), on="person", how="semi").height / max(persons.height, 1)


# Published figures (shared/spec/facts.md) and the tolerance the demo preset must meet.
# (name, year, target, tolerance); shares are fractions. Where facts give only the 2023 level
# and the change, the 2019 level is derived: 2019 = 2023 - change.
PREVALENCE = {
    "asthma_copd": (0.105, 0.126), "neck_back": (0.114, 0.125), "cancer": (0.079, 0.107),
    "osteoarthritis": (0.078, 0.100), "cardiovascular": (0.072, 0.088),
    "mental_health": (0.063, 0.082), "diabetes": (0.050, 0.064), "frail_elderly": (0.037, 0.048),
}
PREVALENCE_TOLERANCE = 0.008  # absolute; frail elderly: see FRAIL_TOLERANCE
FRAIL_TOLERANCE = 0.010
# Condition-specific (or all-cause) GP share: 2023 level and change 2019 -> 2023 (facts).
GP_SHARE = {
    "asthma_copd": (0.25, -0.019), "neck_back": (0.47, -0.015), "osteoarthritis": (0.19, -0.013),
    "cardiovascular": (0.35, -0.018), "diabetes": (0.53, -0.041), "frail_elderly": (0.94, -0.006),
    "intellectual_disability": (0.835, -0.004),
}
HOSPITAL_SHARE = {
    "cancer": (0.47, -0.016), "osteoarthritis": (0.17, 0.0), "cardiovascular": (0.29, -0.019),
    "intellectual_disability": (0.50, -0.006),
}
SHARE_TOLERANCE = 0.04


def calibration_table(root: Path, catalogue: ConditionCatalogue) -> list[tuple[str, float, float, float]]:
    """Every calibration check as (what, measured, target, tolerance)."""
    rows: list[tuple[str, float, float, float]] = []
    data = Extracts(root)
    for i, year in enumerate((2019, 2023)):
        pop = study_population(root, year)
        rows.append((f"GP any contact {year}", gp_contact_share(data, year, pop, None), 0.78, 0.03))
        hap = data.ooh_contacts.filter(pl.col("year") == year).select("person").unique()
        if year == 2019:
            rows.append(("HAP any contact 2019", pop.join(hap, on="person", how="semi").height / pop.height, 0.178, 0.03))
        for name in catalogue.names:
            prev = prevalent(data, catalogue, name, year, pop)
            share = prev.height / pop.height
            if name in PREVALENCE:
                tol = FRAIL_TOLERANCE if name == "frail_elderly" else PREVALENCE_TOLERANCE
                rows.append((f"prevalence {name} {year}", share, PREVALENCE[name][i], tol))
            cond = catalogue[name]
            if name in GP_SHARE:
                level, change = GP_SHARE[name]
                target = level - change if year == 2019 else level
                icpc = None if cond.all_cause else cond.icpc
                # Intellectual disability is a small group (about 300 persons in demo): wider.
                tol = SHARE_TOLERANCE + (0.02 if name == "intellectual_disability" else 0)
                rows.append((f"GP share {name} {year}", gp_contact_share(data, year, prev, icpc), target, tol))
            if name in HOSPITAL_SHARE:
                level, change = HOSPITAL_SHARE[name]
                target = level - change if year == 2019 else level
                codes = None
                if not cond.all_cause:
                    msz = cond.claims_codes("MSZ")
                    codes = pl.DataFrame({"spec": [c.specialism for c in msz], "code": [c.code for c in msz]},
                                         schema={"spec": pl.String, "code": pl.String})
                rows.append((f"hospital share {name} {year}", claims_share(data, year, prev, "MSZ", codes),
                             target, SHARE_TOLERANCE + (0.04 if cond.all_cause else 0)))
            if name == "mental_health":
                target = 0.31 - 0.037 if year == 2019 else 0.31
                rows.append((f"GGZ_S share {name} {year}", claims_share(data, year, prev, "GGZ_S"), target, SHARE_TOLERANCE))
    return rows
