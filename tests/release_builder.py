"""Release folders written by hand (``docs/release-format.md``): small examples for the report.

:func:`write_release` writes any tables with their manifest entries, the checksums and a summary;
:func:`small_release` writes the seed study's seven tables for two conditions and two years with
hidden values of both statuses, a withheld top-list row, and optionally a sex stratum. The
report's tests compare what the report shows with these frames, never with literal figures.
The unstratified release passes the independent audit (``pfl-report`` refuses one that fails);
the stratified one shows counts below 10 in its sex levels and is for rendering tests only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from audit.required import FORMAT_RELATIONS

__all__ = ["rewrite_checksums", "small_release", "table_spec", "write_release"]

HIDDEN = ("suppressed", "below-threshold")


def table_spec(
    coordinates: Sequence[str],
    *,
    counts: Mapping[str, str] = (),  # type: ignore[assignment]
    percentages: Mapping[str, int] = (),  # type: ignore[assignment]
    changes: Sequence[str] = (),
    dimensions: Mapping[str, Sequence[str]] | None = None,
    ratios: Mapping[str, tuple[str, str, Mapping[str, str]]] | None = None,
) -> dict:
    """A manifest entry: ``counts`` column -> unit, ``percentages`` column -> scale (100 or 1).

    ``ratios``: percentage column -> (numerator count, denominator count, coordinate -> column),
    the counts' quantities being their column names (as ``counts`` declares them).
    """
    counts, percentages, ratios = dict(counts), dict(percentages), dict(ratios or {})

    def ref(column: str, which: int) -> dict:
        if column not in ratios:
            return {}
        by = dict(ratios[column][2]) or {c: c for c in coordinates}
        return {"quantity": ratios[column][which], "by": by}

    return {
        "status": "released",
        "coordinates": list(coordinates),
        "dimensions": {d: {"levels": list(levels), "total": "Total"} for d, levels in (dimensions or {}).items()},
        "counts": {c: {"quantity": c, "unit": u, "by": list(coordinates), "status": f"{c}_status"}
                   for c, u in counts.items()},
        "percentages": {c: {"numerator": ref(c, 0), "denominator": ref(c, 1), "scale": s, "status": f"{c}_status"}
                        for c, s in percentages.items()},
        "changes": {c: {"from": "share_from", "to": "share_to", "scale": 100, "status": f"{c}_status"}
                    for c in changes},
    }


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rewrite_checksums(folder: Path) -> None:
    """Recompute the manifest's checksums (to make a release that is broken but not tampered)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = {name: _sha(folder / name) for name in manifest["files"]}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


def write_release(
    folder: Path,
    tables: Mapping[str, tuple[dict, pl.DataFrame]],
    *,
    withheld: Mapping[str, str] | None = None,
    conditions: Sequence[str] = (),
    years: Sequence[int] = (2019, 2023),
    strata: Sequence[str] = (),
    policy: Mapping | None = None,
    relations: Sequence[dict] = (),
    definitions: Mapping | None = None,
) -> Path:
    """Write a release folder: each table as CSV and Parquet, manifest.json and summary.md.

    ``definitions`` is what the counts mean (the auditor rebuilds age rules from it); by default
    the seed's age bands and every condition without an age rule.
    """
    folder.mkdir(parents=True)
    entries: dict[str, dict] = {}
    for name, (spec, frame) in tables.items():
        frame.write_parquet(folder / f"{name}.parquet", statistics=False)  # as the engine: no min/max of hidden cells
        frame.write_csv(folder / f"{name}.csv")
        values = [c for c in frame.columns if f"{c}_status" in frame.columns]
        cells = {"shown": 0, **{s: 0 for s in HIDDEN}}
        for v in values:
            for status, n in frame[f"{v}_status"].value_counts().iter_rows():
                cells["shown" if status == "" else status] += n
        entries[name] = {**spec, "files": {"csv": f"{name}.csv", "parquet": f"{name}.parquet"},
                         "rows": frame.height, "cells": {k: n for k, n in cells.items() if n}}
    for name, reason in (withheld or {}).items():
        entries[name] = {"status": "withheld", "reason": reason}
    (folder / "summary.md").write_text("# Release r-test\n\nFor the output checker.\n")
    manifest = {
        "format": "pfl-release/1",
        "status": "released under disclosure control",
        "release_id": "r-20240501T101500Z-0badcafe",
        "created": "2024-05-01T10:15:00Z",
        "engine": {"name": "patientflow-linkage", "version": "0.1.0"},
        "policy": dict(policy or {"threshold": 10, "margin": 0.3, "publish_zeros": True, "rounding": None}),
        "policy_source": {"steward": dict(policy or {"threshold": 10}), "study_overrides": {}},
        "study": {"name": "example", "config_sha256": "0" * 64, "reference_years": list(years),
                  "conditions": list(conditions), "strata": list(strata)},
        "keys": {"project": "example", "project_key_id": "00000000"},
        "ledger": {"ledger_id": "l", "earlier_releases": 0},
        "files": {p.name: _sha(p) for p in sorted(folder.iterdir())},
        "tables": entries,
        "relations": list(relations),
        "definitions": dict(definitions) if definitions is not None else {
            "age_bands": {"0-17": [0, 17], "18-64": [18, 64], "65-79": [65, 79], "80+": [80, None]},
            "conditions": {c: {"min_age": None, "all_cause": False, "sources": []} for c in conditions},
            "care": {}},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


def _with_status(rows: list[dict], columns: Sequence[str]) -> pl.DataFrame:
    """Rows of values, a value given as ``("suppressed", None)`` hidden; adds ``<col>_status``."""
    out = []
    for row in rows:
        new = {}
        for key, value in row.items():
            new[key] = value
            if key in columns:
                status, shown = (value if isinstance(value, tuple) else ("", value))
                new[key] = shown
                new[f"{key}_status"] = status
        out.append(new)
    return pl.DataFrame(out, infer_schema_length=None)


def small_release(folder: Path, *, sex: bool = False, withheld: Mapping[str, str] | None = None,
                  top_gap: bool = False) -> Path:
    """The seed study's tables for conditions ``diabetes`` and ``asthma_copd``, 2019 and 2023.

    Hidden values: asthma_copd/DT/2019 (``n`` and ``percentage`` suppressed), diabetes/MSZ/2023
    (``percentage`` below threshold, n = 0 shown), their changes, one referral count; the top list
    of HA 2019 lists ranks 1 and 2 (with ``top_gap``, as releases before issue 11.5 did: ranks 1 and 3,
    rank 2 withheld). With ``sex``, care use and prevalence have F, M and Total.
    """
    hide = ("suppressed", None)
    strata = {"sex": ["F", "M"]} if sex else {}
    levels = ["Total", "F", "M"] if sex else [None]
    care, change, prev = [], [], []
    base = {"diabetes": {"HA": (60, 70), "DT": (20, 25), "MSZ": (30, 0)},
            "asthma_copd": {"HA": (40, 45), "DT": (5, 12), "FT": (15, 18)}}
    prevalent = {"diabetes": (100, 110), "asthma_copd": (120, 150)}
    for c, disciplines in base.items():
        for level in levels:
            k = 1 if level in (None, "Total") else 2  # a level's counts: half of the total's, roughly
            st = {"sex": level} if sex else {}
            for i, y in enumerate((2019, 2023)):
                N = prevalent[c][i] // k
                prev.append({"year": y, "condition": c, **st, "numerator": N, "denominator": 1000 // k,
                             "percentage": 100 * N / (1000 // k)})
                for d, ns in disciplines.items():
                    n = ns[i] // k
                    pct: object = 100 * n / N
                    n_out: object = n
                    if (c, d, y) == ("asthma_copd", "DT", 2019):
                        n_out, pct = hide, hide
                    elif (c, d, y) == ("diabetes", "MSZ", 2023):
                        pct = ("below-threshold", None)
                    care.append({"year": y, "condition": c, "discipline": d, **st, "n": n_out, "N": N,
                                 "percentage": pct})
            for d, ns in disciplines.items():
                f, t = ns[0] / prevalent[c][0], ns[1] / prevalent[c][1]
                row = {"condition": c, "discipline": d, **st, "year_from": 2019, "year_to": 2023,
                       "share_from": f, "share_to": t, "change_pp": 100 * (t - f)}
                if (c, d) == ("asthma_copd", "DT"):
                    row.update(share_from=hide, change_pp=hide)
                if (c, d) == ("diabetes", "MSZ"):
                    row.update(share_to=("below-threshold", None), change_pp=("below-threshold", None))
                change.append(row)
    sc = ["sex"] if sex else []
    tables = {
        "prevalence": (table_spec(["year", "condition", *sc], counts={"numerator": "persons", "denominator": "persons"},
                                  percentages={"percentage": 100}, dimensions=strata,
                                  ratios={"percentage": ("numerator", "denominator", {})}),
                       _with_status(prev, ["numerator", "denominator", "percentage"])),
        "care_use": (table_spec(["year", "condition", "discipline", *sc], counts={"n": "persons", "N": "persons"},
                                percentages={"percentage": 100}, dimensions=strata,
                                ratios={"percentage": ("n", "N", {})}),
                     _with_status(care, ["n", "N", "percentage"])),
        "care_use_change": (table_spec(["condition", "discipline", *sc, "year_from", "year_to"],
                                       percentages={"share_from": 1, "share_to": 1}, changes=["change_pp"],
                                       dimensions=strata,
                                       ratios={f"share_{w}": ("n", "N", {"year": f"year_{w}", **{
                                           c: c for c in ("condition", "discipline", *sc)}}) for w in ("from", "to")}),
                            _with_status(change, ["share_from", "share_to", "change_pp"])),
    }
    referrals = [{"year": y, "condition": c, "n": n, "N": N, "percentage": 100 * n / N}
                 for y, c, n, N in ((2019, "diabetes", 12, 80), (2023, "diabetes", 15, 90),
                                    (2019, "asthma_copd", 20, 100), (2023, "asthma_copd", 25, 120))]
    referrals[1].update(n=hide, percentage=hide)
    tables["referrals"] = (table_spec(["year", "condition"], counts={"n": "persons", "N": "persons"},
                                      percentages={"percentage": 100}, ratios={"percentage": ("n", "N", {})}),
                           _with_status(referrals, ["n", "N", "percentage"]))
    attrition = []
    for y in (2019, 2023):
        for c, total in (("all", 1100), *((c, p[0]) for c, p in prevalent.items())):
            before = total
            for step, excluded in (("base", 0), ("X1", 30), ("X2", hide)):
                after: object = hide if excluded == hide else before - excluded
                attrition.append({"year": y, "condition": c, "step": step, "before": before,
                                  "excluded": excluded, "after": after})
                before = after if not isinstance(after, tuple) else before
    tables["attrition"] = (table_spec(["year", "condition", "step"], counts={"before": "persons",
                                      "excluded": "persons", "after": "persons"}),
                           _with_status(attrition, ["before", "excluded", "after"]))
    top = [{"year": 2019, "discipline": "HA", "rank": r, "group": g, "contacts": n, "share": n / 500,
            "persons": p, "total_contacts": 500}
           for r, g, n, p in ((1, "T90", 200, 90), (3 if top_gap else 2, "R96", 80, 40))]
    spec = table_spec(["year", "discipline", "rank", "group"],
                      counts={"contacts": "events", "persons": "persons", "total_contacts": "events"},
                      percentages={"share": 1}, ratios={"share": ("contacts", "total_contacts", {})})
    if top_gap:
        spec["withheld_rows"] = {"2019 HA": 1}
    tables["top"] = (spec, _with_status(top, ["contacts", "share", "persons", "total_contacts"]))
    acsc = [{"year": y, "admissions": a, "persons": p} for y, a, p in ((2019, 40, 35), (2020, 44, 41))]
    tables["acsc"] = (table_spec(["year"], counts={"admissions": "events", "persons": "persons"}),
                      _with_status(acsc, ["admissions", "persons"]))
    for name in withheld or {}:
        tables.pop(name, None)
    # The relations the format gives these tables (the auditor requires them; their quantities are
    # the format's, so only top's remainder and acsc's events apply to the columns named here).
    relations = [rel for name in tables for rel in FORMAT_RELATIONS.get(name, [])]
    return write_release(folder, tables, withheld=withheld, conditions=["diabetes", "asthma_copd"],
                         strata=list(strata), relations=relations)
