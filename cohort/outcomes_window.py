"""Outcomes counted in a window per cohort record: contacts, contact bands and claimed costs.

The cohort is one row per (record, condition) with its window's first and last day (``lo``,
``hi``: from the reference year or the index date, ``cohort.windows``). Qualifying contacts are
those of method.md section 3 (HA and POH-GGZ contact types, MSZ ``poli``/``opname``, any claim of
the other sectors, any out-of-hours contact), dated; claims are netted units (method 9.4) of
linked records. All-cause or condition-specific as method section 3 and 9.10 (``cause: method``),
or all-cause throughout (``cause: all``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import polars as pl

from cohort.codes import CodeList
from cohort.members import Members
from cohort.outcomes import ALL_CAUSE_ALWAYS, HA_TYPES, POH_GGZ_TYPES
from cohort.outcomes_spec import Outcome
from cohort.population import Linked
from extracts.codes import icpc_base

__all__ = ["band_labels", "contact_bands", "contacts", "dated_events", "in_window", "is_all_cause"]

_COUNT = pl.Int64


def dated_events(linked: Linked, units: pl.LazyFrame, lo: date, hi: date) -> pl.LazyFrame:
    """Qualifying contacts dated in [lo, hi]: patient_id or p2, discipline, code, date."""
    p2_type = units.collect_schema()["p2"]
    contacts = linked.ehr("contacts").filter(pl.col("contact_date").is_between(lo, hi))
    ehr = [
        contacts.filter((pl.col("provider") == provider) & pl.col("contact_type").is_in(list(types)))
        .select("patient_id", pl.lit(None, p2_type).alias("p2"), pl.lit(provider).alias("discipline"),
                icpc_base(pl.col("icpc")).alias("code"), pl.col("contact_date").alias("date"))
        for provider, types in (("HA", HA_TYPES), ("POH-GGZ", POH_GGZ_TYPES))
    ]
    hap = linked.ehr("ooh_contacts").filter(pl.col("contact_date").is_between(lo, hi)).select(
        "patient_id", pl.lit(None, p2_type).alias("p2"), pl.lit("HAP").alias("discipline"),
        icpc_base(pl.col("icpc")).alias("code"), pl.col("contact_date").alias("date"))
    claims = (
        units.filter(pl.col("service_date").is_between(lo, hi))
        .filter((pl.col("sector") != "MSZ") | pl.col("care_type").is_in(["poli", "opname"]))
        .select(pl.lit(None, pl.String).alias("patient_id"), "p2", pl.col("sector").alias("discipline"), "code",
                pl.col("service_date").alias("date"))
    )
    return pl.concat([*ehr, hap, claims])


def is_all_cause(outcome: Outcome, all_cause_condition: bool, discipline: str) -> bool:
    """method.md section 3 and 9.10, as ``cohort.study.is_all_cause``, or everything for ``cause: all``."""
    return (
        outcome.cause == "all" or all_cause_condition or discipline in ALL_CAUSE_ALWAYS
        or (discipline == "DT" and outcome.dietetics_all_cause) or discipline in ("GGZ_B", "GGZ_S")
    )


def in_window(cohort: pl.LazyFrame, events: pl.LazyFrame) -> pl.LazyFrame:
    """Events of each cohort row inside its window: the row's keys plus discipline and code."""
    by_patient = events.filter(pl.col("patient_id").is_not_null()).drop("p2").join(
        cohort.drop("p2"), on="patient_id")
    by_p2 = events.filter(pl.col("p2").is_not_null()).drop("patient_id").join(
        cohort.filter(pl.col("p2").is_not_null()), on="p2")
    cols = ["patient_id", "condition", "discipline", "code", "date", "lo", "hi"]
    return pl.concat([by_patient.select(cols), by_p2.select(cols)]).filter(
        pl.col("date").is_between(pl.col("lo"), pl.col("hi")))


def _specific(codes: Mapping[str, CodeList]) -> pl.DataFrame:
    """(condition, discipline, code) of condition-specific care (method section 3)."""
    rows = []
    for condition, c in codes.items():
        rows += [(condition, d, code) for code in c.icpc for d in ("HA", "POH-GGZ")]
        rows += [(condition, s, code) for s, code in c.claims if s in ("MSZ", "FT", "OT", "DT")]
    return pl.DataFrame(rows, schema={"condition": pl.String, "discipline": pl.String, "code": pl.String},
                        orient="row").unique()


def _plan(outcome: Outcome, all_cause: Mapping[str, bool]) -> pl.DataFrame:
    rows = [(c, d, is_all_cause(outcome, all_cause[c], d)) for c, ds in outcome.disciplines.items() for d in ds]
    return pl.DataFrame(rows, schema={"condition": pl.String, "discipline": pl.String, "all_cause": pl.Boolean},
                        orient="row")


def _hits(cohort: pl.LazyFrame, events: pl.LazyFrame, outcome: Outcome, codes: Mapping[str, CodeList],
          all_cause: Mapping[str, bool]) -> pl.LazyFrame:
    """Qualifying contacts of each cohort row in its window, of the outcome's disciplines and cause."""
    inside = in_window(cohort, events).join(_plan(outcome, all_cause).lazy(), on=["condition", "discipline"])
    specific = _specific(codes).lazy()
    return pl.concat([
        inside.filter("all_cause"),
        inside.filter(~pl.col("all_cause")).join(specific, on=["condition", "discipline", "code"], how="semi"),
    ]).select("patient_id", "condition", "discipline")


def _grid(cells: pl.DataFrame, outcome: Outcome, strata: list[str]) -> pl.DataFrame:
    """(condition, discipline) of the outcome times the strata ``cells`` (a frame with the strata columns)."""
    plan = pl.DataFrame([(c, d) for c, ds in outcome.disciplines.items() for d in ds],
                        schema={"condition": pl.String, "discipline": pl.String}, orient="row")
    return plan.join(cells.select(strata).unique(), how="cross") if strata else plan


def contacts(cohort: pl.DataFrame, events: pl.LazyFrame, outcome: Outcome, codes: Mapping[str, CodeList],
             all_cause: Mapping[str, bool], year: int, strata: list[str],
             cells: pl.DataFrame | None = None, members: Members | None = None) -> pl.DataFrame:
    """care_use: year, condition, discipline, strata, n (records with >= 1 contact), N (cohort records).

    ``cells``: the strata of the cohort table (its population before entry), so that a stratum
    without cohort records still gets its row (n = N = 0); default: the cohort's own strata.
    ``members``: where the persons behind n and N go (the cohort has a ``person`` column).
    """
    keys = ["condition", "discipline", *strata]
    hits = _hits(cohort.lazy(), events, outcome, codes, all_cause).unique().collect(engine="streaming")
    counted = hits.join(cohort, on=["patient_id", "condition"])
    if members is not None:
        at_year = pl.lit(year, _COUNT).alias("year")
        members.add("care_use", "n", counted.with_columns(at_year))
        members.add("care_use", "N", cohort.with_columns(at_year))
    n = counted.group_by(keys).len("n")
    big_n = cohort.group_by("condition", *strata).len("N")
    grid = _grid(cohort if cells is None else cells, outcome, strata)
    return grid.join(big_n, on=["condition", *strata], how="left", nulls_equal=True).join(
        n, on=keys, how="left", nulls_equal=True).select(
        pl.lit(year, _COUNT).alias("year"), *keys, pl.col("n").fill_null(0).cast(_COUNT),
        pl.col("N").fill_null(0).cast(_COUNT))


def band_labels(bands: tuple[int, ...]) -> list[tuple[str, int, int | None]]:
    """(label, lowest, highest or None) per band: ``0``, then one per lower bound (``2-4``, ``10+``)."""
    out: list[tuple[str, int, int | None]] = [("0", 0, 0)]
    for low, nxt in zip(bands, (*bands[1:], None), strict=True):
        high = None if nxt is None else nxt - 1
        out.append((f"{low}+" if high is None else str(low) if high == low else f"{low}-{high}", low, high))
    return out


def contact_bands(cohort: pl.DataFrame, events: pl.LazyFrame, outcome: Outcome, year: int,
                  members: Members | None = None) -> pl.DataFrame:
    """contact_bands: year, condition, discipline, band, persons, N (all-cause contacts in the window).

    ``members``: where the persons of each band go (the cohort has a ``person`` column).
    """
    all_cause = {c: True for c in outcome.disciplines}
    everything = Outcome("contacts", outcome.disciplines, outcome.window, cause="all")
    per = (_hits(cohort.lazy(), events, everything, {}, all_cause).group_by("patient_id", "condition", "discipline")
           .len("k").collect(engine="streaming"))
    rows = _grid(cohort, outcome, []).join(cohort.select("patient_id", "condition"), on="condition")
    counted = rows.join(per, on=["patient_id", "condition", "discipline"], how="left").with_columns(
        pl.col("k").fill_null(0))
    labels = band_labels(outcome.bands)
    band = pl.lit(None, pl.String)
    for label, low, high in reversed(labels):
        inside = pl.col("k") >= low if high is None else pl.col("k").is_between(low, high)
        band = pl.when(inside).then(pl.lit(label)).otherwise(band)
    banded = counted.with_columns(band.alias("band"))
    if members is not None:
        members.add("contact_bands", "persons", banded.join(
            cohort.select("patient_id", "condition", "person"), on=["patient_id", "condition"]).with_columns(
            pl.lit(year, _COUNT).alias("year")))
    persons = banded.group_by("condition", "discipline", "band").len("persons")
    grid = _grid(cohort, outcome, []).join(pl.DataFrame({"band": [b for b, _, _ in labels],
                                                         "order": list(range(len(labels)))}), how="cross")
    big_n = cohort.group_by("condition").len("N")
    return (grid.join(persons, on=["condition", "discipline", "band"], how="left").join(big_n, on="condition", how="left")
            .sort("condition", "discipline", "order")
            .select(pl.lit(year, _COUNT).alias("year"), "condition", "discipline", "band",
                    pl.col("persons").fill_null(0).cast(_COUNT), pl.col("N").fill_null(0).cast(_COUNT)))
