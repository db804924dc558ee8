"""The linkage report: how well the two sources linked, for the data steward (counts only).

Internal to the research environment: it holds counts per practice and insurer that may be
small, so it is not a releasable output (release goes through disclosure control).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

__all__ = ["SMALL_COUNT", "linkage_report", "who_links"]

SMALL_COUNT = 10
"""Cells of the who-links table with fewer records show no counts (the report must not become a leak)."""
_AGE_BANDS = ((0, "0-17"), (18, "18-44"), (45, "45-64"), (65, "65-74"), (75, "75+"))


def _share(n: int, d: int) -> float | None:
    return round(n / d, 6) if d else None


def _age_band(age: pl.Expr) -> pl.Expr:
    band = pl.lit(None, dtype=pl.String)
    for lower, name in _AGE_BANDS:
        band = pl.when(age >= lower).then(pl.lit(name)).otherwise(band)
    return band


def who_links(ehr: pl.DataFrame, registrations: pl.LazyFrame) -> dict:
    """Linked share of EHR records by age band, sex, practice and BSN status (ONS: who fails to link).

    Each cell: records, linked, share, and linked by the fallback; cells under ``SMALL_COUNT``
    records are kept as a row with every figure null (``suppressed``), so that no small group of
    patients can be singled out.
    """
    year = registrations.select(pl.col("start_date").dt.year().max()).collect().item()
    frame = ehr.with_columns(
        _age_band(pl.lit(year or 0) - pl.col("birth_date").dt.year()).fill_null("unknown").alias("age_band"),
        pl.col("sex").fill_null("unknown"),
        pl.col("practice_id").fill_null("unknown"),
        (pl.col("reason") == "linked").alias("is_linked"),
        ((pl.col("reason") == "linked") & (pl.col("link_method") != "bsn")).alias("by_fallback"),
    )
    out = {}
    for by in ("age_band", "sex", "practice_id", "bsn_status"):
        table = (
            frame.group_by(by)
            .agg(pl.len().alias("records"), pl.col("is_linked").sum().alias("linked"),
                 pl.col("by_fallback").sum().alias("linked_by_fallback"))
            .with_columns((pl.col("records") < SMALL_COUNT).alias("suppressed"))
            .with_columns(
                (pl.col("linked") / pl.col("records")).round(4).alias("linked_share"),
            )
            .with_columns(
                [pl.when(~pl.col("suppressed")).then(pl.col(c)).alias(c)
                 for c in ("records", "linked", "linked_by_fallback", "linked_share")]
            )
            .sort(by)
        )
        out[by] = table.to_dicts()
    return out


def linkage_report(linked: Path) -> dict:
    """Linked shares per supplier, practice and insurer; multiple records; conflicts; reasons."""
    patients = pl.scan_parquet(linked / "ehr" / "patients.parquet")
    registrations = pl.scan_parquet(linked / "ehr" / "registrations.parquet")
    insured = pl.scan_parquet(linked / "claims" / "insured.parquet")
    records_per_p2 = patients.filter(pl.col("p2").is_not_null()).group_by("p2").agg(pl.len().alias("records"))
    # Aggregates, not lists, over the insured rows of EHR persons only: streams at register size.
    by_claims = pl.col("birth_date").dt.year()
    claims_persons = (
        insured.join(records_per_p2.select("p2"), on="p2", how="semi")
        .group_by("p2")
        .agg(
            pl.len().alias("insured_rows"),
            pl.col("sex").min().alias("sex_min"), pl.col("sex").max().alias("sex_max"),
            by_claims.min().alias("year_min"), by_claims.max().alias("year_max"),
        )
    )
    latest_practice = registrations.sort("start_date").group_by("patient_id").agg(pl.col("practice_id").last())
    ehr = (
        patients.join(records_per_p2, on="p2", how="left")
        .join(claims_persons, on="p2", how="left")
        .join(latest_practice, on="patient_id", how="left")
        .with_columns(in_claims=pl.col("insured_rows").is_not_null())
    )
    # method.md 9.3: a conflict only where both sources know the value; any insured row counts.
    by = pl.col("birth_date").dt.year()
    ehr = ehr.with_columns(
        sex_conflict=(
            pl.col("sex").is_not_null()
            & ((pl.col("sex_min") != pl.col("sex_max")) | (pl.col("sex_min") != pl.col("sex")))
        ).fill_null(False),
        birth_year_conflict=(
            by.is_not_null()
            & (((pl.col("year_min") - by).abs() > 1) | ((pl.col("year_max") - by).abs() > 1))
        ).fill_null(False),
    )
    ehr = ehr.with_columns(
        # A record without a usable BSN that the TTP's fallback linked goes on to the checks below.
        reason=pl.when((pl.col("bsn_status") != "valid") & pl.col("p2").is_null())
        .then(pl.concat_str(pl.lit("bsn_"), pl.col("bsn_status")))
        .when(pl.col("records") > 1).then(pl.lit("pseudonym_shared_by_ehr_records"))
        .when(~pl.col("in_claims")).then(pl.lit("no_insured_row"))
        .when(pl.col("sex_conflict")).then(pl.lit("sex_conflict"))
        .when(pl.col("birth_year_conflict")).then(pl.lit("birth_year_conflict"))
        .otherwise(pl.lit("linked"))
    ).collect(engine="streaming")
    n = ehr.height
    linked_n = int((ehr["reason"] == "linked").sum())
    per_practice = (
        ehr.group_by("practice_id")
        .agg(pl.len().alias("records"), (pl.col("reason") == "linked").sum().alias("linked"))
        .with_columns((pl.col("linked") / pl.col("records")).round(4).alias("linked_share"))
        .sort("practice_id")
    )
    linked_p2 = ehr.filter(pl.col("reason") == "linked").select("p2").unique()
    per_insurer = (
        insured.filter(pl.col("p2").is_not_null()).select("p2", "insurer").unique()
        .join(linked_p2.lazy().with_columns(linked=pl.lit(True)), on="p2", how="left")
        .group_by("insurer")
        .agg(pl.len().alias("persons"), pl.col("linked").fill_null(False).sum().alias("linked_to_ehr"))
        .with_columns((pl.col("linked_to_ehr") / pl.col("persons")).round(4).alias("linked_share"))
        .sort("insurer")
        .collect(engine="streaming")
    )
    claims_persons_n, without_valid_bsn = insured.select(
        pl.col("p2").drop_nulls().n_unique().alias("persons"), pl.col("p2").null_count().alias("null")
    ).collect(engine="streaming").row(0)
    multiple = ehr.filter(pl.col("records") > 1)
    method = pl.col("link_method") if "link_method" in ehr.columns else pl.lit("bsn")
    ehr = ehr.with_columns(method.cast(pl.String).alias("link_method"))
    return {
        "linked_records_by_method": dict(sorted(
            ehr.filter(pl.col("reason") == "linked").group_by("link_method").len().iter_rows()
        )),
        "who_links": who_links(ehr, registrations),
        "ehr": {
            "patient_records": n,
            "linked_records": linked_n,
            "linked_share": _share(linked_n, n),
            "unlinked_by_reason": dict(sorted(
                ehr.filter(pl.col("reason") != "linked").group_by("reason").len().iter_rows()
            )),
        },
        "claims": {
            "insured_persons": claims_persons_n,
            "insured_rows_without_valid_bsn": int(without_valid_bsn),
            "linked_to_ehr_persons": linked_p2.height,
            "linked_share": _share(linked_p2.height, claims_persons_n),
        },
        "persons_with_several_ehr_records": multiple["p2"].n_unique(),
        "ehr_records_of_those_persons": multiple.height,
        "conflicting_links": {
            "sex": int(ehr["sex_conflict"].sum()),
            "birth_year": int(ehr["birth_year_conflict"].sum()),
        },
        "per_practice": per_practice.to_dicts(),
        "per_insurer": per_insurer.to_dicts(),
    }
