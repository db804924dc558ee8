"""Property tests of the keyed fallback encodings (issue 13, item 3; ``pseudonymisation/encodings.py``).

Same input, same key: same token and filter (suppliers must agree without talking). Another key:
other tokens and filters (the TTP, which lacks K_net, cannot rebuild them). Spelling variants that
standardisation removes give equal encodings; a balanced filter always holds ``base`` set bits.
Another linkage under the same key: other tokens and filters (key rotation per linkage).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pseudonymisation.encodings import (
    BLOOM_FIELDS,
    TOKEN_FIELDS,
    encode_identifiers,
    fallback_keys,
    normalise_surname,
)
from pseudonymisation.errors import PseudonymisationError
from pseudonymisation.keys import Key

KEY_A = fallback_keys(Key("network", bytes(range(32))))
KEY_B = fallback_keys(Key("network", bytes(range(1, 33))))

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzéëïöüç -'", min_size=1, max_size=25)
person = st.fixed_dictionaries({
    "postcode6": st.from_regex(r"[1-9][0-9]{3}[A-Z]{2}", fullmatch=True),
    "house_number": st.from_regex(r"[1-9][0-9]{0,3}[A-Z]?", fullmatch=True),
    "insurer": st.from_regex(r"[0-9]{4}", fullmatch=True),
    "insurance_number": st.from_regex(r"[1-9][0-9]{8}", fullmatch=True),
    "family_name": names,
    "initials": st.from_regex(r"[A-Z]{1,3}", fullmatch=True),
    "given_name": names,
    "street": names,
    "city": names,
    "birth_date": st.dates(dt.date(1900, 1, 1), dt.date(2025, 12, 31)),
    "sex": st.sampled_from(["M", "F", "X"]),
})


def _frame(rows: list[dict]) -> pl.DataFrame:
    rows = [{"given_name": None, "street": None, "city": None, **r} for r in rows]
    return pl.DataFrame(rows, schema={"postcode6": pl.String, "house_number": pl.String, "insurer": pl.String,
                                      "insurance_number": pl.String, "family_name": pl.String,
                                      "initials": pl.String, "given_name": pl.String, "street": pl.String,
                                      "city": pl.String, "birth_date": pl.Date, "sex": pl.String})


@given(p=person)
def test_encodings_same_input_same_key_give_same_encodings(p: dict) -> None:
    a = encode_identifiers(KEY_A, _frame([p, p]))
    again = encode_identifiers(KEY_A, _frame([p]))
    for f in TOKEN_FIELDS:
        assert a[f][0] == a[f][1] == again[f][0]
        assert a[f][0] is not None
    for f in BLOOM_FIELDS:
        assert np.array_equal(a[f][0], again[f][0])


@given(p=person)
def test_encodings_another_key_gives_other_tokens_and_filters(p: dict) -> None:
    a = encode_identifiers(KEY_A, _frame([p]))
    b = encode_identifiers(KEY_B, _frame([p]))
    for f in TOKEN_FIELDS:
        assert a[f][0] != b[f][0]
    for f in BLOOM_FIELDS:
        if a[f"{f}_present"][0]:
            assert not np.array_equal(a[f][0], b[f][0])


@given(p=person)
def test_balanced_filter_has_constant_weight_whatever_the_name(p: dict) -> None:
    e = encode_identifiers(KEY_A, _frame([p]))
    for f, spec in BLOOM_FIELDS.items():
        weight = int(np.bitwise_count(e[f][0]).sum())
        assert weight == (spec.base if e[f"{f}_present"][0] else 0)


@given(p=person, other=st.sampled_from(["12A", "13", "12 B"]))
def test_tokens_change_when_their_own_parts_change_only(p: dict, other: str) -> None:
    changed = {**p, "house_number": other if other != p["house_number"] else "9999"}
    a = encode_identifiers(KEY_A, _frame([p, changed]))
    assert a["t_address"][0] != a["t_address"][1]
    assert a["t_birth"][0] == a["t_birth"][1]
    assert a["t_insurance"][0] == a["t_insurance"][1]


def test_surname_standardisation_removes_prefixes_accents_case_and_order() -> None:
    spellings = ["van der Berg", "Berg, van der", "VAN DER BERG", "van der  Bérg", "Van-der Berg"]
    out = pl.DataFrame({"n": spellings}).select(normalise_surname(pl.col("n"))).to_series().to_list()
    assert out == ["berg"] * len(spellings)
    e = encode_identifiers(KEY_A, _frame([{"postcode6": None, "house_number": None, "insurer": None,
                                           "insurance_number": None, "family_name": s, "initials": None,
                                           "birth_date": None, "sex": None} for s in spellings]))
    assert all(np.array_equal(e["bf_family_name"][0], row) for row in e["bf_family_name"])


def test_missing_or_malformed_parts_give_no_token_not_a_shared_one() -> None:
    rows = [{"postcode6": pc, "house_number": "1", "insurer": "3311", "insurance_number": nr,
             "family_name": None, "initials": None, "birth_date": None, "sex": "M"}
            for pc, nr in [("0123AB", "12x"), ("ABCD12", None), (None, "")]]
    e = encode_identifiers(KEY_A, _frame(rows))
    for f in TOKEN_FIELDS:
        assert e[f].null_count() == 3
    assert not e["bf_family_name_present"].any()


def test_insurance_number_leading_zeros_are_significant() -> None:
    base = {"postcode6": None, "house_number": None, "insurer": "3311", "family_name": None, "initials": None,
            "birth_date": None, "sex": None}
    e = encode_identifiers(KEY_A, _frame([{**base, "insurance_number": "0123"}, {**base, "insurance_number": "123"}]))
    assert e["t_insurance"][0] != e["t_insurance"][1]


def test_house_number_addition_is_not_read_as_more_digits() -> None:
    base = {"postcode6": "1234AB", "insurer": None, "insurance_number": None, "family_name": None,
            "initials": None, "birth_date": None, "sex": None}
    e = encode_identifiers(KEY_A, _frame([{**base, "house_number": h} for h in ("12-2", "122", "12 2", "012-2")]))
    tokens = e["t_address"].to_list()
    assert tokens[0] != tokens[1]
    assert tokens[0] == tokens[2] == tokens[3]


def test_optional_name_columns_absent_give_missing_filters_and_other_fields_unchanged() -> None:
    # A contract-v1 or early-v2 frame has no given_name, street or city: those filters are missing,
    # and every other encoding is what it would be with the columns present.
    row = {"postcode6": "1234AB", "house_number": "12", "insurer": "3311", "insurance_number": "123456789",
           "family_name": "Jansen", "initials": "JP", "birth_date": dt.date(1950, 1, 2), "sex": "F"}
    without = encode_identifiers(KEY_A, _frame([row]).drop("given_name", "street", "city"))
    full = encode_identifiers(KEY_A, _frame([{**row, "given_name": "Jan", "street": "Dorpsstraat", "city": "Ede"}]))
    for f in ("bf_given_name", "bf_street", "bf_city"):
        assert not without[f"{f}_present"][0] and not without[f].any()
        assert full[f"{f}_present"][0]
    for f in (*TOKEN_FIELDS, "bf_family_name", "bf_initials"):
        assert np.array_equal(np.asarray(without[f][0]), np.asarray(full[f][0])), f


def test_given_name_street_and_city_compare_without_case_accents_or_separators() -> None:
    spellings = [("Anne-Marie", "1e Jan Steenstraat", "'s-Hertogenbosch"),
                 ("anne marie", "1E JAN STEENSTRAAT", "s Hertogenbosch"),
                 ("Anne-Marié", "1e Jan  Steenstraat", "'S-HERTOGENBOSCH")]
    e = encode_identifiers(KEY_A, _frame([{"postcode6": None, "house_number": None, "insurer": None,
                                           "insurance_number": None, "family_name": None, "initials": None,
                                           "given_name": g, "street": s, "city": c, "birth_date": None, "sex": None}
                                          for g, s, c in spellings]))
    for f in ("bf_given_name", "bf_street", "bf_city"):
        assert all(np.array_equal(e[f][0], row) for row in e[f]), f
    # Fields are keyed apart: the same text gives other filters in another field.
    same = encode_identifiers(KEY_A, _frame([{"postcode6": None, "house_number": None, "insurer": None,
                                              "insurance_number": None, "family_name": "Ede", "initials": None,
                                              "given_name": "Ede", "street": "Ede", "city": "Ede",
                                              "birth_date": None, "sex": None}]))
    rows = [same[f][0].tobytes() for f in ("bf_family_name", "bf_given_name", "bf_street", "bf_city")]
    assert len(set(rows)) == 4


def test_encodings_written_before_the_optional_name_fields_read_them_as_missing() -> None:
    from pseudonymisation.comparison import encoded_from_table, encodings_table
    from pseudonymisation.errors import PseudonymisationError

    row = {"postcode6": "1234AB", "house_number": "12", "insurer": "3311", "insurance_number": "123456789",
           "family_name": "Jansen", "initials": "JP", "given_name": "Jan", "street": "Dorpsstraat", "city": "Ede",
           "birth_date": dt.date(1950, 1, 2), "sex": "F"}
    table = encodings_table(np.array([7], np.int64), encode_identifiers(KEY_A, _frame([row])))
    old = encoded_from_table(table.drop_columns(["bf_given_name", "bf_street", "bf_city"]), "old")
    for f in ("bf_given_name", "bf_street", "bf_city"):
        assert not old.present[f].any() and not old.blooms[f].any()
    assert old.present["bf_family_name"].all()
    # The supplier leaves them out itself when it has none to encode.
    none = encodings_table(np.array([7], np.int64), encode_identifiers(KEY_A, _frame([{**row, "street": None}])))
    assert "bf_street" not in none.column_names and "bf_city" in none.column_names
    # Any other shape is still refused, by column name.
    with pytest.raises(PseudonymisationError, match="odd: expected exactly the columns"):
        encoded_from_table(table.drop_columns(["bf_initials"]), "odd")


@given(p=person, linkage=st.sampled_from(["2026-q4", "2027-q1", "study.7"]))
def test_encodings_of_two_linkages_under_one_network_key_are_incomparable(p: dict, linkage: str) -> None:
    # Key rotation per linkage: the same person, the same K_net, another linkage label: nothing equal.
    network = Key("network", bytes(range(32)))
    standing = encode_identifiers(fallback_keys(network), _frame([p]))
    this = encode_identifiers(fallback_keys(network, linkage), _frame([p]))
    again = encode_identifiers(fallback_keys(network, linkage), _frame([p]))
    other = encode_identifiers(fallback_keys(network, linkage + "b"), _frame([p]))
    for f in TOKEN_FIELDS:
        assert this[f][0] == again[f][0]
        assert len({standing[f][0], this[f][0], other[f][0]}) == 3
    for f in BLOOM_FIELDS:
        assert np.array_equal(this[f][0], again[f][0])
        if this[f"{f}_present"][0]:
            assert not np.array_equal(this[f][0], other[f][0])
            assert not np.array_equal(this[f][0], standing[f][0])


@pytest.mark.parametrize("label", ["", " ", "../x", "a" * 65, "2026 q4", "-a", "2026-q4\n"])
def test_a_malformed_linkage_label_is_refused_naming_the_setting(label: str) -> None:
    network = Key("network", bytes(range(32)))
    if not label:  # empty: the standing sub-keys, not an error
        assert fallback_keys(network, label).tokens["t_birth"].id == fallback_keys(network).tokens["t_birth"].id
        return
    with pytest.raises(PseudonymisationError, match="^linkage: expected a label"):
        fallback_keys(network, label)


@pytest.mark.parametrize("token", [pa.array(["7"]), pa.array([None], pa.int64())], ids=["text", "null"])
def test_encodings_whose_token_column_is_no_64_bit_token_are_refused_by_name(token) -> None:
    # A token column of text or with a null read as garbage tokens (a null became -2^63) or failed
    # as an internal error; refused like every other column, naming the column, not a value.
    from pseudonymisation.comparison import encoded_from_table, encodings_table

    row = {"postcode6": "1234AB", "house_number": "12", "insurer": "3311", "insurance_number": "123456789",
           "family_name": "Jansen", "initials": "JP", "given_name": "Jan", "street": "Dorpsstraat", "city": "Ede",
           "birth_date": dt.date(1950, 1, 2), "sex": "F"}
    table = encodings_table(np.array([7], np.int64), encode_identifiers(KEY_A, _frame([row])))
    with pytest.raises(PseudonymisationError, match="odd: column token is not a column of 64-bit tokens"):
        encoded_from_table(table.set_column(0, "token", token), "odd")


@given(people=st.lists(st.one_of(person, st.none()), min_size=1, max_size=12),
       order=st.randoms(use_true_random=False))
def test_a_batch_encodes_each_row_as_that_row_alone(people: list[dict | None], order) -> None:
    """Rows of a batch get the encodings each would get alone, whatever their neighbours: repeated
    names, spelling variants of one name, missing names (the batch encodes each distinct name once)."""
    rows = [p if p is not None else {**(people[0] or {}), "family_name": None, "city": "Den Haag"} for p in people]
    rows = [r for r in rows if "postcode6" in r] or [dict(zip(["postcode6", "house_number", "insurer",
                                                               "insurance_number", "family_name", "initials",
                                                               "birth_date", "sex"],
                                                              ["1234AB", "1", "0101", "123456789", None, "J",
                                                               dt.date(1970, 1, 1), "F"], strict=True))]
    rows = rows + [{**r, "family_name": (r["family_name"] or "").upper() + "  "} for r in rows]  # variants
    order.shuffle(rows)
    batch = encode_identifiers(KEY_A, _frame(rows))
    for i, row in enumerate(rows):
        alone = encode_identifiers(KEY_A, _frame([row]))
        for f in TOKEN_FIELDS:
            assert batch[f][i] == alone[f][0]
        for f in BLOOM_FIELDS:
            assert np.array_equal(batch[f][i], alone[f][0]), f
            assert batch[f"{f}_present"][i] == alone[f"{f}_present"][0], f
