"""What a release holds: each study table as released, its columns' roles and the relations.

This module fixes, per table of the study, the rows the release shows (with ``Total`` rows for
strata), which columns are counts of which *quantity* (``docs/release-format.md``, "Cells and
quantity keys"), which are percentages or changes, and the additive *relations* between the
quantities. It does no protection: :mod:`release.model` turns the layout into cells and
equations, :mod:`release.protection` decides what is shown.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from cohort.population import RULES
from release.errors import StudyContractError
from release.magnitudes import Magnitude
from release.semantics import domain_relations, structural_subsets
from release.study_folder import TOTAL, StudyFolder

__all__ = ["ORDER", "Change", "Count", "Ratio", "TableLayout", "layout", "relations"]

# Priority of the tables: when no safe pattern exists, the last table involved is withheld first.
ORDER = ("prevalence", "incidence", "index_cohort", "attrition", "care_use", "care_use_change", "referrals", "top",
         "acsc", "contact_bands", "costs", "fallback_links")
# Secondary suppression hides the cells of least cost, cost = value x weight: the study's key
# figures (prevalence, and the cohort sizes N of care use that equal its numerators) are kept
# visible before the intermediate counts of the attrition chain.
WEIGHTS = {"prevalence": 4.0, "incidence": 4.0, "index_cohort": 4.0, "care_use": 2.0, "referrals": 2.0, "top": 2.0,
           "acsc": 2.0, "costs": 2.0, "attrition": 1.0, "fallback_links": 1.0}
COSTS = Magnitude("total", "cost_total", "persons", "mean")


@dataclass(frozen=True)
class Count:
    """A count column: each row's value is the cell of ``quantity`` named by the ``by`` columns."""

    name: str
    quantity: str
    unit: str  # "persons" or "events"
    by: tuple[str, ...]
    weight: float = 1.0  # how much it matters that the count is shown (WEIGHTS)


@dataclass(frozen=True)
class Ratio:
    """A percentage or share column: numerator / denominator * scale, both named as quantities.

    ``numerator`` and ``denominator`` are ``(quantity, {coordinate: column})``.
    """

    name: str
    numerator: tuple[str, Mapping[str, str]]
    denominator: tuple[str, Mapping[str, str]]
    scale: int


@dataclass(frozen=True)
class Change:
    """A change column: (``second`` - ``first``) * scale, two ratio columns of the same row."""

    name: str
    first: str
    second: str
    scale: int


@dataclass(frozen=True)
class TableLayout:
    """One table as released (before suppression): rows, coordinates and value columns in order."""

    name: str
    frame: pl.DataFrame
    coordinates: tuple[str, ...]
    dimensions: Mapping[str, tuple[str, ...]]
    counts: tuple[Count, ...] = ()
    ratios: tuple[Ratio, ...] = ()
    changes: tuple[Change, ...] = ()
    withheld_rows: Mapping[str, int] = field(default_factory=dict)  # steward's view only, never published
    magnitudes: tuple[Magnitude, ...] = ()
    statistics: pl.DataFrame | None = None  # per row, the magnitudes' statistics: steward's view only

    @property
    def values(self) -> tuple[str, ...]:
        """Value columns in output order."""
        return tuple(c for c in self.frame.columns if c not in self.coordinates)


def _totals(frame: pl.DataFrame, keys: list[str], strata: tuple[str, ...], sums: list[str],
            levels: Mapping[str, tuple[str, ...]]) -> pl.DataFrame:
    """The full grid of levels (zeros where absent) plus every margin, counts summed."""
    if not strata:
        return frame
    grid = frame.select(k for k in keys if k not in strata).unique()
    for s in strata:
        grid = grid.join(pl.DataFrame({s: list(levels[s])}), how="cross")
    full = grid.join(frame, on=keys, how="left").with_columns(pl.col(c).fill_null(0) for c in sums)
    parts = [full]
    for r in range(1, len(strata) + 1):
        for total_over in itertools.combinations(strata, r):
            by = [k for k in keys if k not in total_over]
            parts.append(full.group_by(by).agg(pl.col(c).sum() for c in sums)
                         .with_columns(pl.lit(TOTAL).alias(s) for s in total_over))
    return pl.concat([p.select(*keys, *sums) for p in parts])


def _levels(study: StudyFolder) -> dict[str, tuple[str, ...]]:
    out = {}
    for s in study.strata:
        seen = set(study.tables[study.cohort_table][s])
        if "care_use" in study.tables:
            seen |= set(study.tables["care_use"][s])
        out[s] = tuple(sorted(seen))
    return out


def _order(frame: pl.DataFrame, keys: list[str], strata: tuple[str, ...]) -> pl.DataFrame:
    """Rows in the study's order, each stratum's levels first and its Total last."""
    return frame.sort([*(pl.col(k) for k in keys if k not in strata),
                       *((pl.col(s) == TOTAL) for s in strata), *(pl.col(s) for s in strata)])


def layout(study: StudyFolder, *, threshold: int) -> dict[str, TableLayout]:
    """Every table of the study as it is to be released, before suppression.

    Args:
        study: the checked study folder.
        threshold: T; rows of the top list with fewer than T persons are withheld.
    """
    t, strata = study.tables, study.strata
    levels = _levels(study)
    dims = {s: levels[s] for s in strata}
    by = {s: s for s in strata}
    out: dict[str, TableLayout] = {}

    # The cohort table (prevalence, incidence or index_cohort): the cohort's persons ("prevalent")
    # of the population after the criteria ("population"), per condition.
    keys = ["year", "condition", *strata]
    cohort = study.cohort_table
    prevalence = _order(_totals(t[cohort], keys, strata, ["numerator", "denominator"], levels), keys, strata)
    out[cohort] = TableLayout(
        cohort, prevalence.with_columns(pl.lit(None, pl.Float64).alias("percentage")), tuple(keys), dims,
        (Count("numerator", "prevalent", "persons", tuple(keys), WEIGHTS["prevalence"]),
         Count("denominator", "population", "persons", ("year", *strata), WEIGHTS["prevalence"])),
        (Ratio("percentage", ("prevalent", {"year": "year", "condition": "condition", **by}),
               ("population", {"year": "year", **by}), 100),))

    if "care_use" in t:
        keys = ["year", "condition", "discipline", *strata]
        care = t["care_use"]
        care = _order(_totals(care, keys, strata, ["n", "N"], levels), keys, strata)
        out["care_use"] = TableLayout(
            "care_use", care.with_columns(pl.lit(None, pl.Float64).alias("percentage")), tuple(keys), dims,
            (Count("n", "care_use", "persons", tuple(keys), WEIGHTS["care_use"]),
             Count("N", "prevalent", "persons", ("year", "condition", *strata), WEIGHTS["prevalence"])),
            (Ratio("percentage", ("care_use", {"year": "year", "condition": "condition", "discipline": "discipline",
                                               **by}),
                   ("prevalent", {"year": "year", "condition": "condition", **by}), 100),))
        out["care_use_change"] = _change(study, care, strata, dims)
    out["attrition"] = _attrition(t)
    # Every other table only when the study has it (the seed design has referrals, top and acsc;
    # incidence and index studies their own outcomes): none is left out of the release unseen.
    if "contact_bands" in t:
        out["contact_bands"] = _contact_bands(t["contact_bands"], strata)
    if "costs" in t:
        out["costs"] = _costs(t["costs"], strata)
    if "fallback_links" in t:
        # Informational, beside the attrition chain: a part of the population (relations).
        out["fallback_links"] = TableLayout(
            "fallback_links", t["fallback_links"].sort("year"), ("year",), {},
            (Count("persons", "fallback_persons", "persons", ("year",), WEIGHTS["fallback_links"]),))
    if "referrals" in t:
        out["referrals"] = _referrals(t["referrals"])
    if "top" in t:
        out["top"] = _top(t["top"], threshold)
    if "acsc" in t:
        out["acsc"] = TableLayout(
            "acsc", t["acsc"], ("year",), {},
            (Count("admissions", "acsc_admissions", "events", ("year",), WEIGHTS["acsc"]),
             Count("persons", "acsc_persons", "persons", ("year",), WEIGHTS["acsc"])))
    return {name: out[name] for name in ORDER if name in out}


def _referrals(referrals: pl.DataFrame) -> TableLayout:
    """Cohort persons referred (method section 5), of those whose practice delivered referrals."""
    return TableLayout(
        "referrals", referrals.with_columns(pl.lit(None, pl.Float64).alias("percentage")),
        ("year", "condition"), {},
        (Count("n", "referred", "persons", ("year", "condition"), WEIGHTS["referrals"]),
         Count("N", "referral_base", "persons", ("year", "condition"), WEIGHTS["referrals"])),
        (Ratio("percentage", ("referred", {"year": "year", "condition": "condition"}),
               ("referral_base", {"year": "year", "condition": "condition"}), 100),))


def _top(top: pl.DataFrame, threshold: int) -> TableLayout:
    """The top groups per discipline (method section 6), rows of fewer than T persons withheld."""
    small = top.filter(pl.col("persons") < threshold)
    withheld = {f"{y} {d}": n for y, d, n in small.group_by("year", "discipline").len().sort("year", "discipline").iter_rows()}
    # A row of fewer than T persons is left out and the listed rows are ranked among themselves
    # (1, 2, 3, ... with no gap): a gap, or a count of rows left out, would announce a group of
    # 1..T-1 persons whose contacts the remainder bounds (issue 11, item 5). Its contacts are in
    # the remainder, protected like any count.
    listed = (top.filter(pl.col("persons") >= threshold).sort("year", "discipline", "rank")
              .with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("year", "discipline").alias("rank"),
                            pl.lit(None, pl.Float64).alias("share")))
    return TableLayout(
        "top", listed, ("year", "discipline", "rank", "group"), {},
        (Count("contacts", "contacts", "events", ("year", "discipline", "group"), WEIGHTS["top"]),
         Count("persons", "contact_persons", "persons", ("year", "discipline", "group"), WEIGHTS["top"]),
         Count("total_contacts", "contacts_total", "events", ("year", "discipline"), WEIGHTS["top"])),
        (Ratio("share", ("contacts", {"year": "year", "discipline": "discipline", "group": "group"}),
               ("contacts_total", {"year": "year", "discipline": "discipline"}), 1),),
        withheld_rows=withheld)


def _contact_bands(bands: pl.DataFrame, strata: tuple[str, ...]) -> TableLayout:
    """Cohort persons by number of contacts per discipline (issue 12): the bands and their Total.

    The Total row of each (year, condition, discipline) is the sum of its bands and is the cohort
    (``prevalent``, at every stratum's Total: the table has no strata of its own): relations
    ``margin`` over ``band`` and ``equal`` to ``prevalent``, so that a hidden band is never the
    difference of the shown ones.
    """
    order = list(dict.fromkeys(bands["band"]))
    keys = ["year", "condition", "discipline", *strata, "band"]
    rows = bands.with_columns(pl.lit(TOTAL).alias(s) for s in strata)
    total = (rows.group_by("year", "condition", "discipline", *strata, maintain_order=True)
             .agg(pl.col("persons").sum()).with_columns(pl.lit(TOTAL).alias("band")))
    frame = pl.concat([rows.select(*keys, "persons"), total.select(*keys, "persons")]).sort(
        "year", "condition", "discipline", pl.col("band").replace_strict({b: i for i, b in enumerate([*order, TOTAL])}))
    return TableLayout(
        "contact_bands", frame, tuple(keys), {"band": tuple(order)},
        (Count("persons", "band_persons", "persons", tuple(keys), WEIGHTS["care_use"]),))


def _costs(costs: pl.DataFrame, strata: tuple[str, ...]) -> TableLayout:
    """Claimed costs per sector (issue 12): persons, total and mean; no margins (release.magnitudes)."""
    keys = ["year", "condition", "sector", *strata]
    rows = costs.sort(keys)
    frame = rows.select(*keys, "persons", pl.lit(None, pl.Int64).alias("total"), pl.lit(None, pl.Int64).alias("mean"))
    # No dimensions: the costs table has no Total rows, its strata are plain coordinates.
    return TableLayout(
        "costs", frame, tuple(keys), {},
        (Count("persons", "cost_persons", "persons", tuple(keys), WEIGHTS["costs"]),),
        magnitudes=(COSTS,),
        statistics=rows.select("persons", "total_cents", "largest_cents", "second_cents"))


def _attrition(t: Mapping[str, pl.DataFrame]) -> TableLayout:
    return TableLayout(
        "attrition", t["attrition"], ("year", "condition", "step"), {},
        tuple(Count(c, f"attrition_{c}", "persons", ("year", "condition", "step")) for c in ("before", "excluded", "after")))


def _change(study: StudyFolder, care: pl.DataFrame, strata: tuple[str, ...], dims: Mapping) -> TableLayout:
    """Changes between consecutive years, for every row of care use (Total rows included).

    The study's own change table must agree with its care use (the shares are n / N).
    """
    keys = ["condition", "discipline", *strata]
    years = sorted(set(care["year"]))
    shares = care.with_columns((pl.col("n") / pl.col("N")).alias("share"))
    parts = []
    for a, b in itertools.pairwise(years):
        left = shares.filter(pl.col("year") == a).select(*keys, pl.col("share").alias("share_from"))
        right = shares.filter(pl.col("year") == b).select(*keys, pl.col("share").alias("share_to"))
        parts.append(left.join(right, on=keys).select(*keys, pl.lit(a, pl.Int64).alias("year_from"),
                                                       pl.lit(b, pl.Int64).alias("year_to"), "share_from", "share_to"))
    frame = pl.concat(parts) if parts else pl.DataFrame(
        schema={**{k: pl.String for k in keys}, "year_from": pl.Int64, "year_to": pl.Int64,
                "share_from": pl.Float64, "share_to": pl.Float64})
    ident = [*keys, "year_from", "year_to"]
    study_rows = study.tables["care_use_change"]
    joined = study_rows.join(frame, on=ident, how="left", suffix="_r")
    missing = int(joined["share_from_r"].is_null().sum())
    same = ((pl.col("share_from") - pl.col("share_from_r")).abs() < 1e-9) | (pl.col("share_from").is_nan() & pl.col("share_from_r").is_nan())
    same_to = ((pl.col("share_to") - pl.col("share_to_r")).abs() < 1e-9) | (pl.col("share_to").is_nan() & pl.col("share_to_r").is_nan())
    differ = int(joined.select((~(same & same_to)).fill_null(True).sum()).item())
    if missing > 0 or differ:
        msg = (f"care_use_change.parquet: {max(missing, differ)} rows do not match the shares n / N of "
               "care_use.parquet")
        raise StudyContractError([msg])
    frame = _order(frame.select(*keys, "year_from", "year_to",
                                pl.lit(None, pl.Float64).alias("share_from"), pl.lit(None, pl.Float64).alias("share_to"),
                                pl.lit(None, pl.Float64).alias("change_pp")), ["condition", "discipline", *strata, "year_from"], strata)
    by = {s: s for s in strata}
    ratio = {end: Ratio(f"share_{end}", ("care_use", {"year": f"year_{end}", "condition": "condition",
                                                      "discipline": "discipline", **by}),
                        ("prevalent", {"year": f"year_{end}", "condition": "condition", **by}), 1)
             for end in ("from", "to")}
    return TableLayout("care_use_change", frame, tuple(ident), dims, (), (ratio["from"], ratio["to"]),
                       (Change("change_pp", "share_from", "share_to", 100),))


def relations(strata: tuple[str, ...], levels: Mapping[str, tuple[str, ...]], definitions: Mapping | None = None,
              conditions: tuple[str, ...] = (), *, steps: tuple[str, ...] = RULES,
              tables: tuple[str, ...] = ORDER) -> list[dict]:
    """The relations between the quantities of a study release (release-format.md, "relations").

    The tables' additive structure, the subsets every study has (a condition's attrition within
    the overall chain, persons <= events), the relations the study's ``definitions`` imply
    (:mod:`release.semantics`), and last the margins of every stratified complement: N - n
    of a stratum's Total is the sum of its levels' N - n, so a sum of hidden complements is
    checked like any other (issue 11, item 6). ``steps``: the attrition chain after ``base`` (the
    study's criteria); ``tables``: the tables of the release (a relation of an absent one is left out).
    """
    chain = ("base", *steps)
    # the population of the cohort table: after the criteria before entry (all of them in a
    # prevalence study); the cohort: after the last step
    population_step = chain[chain.index("entry") - 1] if "entry" in chain else chain[-1]
    out: list[dict] = []
    for quantity in ("population", "prevalent", "care_use"):
        for s in strata:
            out.append({"type": "margin", "quantity": quantity, "dimension": s, "levels": list(levels[s])})
    part_of = [("prevalent", "population", ["condition"], {}), ("care_use", "prevalent", ["discipline"], {}),
               ("referred", "referral_base", [], {}), ("referral_base", "prevalent", [], {}),
               ("attrition_excluded", "attrition_excluded", [], {"condition": "all"})]
    for part, whole, drop, fixed in part_of:
        out.append({"type": "part_of", "part": part, "whole": whole, "drop": drop, "set": fixed,
                    "complement": f"not:{part}" if part != whole else f"others:{part}"})
    out.append({"type": "chain", "before": "attrition_before", "excluded": "attrition_excluded",
                "after": "attrition_after", "along": "step", "order": list(chain)})
    out += structural_subsets()
    out += domain_relations(definitions or {}, strata, levels, conditions)
    last = chain[-1]
    out.append({"type": "equal", "left": "attrition_after", "where": {"step": population_step, "condition": "all"},
                "except": {}, "right": "population", "drop": ["step", "condition"]})
    out.append({"type": "equal", "left": "attrition_after", "where": {"step": last},
                "except": {"condition": "all"}, "right": "prevalent", "drop": ["step"]})
    if "top" in tables:
        out.append({"type": "remainder", "table": "top", "total": "total_contacts", "parts": "contacts",
                    "over": "group", "group_by": ["year", "discipline"], "remainder": "contacts_other"})
    if "acsc" in tables:
        out.append({"type": "events_of", "table": "acsc", "events": "admissions", "persons": "persons"})
    if "contact_bands" in tables:
        # The bands add up to their Total (no band coordinate), which is the cohort of the condition.
        out.append({"type": "margin", "quantity": "band_persons", "dimension": "band",
                    "levels": list(levels.get("band", ()))})
        out.append({"type": "equal", "left": "band_persons", "where": {"band": None}, "except": {},
                    "right": "prevalent", "drop": ["discipline"]})
    if "costs" in tables:
        # Persons with a cost are cohort persons; the total and mean follow them (release.magnitudes).
        out.append({"type": "part_of", "part": "cost_persons", "whole": "prevalent", "drop": ["sector"], "set": {},
                    "complement": "not:cost_persons"})
        out.append({"type": "magnitude_of", "table": "costs", "magnitude": COSTS.name, "quantity": COSTS.quantity,
                    "persons": COSTS.persons, "mean": COSTS.mean})
    if "fallback_links" in tables:
        # Study persons linked by the TTP's fallback: part of the population of their year (the
        # cohort table's denominator at every stratum's Total); its complement is hidden with it.
        out.append({"type": "part_of", "part": "fallback_persons", "whole": "population", "drop": [], "set": {},
                    "complement": "not:fallback_persons"})
    stratified = ("population", "prevalent", "care_use")
    for rel in [r for r in out if r["type"] == "part_of" and r.get("protect", True)]:
        if rel["part"] in stratified and not set(rel.get("where", {})) & set(strata):
            out += [{"type": "margin", "quantity": rel["complement"], "dimension": s, "levels": list(levels[s])}
                    for s in strata]
    unique = {json.dumps(r, sort_keys=True): r for r in out}  # two rules may imply one relation
    return list(unique.values())
