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


def who_links(cells: pl.DataFrame) -> dict:
    """Linked share of EHR records by age band, sex, practice and BSN status (ONS: who fails to link).

    ``cells``: EHR records counted (``records``) per practice, age band, sex, BSN status, reason and
    link method. Each cell of the result: records, linked, share, and linked by the fallback; cells
    under ``SMALL_COUNT`` records are kept as a row with every figure null (``suppressed``), so that
    no small group of patients can be singled out.
    """
    linked = pl.col("reason") == "linked"
    frame = cells.with_columns(
        pl.col("age_band").fill_null("unknown"),
        pl.col("sex").fill_null("unknown"),
        pl.col("practice_id").fill_null("unknown"),
        pl.when(linked).then(pl.col("records")).otherwise(0).alias("is_linked"),
        pl.when(linked & (pl.col("link_method") != "bsn")).then(pl.col("records")).otherwise(0).alias("by_fallback"),
    )
    out = {}
    for by in ("age_band", "sex", "practice_id", "bsn_status"):
        table = (
            frame.group_by(by)
            .agg(pl.col("records").sum(), pl.col("is_linked").sum().alias("linked"),
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


def _pass_of(passes: int, i: int) -> pl.Expr:
    """Rows of pass ``i`` of ``passes``: one hash range of pseudonyms; rows without one in pass 0."""
    if passes == 1:
        return pl.lit(True)
    return pl.when(pl.col("p2").is_null()).then(pl.lit(i == 0)).otherwise(pl.col("p2").hash(seed=0) % passes == i)


def _check_passes(passes: object) -> int:
    if isinstance(passes, bool) or not isinstance(passes, int) or passes < 1:
        raise ValueError(f"passes must be a positive whole number, not {passes!r}")
    return passes


def _one_pass(patients: pl.LazyFrame, registrations: pl.LazyFrame, insured: pl.LazyFrame, *, year: int,
              passes: int, i: int) -> dict[str, pl.DataFrame]:
    """The report's counts over the persons of one pass, as small tables that add up over passes."""
    in_pass = _pass_of(passes, i)
    patients = patients.filter(in_pass)
    insured = insured.filter(in_pass)
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
    latest_practice = (
        registrations.join(patients.select("patient_id"), on="patient_id", how="semi")
        .sort("start_date").group_by("patient_id").agg(pl.col("practice_id").last())
    )
    method = pl.col("link_method") if "link_method" in patients.collect_schema().names() else pl.lit("bsn")
    ehr = (
        patients.with_columns(method.cast(pl.String).alias("link_method"))
        .join(records_per_p2, on="p2", how="left")
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
        .otherwise(pl.lit("linked")),
        age_band=_age_band(pl.lit(year) - pl.col("birth_date").dt.year()),
    )
    # The records' cells and the linked pseudonyms share the joins above (one plan); the insured-side
    # counts after them, not beside them (at once they held both sides' buffers together).
    cells, linked_p2 = pl.collect_all([
        # Records per combination of everything the report breaks them down by: a few thousand cells.
        ehr.group_by("practice_id", "age_band", "sex", "bsn_status", "reason", "link_method").agg(
            pl.len().alias("records"), pl.col("sex_conflict").sum(), pl.col("birth_year_conflict").sum()),
        ehr.filter(pl.col("reason") == "linked").select("p2"),  # unique: a linked record's p2 is its own
    ], engine="streaming")
    several = records_per_p2.filter(pl.col("records") > 1).select(
        pl.len().alias("persons"), pl.col("records").sum().alias("records")).collect(engine="streaming")
    per_insurer = (
        insured.filter(pl.col("p2").is_not_null()).select("p2", "insurer").unique()
        .join(linked_p2.lazy().with_columns(linked=pl.lit(True)), on="p2", how="left")
        .group_by("insurer")
        .agg(pl.len().alias("persons"), pl.col("linked").fill_null(False).sum().alias("linked_to_ehr"))
        .collect(engine="streaming")
    )
    claims = insured.select(pl.col("p2").drop_nulls().n_unique().alias("persons"),
                            pl.col("p2").null_count().alias("null")).collect(engine="streaming")
    return {"cells": cells, "several": several, "per_insurer": per_insurer, "claims": claims}


def _summed(parts: list[dict[str, pl.DataFrame]], name: str, by: list[str]) -> pl.DataFrame:
    frame = pl.concat([p[name] for p in parts], how="vertical_relaxed")
    values = [c for c in frame.columns if c not in by]
    if not by:
        return frame.select(pl.col(c).sum() for c in values)
    return frame.group_by(by).agg(pl.col(c).sum() for c in values)


def linkage_report(linked: Path, *, passes: int = 1) -> dict:
    """Linked shares per supplier, practice and insurer; multiple records; conflicts; reasons.

    ``passes``: in how many hash ranges of pseudonyms to count (records without one in the
    first): each pass holds the persons of its range only, so the report's memory is bounded by
    the persons of a pass, not of the register; every figure is a sum over persons, hence the
    same report for any number of passes.
    """
    passes = _check_passes(passes)
    patients = pl.scan_parquet(linked / "ehr" / "patients.parquet")
    registrations = pl.scan_parquet(linked / "ehr" / "registrations.parquet")
    insured = pl.scan_parquet(linked / "claims" / "insured.parquet")
    year = registrations.select(pl.col("start_date").dt.year().max()).collect().item() or 0
    parts = [_one_pass(patients, registrations, insured, year=year, passes=passes, i=i) for i in range(passes)]
    cells = _summed(parts, "cells", ["practice_id", "age_band", "sex", "bsn_status", "reason", "link_method"])
    several = _summed(parts, "several", []).row(0, named=True)
    claims = _summed(parts, "claims", []).row(0, named=True)
    is_linked = pl.col("reason") == "linked"
    n = int(cells["records"].sum())
    linked_n = int(cells.filter(is_linked)["records"].sum())
    per_practice = (
        cells.group_by("practice_id")
        .agg(pl.col("records").sum(), pl.col("records").filter(is_linked).sum().alias("linked"))
        .with_columns((pl.col("linked") / pl.col("records")).round(4).alias("linked_share"))
        .sort("practice_id")
    )
    per_insurer = (
        _summed(parts, "per_insurer", ["insurer"])
        .with_columns((pl.col("linked_to_ehr") / pl.col("persons")).round(4).alias("linked_share"))
        .sort("insurer")
    )
    return {
        "linked_records_by_method": _counts(cells.filter(is_linked), "link_method"),
        "who_links": who_links(cells),
        "ehr": {
            "patient_records": n,
            "linked_records": linked_n,
            "linked_share": _share(linked_n, n),
            "unlinked_by_reason": _counts(cells.filter(~is_linked), "reason"),
        },
        "claims": {
            "insured_persons": int(claims["persons"]),
            "insured_rows_without_valid_bsn": int(claims["null"]),
            # A linked record's pseudonym is no other record's, so linked records are linked persons.
            "linked_to_ehr_persons": linked_n,
            "linked_share": _share(linked_n, int(claims["persons"])),
        },
        "persons_with_several_ehr_records": int(several["persons"]),
        "ehr_records_of_those_persons": int(several["records"] or 0),
        "conflicting_links": {
            "sex": int(cells["sex_conflict"].sum()),
            "birth_year": int(cells["birth_year_conflict"].sum()),
        },
        "per_practice": per_practice.to_dicts(),
        "per_insurer": per_insurer.to_dicts(),
    }


def _counts(cells: pl.DataFrame, by: str) -> dict:
    return dict(sorted(cells.group_by(by).agg(pl.col("records").sum()).iter_rows()))
