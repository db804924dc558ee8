"""Linkage quality against the generator's ground truth: precision and recall.

For generated data only (real data have no truth). A *link* is an EHR patient record whose
project pseudonym also occurs on the claims side. With the truth's person behind every EHR
record (``truth/patients``) and every claim line (``truth/claims``):

- precision: of the linked EHR records that have claim lines, the share whose claim lines all
  belong to the record's own person;
- recall: of the EHR records whose person has claim lines, the share linked to that person.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

__all__ = ["linkage_quality"]


def linkage_quality(linked: Path, truth: Path) -> dict[str, float | int]:
    ehr = pl.scan_parquet(linked / "ehr" / "patients.parquet").select("patient_id", "p2").join(
        pl.scan_parquet(truth / "patients.parquet").select("patient_id", "person"), on="patient_id"
    )
    # Only claim lines under a pseudonym of an EHR record, and the claim lines of the EHR's
    # persons, can make or break a link: each join to the truth is restricted to them first (on
    # its build side), so that memory follows the EHR's share of a register, not the register.
    truth_claims = pl.scan_parquet(truth / "claims.parquet").select("claim_id", "person")
    ehr_claims = (
        pl.scan_parquet(linked / "claims" / "claims.parquet").select("claim_id", "p2")
        .join(ehr.select("p2").drop_nulls().unique(), on="p2", how="semi")
    )
    by_p2 = (
        truth_claims.select("claim_id", pl.col("person").alias("claims_person"))
        .join(ehr_claims, on="claim_id")
        .group_by("p2")
        .agg(pl.col("claims_person").n_unique().alias("claims_persons"),
             pl.col("claims_person").first().alias("claims_person"))
    )
    # A person "has claims" when a claim line of theirs reached the linked layout (not quarantined).
    has_claims = (
        pl.scan_parquet(linked / "claims" / "claims.parquet").select("claim_id")
        .join(truth_claims.join(ehr.select("person").unique(), on="person", how="semi"), on="claim_id")
        .select("person").unique().with_columns(has_claims=pl.lit(True))
    )
    records = (
        ehr.join(by_p2, on="p2", how="left")
        .join(has_claims, on="person", how="left")
        .with_columns(
            linked=pl.col("claims_persons").is_not_null(),
            correct=(pl.col("claims_persons") == 1) & (pl.col("claims_person") == pl.col("person")),
            has_claims=pl.col("has_claims").fill_null(False),
        )
        .collect(engine="streaming")
    )
    linked = records.filter("linked")
    should = records.filter("has_claims")
    return {
        "ehr_records": records.height,
        "linked_records": linked.height,
        "correct_links": int(linked["correct"].sum()),
        "records_whose_person_has_claims": should.height,
        "found": int(should["correct"].fill_null(False).sum()),
        "precision": round(float(linked["correct"].mean() or 0.0), 6),
        "recall": round(int(should["correct"].fill_null(False).sum()) / max(should.height, 1), 6),
    }
