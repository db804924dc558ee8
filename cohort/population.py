"""Base population, attributes and exclusions X1-X7 of a reference year (method.md section 1).

The unit is an EHR patient record with a registration overlapping the year. Every record gets
the first exclusion rule that holds for it (``excluded_by``, null for the study population),
plus the attributes the later stages need: linked pseudonym, birth date, sex, age, practice
and region. Everything is one lazy polars query per year.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from cohort.config import StudyConfig
from extracts.codes import icpc_is_valid

__all__ = ["AGE_BANDS", "BASE_COLUMNS", "RULES", "Linked", "base_population", "coverage", "first_rule", "has_link_method",
           "population_frame"]

RULES = ("X1", "X2", "X3", "X4", "X5", "X6", "X7")
# Age bands of the strata (method.md section 1): label -> (lowest age, highest age or None).
AGE_BANDS: dict[str, tuple[int, int | None]] = {"0-17": (0, 17), "18-64": (18, 64), "65-79": (65, 79),
                                                 "80+": (80, None)}


def _age_band(age: pl.Expr) -> pl.Expr:
    """The band of an age (null for an unknown age), from :data:`AGE_BANDS`."""
    out = pl.lit(None, dtype=pl.String)
    for band, (low, high) in reversed(AGE_BANDS.items()):
        inside = age >= low if high is None else (age >= low) & (age <= high)
        out = pl.when(inside).then(pl.lit(band)).otherwise(out)
    return out


@dataclass(frozen=True)
class Linked:
    """Lazy scans of the linked layout (``linkage.link``)."""

    root: Path

    def ehr(self, table: str) -> pl.LazyFrame:
        return pl.scan_parquet(self.root / "ehr" / f"{table}.parquet")

    def claims(self, table: str) -> pl.LazyFrame:
        return pl.scan_parquet(self.root / "claims" / f"{table}.parquet")

    def record_rows(self) -> pl.LazyFrame:
        """patient_id, row: the rank of each EHR patient record's id among all records of the layout
        (the numbers of unlinked records, ``cohort.members.person_numbers``)."""
        # Sorted once per layout and kept (a study numbers the records of every reference year).
        rows = self.__dict__.get("_record_rows")
        if rows is None:
            rows = (pl.scan_parquet(self.root / "ehr" / "patients.parquet").select("patient_id").unique()
                    .sort("patient_id").with_row_index("row").collect())
            object.__setattr__(self, "_record_rows", rows)  # a frozen dataclass: a cache, not a field
        return rows.lazy()

    def sufficiency(self, year: int, config: StudyConfig) -> pl.LazyFrame:
        """X6 per practice (:func:`practice_sufficiency`): a practice-level rule that needs every
        patient of the practice, so a partition of the layout reads it computed on the whole
        (``cohort.partitioned``)."""
        return practice_sufficiency(self, year, config)


def _overlapping(lf: pl.LazyFrame, start: str, end: str, year: int) -> pl.LazyFrame:
    return lf.filter(
        (pl.col(start) <= date(year, 12, 31)) & (pl.col(end).is_null() | (pl.col(end) >= date(year, 1, 1)))
    )


def practice_sufficiency(linked: Linked, year: int, config: StudyConfig) -> pl.LazyFrame:
    """practice_id, sufficient (method.md section 4 and 9.6), for practices with contacts or lists."""
    s = config.sufficiency
    registered = (
        _overlapping(linked.ehr("registrations"), "start_date", "end_date", year)
        .group_by("practice_id")
        .agg(pl.col("patient_id").n_unique().alias("patients"))
    )
    contacts = (
        linked.ehr("contacts")
        .filter(pl.col("contact_date").dt.year() == year)
        .group_by("practice_id")
        .agg(
            pl.struct(
                pl.col("contact_date").dt.iso_year().alias("iso_year"), pl.col("contact_date").dt.week().alias("week")
            ).n_unique().alias("weeks"),
            (pl.col("icpc").is_not_null() & icpc_is_valid(pl.col("icpc"))).mean().alias("icpc_share"),
        )
    )
    return registered.join(contacts, on="practice_id", how="full", coalesce=True).select(
        "practice_id",
        (
            # method.md 9.6: a practice with no contacts in Y is insufficient, whatever the thresholds.
            pl.col("weeks").is_not_null()
            & (pl.col("patients").fill_null(0) >= s.min_patients)
            & (pl.col("weeks").fill_null(0) >= s.min_weeks)
            & (pl.col("icpc_share").fill_null(0.0) >= s.min_icpc_share)
        ).alias("sufficient"),
    )


def coverage(regs: pl.LazyFrame, window: pl.LazyFrame, keys: tuple[str, ...] = ("patient_id",)) -> pl.LazyFrame:
    """keys, covered: registrations clipped to the window, merged, cover every day (9.5).

    ``window`` has ``keys`` (patient_id first), ``lo`` and ``hi``; one window per row of keys.
    """
    keys_ = list(keys)
    clipped = (
        regs.join(window, on="patient_id")
        .with_columns(
            pl.max_horizontal("start_date", "lo").alias("s"),
            pl.min_horizontal(pl.col("end_date").fill_null(date(9999, 12, 31)), "hi").alias("e"),
        )
        .filter(pl.col("s") <= pl.col("e"))
        .sort(*keys_, "s", "e")
        .with_columns(prev_end=pl.col("e").cum_max().shift(1).over(keys_))
        .group_by(keys_)
        .agg(
            (pl.col("s").min() == pl.col("lo").first()).alias("from_start"),
            (pl.col("e").max() == pl.col("hi").first()).alias("to_end"),
            (pl.col("s") > pl.col("prev_end") + pl.duration(days=1)).fill_null(False).any().alias("gap"),
        )
    )
    return window.join(clipped, on=keys_, how="left").select(
        *keys_,
        (
            (pl.col("lo") <= pl.col("hi"))
            & pl.col("from_start").fill_null(False)
            & pl.col("to_end").fill_null(False)
            & ~pl.col("gap").fill_null(True)
        ).alias("covered"),
    )


def has_link_method(linked: Linked) -> bool:
    """Does the linked layout say how each record was linked (``link_method``: since the fallback)?"""
    return "link_method" in linked.ehr("patients").collect_schema().names()


def linked_by_fallback(patients: pl.LazyFrame) -> pl.Expr:
    """True where the TTP linked the record without its BSN (issue 13; ``link_method`` of the linked
    layout). Linked layouts made before the fallback have no ``link_method``: nothing is."""
    if "link_method" not in patients.collect_schema().names():
        return pl.lit(False)
    return pl.col("p2").is_not_null() & (pl.col("link_method").cast(pl.String) != "bsn")


def not_linkable(fallback: str) -> pl.Expr:
    """X1 (method.md section 4, "not linkable") under the study's ``linkage.fallback``.

    ``include`` (default): a record the fallback linked counts as linked, like one linked by BSN.
    ``exclude``: the method's literal reading, linkage on the BSN only: a fallback link is not
    linkable. Reads the columns ``linked`` (the BSN-era X1 checks passed) and ``by_fallback``.
    """
    if fallback == "exclude":
        return ~pl.col("linked") | pl.col("by_fallback")
    return ~pl.col("linked")


def population_frame(linked: Linked, year: int, config: StudyConfig) -> pl.LazyFrame:
    """One row per base-population record of ``year``: attributes and the tests of X1-X7.

    Columns: patient_id, p2 (null unless linked), linked, birth_date, sex, death_date, age,
    age_band, practice_id, region, insurer, wlz, complete, by_fallback (linked by the TTP's
    fallback, not by BSN), and one boolean per rule ``X1`` ..
    ``X7`` (true: the rule excludes the record). :func:`base_population` applies the rules in
    method order; ``cohort.compile`` in the order a schema 2 study lists them.
    """
    jan1, dec31 = date(year, 1, 1), date(year, 12, 31)
    patients = linked.ehr("patients")
    patients = patients.with_columns(linked_by_fallback(patients).alias("by_fallback"))
    regs_y = _overlapping(linked.ehr("registrations"), "start_date", "end_date", year)
    per_record = regs_y.group_by("patient_id").agg(
        pl.col("practice_id").n_unique().alias("n_practices"), pl.col("practice_id").min().alias("practice_id")
    )
    shared = (
        patients.filter(pl.col("p2").is_not_null()).group_by("p2").agg(pl.len().alias("records"))
    )
    insured = linked.claims("insured").filter(pl.col("p2").is_not_null())
    insured_y = insured.filter(pl.col("year") == year).group_by("p2").agg(
        pl.len().alias("insured_rows"),
        pl.col("birth_date").first().alias("c_birth"),
        pl.col("sex").first().alias("c_sex"),
        pl.col("wlz_institution").first().alias("wlz"),
        pl.col("insurer").first().alias("insurer"),
    )
    claims_death = insured.group_by("p2").agg(pl.col("death_date").min().alias("c_death"))
    complete = linked.claims("insurer_years").filter(pl.col("year") == year).select("insurer", "complete")
    base = (
        patients.join(per_record, on="patient_id", how="inner")
        .join(shared, on="p2", how="left")
        .join(insured_y, on="p2", how="left")
        .join(claims_death, on="p2", how="left")
        .join(complete, on="insurer", how="left")
        .join(linked.sufficiency(year, config), on="practice_id", how="left")
        .join(linked.ehr("practices").select("practice_id", "region"), on="practice_id", how="left")
    )
    x1 = (
        pl.col("p2").is_null()
        | (pl.col("records") > 1)
        | pl.col("insured_rows").is_null()
        | (pl.col("insured_rows") > 1)
        | (pl.col("sex").is_not_null() & pl.col("c_sex").is_not_null() & (pl.col("sex") != pl.col("c_sex")))
        | (
            pl.col("birth_date").is_not_null()
            & pl.col("c_birth").is_not_null()
            & ((pl.col("birth_date").dt.year() - pl.col("c_birth").dt.year()).abs() > 1)
        )
    ).fill_null(False)
    base = base.with_columns(linked=~x1)
    base = base.with_columns(linked=~not_linkable(config.linkage_fallback))
    # method.md 9.2: claims attributes only for linked persons -- the insured row's insurer and Wlz
    # stay included, so that X3, X7 and the criteria reading them (which a schema 2 study may put
    # before X1) see nothing through an unusable link (docs/study-schema.md, Population).
    claims_value = lambda c: pl.when(pl.col("linked")).then(pl.col(c))  # noqa: E731
    base = base.with_columns(
        pl.coalesce("birth_date", claims_value("c_birth")).alias("birth_date"),
        pl.coalesce("sex", claims_value("c_sex")).alias("sex"),
        pl.min_horizontal("death_date", claims_value("c_death")).alias("death_date"),
        claims_value("wlz").alias("wlz"),
        claims_value("insurer").alias("insurer"),
        claims_value("complete").alias("complete"),
    )
    window = base.select(
        "patient_id",
        pl.max_horizontal(pl.lit(jan1), "birth_date").alias("lo"),
        pl.min_horizontal(pl.lit(dec31), pl.col("death_date").fill_null(dec31)).alias("hi"),
    )
    base = base.join(coverage(regs_y, window), on="patient_id", how="left")
    rules = {
        "X1": ~pl.col("linked"),
        "X2": pl.col("birth_date").is_null(),
        "X3": pl.col("wlz").fill_null(False),
        "X4": pl.col("n_practices") > 1,
        "X5": ~pl.col("covered").fill_null(False),
        "X6": ~pl.col("sufficient").fill_null(False),
        "X7": ~pl.col("complete").fill_null(False),
    }
    age = year - pl.col("birth_date").dt.year()
    return base.select(
        "patient_id",
        pl.when(pl.col("linked")).then(pl.col("p2")).alias("p2"),
        "linked",
        "birth_date",
        "sex",
        "death_date",
        age.alias("age"),
        _age_band(age).alias("age_band"),
        "practice_id",
        "region",
        "insurer",
        "wlz",
        "complete",
        *(test.alias(name) for name, test in rules.items()),
        (pl.col("by_fallback") & pl.col("linked")).alias("by_fallback"),
    )


def first_rule(names: list[str] | tuple[str, ...]) -> pl.Expr:
    """``excluded_by``: the first of the boolean columns ``names`` that holds, null when none does."""
    excluded_by: pl.Expr = pl.lit(None, dtype=pl.String)
    for name in reversed(names):
        excluded_by = pl.when(pl.col(name)).then(pl.lit(name)).otherwise(excluded_by)
    return excluded_by.alias("excluded_by")


BASE_COLUMNS = ("patient_id", "p2", "linked", "excluded_by", "birth_date", "sex", "age", "age_band", "practice_id",
                "region", "insurer", "by_fallback")


def base_population(linked: Linked, year: int, config: StudyConfig) -> pl.LazyFrame:
    """One row per base-population record of ``year`` with ``excluded_by`` (X1-X7 in order) and attributes.

    Columns: patient_id, p2, linked (not X1), excluded_by, birth_date, sex, age, age_band,
    practice_id, region, insurer.
    """
    return population_frame(linked, year, config).with_columns(first_rule(RULES)).select(BASE_COLUMNS)
