"""The relations a study's definitions imply (release/semantics.py, issue 11 item 2)."""

from __future__ import annotations

from release.semantics import contains, domain_relations

BANDS = {"0-17": [0, 17], "18-64": [18, 64], "65-79": [65, 79], "80+": [80, None]}
DIABETES = {"min_age": None, "all_cause": False,
            "sources": [["icpc", "", "T90", 0], ["claims", "MSZ", "0313:221", 2]]}
# The diabetes definition plus everyone aged 95+ (issue 11, item 3's catalogue entry).
DIABETES_95 = {"min_age": 95, "all_cause": False, "sources": DIABETES["sources"]}
FRAIL = {"min_age": 80, "all_cause": True, "sources": [["icpc", "", "P70", 0]]}


def test_contains_a_widened_definition_holds_the_narrow_one_not_the_reverse() -> None:
    assert contains(DIABETES_95, DIABETES)
    assert not contains(DIABETES, DIABETES_95)  # the age rule finds persons diabetes does not


def test_contains_a_shorter_claims_lookback_does_not_contain_a_longer_one() -> None:
    shorter = {**DIABETES, "sources": [["icpc", "", "T90", 0], ["claims", "MSZ", "0313:221", 1]]}
    assert contains(DIABETES, shorter)
    assert not contains(shorter, DIABETES)


def test_contains_an_age_rule_is_covered_by_a_younger_age_rule_only() -> None:
    assert contains({**FRAIL, "sources": []}, {"min_age": 95, "sources": []})
    assert not contains({"min_age": 95, "sources": []}, {"min_age": 80, "sources": []})


def _definitions(**conditions: dict) -> dict:
    care = {name: {"HA": "all-cause" if c.get("all_cause") else "specific", "HAP": "all-cause"}
            for name, c in conditions.items()}
    return {"age_bands": BANDS, "conditions": conditions, "care": care}


def test_age_rule_equates_prevalent_of_80_plus_with_the_population_only_when_stratified_by_age() -> None:
    definitions = _definitions(frail_elderly=FRAIL, diabetes=DIABETES)
    levels = {"age_band": tuple(BANDS), "sex": ("F", "M")}
    rules = domain_relations(definitions, ("age_band", "sex"), levels, ("frail_elderly", "diabetes"))
    equal = [r for r in rules if r["type"] == "equal"]
    assert equal == [{"type": "equal", "left": "prevalent", "where": {"condition": "frail_elderly", "age_band": ["80+"]},
                      "except": {}, "right": "population", "drop": ["condition"]}]
    # All-cause GP and out-of-hours care of the frail elderly of 80+ holds the diabetics' care there.
    care = [r for r in rules if r["type"] == "part_of" and r["where"].get("condition") == "diabetes"]
    assert care and care[0]["where"]["discipline"] == ["HA", "HAP"] and care[0]["set"] == {"condition": "frail_elderly"}
    assert not [r for r in domain_relations(definitions, ("sex",), {"sex": ("F", "M")},
                                            ("frail_elderly", "diabetes")) if r["type"] == "equal"]


def test_a_containing_condition_relates_prevalence_attrition_referrals_and_care() -> None:
    definitions = _definitions(diabetes=DIABETES, diabetes_95=DIABETES_95)
    rules = domain_relations(definitions, (), {}, ("diabetes", "diabetes_95"))
    parts = {r["part"] for r in rules if r["where"].get("condition") == "diabetes" and r["set"] == {"condition": "diabetes_95"}}
    assert parts == {"prevalent", "referral_base", "referred", "care_use", "attrition_before", "attrition_excluded",
                     "attrition_after"}
    assert not [r for r in rules if r["where"].get("condition") == "diabetes_95"]
