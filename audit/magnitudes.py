"""The magnitude rules of a release (claimed costs), checked by the auditor's own code.

``shared/spec/disclosure.md``: costs are published under the p %-rule (p = 10) and (2, 90 %)
dominance, over at least T persons. A released table declares its magnitude columns under
``magnitudes`` and their means under ``means`` (``docs/release-format.md``, "costs"), and the
manifest a ``magnitude_of`` relation per magnitude column. Checked:

**Release mode** (the folder alone; check ``magnitude``):

- the declaration: every magnitude names a count column of its table and a ``magnitude_of``
  relation; the policy states p and (n, k) at or above the auditor's floor (p >= 10, n >= 2,
  k <= 90);
- statuses: a value is shown exactly when its status is ``""``;
- every shown non-zero total stands on a shown persons count >= T; a total over 0 persons is 0;
- every shown mean has its total and persons shown and agrees with total / persons within the
  rounding of both (whole euros: 0.5 + 0.5 / persons);
- nested totals (a ``part_of`` relation of the persons quantity with itself: all-cause costs of
  nested person sets nest): a hidden total under a shown one is bounded by it (``magnitude-margin``);
  a hidden whole over a shown part with the same shown persons equals it; two shown totals whose
  persons differ by 1..T-1 publish the costs of that few persons.

**With the ledger** (A5): magnitudes of one quantity are released once per ledger; a release
showing them when an earlier release over the same population showed them too fails (two
releases at other breakdowns, or over other conditions, could be differenced).

**Verification mode** (with the study folder, whose ``costs.parquet`` holds each cell's total and
its largest and second-largest per-person contribution): every shown total is the rounded true
total, its persons the true persons, and it passes the rules themselves: at least T persons,
``X - x1 - x2 >= p/100 * x1`` and ``x1 + ... + xn <= k/100 * X`` (for n > 2 bounded by
x1 + (n - 1) x2); for two shown nested totals the difference passes them too, its x1 and x2
bounded by the whole's.

Findings name tables, columns and cell labels, never a value.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from audit.cells import label, quantity_key
from audit.checks import Finding, Policy
from audit.errors import ReleaseFormatError, ReleaseNotFoundError
from audit.release import Release, ReleasedTable

__all__ = ["FLOOR_DOMINANCE", "FLOOR_P_PERCENT", "ledger_findings", "magnitude_findings"]

FLOOR_P_PERCENT = 10.0
FLOOR_DOMINANCE = (2, 90.0)
_STATUSES = {"magnitudes": {"", "suppressed"}, "means": {"", "suppressed", "below-threshold"}}


def _rule(manifest_policy: dict) -> tuple[float, int, float, list[Finding]]:
    """p, n, k of the manifest's policy, raised to the floor, and findings for a looser one."""
    p, n, k = manifest_policy.get("p_percent"), manifest_policy.get("dominance_n"), manifest_policy.get("dominance_k")
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (p, n, k))
    if not numbers or p < FLOOR_P_PERCENT or n < FLOOR_DOMINANCE[0] or k > FLOOR_DOMINANCE[1]:
        finding = Finding("release", "magnitude", ("policy",),
                          f"the manifest's policy does not state a p %-rule of p >= {FLOOR_P_PERCENT:g} and "
                          f"(n, k)-dominance with n >= {FLOOR_DOMINANCE[0]}, k <= {FLOOR_DOMINANCE[1]:g}")
        return FLOOR_P_PERCENT, FLOOR_DOMINANCE[0], FLOOR_DOMINANCE[1], [finding]
    return float(p), int(n), float(k), []


def _rows(table: ReleasedTable, persons: str, total: str, mean: str | None) -> list[dict]:
    counts = table.spec["counts"][persons]
    columns = {"p": persons, "ps": counts.get("status", f"{persons}_status"), "t": total,
               "ts": table.spec["magnitudes"][total].get("status", f"{total}_status")}
    if mean is not None:
        columns |= {"m": mean, "ms": table.spec["means"][mean].get("status", f"{mean}_status")}
    by = counts["by"] if isinstance(counts["by"], list) else list(counts["by"])
    out = []
    for row in table.frame.iter_rows(named=True):
        values = {k: row[c] for k, c in columns.items()}
        values["coords"] = {c: "" if row[c] is None else str(row[c]) for c in by}
        values["key"] = quantity_key(counts["quantity"], {c: row[c] for c in by}, table.totals)
        out.append(values)
    return out


def _pairs(release: Release, quantity: str, rows: list[dict]) -> list[tuple[int, int]]:
    """(whole, part) row pairs nested by ``part_of`` relations of ``quantity`` with itself."""
    where_key = {tuple(sorted(r["coords"].items())): i for i, r in enumerate(rows)}
    pairs = set()
    for rel in release.relations:
        if not isinstance(rel, dict) or rel.get("type") != "part_of" or rel.get("part") != quantity \
                or rel.get("whole") != quantity:
            continue
        where, changes = rel.get("where") or {}, rel.get("set") or {}
        for i, row in enumerate(rows):
            coords = row["coords"]
            if all(coords.get(str(c)) in ([str(x) for x in v] if isinstance(v, list) else [str(v)])
                   for c, v in where.items()):
                j = where_key.get(tuple(sorted({**coords, **{str(c): str(v) for c, v in changes.items()}}.items())))
                if j is not None and j != i:
                    pairs.add((j, i))
    return sorted(pairs)


def _release_checks(name: str, rows: list[dict], pairs: list[tuple[int, int]], policy: Policy) -> list[Finding]:
    findings, bad = [], {}

    def note(check: str, what: str, row: dict) -> None:
        bad.setdefault((check, what), []).append(label(row["key"]))

    for row in rows:
        shown_t, shown_p = row["ts"] == "" and row["t"] is not None, row["ps"] == "" and row["p"] is not None
        if (row["ts"] == "") != (row["t"] is not None) or row["ts"] not in _STATUSES["magnitudes"]:
            note("status", "a total and its status disagree", row)
        if shown_t and row["t"] > 0 and not (shown_p and row["p"] >= policy.threshold):
            note("magnitude", f"a total is shown over a hidden persons count or fewer than {policy.threshold} "
                              "persons", row)
        if shown_t and shown_p and row["p"] == 0 and row["t"] != 0:
            note("magnitude", "a total over nobody is not 0", row)
        if "m" in row:
            if (row["ms"] == "") != (row["m"] is not None) or row["ms"] not in _STATUSES["means"]:
                note("status", "a mean and its status disagree", row)
            if row["ms"] == "" and row["m"] is not None:
                if not (shown_t and shown_p and row["p"] > 0):
                    note("magnitude", "a mean is shown whose total or persons count is hidden", row)
                elif abs(row["m"] - row["t"] / row["p"]) > 0.5 + 0.5 / row["p"] + 1e-9:
                    note("magnitude", "a mean differs from total / persons beyond the rounding to whole euros",
                         row)
    for whole, part in pairs:
        w, p = rows[whole], rows[part]
        w_shown, p_shown = w["ts"] == "" and w["t"] is not None, p["ts"] == "" and p["t"] is not None
        persons = w["ps"] == "" and p["ps"] == "" and w["p"] is not None and p["p"] is not None
        if w_shown and not p_shown:
            note("magnitude-margin", "a hidden total lies under a shown total that bounds it", p)
        if p_shown and not w_shown and persons and w["p"] == p["p"]:
            note("magnitude-margin", "a hidden total equals a shown total over the same persons", w)
        if w_shown and p_shown and persons and policy.is_small(w["p"] - p["p"]):
            note("magnitude-margin", f"two shown totals differ by the costs of 1..{policy.threshold - 1} persons", w)
    for (check, what), cells in sorted(bad.items()):
        findings.append(Finding(name, check, tuple(cells[:10]), f"{len(cells)} row(s): {what}"))
    return findings


def _truth(study: Path, table: ReleasedTable, rows: list[dict]) -> list[dict | None]:
    """The study folder's statistics of each released row (None where the study has no such row)."""
    path = Path(study) / f"{table.name}.parquet"
    if not path.is_file():
        msg = f"{study}: not the study folder of this release (no {path.name})"
        raise ReleaseNotFoundError(msg)
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError, ValueError):
        msg = f"{path}: not a readable Parquet file"
        raise ReleaseFormatError(msg) from None
    coords = list(rows[0]["coords"]) if rows else []
    needed = [*coords, "persons", "total_cents", "largest_cents", "second_cents"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        msg = f"{path}: lacks the columns {missing} of a study's cost table"
        raise ReleaseFormatError(msg)
    index = {tuple("" if v is None else str(v) for v in r[:len(coords)]): r[len(coords):]
             for r in frame.select(*coords, "persons", "total_cents", "largest_cents", "second_cents").iter_rows()}
    return [None if (hit := index.get(tuple(r["coords"].values()))) is None else
            dict(zip(("n", "cents", "x1", "x2"), hit, strict=True)) for r in rows]


def _passes(cents: int, n: int, x1: int, x2: int, threshold: int, p: float, dom_n: int, k: float) -> bool:
    if cents <= 0:
        return True
    return (n >= threshold and 100 * (cents - x1 - x2) >= p * x1
            and 100 * min(x1 + (dom_n - 1) * x2, cents) <= k * cents)


def _verify(name: str, rows: list[dict], truth: list[dict | None], pairs: list[tuple[int, int]], policy: Policy,
            rule: tuple[float, int, float]) -> list[Finding]:
    p, dom_n, k = rule
    bad: dict[str, list[str]] = {}
    for row, true in zip(rows, truth, strict=True):
        if row["ts"] != "" or row["t"] is None:
            continue
        if true is None:
            bad.setdefault("a shown total has no cell in the study folder", []).append(label(row["key"]))
            continue
        if row["t"] != (true["cents"] + 50) // 100 or (row["ps"] == "" and row["p"] != true["n"]):
            bad.setdefault("a shown total or persons count differs from the study folder's", []).append(
                label(row["key"]))
        elif not _passes(true["cents"], true["n"], true["x1"], true["x2"], policy.threshold, p, dom_n, k):
            bad.setdefault("a shown total fails the p %-rule, dominance or the persons threshold", []).append(
                label(row["key"]))
    for whole, part in pairs:
        w, q = truth[whole], truth[part]
        shown = all(rows[i]["ts"] == "" and rows[i]["t"] is not None for i in (whole, part))
        if not shown or w is None or q is None or w["n"] == q["n"]:
            continue
        if not _passes(w["cents"] - q["cents"], w["n"] - q["n"], w["x1"], w["x2"], policy.threshold, p, dom_n, k):
            bad.setdefault("two shown nested totals publish a difference that fails the magnitude rules",
                           []).append(label(rows[whole]["key"]))
    return [Finding(name, "magnitude", tuple(cells[:10]), f"{len(cells)} row(s): {what} (verification)")
            for what, cells in sorted(bad.items())]


def magnitude_findings(release: Release, policy: Policy, *, study: Path | None = None) -> list[Finding]:
    """Every magnitude check of the release (and, with ``study``, against its study folder)."""
    findings: list[Finding] = []
    declared = [t for t in release.tables.values() if t.spec.get("magnitudes")]
    if not declared:
        return findings
    p, dom_n, k, looser = _rule(release.manifest.get("policy", {}))
    findings += looser
    relations = [r for r in release.relations if isinstance(r, dict) and r.get("type") == "magnitude_of"]
    for table in declared:
        means = {m.get("total"): name for name, m in (table.spec.get("means") or {}).items() if isinstance(m, dict)}
        for total, entry in table.spec["magnitudes"].items():
            persons = entry.get("persons") if isinstance(entry, dict) else None
            if persons not in table.spec.get("counts", {}):
                findings.append(Finding(table.name, "magnitude", (total,),
                                        "a magnitude without a count column of its persons"))
                continue
            if not any(r.get("table") == table.name and r.get("magnitude") == total and r.get("persons") == persons
                       for r in relations):
                findings.append(Finding(table.name, "magnitude", (total,),
                                        "the manifest lacks the magnitude_of relation of this magnitude"))
            rows = _rows(table, persons, total, means.get(total))
            quantity = table.spec["counts"][persons]["quantity"]
            pairs = _pairs(release, quantity, rows)
            findings += _release_checks(table.name, rows, pairs, policy)
            if study is not None:
                findings += _verify(table.name, rows, _truth(study, table, rows), pairs, policy, (p, dom_n, k))
    return findings


def ledger_findings(release: Release, earlier: list[Release]) -> list[Finding]:
    """A5 for magnitudes: a quantity of magnitudes shown here and by an earlier release."""
    def quantities(r: Release) -> set[str]:
        return {str(m.get("quantity")) for t in r.tables.values()
                for m in (t.spec.get("magnitudes") or {}).values() if isinstance(m, dict)}

    findings = []
    mine = quantities(release)
    for other in earlier:
        for quantity in sorted(mine & quantities(other)):
            owners = sorted(t.name for t in release.tables.values()
                            if any(isinstance(m, dict) and m.get("quantity") == quantity
                                   for m in (t.spec.get("magnitudes") or {}).values()))
            findings += [Finding(name, "A5", (quantity,), f"magnitudes released again over the same population "
                                 f"(also in {other.release_id}): two releases of them can be differenced")
                         for name in owners]
    return findings
