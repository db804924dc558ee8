"""An attacker who reads what a release's tables *mean*, not only the relations it declares.

Issue 11: an independent integer-programming attacker recovered hidden counts from rules that
follow from the study's definitions (``shared/spec/method.md``), which the engine and its auditor
did not model. This module states those rules with its own code, from the public study
configuration alone (never from the engine's relation code), turns each into equations over the
release's cells (an inequality ``a <= b`` as ``b = a + slack`` with a fresh unknown slack), adds
them to the equations the manifest declares, and bounds every hidden cell with the auditor's
own integer programs.

The rules:

- **age rule**: a condition with ``min_age`` holds everyone of an age band at or above it, so
  its prevalent persons of that band *are* the band's population;
- **all-cause care of the age-rule condition**: in such a band, whoever has a contact of an
  all-cause discipline of that condition is counted there, so every other condition's care use
  of that discipline in the band is at most it;
- **attrition**: a condition's chain counts a subset of the overall chain at every step;
- **complements add up**: N - n of a stratum's Total is the sum of the levels' N - n;
- **top lists**: persons <= contacts in every row; a rank gap announces a withheld row.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from audit.cells import label
from audit.intervals import Equation, FeasibleRegion
from audit.release import Key, read_release, release_cells
from audit.structure import instantiate
from cohort.config import StudyConfig

# method.md section 1: the age bands and the lowest age of each.
BAND_LOW = {"0-17": 0, "18-64": 18, "65-79": 65, "80+": 80}


@dataclass
class Attack:
    """The attacker's equations over a release, and what the release publishes."""

    equations: list[Equation]
    published: dict[Key, int]
    hidden: set[Key]
    unknown: set[Key]
    semantic: list[Equation] = field(default_factory=list)
    rank_gaps: list[str] = field(default_factory=list)

    def region(self) -> FeasibleRegion:
        return FeasibleRegion(self.equations, self.published, sorted(self.unknown - set(self.published), key=label))


def _key(quantity: str, coords: dict) -> Key:
    return quantity, tuple(sorted((str(c), str(v)) for c, v in coords.items()))


def _keys_of(keys: Iterable[Key], quantity: str) -> list[Key]:
    return [k for k in keys if k[0] == quantity]


def build(release_dir: Path, config: StudyConfig) -> Attack:
    """The declared equations of the release plus the attacker's semantic ones."""
    release = read_release(release_dir)
    cells = release_cells(release)
    known = set(cells.published) | cells.hidden
    structure = instantiate([(release, "")], known)
    equations = list(structure.equations)
    unknown = set(cells.hidden) | set(structure.derived) | set(getattr(structure, "slack", ()))
    semantic: list[Equation] = []
    slack = itertools.count()

    def at_most(small: Key, big: Key) -> None:
        s = ("attacker-slack", (("n", str(next(slack))),))
        unknown.update({s} | {k for k in (small, big) if k not in cells.published})
        semantic.append(Equation(big, (small, s)))

    all_keys = known | set(structure.derived)
    # Age rule (method.md section 2: frail elderly = dementia or age >= 80).
    for cond in config.catalogue.conditions:
        if cond.min_age is None:
            continue
        for key in _keys_of(all_keys, "prevalent"):
            coords = dict(key[1])
            band = coords.get("age_band")
            if coords.get("condition") != cond.name or band is None or BAND_LOW[band] < cond.min_age:
                continue
            population = _key("population", {c: v for c, v in coords.items() if c != "condition"})
            if population in all_keys:
                semantic.append(Equation(key, (population,)))
        # All-cause care of the age-rule condition contains every condition's care in the band.
        for key in _keys_of(all_keys, "care_use"):
            coords = dict(key[1])
            band, d = coords.get("age_band"), coords.get("discipline")
            if coords.get("condition") != cond.name or band is None or BAND_LOW[band] < cond.min_age:
                continue
            if not (cond.all_cause or d in ("ET", "HT", "WV", "ELV", "HAP", "SEH")):
                continue
            for other in _keys_of(all_keys, "care_use"):
                o = dict(other[1])
                if o.get("condition") != cond.name and {**o, "condition": cond.name} == coords:
                    at_most(other, key)
    # Attrition: a condition's chain is a subset of the overall one, step by step.
    for quantity in ("attrition_before", "attrition_after"):
        for key in _keys_of(all_keys, quantity):
            coords = dict(key[1])
            if coords.get("condition") != "all":
                overall = _key(quantity, {**coords, "condition": "all"})
                if overall in all_keys:
                    at_most(key, overall)
    # Complements add up over a stratum's levels (N - n of Total = sum of the levels' N - n).
    dims = {d: v["levels"] for t in release.tables.values() for d, v in t.spec.get("dimensions", {}).items()}
    for quantity in ("not:care_use", "not:prevalent"):
        keys = set(_keys_of(structure.derived | known, quantity))
        for key in keys:
            coords = dict(key[1])
            for dim, levels in dims.items():
                if dim in coords:
                    continue
                children = [_key(quantity, {**coords, dim: lvl}) for lvl in levels]
                if all(c in keys for c in children):
                    semantic.append(Equation(key, tuple(children)))
    # Top lists: persons <= contacts in each row; a rank gap shows a withheld row.
    top = release.tables.get("top")
    if top is not None:
        for row in top.frame.iter_rows(named=True):
            coords = {"year": row["year"], "discipline": row["discipline"], "group": row["group"]}
            at_most(_key("contact_persons", coords), _key("contacts", coords))
    attack = Attack(equations + semantic, dict(cells.published), set(cells.hidden), unknown, semantic)
    if top is not None:
        for (year, discipline), rows in top.frame.group_by("year", "discipline", maintain_order=True):
            ranks = sorted(rows["rank"])
            if ranks != list(range(1, len(ranks) + 1)):
                attack.rank_gaps.append(f"{year} {discipline}")
        # A count of withheld rows per list announces them as well as a gap does.
        attack.rank_gaps += [f"{lst} (withheld_rows)" for lst, n in top.spec.get("withheld_rows", {}).items() if n]
    return attack


def study_truth(study_dir: Path, strata: tuple[str, ...]) -> dict[Key, int]:
    """True values of the study's stratified counts (Total rows summed), keyed as the release keys them."""
    truth: dict[Key, int] = {}
    for table, keys, columns in (("prevalence", ["year", "condition"], {"numerator": "prevalent",
                                                                       "denominator": "population"}),
                                 ("care_use", ["year", "condition", "discipline"], {"n": "care_use",
                                                                                    "N": "prevalent"})):
        frame = pl.read_parquet(study_dir / f"{table}.parquet")
        for r in range(len(strata) + 1):
            for kept in itertools.combinations(strata, r):
                for column, quantity in columns.items():
                    by = [*keys, *kept] if quantity != "population" else ["year", *kept]
                    sums = frame.group_by([*keys, *kept]).agg(pl.col(column).sum())
                    if quantity == "population":
                        sums = sums.group_by(by).agg(pl.col(column).first())
                    for row in sums.iter_rows(named=True):
                        truth[_key(quantity, {c: row[c] for c in by})] = int(row[column])
    for table, keys, columns in (("referrals", ["year", "condition"], {"n": "referred", "N": "referral_base"}),
                                 ("attrition", ["year", "condition", "step"], {
                                     "before": "attrition_before", "excluded": "attrition_excluded",
                                     "after": "attrition_after"}),
                                 ("acsc", ["year"], {"admissions": "acsc_admissions", "persons": "acsc_persons"})):
        frame = pl.read_parquet(study_dir / f"{table}.parquet")
        for row in frame.iter_rows(named=True):
            for column, quantity in columns.items():
                truth[_key(quantity, {c: row[c] for c in keys})] = int(row[column])
    return truth


def protection(value: int, margin_percent: int = 30) -> int:
    return max(1, -(-margin_percent * value // 100))


def findings(attack: Attack, truth: dict[Key, int], *, threshold: int = 10) -> list[str]:
    """Labels of hidden cells the attacker pins or narrows below the margin, and small derivable sums."""
    region = attack.region()
    out = []
    for key in sorted(attack.hidden - set(attack.published), key=label):
        if region.fixed((key,)) is not None:
            out.append(f"A1 {label(key)}")
            continue
        value = truth.get(key)
        if value is not None and 1 <= value < threshold:
            p = protection(value)
            if not region.reaches(key, max(0, value - p), value + p):
                out.append(f"A2 {label(key)}")
    unknown = set(region.hidden)
    for equation in attack.semantic:
        children = [c for c in equation.children if c in unknown]
        if any(c[0] == "attacker-slack" for c in children):
            continue  # an inequality: its slack counts no persons
        if len(children) < 2 or equation.total in unknown and region.fixed((equation.total,)) is None:
            continue
        value = region.sum_under(equation)
        if value is not None and 1 <= value < threshold:
            out.append(f"A3 {label(equation.total)}")
    out += [f"rank-gap {g}" for g in attack.rank_gaps]
    return out
