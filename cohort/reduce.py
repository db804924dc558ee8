"""Uniting the partial tables of a study run as K partitions of its persons (issue 14).

Each partition (``cohort.partitioned``) runs the study's own code on the records of its persons
and gives *partial* tables: counts with their keys, over the partition's persons only. A person is
in one partition only, so every person count and every event count is the sum of the partitions'
counts, cell by cell. What is not a sum is computed here once, after the sums, by the same code
the unpartitioned study uses:

- the grid of a stratified table is the union of the partitions' grids (a stratum is in the table
  when some study person is in it);
- the top lists (method.md section 6) are ranked on the summed contacts, and only then are the
  shares computed and the persons of the groups kept (:func:`cohort.study.top_ranked`);
- shares and percentage-point changes (``care_use_change``) are computed from the summed counts,
  never summed themselves;
- costs: sums, and the two largest contributions of the union (:func:`cohort.costs.merge_cost_tables`);
- the persons behind each count are the union of the partitions' sets, in the order of the
  unpartitioned run, united on disk (:mod:`cohort.unite`; in memory: :meth:`cohort.members.Members.merged`).

The result is the unpartitioned study's tables row for row, with the same types and order: the
files written from them are byte-identical (tests/integration/test_partitioned_study.py).
"""

from __future__ import annotations

import polars as pl

from cohort import members as who
from cohort.config import StudyConfig
from cohort.costs import merge_cost_tables
from cohort.index_study import COHORT_TABLE, sort_cohort_table
from cohort.schema import Study
from cohort.study import _change, _sorted, top_ranked

__all__ = ["additive", "reduce_index_study", "reduce_study"]


def additive(frames: list[pl.DataFrame], keys: list[str], counts: list[str]) -> pl.DataFrame:
    """The cell-by-cell sum of ``counts`` over ``frames`` (cells keyed by ``keys``, nulls included).

    Cells keep the order in which they first appear: the order of the first partition's rows
    when every partition has the same grid (a grid the study's settings fix).
    """
    columns = frames[0].columns
    return pl.concat(frames).group_by(keys, maintain_order=True).agg(pl.col(c).sum() for c in counts).select(columns)


def _all(parts: list[dict[str, pl.DataFrame]], name: str) -> list[pl.DataFrame]:
    return [p[name] for p in parts]


# The partial tables of a prevalence study (cohort.study with partial=True, and the outcomes of
# cohort.prevalence_windows): anything else has no rule here, and fails rather than vanish.
_PREVALENCE_PARTS = {"attrition", "prevalence", "care_use", "care_use_change", "referrals", "top_groups", "top_totals",
                     "acsc", "costs", "contact_bands", "fallback_links"}


def reduce_study(parts: list[dict[str, pl.DataFrame]], members: who.Members, config: StudyConfig,
                 chain: tuple[str, ...]) -> who.StudyTables:
    """The tables of ``cohort.study.run_study`` from its partitions' partial tables and united members."""
    strata = list(config.strata)
    summed = {
        "attrition": additive(_all(parts, "attrition"), ["year", "condition", "step"], ["before", "excluded", "after"]),
        "prevalence": additive(_all(parts, "prevalence"), ["year", "condition", *strata], ["numerator", "denominator"]),
        "care_use": additive(_all(parts, "care_use"), ["year", "condition", "discipline", *strata], ["n", "N"]),
        "referrals": additive(_all(parts, "referrals"), ["year", "condition"], ["n", "N"]),
    }
    tables = who.StudyTables({name: _sorted(frame, name, strata, chain) for name, frame in summed.items()})
    groups = additive(_all(parts, "top_groups"), ["year", "discipline", "group"], ["contacts", "persons"])
    totals = additive(_all(parts, "top_totals"), ["year", "discipline"], ["total_contacts"])
    tables["top"] = _sorted(top_ranked(groups, totals, config.top_n), "top", strata, chain)
    unknown = set(parts[0]) - _PREVALENCE_PARTS
    if unknown:
        msg = f"partitioned study: no rule unites the partitions' {', '.join(sorted(unknown))} tables"
        raise ValueError(msg)
    if "fallback_links" in parts[0]:  # study persons linked by the TTP's fallback, per year
        tables["fallback_links"] = additive(_all(parts, "fallback_links"), ["year"], ["persons"])
    if "contact_bands" in parts[0]:  # cohort.prevalence_windows: bands of contacts in a window
        tables["contact_bands"] = additive(_all(parts, "contact_bands"), ["year", "condition", "discipline", "band"],
                                           ["persons", "N"])
    if "costs" in parts[0]:  # the seed engine's costs, or those of a window (cohort.prevalence_windows)
        tables["costs"] = _sorted(merge_cost_tables(_all(parts, "costs"), ["year", "condition", *strata]), "costs",
                                  strata, chain)
    tables["care_use_change"] = _change(tables["care_use"], config.reference_years, strata)
    tables["acsc"] = additive(_all(parts, "acsc"), ["year"], ["admissions", "persons"])
    # Each partition kept the persons of all its groups: the top list is known only now.
    members.restrict("top", tables["top"].select("year", "discipline", "group"))
    # The tables in the order the unpartitioned study gives them (the partitions' order, with the
    # top list where its pre-rank counts were): the study's manifest lists them in that order.
    order = ["top" if name == "top_groups" else name for name in parts[0] if name != "top_totals"]
    tables = who.StudyTables({name: tables[name] for name in [*order, *(n for n in tables if n not in order)]})
    tables.members = members
    return tables


def reduce_index_study(parts: list[dict[str, pl.DataFrame]], members: who.Members, study: Study) -> who.StudyTables:
    """The tables of ``cohort.index_study.run_index_study`` from its partitions' tables and united members."""
    strata = list(study.strata)
    cohort_table = COHORT_TABLE[study.cohort_type]
    tables = who.StudyTables()
    for name in parts[0]:
        frames = _all(parts, name)
        if name == "attrition":
            tables[name] = additive(frames, ["year", "condition", "step"], ["before", "excluded", "after"])
        elif name == cohort_table:
            tables[name] = sort_cohort_table(additive(frames, ["year", "condition", *strata],
                                                      ["numerator", "denominator"]), study)
        elif name == "care_use":
            tables[name] = additive(frames, ["year", "condition", "discipline", *strata], ["n", "N"]).sort(
                "year", "condition", "discipline", *strata)
        elif name == "contact_bands":
            tables[name] = additive(frames, ["year", "condition", "discipline", "band"], ["persons", "N"])
        elif name == "costs":
            tables[name] = merge_cost_tables(frames, ["year", "condition", *strata])
        elif name == "care_use_change":
            tables[name] = _change(tables["care_use"], study.years, strata)
        elif name == "fallback_links":  # study persons linked by the TTP's fallback, per year
            tables[name] = additive(frames, ["year"], ["persons"])
        elif name in ("referrals", "acsc"):  # outcomes_care: counts per year (and condition)
            keys = ["year", "condition"] if name == "referrals" else ["year"]
            tables[name] = additive(frames, keys, [c for c in frames[0].columns if c not in keys])
        elif name == "top_groups":  # ranked after the sums, in the place the study gives it
            groups = additive(frames, ["year", "discipline", "group"], ["contacts", "persons"])
            totals = additive(_all(parts, "top_totals"), ["year", "discipline"], ["total_contacts"])
            tables["top"] = top_ranked(groups, totals, study.outcome("top").n)
            members.restrict("top", tables["top"].select("year", "discipline", "group"))
        elif name == "top_totals":
            continue
        else:
            msg = f"partitioned study: no rule unites the partitions' {name} tables"
            raise ValueError(msg)
    tables.members = members
    return tables
