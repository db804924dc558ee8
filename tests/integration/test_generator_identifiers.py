"""The generator's contract v2 identifiers (issue 13): households, moves, switches, twins, errors.

Checked against the truth the generator writes beside the extracts (``truth/persons``: household,
twin, move year, true family name and initials; ``truth/patients`` and ``truth/insured``: the
errors each record got), on the session's tiny extracts.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from conftest import TINY
from extracts.generator.config import DefectRates
from extracts.generator.names import surnames
from extracts.generator.run import GenerationResult, generate
from extracts.validation import validate_extract


@pytest.fixture(scope="module")
def tables(tiny_extracts: GenerationResult) -> dict[str, pl.DataFrame]:
    out = tiny_extracts.out
    insured = pl.concat([pl.read_parquet(out / "claims" / "insured.parquet"),
                         pl.read_parquet(out / "truth" / "insured.parquet").drop("year")],
                        how="horizontal")
    patients = pl.read_parquet(out / "ehr" / "patients.parquet").join(
        pl.read_parquet(out / "truth" / "patients.parquet"), on="patient_id")
    return {"insured": insured, "patients": patients,
            "persons": pl.read_parquet(out / "truth" / "persons.parquet")}


def test_v1_columns_do_not_depend_on_the_identifier_draws(tmp_path: Path) -> None:
    """The identifiers have their own random stream: changing their rates changes no v1 value."""
    rates = {"name_typo": 0.2, "initials_first_only": 0.3, "insurer_outdated": 0.2,
             "address_missing": 0.1, "insurance_number_missing": 0.1, "odd_identifier_format": 0.3}
    small = replace(TINY, registered_patients=600, practices=2)
    a = generate(small, tmp_path / "a")
    b = generate(replace(small, defects=replace(DefectRates(), **rates)), tmp_path / "b")
    for supplier, table in (("ehr", "patients"), ("claims", "insured"), ("claims", "claims"),
                            ("ehr", "contacts")):
        left = pl.read_parquet(a.out / supplier / f"{table}.parquet")
        right = pl.read_parquet(b.out / supplier / f"{table}.parquet")
        v1 = [c for c in left.columns if c not in ("postcode6", "house_number", "insurer",
                                                   "insurance_number", "family_name", "initials",
                                                   "given_name", "street", "city")
              or (table == "insured" and c == "insurer")]
        assert left.select(v1).equals(right.select(v1)), table
        if table == "patients":
            assert not left["family_name"].equals(right["family_name"])


def test_household_members_share_pc6_and_house_number_and_households_do_not(
    tables: dict[str, pl.DataFrame],
) -> None:
    rows = tables["insured"].filter(~pl.col("duplicate") & (pl.col("year") == 2023)).join(
        tables["persons"].select("person", "household"), on="person")
    per_household = rows.group_by("household").agg(
        pl.struct("postcode6", "house_number").n_unique().alias("addresses"), pl.len().alias("n"))
    assert (per_household["addresses"] == 1).all()
    assert per_household.filter(pl.col("n") > 1).height > 100  # not vacuous: shared households
    per_address = rows.group_by("postcode6", "house_number").agg(pl.col("household").n_unique())
    assert (per_address["household"] == 1).all()


def test_ehr_postcode6_begins_with_the_records_postcode4(tiny_extracts: GenerationResult) -> None:
    patients = validate_extract(tiny_extracts.out / "ehr", "ehr").tables["patients"].collect()
    known = patients.filter(pl.col("postcode6").is_not_null())
    assert known.height > 0.95 * patients.height
    assert (known["postcode6"].str.slice(0, 4) == known["postcode4"]).all()


def test_moves_change_the_pc6_of_the_insured_rows_in_the_move_year(
    tables: dict[str, pl.DataFrame],
) -> None:
    rows = tables["insured"].filter(~pl.col("duplicate")).join(
        tables["persons"].select("person", "move_year"), on="person")
    moved = rows.filter(pl.col("move_year").is_not_null())
    before = moved.filter(pl.col("year") < pl.col("move_year"))
    after = moved.filter(pl.col("year") >= pl.col("move_year"))
    assert (before["previous_address"]).all() and not after["previous_address"].any()
    pairs = before.group_by("person").agg(pl.col("postcode6").first().alias("old")).join(
        after.group_by("person").agg(pl.col("postcode6").first().alias("new")), on="person")
    assert pairs.height > 200
    assert (pairs["old"] != pairs["new"]).mean() > 0.99
    stayed = rows.filter(pl.col("move_year").is_null()).group_by("person").agg(
        pl.col("postcode6").n_unique())
    assert (stayed["postcode6"] == 1).all()


def test_insurance_number_changes_with_the_insurer_and_only_then(
    tables: dict[str, pl.DataFrame],
) -> None:
    rows = tables["insured"].filter(~pl.col("duplicate")).sort("person", "year")
    per_person = rows.group_by("person").agg(pl.col("insurer").n_unique().alias("insurers"),
                                             pl.col("insurance_number").n_unique().alias("numbers"))
    assert (per_person["insurers"] == per_person["numbers"]).all()
    assert per_person.filter(pl.col("insurers") > 1).height > 500  # switches happen
    pairs = rows.select("insurer", "insurance_number").unique()
    assert pairs.group_by("insurer", "insurance_number").len()["len"].max() == 1
    assert rows["insurance_number"].str.contains(r"^[0-9]{9}$").all()


def test_ehr_insurer_and_number_are_those_of_an_insured_year_of_the_person(
    tables: dict[str, pl.DataFrame],
) -> None:
    held = tables["insured"].select("person", "insurer", "insurance_number").unique()
    patients = tables["patients"].filter(pl.col("insurance_number").is_not_null())
    found = patients.join(held, on=["person", "insurer", "insurance_number"], how="semi")
    assert found.height == patients.height
    assert tables["patients"]["insurer_outdated"].sum() > 0


def test_twins_share_birth_date_and_name_and_differ_in_initials(
    tables: dict[str, pl.DataFrame],
) -> None:
    persons = tables["persons"]
    twins = persons.filter(pl.col("twin_of").is_not_null()).join(
        persons, left_on="twin_of", right_on="person", suffix="_twin")
    assert twins.height >= 0.01 * persons.height
    assert (twins["birth_date"] == twins["birth_date_twin"]).all()
    assert (twins["family_name"] == twins["family_name_twin"]).all()
    assert (twins["initials"].str.slice(0, 1) != twins["initials_twin"].str.slice(0, 1)).all()
    assert (twins["household"] == twins["household_twin"]).mean() > 0.3


def test_family_names_follow_dutch_frequencies_with_prefixes(tables: dict[str, pl.DataFrame]) -> None:
    names = tables["persons"]["family_name"]
    listed = surnames()
    top = {f"{p} {n}".strip() for p, n in zip(listed.prefix[:355], listed.name[:355], strict=True)}
    assert 0.12 < names.is_in(list(top)).mean() < 0.30
    assert 0.15 < names.str.contains(r"^(van|de|ter|ten|'t|het) ").mean() < 0.45
    assert names.n_unique() > 0.4 * names.len()  # households share a name


def test_name_typos_and_first_initials_are_where_the_truth_says(
    tiny_extracts: GenerationResult, tables: dict[str, pl.DataFrame],
) -> None:
    clean = validate_extract(tiny_extracts.out / "ehr", "ehr").tables["patients"].collect()
    truth = pl.read_parquet(tiny_extracts.out / "truth" / "patients.parquet")
    rows = clean.select("patient_id", "family_name", "initials").join(truth, on="patient_id").join(
        tables["persons"].select("person", pl.col("family_name").alias("true_name"),
                                 pl.col("initials").alias("true_initials")), on="person")
    same_name = rows["family_name"].str.to_lowercase() == rows["true_name"].str.to_lowercase()
    assert (~same_name == rows["name_typo"]).mean() > 0.99  # a transposition of equal letters
    assert rows["name_typo"].sum() > 10
    short = rows.filter(pl.col("initials_first_only"))
    assert short.height > 100 and (short["initials"].str.len_chars() == 1).all()
    full = rows.filter(~pl.col("initials_first_only"))
    assert (full["initials"] == full["true_initials"]).all()


def test_transposed_birth_dates_keep_the_year(tables: dict[str, pl.DataFrame]) -> None:
    rows = tables["patients"].join(tables["persons"].select("person", "birth_date"), on="person",
                                   suffix="_true").filter(pl.col("birth_date").is_not_null())
    changed = rows["birth_date"] != rows["birth_date_true"]
    assert (changed == rows["birth_date_transposed"]).all()
    moved = rows.filter(pl.col("birth_date_transposed"))
    assert (moved["birth_date"].dt.year() == moved["birth_date_true"].dt.year()).all()


def test_validation_counts_exactly_the_injected_malformed_postcodes(
    tiny_extracts: GenerationResult,
) -> None:
    ehr = validate_extract(tiny_extracts.out / "ehr", "ehr")
    claims = validate_extract(tiny_extracts.out / "claims", "claims")
    assert ehr.note("patients", "postcode6", "malformed") == tiny_extracts.defects[
        "ehr_postcode_malformed"]
    malformed = pl.concat([ehr.notes, claims.notes]).filter(
        (pl.col("note") == "malformed") & (pl.col("column") != "postcode6"))
    assert malformed["rows"].sum() == 0
    assert ehr.note("patients", "postcode6", "changed_by_normalisation") > 0
