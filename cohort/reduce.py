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

__all__ = ["CELLS", "COST_KEYS", "additive", "cells", "cost_keys", "reduce_index_study", "reduce_study"]

_STRATA = "*"  # the study's strata stand here, in order (as in cohort.members.KEYS)
#: Each summed partial table: the keys of its cells and its count columns (one definition for
#: both reducers). The cohort table is ``prevalence``, ``incidence`` or ``index_cohort``. A table
#: whose cells are those of its person sets takes them from :mod:`cohort.members` (one definition);
#: event counts (admissions, contacts) have no members and are added here.
CELLS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    **{table: (who.KEYS[table], who.COLUMNS[table])
       for table in ("attrition", "prevalence", "incidence", "index_cohort", "care_use", "referrals",
                     "fallback_links")},
    "acsc": (who.KEYS["acsc"], ("admissions", *who.COLUMNS["acsc"])),
    # Summed without strata columns (the members frame carries them as null: the Total band).
    "contact_bands": (("year", "condition", "discipline", "band"), ("persons", "N")),
    "top_groups": (who.KEYS["top"], ("contacts", *who.COLUMNS["top"])),
    "top_totals": (("year", "discipline"), ("total_contacts",)),
}
#: The cells of the costs table (not a sum: :func:`cohort.costs.merge_cost_tables`).
COST_KEYS = ("year", "condition", _STRATA)


def _with_strata(keys: tuple[str, ...], strata: list[str] | tuple[str, ...]) -> list[str]:
    return [k for key in keys for k in (list(strata) if key == _STRATA else [key])]


def cells(name: str, strata: list[str] | tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The keys (strata in place) and the count columns of the summed partial table ``name``."""
    keys, counts = CELLS[name]
    return _with_strata(keys, strata), list(counts)


def cost_keys(strata: list[str] | tuple[str, ...]) -> list[str]:
    """The cell keys of the costs table, strata in place."""
    return _with_strata(COST_KEYS, strata)


def additive(frames: list[pl.DataFrame], keys: list[str], counts: list[str]) -> pl.DataFrame:
    """The cell-by-cell sum of ``counts`` over ``frames`` (cells keyed by ``keys``, nulls included).

    Cells keep the order in which they first appear: the order of the first partition's rows
    when every partition has the same grid (a grid the study's settings fix).
    """
    columns = frames[0].columns
    return pl.concat(frames).group_by(keys, maintain_order=True).agg(pl.col(c).sum() for c in counts).select(columns)


def _all(parts: list[dict[str, pl.DataFrame]], name: str) -> list[pl.DataFrame]:
    return [p[name] for p in parts]


def _summed(parts: list[dict[str, pl.DataFrame]], name: str, strata: list[str]) -> pl.DataFrame:
    """The partitions' ``name`` tables summed cell by cell."""
    return additive(_all(parts, name), *cells(name, strata))


# The partial tables of a prevalence study (cohort.study with partial=True, and the outcomes of
# cohort.prevalence_windows): anything else has no rule here, and fails rather than vanish.
_PREVALENCE_PARTS = {"attrition", "prevalence", "care_use", "care_use_change", "referrals", "top_groups", "top_totals",
                     "acsc", "costs", "contact_bands", "fallback_links"}


def reduce_study(parts: list[dict[str, pl.DataFrame]], members: who.Members, config: StudyConfig,
                 chain: tuple[str, ...]) -> who.StudyTables:
    """The tables of ``cohort.study.run_study`` from its partitions' partial tables and united members."""
    strata = list(config.strata)
    tables = who.StudyTables({name: _sorted(_summed(parts, name, strata), name, strata, chain)
                              for name in ("attrition", "prevalence", "care_use", "referrals")})
    groups, totals = _summed(parts, "top_groups", strata), _summed(parts, "top_totals", strata)
    tables["top"] = _sorted(top_ranked(groups, totals, config.top_n), "top", strata, chain)
    unknown = set(parts[0]) - _PREVALENCE_PARTS
    if unknown:
        msg = f"partitioned study: no rule unites the partitions' {', '.join(sorted(unknown))} tables"
        raise ValueError(msg)
    if "fallback_links" in parts[0]:  # study persons linked by the TTP's fallback, per year
        tables["fallback_links"] = _summed(parts, "fallback_links", strata)
    if "contact_bands" in parts[0]:  # cohort.prevalence_windows: bands of contacts in a window
        tables["contact_bands"] = _summed(parts, "contact_bands", strata)
    if "costs" in parts[0]:  # the seed engine's costs, or those of a window (cohort.prevalence_windows)
        tables["costs"] = _sorted(merge_cost_tables(_all(parts, "costs"), cost_keys(strata)), "costs", strata, chain)
    tables["care_use_change"] = _change(tables["care_use"], config.reference_years, strata)
    tables["acsc"] = _summed(parts, "acsc", strata)
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
        if name == cohort_table:
            tables[name] = sort_cohort_table(_summed(parts, name, strata), study)
        elif name == "care_use":
            tables[name] = _summed(parts, name, strata).sort("year", "condition", "discipline", *strata)
        elif name in ("attrition", "contact_bands", "fallback_links", "referrals", "acsc"):
            tables[name] = _summed(parts, name, strata)
        elif name == "costs":
            tables[name] = merge_cost_tables(_all(parts, name), cost_keys(strata))
        elif name == "care_use_change":
            tables[name] = _change(tables["care_use"], study.years, strata)
        elif name == "top_groups":  # ranked after the sums, in the place the study gives it
            groups, totals = _summed(parts, name, strata), _summed(parts, "top_totals", strata)
            tables["top"] = top_ranked(groups, totals, study.outcome("top").n)
            members.restrict("top", tables["top"].select("year", "discipline", "group"))
        elif name == "top_totals":
            continue
        else:
            msg = f"partitioned study: no rule unites the partitions' {name} tables"
            raise ValueError(msg)
    tables.members = members
    return tables
