"""Condition catalogues: validated before any data is read, errors name the key (issue 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from extracts.codelists import load_catalogue, parse_catalogue
from extracts.errors import ConfigError

CONF = Path(__file__).resolve().parents[2] / "conf" / "conditions"


def _one(sub: dict, **condition: object) -> dict:
    return {"conditions": {"c": {"subconditions": {"s": sub}, **condition}}}


def test_seed_catalogue_has_the_nine_condition_groups_of_tabel_h1() -> None:
    catalogue = load_catalogue(CONF / "seed_study.yaml")
    assert len(catalogue.names) == 9
    assert catalogue["diabetes"].icpc == ("T90",)
    assert catalogue["frail_elderly"].min_age == 80 and catalogue["frail_elderly"].all_cause
    lookbacks = {s.name: s.lookback_years for s in catalogue["mental_health"].subconditions}
    assert lookbacks == {"anxiety_mood": 1, "personality": 2, "schizophrenia": 2}
    msz = catalogue["diabetes"].claims_codes("MSZ")
    assert ("0313", "221") in {(c.specialism, c.code) for c in msz}


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"conditions": {}}, "conditions"),
        ({"conditions": {"c": {"subconditions": {}}}}, "conditions.c.subconditions"),
        (_one({"icpc": [], "chronicity": "chronic"}), "conditions.c.subconditions.s.icpc"),
        (_one({"icpc": ["T9"], "chronicity": "chronic"}), "conditions.c.subconditions.s.icpc"),
        (_one({"icpc": ["T90"], "chronicity": "forever"}), "chronicity"),
        (_one({"icpc": ["T90"], "chronicity": "chronic", "claims": {"XYZ": ["1"]}}), "claims.XYZ"),
        (_one({"icpc": ["T90"], "chronicity": "chronic", "claims": {"SEH": ["S52"]}}), "claims.SEH"),
        (_one({"icpc": ["T90"], "chronicity": "chronic", "claims": {"FT": []}}), "claims.FT"),
        (_one({"icpc": ["T90"], "chronicity": "chronic", "claims": {"MSZ": ["221"]}}), "claims.MSZ"),
        (_one({"icpc": ["T90"], "chronicity": "chronic", "claims": {"MSZ": ["313:221"]}}), "claims.MSZ"),
    ],
)
def test_invalid_catalogue_fails_naming_the_key(raw: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_catalogue(raw)


def test_unknown_condition_names_the_known_ones() -> None:
    catalogue = load_catalogue(CONF / "seed_study.yaml")
    with pytest.raises(ConfigError, match="diabetes"):
        catalogue["diabetis"]


def test_codes_are_normalised_on_load() -> None:
    catalogue = parse_catalogue(_one({"icpc": [" t90 "], "chronicity": "chronic", "claims": {"DT": [" dm01"]}}))
    assert catalogue["c"].icpc == ("T90",)
    assert catalogue["c"].claims_codes("DT")[0].code == "DM01"
