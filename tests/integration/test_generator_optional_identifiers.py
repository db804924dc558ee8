"""The generator's optional contract v2 identifiers (issue 13): given name, street and place.

Checked on the session's tiny extracts against the truth (``truth/persons.given_name``, the EHR
errors in ``truth/patients``, the insurer's in ``truth/insured``), and against the extracts the
generator drew before these columns existed: every other column stays byte-identical.
"""

from __future__ import annotations

import hashlib

import polars as pl
import pytest

from extracts.generator import addresses
from extracts.generator.given_names import given_names
from extracts.generator.run import GenerationResult
from extracts.validation import validate_extract

# sha256 (first 24 hex digits) of the CSV text of every table's columns as the generator drew them
# for the tiny preset (tests/conftest.py TINY) at the commit before the optional columns existed
# (c593a1e): the new columns come from their own random stream and change none of these.
BEFORE = {
    "claims/claims.parquet": ("f1cfe28e64cf77cf039662a9", "claim_id bsn insurer service_date sector care_type specialism diagnosis_code cost_eur"),
    "claims/insured.parquet": ("297b2a284cf22ca2d77fb811", "bsn year insurer birth_date sex death_date wlz_institution postcode6 house_number insurance_number family_name initials"),
    "claims/insurer_years.parquet": ("581c433bfd32995867c3905a", "insurer year complete"),
    "ehr/contacts.parquet": ("265e68f4bf0a2d8bb20afb08", "patient_id practice_id contact_date provider contact_type icpc"),
    "ehr/episodes.parquet": ("6a09e7f0065f9156184781a5", "patient_id icpc start_date end_date"),
    "ehr/ooh_contacts.parquet": ("be61fba57c447b99f5d8780f", "patient_id contact_date contact_type icpc"),
    "ehr/patients.parquet": ("6f1582b41a45fbf71807909e", "patient_id bsn birth_date sex death_date postcode4 postcode6 house_number insurer insurance_number family_name initials"),
    "ehr/practice_years.parquet": ("eb466f10a5e53e9a8de41c0b", "practice_id year referrals_delivered"),
    "ehr/practices.parquet": ("31b035be9e7935fb98aa2ec0", "practice_id region"),
    "ehr/referrals.parquet": ("6f6f9c9eefbdb4647e3bdca1", "patient_id practice_id referral_date specialism icpc"),
    "ehr/registrations.parquet": ("53d4b6a61b2490d125202f41", "patient_id practice_id start_date end_date"),
    "truth/claims.parquet": ("33c28e25a3179eb67e75bbbe", "claim_id person kind condition"),
    "truth/conditions.parquet": ("db667213dbf849aa09c61967", "person condition subcondition icpc onset resolved in_ehr in_claims"),
    "truth/insured.parquet": ("dc687f3f20ca5735e32beb79", "person year bsn_defect duplicate name_typo previous_address"),
    "truth/patients.parquet": ("29caae8ef0607ade76d9f46d", "patient_id person record bsn_defect birth_date_unknown household birth_date_transposed name_typo initials_first_only insurer_outdated address_missing postcode_malformed insurance_number_missing"),
    "truth/persons.parquet": ("ff686927f9f0c93fd12835ff", "person bsn sex birth_date death_date in_ehr region household twin_of move_year family_name initials"),
}


def test_existing_columns_are_byte_identical_to_before_the_optional_identifiers(
    tiny_extracts: GenerationResult,
) -> None:
    for name, (digest, columns) in BEFORE.items():
        frame = pl.read_parquet(tiny_extracts.out / name).select(columns.split())
        assert hashlib.sha256(frame.write_csv().encode()).hexdigest()[:24] == digest, name


@pytest.fixture(scope="module")
def tables(tiny_extracts: GenerationResult) -> dict[str, pl.DataFrame]:
    out = tiny_extracts.out
    insured = pl.concat([pl.read_parquet(out / "claims" / "insured.parquet"),
                         pl.read_parquet(out / "truth" / "insured.parquet").drop("year")],
                        how="horizontal")
    patients = pl.read_parquet(out / "ehr" / "patients.parquet").join(
        pl.read_parquet(out / "truth" / "patients.parquet"), on="patient_id")
    persons = pl.read_parquet(out / "truth" / "persons.parquet")
    return {"insured": insured, "patients": patients, "persons": persons}


def test_a_pc6_has_one_street_and_one_place_and_a_move_changes_them(
    tables: dict[str, pl.DataFrame],
) -> None:
    insured, patients = tables["insured"], tables["patients"]
    clean = pl.concat([insured.select("postcode6", "street", "city"),
                       patients.filter(~pl.col("street_abbreviated") & ~pl.col("street_typo")
                                       & ~pl.col("city_variant") & pl.col("postcode6").str.contains(r"^\d{4}[A-Z]{2}$"))
                       .select("postcode6", "street", "city")])
    per_pc6 = clean.group_by("postcode6").agg(pl.col("street").n_unique(), pl.col("city").n_unique())
    assert per_pc6.height > 500
    assert (per_pc6["street"] == 1).all() and (per_pc6["city"] == 1).all()
    assert insured["street"].null_count() == 0 and insured["city"].null_count() == 0
    # Rows of a year before the household's move have another address: mostly another street.
    moved = insured.filter("previous_address").join(
        insured.filter(pl.col("year") == 2023).select("person", pl.col("street").alias("now")), on="person")
    assert moved.height > 100
    assert (moved["street"] != moved["now"]).mean() > 0.9
    # Streets follow frequencies: a few frequent names, a long tail.
    streets = insured.filter(pl.col("year") == 2023)["street"]
    assert 300 < streets.n_unique() and streets.value_counts()["count"].max() < 0.05 * len(streets)


def test_given_names_follow_sex_cohort_and_the_first_initial(tables: dict[str, pl.DataFrame]) -> None:
    persons = tables["persons"]
    vocab = given_names()
    female = set(vocab.name[vocab.sex == 1])
    assert persons["given_name"].null_count() == 0
    assert (persons["given_name"].str.slice(0, 1) == persons["initials"].str.slice(0, 1)).all()
    men = persons.filter(pl.col("sex") == "M")["given_name"]
    assert men.is_in(list(female)).mean() < 0.02  # a letter no male name starts with only
    old = persons.filter(pl.col("birth_date").dt.year() < 1945)["given_name"]
    young = persons.filter(pl.col("birth_date").dt.year() >= 2005)["given_name"]
    classic = ["Johannes", "Maria", "Cornelis", "Hendrik", "Johanna", "Cornelia", "Jacobus", "Gerrit"]
    assert old.is_in(classic).mean() > 0.15 > young.is_in(classic).mean() + 0.1
    assert persons["given_name"].n_unique() > 100


def test_ehr_given_names_streets_and_places_err_where_the_truth_says(tables: dict[str, pl.DataFrame]) -> None:
    rows = tables["patients"].join(
        tables["persons"].select("person", pl.col("given_name").alias("true_name")), on="person")
    vocab = given_names()
    calling = {name: set(c) for name, c in zip(vocab.name, vocab.calling, strict=True)}
    plain = rows.filter(~pl.col("given_name_nickname") & ~pl.col("given_name_typo"))
    assert (plain["given_name"] == plain["true_name"]).all()
    nick = rows.filter(pl.col("given_name_nickname") & ~pl.col("given_name_typo"))
    assert nick.height > 50
    assert all(g in calling[t] for g, t in zip(nick["given_name"], nick["true_name"], strict=True))
    typo = rows.filter(pl.col("given_name_typo") & ~pl.col("given_name_nickname"))
    assert typo.height > 5 and (typo["given_name"] != typo["true_name"]).all()
    # Streets and places: as the PC6 says, but where abbreviated, mistyped or another form.
    pc6_ok = rows.filter(pl.col("postcode6").str.contains(r"^\d{4}[A-Z]{2}$"))
    true_street = addresses.streets_of(pc6_ok["postcode6"])
    same = (pc6_ok["street"] == true_street).to_numpy()
    erred = (pc6_ok["street_abbreviated"] | pc6_ok["street_typo"]).to_numpy()
    assert same[~erred].all() and (~same[erred]).all() and erred.sum() > 20
    assert pc6_ok.filter("street_abbreviated")["street"].str.contains(r"\.").all()
    true_city = addresses.cities_of(pc6_ok["postcode6"])
    assert ((pc6_ok["city"] == true_city).to_numpy() == ~pc6_ok["city_variant"].to_numpy()).all()
    missing = rows.filter("address_missing")
    assert missing.height > 0 and missing["street"].null_count() == missing["city"].null_count() == missing.height


def test_the_insurer_mistypes_a_given_name_on_every_row_of_the_person(tables: dict[str, pl.DataFrame]) -> None:
    rows = tables["insured"].join(
        tables["persons"].select("person", pl.col("given_name").alias("true_name")), on="person")
    assert ((rows["given_name"] == rows["true_name"]).to_numpy() | rows["given_name_typo"].to_numpy()).all()
    per_person = rows.group_by("person").agg(pl.col("given_name").n_unique())
    assert (per_person["given_name"] == 1).all()
    assert rows.filter("given_name_typo")["person"].n_unique() > 5


def test_generated_optional_identifiers_are_well_formed_but_for_slashes(tiny_extracts: GenerationResult) -> None:
    for supplier, table in (("ehr", "patients"), ("claims", "insured")):
        result = validate_extract(tiny_extracts.out / supplier, supplier)
        assert result.note(table, "given_name", "malformed") == 0
        assert result.note(table, "street", "malformed") == 0
        # a/d in a place (Alphen a/d Rijn) is a form the contract does not allow: counted, read as null
        frame = pl.read_parquet(tiny_extracts.out / supplier / f"{table}.parquet")
        assert result.note(table, "city", "malformed") == int(frame["city"].str.contains("/").sum())


def test_streets_and_places_when_the_first_pc6_is_missing_or_odd() -> None:
    """A block whose first person has no canonical PC6 (found at country scale: block 4 of 86).

    polars infers a column's type from its first values; a null first must not make it an object.
    """
    import numpy as np

    pc6 = pl.Series(["1234 ab", None, "1234AB", "9999ZZ"])
    expected_street = addresses.streets_of(pl.Series(["1234AB", "9999ZZ"])).to_list()
    assert addresses.streets_of(pc6).to_list() == [None, None, *expected_street]
    assert addresses.streets_of(pl.Series([None], dtype=pl.String)).to_list() == [None]
    places = addresses.cities_of(pc6)
    assert places.dtype == pl.String and places[:2].to_list() == [None, None] and places[2:].null_count() == 0
    written, hit = addresses.city_variants(np.random.default_rng(1), pc6, 0.5)
    assert written.dtype == pl.String and written[:2].to_list() == [None, None] and not hit[:2].any()
