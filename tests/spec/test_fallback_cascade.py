"""Spec tests of the TTP's matching cascade (issue 13, item 4; ``pseudonymisation/matching.py``).

Small tables of persons, encoded with a test key as the suppliers would; a fixed model (weights in
bits, as ``Model.summary`` prints them) so that each rule is tested on its own: cascade order,
threshold, ambiguity, one-to-one.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from pseudonymisation.comparison import FIELDS, MISSING, encodings_table, read_encodings
from pseudonymisation.encodings import encode_identifiers, fallback_keys
from pseudonymisation.keys import Key
from pseudonymisation.matching import FallbackSettings, Model, run_cascade

KEYS = fallback_keys(Key("network", bytes(range(32))))
D = dt.date
COLUMNS = ("family_name", "initials", "birth_date", "sex", "postcode6", "house_number", "insurer", "insurance_number")
#          family_name   initials birth date       sex  PC6       nr    insurer  insurance nr
CLAIMS = {
    101: ("Jansen", "J", D(1950, 1, 2), "F", "1234AB", "12", "3311", "111111111"),
    102: ("de Vries", "P", D(1960, 5, 5), "M", "2345CD", "3", "3311", "222222222"),
    103: ("Bakker", "K", D(1990, 3, 3), "F", "3456EF", "7", "3311", "333333333"),  # twin of 104
    104: ("Bakker", "K", D(1990, 3, 3), "F", "3456EF", "7", "3311", "444444444"),
    105: ("Smit", "A", D(1970, 8, 8), "M", "4567GH", "1", "0101", "555555555"),
    106: ("Visser", "M", D(1980, 2, 2), "F", "5678JK", "20", "0101", "666666666"),
    107: ("Mulder", "H", D(1945, 4, 4), "M", "6789LM", "5", "7029", "777777777"),
    108: ("Bos", "W", D(1946, 6, 6), "F", "7890NP", "9", "7029", "777777777"),  # same number: data error
}
# Weights in bits per field and level (token fields: disagree, agree, missing; Bloom fields: Dice
# < 0.70, < 0.85, < 0.95, >= 0.95, missing).
WEIGHTS = {"t_insurance": [-12, 17, 0], "t_birth": [-5, 15, 0], "t_address": [-3, 17, 0],
           "bf_family_name": [-13, -7, 1, 5, 0], "bf_initials": [-12, -12, -7, 5, 0],
           "bf_given_name": [-6, -3, 1, 5, 0], "bf_street": [-6, -3, 1, 5, 0], "bf_city": [-6, -3, 1, 5, 0]}


def _model() -> Model:
    w = np.zeros((len(FIELDS), 5))
    for j, f in enumerate(FIELDS):
        w[j, : MISSING[f] + 1] = WEIGHTS[f]
    return Model(m=2.0 ** w, u=np.ones_like(w), labelled_pairs=0, random_pairs=0)


def _encoded(tmp_path: Path, name: str, rows: dict[int, tuple]):
    frame = pl.DataFrame([dict(zip(COLUMNS, r, strict=True)) for r in rows.values()],
                         schema={c: (pl.Date if c == "birth_date" else pl.String) for c in COLUMNS})
    path = tmp_path / f"{name}.parquet"
    pq.write_table(encodings_table(np.array(list(rows), dtype=np.int64), encode_identifiers(KEYS, frame)), path)
    return read_encodings(path)


def _run(tmp_path: Path, queries: dict[int, tuple], settings: FallbackSettings | None = None) -> dict[int, tuple]:
    q, t = _encoded(tmp_path, "q", queries), _encoded(tmp_path, "t", CLAIMS)
    r = run_cascade(q, t, _model(), settings or FallbackSettings(threshold=18.0, margin=5.0))
    return {int(tok): (int(r.target[i]), r.method[i], r.reason[i]) for i, tok in enumerate(q.token)}


def test_cascade_insurance_number_comes_before_the_model(tmp_path: Path) -> None:
    # Birth date, address and name of 102, insurance number of 101: the insurance number decides.
    out = _run(tmp_path, {1: ("de Vries", "P", D(1960, 5, 5), "M", "2345CD", "3", "3311", "111111111")})
    assert out[1] == (101, "insurance_number", "")


def test_cascade_model_links_without_insurance_number(tmp_path: Path) -> None:
    out = _run(tmp_path, {1: ("de Vrles", "P", D(1960, 5, 5), "M", "2345CD", "3", None, None)})
    assert out[1] == (102, "probabilistic", "")


def test_cascade_threshold_from_settings_decides(tmp_path: Path) -> None:
    query = {1: ("de Vries", "P", D(1960, 5, 5), "M", "2345CD", "3", None, None)}
    assert _run(tmp_path, query, FallbackSettings(threshold=60.0, margin=5.0))[1] == (0, "", "below_threshold")


def test_cascade_birth_date_alone_stays_below_threshold(tmp_path: Path) -> None:
    out = _run(tmp_path, {1: ("Dekker", "R", D(1970, 8, 8), "M", "9999ZZ", "4", None, None)})
    assert out[1] == (0, "", "below_threshold")


def test_cascade_twins_indistinguishable_stay_unlinked_as_ambiguous(tmp_path: Path) -> None:
    out = _run(tmp_path, {1: ("Bakker", "K", D(1990, 3, 3), "F", "3456EF", "7", None, None)})
    assert out[1] == (0, "", "ambiguous")


def test_cascade_is_one_to_one_two_records_on_one_person_stay_unlinked(tmp_path: Path) -> None:
    same = ("Visser", "M", D(1980, 2, 2), "F", "5678JK", "20", None, None)
    out = _run(tmp_path, {1: same, 2: same})
    assert out[1] == out[2] == (0, "", "ambiguous_shared_candidate")


def test_cascade_one_to_one_keeps_the_clearly_stronger_record(tmp_path: Path) -> None:
    strong = ("Visser", "M", D(1980, 2, 2), "F", "5678JK", "20", None, None)
    weak = ("Visser", "M", D(1980, 2, 2), "F", "1111AA", "1", None, None)  # moved: address disagrees
    out = _run(tmp_path, {1: strong, 2: weak})
    assert out[1] == (106, "probabilistic", "")
    assert out[2] == (0, "", "ambiguous_shared_candidate")


def test_cascade_insurance_number_of_two_persons_is_ambiguous(tmp_path: Path) -> None:
    out = _run(tmp_path, {1: ("Mulder", "H", D(1945, 4, 4), "M", "6789LM", "5", "7029", "777777777")})
    assert out[1] == (0, "", "ambiguous_insurance_number")


@pytest.mark.parametrize("threshold", [float("nan"), float("inf")])
def test_cascade_settings_refuse_a_threshold_that_is_no_number(threshold: float) -> None:
    from pseudonymisation.errors import PseudonymisationError

    with pytest.raises(PseudonymisationError, match="fallback.threshold"):
        FallbackSettings(threshold=threshold)


def test_street_and_city_weigh_given_the_address_where_it_agrees() -> None:
    """A PC6 is one street in one place: where the keyed PC6 + house number agree, street and city
    weigh by their m and u given that agreement (household members share them: about no evidence),
    not again at full weight (which made household members, who share family name and address,
    score as one person); where the address disagrees (a move, a typo) they count in full."""
    base = _model()
    j = {f: i for i, f in enumerate(FIELDS)}
    m_address = np.ones_like(base.m)
    m_address[[j["bf_street"], j["bf_city"]], 3] = 0.9  # m = u given the address: weight 0
    model = Model(base.m, base.u, 0, 0, m_address=m_address, u_address=m_address.copy())
    household_member = np.array([[0, 0, 1, 3, 0, 1, 3, 3]])  # same name and address, other person
    without_street_city = household_member.copy()
    without_street_city[0, [j["bf_street"], j["bf_city"]]] = MISSING["bf_street"]
    assert model.score(household_member)[0] == model.score(without_street_city)[0]
    assert base.score(household_member)[0] == model.score(household_member)[0] + 10  # not estimated: full
    moved = np.array([[0, 1, 0, 3, 3, 3, 3, 3]])  # the person, after a move
    moved_without = moved.copy()
    moved_without[0, [j["bf_street"], j["bf_city"]]] = MISSING["bf_street"]
    assert model.score(moved)[0] == model.score(moved_without)[0] + WEIGHTS["bf_street"][3] + WEIGHTS["bf_city"][3]


def test_cascade_two_records_on_one_person_by_two_insurance_numbers_stay_unlinked(tmp_path: Path) -> None:
    """A person who switched insurers has a claims row per identifier set: two records without a
    usable BSN, each carrying one of that person's insurance numbers, are several records on one
    person (the module's rule): neither is linked by the insurance number (one-to-one)."""
    rows = [*CLAIMS.values(), ("Jansen", "J", D(1950, 1, 2), "F", "1234AB", "12", "0101", "999999999")]
    tokens = np.array([*CLAIMS, 101], dtype=np.int64)
    frame = pl.DataFrame([dict(zip(COLUMNS, r, strict=True)) for r in rows],
                         schema={c: (pl.Date if c == "birth_date" else pl.String) for c in COLUMNS})
    pq.write_table(encodings_table(tokens, encode_identifiers(KEYS, frame)), tmp_path / "t.parquet")
    t = read_encodings(tmp_path / "t.parquet")
    q = _encoded(tmp_path, "q", {1: ("Janssen", "J", None, None, None, None, "3311", "111111111"),
                                 2: ("Jansen", "J", None, None, None, None, "0101", "999999999")})
    r = run_cascade(q, t, _model(), FallbackSettings(threshold=18.0, margin=5.0))
    assert list(r.method) == ["", ""]
    assert list(r.reason) == ["ambiguous_insurance_number", "ambiguous_insurance_number"]


def test_too_few_labelled_records_to_split_give_no_precision_estimate(tmp_path: Path) -> None:
    """With labelled records in one half only, the model is estimated on all of them and nothing is
    left to estimate its precision on: no estimate, not one made on the records it learnt from."""
    from fallback_oracle import link_fallback

    t = _encoded(tmp_path, "t", CLAIMS)
    q = _encoded(tmp_path, "q", {900: CLAIMS[101], 1: ("de Vrles", "P", D(1960, 5, 5), "M", "2345CD", "3", None, None)})
    p1 = {tok: bytes([tok % 256]) * 16 for tok in CLAIMS}
    ehr_p1 = pl.DataFrame({"token": [900], "p1": [p1[101]]})
    claims_p1 = pl.DataFrame({"token": list(CLAIMS), "p1": [p1[tok] for tok in CLAIMS]})
    found = link_fallback(q, t, ehr_p1, claims_p1, FallbackSettings(threshold=18.0, margin=5.0))
    estimate = found.report["estimated_on_bsn_linked_records"]
    assert estimate["records"] == 0 and estimate["precision"] is None and estimate["recall"] is None


def test_fallback_report_counts_competing_records_and_equal_candidates_per_reason(tmp_path: Path) -> None:
    """Issue 13, item 4 through the TTP's fallback (the report ``ttp_report.json`` holds under
    ``fallback``): two EHR records on one claims person stay unlinked (``ambiguous_shared_candidate``);
    of two records on one person, the clearly stronger keeps it and the other stays unlinked with
    that reason; a record with two equally good candidates (twins) stays unlinked (``ambiguous``);
    each is counted per reason, with the model estimated on BSN-linked records."""
    from fallback_oracle import link_fallback

    claims, rng = dict(CLAIMS), np.random.default_rng(7)
    for i in range(400):  # persons linked by BSN: the model's labelled pairs
        name = "".join(rng.choice(list("abdeghiklmnoprstuvwz"), 7))
        claims[1000 + i] = (name.title(), "ABCDEFGH"[i % 8], D(1940 + i % 60, 1 + i % 12, 1 + i % 28), "MF"[i % 2],
                            f"{1000 + i}AB", str(1 + i % 50), "3311", str(100_000_000 + i))
    labelled = {2000 + i: claims[1000 + i] for i in range(400)}
    visser = ("Visser", "M", D(1980, 2, 2), "F", "5678JK", "20", None, None)
    queries = {1: visser, 2: visser,  # two records competing for 106, equally strong
               3: ("Bakker", "K", D(1990, 3, 3), "F", "3456EF", "7", None, None),  # twins 103 and 104
               4: ("Jansen", "J", D(1950, 1, 2), "F", "1234AB", "12", None, None),  # 101 ...
               5: (None, "J", D(1950, 1, 2), "F", "1234AB", "12", None, None)}  # ... and 101 without a name
    t, q = _encoded(tmp_path, "t", claims), _encoded(tmp_path, "q", {**labelled, **queries})
    p1 = {tok: tok.to_bytes(16, "big") for tok in claims}
    found = link_fallback(q, t, pl.DataFrame({"token": list(labelled), "p1": [p1[t - 1000] for t in labelled]}),
                          pl.DataFrame({"token": list(claims), "p1": list(p1.values())}), FallbackSettings())
    assert dict(zip(found.links["token"], found.links["claims_token"], strict=True)) == {4: 101}
    assert found.report["records"] == len(queries)
    assert found.report["linked_by_method"] == {"probabilistic": 1}
    assert found.report["unlinked_by_reason"] == {"ambiguous": 1, "ambiguous_shared_candidate": 3}


def test_encodings_of_several_row_groups_read_as_of_one(tmp_path: Path) -> None:
    """A register's encodings are read row group by row group (so that Ctrl-C stops the read
    between them): the same arrays as one read, Bloom fields not delivered all zero."""
    frame = pl.DataFrame([dict(zip(COLUMNS, r, strict=True)) for r in CLAIMS.values()],
                         schema={c: (pl.Date if c == "birth_date" else pl.String) for c in COLUMNS})
    table = encodings_table(np.array(list(CLAIMS), dtype=np.int64), encode_identifiers(KEYS, frame))
    pq.write_table(table, tmp_path / "one.parquet")
    pq.write_table(table, tmp_path / "groups.parquet", row_group_size=3)
    assert pq.ParquetFile(tmp_path / "groups.parquet").num_row_groups == 3
    one, groups = read_encodings(tmp_path / "one.parquet"), read_encodings(tmp_path / "groups.parquet")
    assert np.array_equal(one.token, groups.token) and np.array_equal(one.keys, groups.keys)
    for name in ("tokens", "present", "blooms"):
        mine, theirs = getattr(one, name), getattr(groups, name)
        assert mine.keys() == theirs.keys()
        assert all(np.array_equal(mine[f], theirs[f]) for f in mine), name
