"""Study folders written by hand: the pre-disclosure tables of ``pfl-study`` for small examples.

One condition ``c`` in one year, prevalence by any strata. By default everything else is chosen
so that it adds no primary of its own: nobody in the cohort uses care (n = 0, so N - n = N),
every practice delivers referrals (referral base = the cohort) and nobody is referred, nobody is
excluded (the attrition chains are the population and the cohort throughout), no top list, no
ACSC admissions. ``care``, ``referred`` and ``referral_base`` give care use and referrals. The population of
each stratum is its cohort plus ``rest`` (default 1000) persons, so complements are never small.

The persons behind the counts (``persons/``, :mod:`cohort.members`) are numbered stratum by stratum
in the order of ``numerators``: a stratum's cohort first (its care users first), then its rest.
``persons_of`` takes them from another study folder instead, its strata not in this one united
(the same population counted by fewer strata).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from cohort.config import STRATA
from cohort.members import FOLDER, Members, keys_of, write_members

__all__ = ["write_study"]

_RULES = ("base", "X1", "X2", "X3", "X4", "X5", "X6", "X7")


def write_study(
    path: Path,
    numerators: Mapping[tuple[str, ...], int] | Sequence[int],
    *,
    strata: Mapping[str, Sequence[str]] | None = None,
    rest: int = 1000,
    year: int = 2019,
    condition: str = "c",
    project: str = "spec",
    care: Mapping[tuple[str, ...], int] | None = None,
    referred: int = 0,
    referral_base: int | None = None,
    population: str = "spec-population",
    definitions: Mapping | None = None,
    costs: Mapping[tuple[str, ...], Sequence[int]] | None = None,
    persons_of: Path | None = None,
) -> Path:
    """Write a study folder whose cohort of ``condition`` has ``numerators`` per stratum.

    Args:
        path: the folder to create.
        numerators: cohort size per combination of levels (in the order of ``strata``); a plain
            list for one stratum means its levels in order.
        strata: stratum name -> levels (``age_band``, ``sex``, ``region``); none for a single cell.
        rest: persons per stratum without the condition.
        year: the reference year.
        condition: the condition's name.
        project: the project named in the manifest.
        care: persons of the cohort with a GP contact (discipline HA) per stratum (default none).
        referred: persons referred, of ``referral_base`` (default: the whole cohort) persons.
        population: the population named in the manifest (a ledger holds one population).
        definitions: the manifest's ``definitions`` (default: ``condition`` found by one ICPC code,
            no age rule, GP care condition-specific).
        costs: claimed MSZ costs per stratum (keys as ``numerators``): each person's contribution
            in cents; given, the folder has a ``costs.parquet`` (``cohort.costs``).
        persons_of: a study folder whose persons to keep (its other strata united).
    """
    strata = dict(strata or {})
    names = list(strata)
    if not isinstance(numerators, Mapping):
        (levels,) = strata.values() if strata else ([()],)
        numerators = {(lvl,) if strata else (): int(v) for lvl, v in zip(levels, numerators, strict=True)}
    order = [s for s in STRATA if s in strata]
    care = care or {}
    rows = [{**dict(zip(names, key, strict=True)), "numerator": int(v), "n": int(care.get(key, 0))}
            for key, v in numerators.items()]
    base = pl.DataFrame(rows, schema={**{s: pl.String for s in names}, "numerator": pl.Int64, "n": pl.Int64}
                        ).select(*order, "numerator", "n")
    total = int(base["numerator"].sum())
    persons = total + rest * max(base.height, 1)
    path.mkdir(parents=True)
    coords = [pl.lit(year, pl.Int64).alias("year"), pl.lit(condition).alias("condition")]
    base.select(*coords, *order, "numerator", (pl.col("numerator") + rest).alias("denominator")).write_parquet(
        path / "prevalence.parquet")
    base.select(*coords, pl.lit("HA").alias("discipline"), *order, "n",
                pl.col("numerator").alias("N")).write_parquet(path / "care_use.parquet")
    pl.DataFrame(schema={"condition": pl.String, "discipline": pl.String, **{s: pl.String for s in order},
                         "year_from": pl.Int64, "year_to": pl.Int64, "share_from": pl.Float64,
                         "share_to": pl.Float64, "change_pp": pl.Float64}).write_parquet(path / "care_use_change.parquet")
    pl.DataFrame({"year": [year], "condition": [condition], "n": [referred],
                  "N": [total if referral_base is None else referral_base]},
                 schema={"year": pl.Int64, "condition": pl.String, "n": pl.Int64, "N": pl.Int64}
                 ).write_parquet(path / "referrals.parquet")
    attrition = [(year, who, step, size, 0, size) for who, size in (("all", persons), (condition, total))
                 for step in _RULES]
    pl.DataFrame(attrition, orient="row", schema={"year": pl.Int64, "condition": pl.String, "step": pl.String,
                                                  "before": pl.Int64, "excluded": pl.Int64, "after": pl.Int64}
                 ).write_parquet(path / "attrition.parquet")
    pl.DataFrame(schema={"year": pl.Int64, "discipline": pl.String, "rank": pl.Int64, "group": pl.String,
                         "contacts": pl.Int64, "share": pl.Float64, "persons": pl.Int64,
                         "total_contacts": pl.Int64}).write_parquet(path / "top.parquet")
    pl.DataFrame(schema={"year": pl.Int64, "admissions": pl.Int64, "persons": pl.Int64}).write_parquet(
        path / "acsc.parquet")
    if persons_of is not None:
        _copy_persons(Path(persons_of), path, order)
    else:
        _write_persons(path, base, order, rest=rest, year=year, condition=condition, referred=referred,
                       referral_base=referral_base, payers={k: len(v) for k, v in (costs or {}).items()},
                       names=names)
    if costs is not None:
        _write_costs(path, costs, names, order, year, condition)
    default_definitions = {
        "age_bands": {"0-17": [0, 17], "18-64": [18, 64], "65-79": [65, 79], "80+": [80, None]},
        "conditions": {condition: {"min_age": None, "all_cause": False, "sources": [["icpc", "", "T90", 0]]}},
        "care": {condition: {"HA": "specific"}}}
    if costs is not None:
        default_definitions["costs"] = {"sectors": ["MSZ"], "scope": "all-cause"}
    (path / "manifest.json").write_text(json.dumps({
        "status": "pre-disclosure aggregates: NOT releasable; run disclosure control first",
        "study": "spec_example", "study_config_sha256": "0" * 64, "reference_years": [year],
        "conditions": [condition], "project": project, "project_key_id": "00000000",
        "population": population,
        "definitions": dict(definitions) if definitions is not None else default_definitions,
    }))
    return path


def _write_costs(path: Path, costs: Mapping[tuple[str, ...], Sequence[int]], names: list[str], order: list[str],
                 year: int, condition: str) -> None:
    rows = []
    for key, cents in costs.items():
        top = sorted(cents, reverse=True) + [0, 0]
        rows.append({**dict(zip(names, key, strict=True)), "persons": len(cents), "total_cents": sum(cents),
                     "mean": sum(cents) / len(cents) / 100 if cents else None, "largest_cents": top[0],
                     "second_cents": top[1]})
    schema = {**{s: pl.String for s in names}, "persons": pl.Int64, "total_cents": pl.Int64, "mean": pl.Float64,
              "largest_cents": pl.Int64, "second_cents": pl.Int64}
    pl.DataFrame(rows, schema=schema).select(
        pl.lit(year, pl.Int64).alias("year"), pl.lit(condition).alias("condition"), pl.lit("MSZ").alias("sector"),
        *order, "persons", "total_cents", "mean", "largest_cents", "second_cents").write_parquet(path / "costs.parquet")
def _write_persons(path: Path, base: pl.DataFrame, order: list[str], *, rest: int, year: int, condition: str,
                   referred: int, referral_base: int | None, payers: Mapping[tuple[str, ...], int],
                   names: list[str]) -> None:
    members = Members(order)
    start, cohort, care, population, paid = 0, [], [], [], []
    for row in base.iter_rows(named=True):
        strata = {s: row[s] for s in order}
        v = row["numerator"]
        block = [{**strata, "person": start + i} for i in range(v + rest)]
        cohort += block[:v]
        care += block[:row["n"]]
        # the persons with a cost (costs=): the first of the stratum's cohort
        paid += block[:payers.get(tuple(row[s] for s in names), 0)]
        population += block
        start += v + rest
    schema = {**{s: pl.String for s in order}, "person": pl.Int64}

    def frame(rows: list[dict], **fixed: object) -> pl.DataFrame:
        return pl.DataFrame(rows, schema=schema).with_columns(pl.lit(v).alias(k) for k, v in fixed.items())

    members.add("prevalence", "numerator", frame(cohort, year=year, condition=condition))
    members.add("prevalence", "denominator", frame(population, year=year))
    members.add("care_use", "n", frame(care, year=year, condition=condition, discipline="HA"))
    members.add("care_use", "N", frame(cohort, year=year, condition=condition))
    if payers:
        members.add("costs", "persons", frame(paid, year=year, condition=condition, sector="MSZ"))
    base_rows = cohort[:len(cohort) if referral_base is None else referral_base]
    members.add("referrals", "N", frame(base_rows, year=year, condition=condition))
    members.add("referrals", "n", frame(base_rows[:referred], year=year, condition=condition))
    for who, rows in (("all", population), (condition, cohort)):
        for step in _RULES:
            for column in ("before", "after"):
                members.add("attrition", column, frame(rows, year=year, condition=who, step=step))
    write_members(members, path)


def _copy_persons(source: Path, path: Path, order: list[str]) -> None:
    """The persons of another study folder, the strata this one lacks united."""
    (path / FOLDER).mkdir()
    for table_file in sorted((source / FOLDER).glob("*.parquet")):
        frame = pl.read_parquet(table_file)
        table = table_file.stem
        keys = [k for k in keys_of(table, order)]
        frame.select(*keys, "column", "person").unique().sort([*keys, "column", "person"], nulls_last=True
                                                               ).write_parquet(path / FOLDER / table_file.name)
