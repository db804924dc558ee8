"""Record-level relations between releases (release.overlaps), on small hand-made person sets."""

from __future__ import annotations

import polars as pl
import pytest

from release.errors import LedgerRefusal
from release.model import Model
from release.overlaps import IMPLIED, relate


def key(condition: str) -> tuple:
    return "prevalent", (("condition", condition),)


def sets(model: Model, cells: dict[str, range | list[int]]) -> pl.DataFrame:
    """Register each prevalent[condition] cell (value = its size); its persons as (id, person)."""
    rows = []
    for name, persons in cells.items():
        i = model.add(key(name), len(persons))
        rows += [(i, p) for p in persons]
    return pl.DataFrame(rows, schema={"id": pl.Int64, "person": pl.Int64}, orient="row")


def implied(model: Model) -> dict[int, int]:
    return {i: model.values[i] for i, key in enumerate(model.keys) if key[0] == IMPLIED}


def test_equal_sets_under_other_names_are_one_quantity() -> None:
    model = Model()
    earlier = sets(model, {"diabetes": range(100)})
    now = sets(model, {"sugar": range(100)})
    found = relate(model, [earlier, now], threshold=10)
    assert found.relations["equal"] == 1
    assert model.find(model.index[key("sugar")]) == model.find(model.index[key("diabetes")])


def test_a_subset_with_a_small_difference_gives_an_implied_primary() -> None:
    model = Model()
    earlier = sets(model, {"diabetes": range(100)})
    now = sets(model, {"diabetes_95": [*range(100), 500, 501, 502]})
    found = relate(model, [earlier, now], threshold=10)
    assert found.relations["subset"] == 1 and found.implied_small == 1
    (d, value), = implied(model).items()
    assert value == 3
    assert (model.index[key("diabetes_95")], (model.index[key("diabetes")], d)) in model.equations


def test_near_equal_sets_give_their_intersection_and_both_small_remainders() -> None:
    model = Model()
    earlier = sets(model, {"a": range(50)})
    now = sets(model, {"b": [*range(2, 50), 900, 901, 902]})  # 2 only in a, 3 only in b
    found = relate(model, [earlier, now], threshold=10)
    assert found.relations["near-equal"] == 1
    assert sorted(implied(model).values()) == [2, 3, 48]


def test_a_large_difference_and_cells_released_together_are_not_related() -> None:
    model = Model()
    earlier = sets(model, {"all": range(1000), "most": range(995)})  # shown together: that release's business
    now = sets(model, {"other": range(500), "most": range(995)})  # a subset of "all" by 500: no small cell
    found = relate(model, [earlier, now], threshold=10)
    assert found.relations == {"equal": 0, "subset": 0, "near-equal": 0} and found.implied == 0


def test_cells_of_different_quantities_are_related_by_name_only() -> None:
    model = Model()
    i = model.add(("contact_persons", (("group", "R55"),)), 10)
    earlier = pl.DataFrame({"id": [i] * 10, "person": list(range(10))})
    now = sets(model, {"diabetes": [3]})  # one person of the top-list group: a chance overlap
    found = relate(model, [earlier, now], threshold=10)
    assert found.implied == 0


def test_an_implied_set_equal_to_a_cell_is_that_cell() -> None:
    model = Model()
    earlier = sets(model, {"diabetes": range(100), "old_only": [500, 501]})
    now = sets(model, {"diabetes_95": [*range(100), 500, 501]})
    relate(model, [earlier, now], threshold=10)
    assert implied(model) == {}  # the difference is the earlier cell of the two old persons
    assert (model.index[key("diabetes_95")], (model.index[key("diabetes")], model.index[key("old_only")])) \
        in model.equations


def test_one_name_counting_other_persons_is_refused() -> None:
    model = Model()
    earlier = sets(model, {"diabetes": range(100)})
    now = pl.DataFrame({"id": [model.index[key("diabetes")]] * 100, "person": list(range(1, 101))})
    with pytest.raises(LedgerRefusal, match="count other persons than under the same name"):
        relate(model, [earlier, now], threshold=10)


def test_top_list_groups_and_acsc_persons_are_related_with_their_own_quantity() -> None:
    """Issue 11, item 3 (a): a top-list group or the ACSC persons over an overlapping cohort."""
    model = Model()
    rows = []
    for quantity, coords, persons in (
            ("contact_persons", (("discipline", "HA"), ("group", "T90"), ("year", "2021")), range(100)),
            ("acsc_persons", (("year", "2021"),), range(40)),
            ("contact_persons", (("discipline", "HA"), ("group", "T90"), ("year", "2022")), range(103)),
            ("acsc_persons", (("year", "2022"),), [*range(40), 900, 901])):
        i = model.add((quantity, coords), len(persons))
        rows.append(pl.DataFrame({"id": [i] * len(persons), "person": list(persons)}))
    found = relate(model, [pl.concat(rows[:2]), pl.concat(rows[2:])], threshold=10)
    assert found.relations["subset"] == 2 and found.implied_small == 2
    assert sorted(implied(model).values()) == [2, 3]


def complement_release(model: Model, year: str, population: list[int], prevalent: list[int]) -> pl.DataFrame:
    """One release's population N, prevalent n and its implied complement N - n (no set of its own)."""
    n_id = model.add(("population", (("year", year),)), len(population))
    p_id = model.add(("prevalent", (("condition", f"c{year}"), ("year", year))), len(prevalent))
    c_id = model.add(("not:prevalent", (("condition", f"c{year}"), ("year", year))), len(population) - len(prevalent),
                     kind="complement")
    model.equations.append((n_id, (p_id, c_id)))
    return pl.DataFrame({"id": [n_id] * len(population) + [p_id] * len(prevalent),
                         "person": [*population, *prevalent]})


def test_complements_of_two_releases_are_related_by_who_they_count() -> None:
    """Issue 11, item 3 (b): N and n differ by T or more, N - n by 3 persons: (N2 - n2) - (N1 - n1) = 3."""
    model = Model()
    first = complement_release(model, "2019", list(range(1000)), list(range(500)))
    second = complement_release(model, "2020", [*range(1000), *range(2000, 2023)], [*range(500), *range(2000, 2020)])
    found = relate(model, [first, second], threshold=10)
    assert found.relations["subset"] == 1 and found.implied_small == 1
    (d, value), = implied(model).items()
    assert value == 3
    c1, c2 = (model.index[("not:prevalent", (("condition", f"c{y}"), ("year", y)))] for y in ("2019", "2020"))
    assert (c2, (c1, d)) in model.equations
