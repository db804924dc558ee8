"""Auditing a whole release folder (and its ledger): every check, a verdict per table, a report.

:func:`audit_release` reads the folder (:mod:`audit.release`), rebuilds the equations
(:mod:`audit.structure`) and checks, over all tables of the release together (the same quantity
in two tables is one cell):

- checksums, unlisted files, every file a file of an audited table (:mod:`audit.files`), the
  relations the format requires (:mod:`audit.required`), undescribed columns, CSV = Parquet, one
  value and status per key;
- the policy against a floor; visible counts (none 1..T-1); percentages and changes (shown
  only from shown counts >= T, complement not 1..T-1, value equal to the counts' ratio);
  events hidden with their persons; identifier-like columns and values;
- A1 (no hidden cell exactly determined), derived counts (no complement, remainder or other
  implied quantity exactly 1..T-1), A3 (no derivable hidden sum under a total of 1..T-1);
- magnitudes (claimed costs; :mod:`audit.magnitudes`): shown totals over shown persons >= T,
  means, nested totals; with the study folder (verification mode) the p %-rule and dominance;
- with the ledger's record of this release (verification mode): A2 and A4 with true values;
- with the ledger's earlier releases: A5, the same checks over all releases together.

A finding names tables, checks and cell labels, never a value.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from audit.cells import label
from audit.channels import scan_channels
from audit.checks import Finding, Policy, check_percentages
from audit.errors import InconsistentTableError
from audit.floor import audit_policy, record_policy_findings
from audit.identifiers import scan_identifiers
from audit.inputs import NO_RECORD, check_study, earlier_releases, ledger_record
from audit.intervals import FeasibleRegion
from audit.magnitudes import ledger_findings, magnitude_findings
from audit.output import write_atomically
from audit.persons import implied_margins, person_relations
from audit.release import Cells, Key, Release, parse_checksum, read_release, release_cells
from audit.required import missing_relations
from audit.singletons import singleton_pairs
from audit.structure import Structure, instantiate
from audit.tables import AuditTable, Percentage, PointChange

__all__ = ["REPORT_FORMAT", "Report", "audit_release"]

REPORT_FORMAT = "pfl-audit-report/1"


@dataclass
class Report:
    """The outcome of an audit (``docs/release-format.md``, "Audit")."""

    release: str
    release_id: str
    mode: str
    policy: Policy
    findings: list[Finding]
    tables: dict[str, dict]
    earlier_releases: int = 0
    milps: int = 0
    seconds: float = 0.0
    audited: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

    @property
    def passed(self) -> bool:
        return not any(not f.advisory for f in self.findings)

    def as_dict(self) -> dict:
        return {
            "format": REPORT_FORMAT, "release": self.release, "release_id": self.release_id,
            "audited": self.audited, "mode": self.mode,
            "policy": {"threshold": self.policy.threshold, "margin_percent": self.policy.margin_percent},
            "verdict": "pass" if self.passed else "fail", "earlier_releases": self.earlier_releases,
            "tables": self.tables, "findings": [asdict(f) for f in self.findings],
            "counts": {"milp": self.milps, "seconds": round(self.seconds, 3)},
        }

    def write(self, path: Path) -> None:
        """Write the JSON report complete or not at all (:func:`audit.output.write_atomically`)."""
        write_atomically(Path(path), json.dumps(self.as_dict(), indent=2) + "\n")


def _ratio_checks(release: Release, cells: Cells, policy: Policy) -> list[Finding]:
    """Percentages, shares and changes of every table, row by row."""
    findings = []
    for table in release.tables.values():
        spec = table.spec
        percentages, changes, wrong = [], [], 0
        for i, row in enumerate(table.frame.iter_rows(named=True)):
            names = {}
            for column, entry in spec.get("percentages", {}).items():
                status = row[entry.get("status", f"{column}_status")]
                try:
                    num = _ref_key(entry["numerator"], row, table.totals)
                    den = _ref_key(entry["denominator"], row, table.totals)
                except KeyError:
                    findings.append(Finding(table.name, "percentage", (column,), "refers to a column it does not have"))
                    break
                name = f"{column}#{i}"
                names[column] = name
                shown = status == "" and row[column] is not None
                percentages.append(Percentage(name, num, den, shown))
                if shown and num in cells.published and den in cells.published and cells.published[den] > 0:
                    expected = cells.published[num] / cells.published[den] * float(entry.get("scale", 1))
                    wrong += not math.isclose(float(row[column]), expected, rel_tol=1e-9, abs_tol=1e-12)
                if (status == "") != (row[column] is not None):
                    findings.append(Finding(table.name, "status", (column,), "a value and its status disagree"))
            for column, entry in spec.get("changes", {}).items():
                shown = row[entry.get("status", f"{column}_status")] == "" and row[column] is not None
                first, second = names.get(entry.get("from")), names.get(entry.get("to"))
                changes.append(PointChange(f"{column}#{i}", first or "?", second or "?", shown))
                if shown and first and second and row[entry["from"]] is not None and row[entry["to"]] is not None:
                    expected = (row[entry["to"]] - row[entry["from"]]) * float(entry.get("scale", 1))
                    wrong += not math.isclose(float(row[column]), expected, rel_tol=1e-9, abs_tol=1e-9)
        probe = AuditTable(table.name, (), cells.published, frozenset(), percentages=tuple(percentages),
                           changes=tuple(changes))
        raw = check_percentages(probe, policy=policy)
        by_check: dict[str, int] = {}
        for f in raw:
            by_check[f.check] = by_check.get(f.check, 0) + 1
        findings += [Finding(table.name, check, (), f"{n} row(s): {next(f.message for f in raw if f.check == check)}")
                     for check, n in sorted(by_check.items())]
        if wrong:
            findings.append(Finding(table.name, "percentage", (), f"{wrong} shown value(s) differ from the ratio of "
                                    "the shown counts"))
    return findings


def _ref_key(ref: dict, row: dict, totals: dict[str, str]) -> Key:
    from audit.cells import quantity_key

    return quantity_key(ref["quantity"], {coord: row[column] for coord, column in ref["by"].items()}, totals)


def _events(release: Release, structure: Structure) -> list[Finding]:
    findings = []
    for table_name, events, persons, _ in structure.events:
        table = release.tables.get(table_name)
        if table is None:
            continue
        spec = table.spec.get("counts", {})
        if events not in spec or persons not in spec:
            findings.append(Finding(table_name, "events", (events, persons), "events_of names columns that are not counts"))
            continue
        late = table.frame.filter((table.frame[spec[persons]["status"]] != "") & (table.frame[spec[events]["status"]] == ""))
        if late.height:
            findings.append(Finding(table_name, "events", (events,),
                                    f"{late.height} row(s) show events whose persons are hidden"))
    return findings


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [t for v in value for t in _strings(v)]
    return []


def _scan_texts(release: Release) -> list[Finding]:
    """Identifier-like values in the manifest's texts and in summary.md (they leave with the tables)."""
    import polars as pl

    texts = {"manifest.json": _strings(release.manifest)}
    summary = release.path / "summary.md"
    if summary.is_file():
        texts["summary.md"] = summary.read_text(encoding="utf-8", errors="replace").splitlines()
    findings = []
    for name, lines in texts.items():
        # Checksums are hex, not identifiers: a bare 64-hex one (releases made before they were
        # grouped in fours) holds chance digit runs, so checksums are left out of the scan.
        lines = [t for t in lines if parse_checksum(t) is None]
        findings += scan_identifiers(name, pl.DataFrame({"text": lines}, schema={"text": pl.String}))
    return [Finding("release", f.check, (f"{f.table}",), f.message) for f in findings]


def _region_checks(name: str, region: FeasibleRegion, structure: Structure, hidden: set[Key],
                   policy: Policy) -> list[Finding]:
    """A1 on hidden cells, exactness of derived counts, A3 on every equation."""
    findings = []
    for key in sorted(hidden, key=label):
        if region.fixed((key,)) is not None:
            findings.append(Finding(name, "A1", (label(key),), "hidden cell is exactly determined by the release"))
    for key in sorted(structure.derived - structure.slack, key=label):
        value = region.fixed((key,))
        if value is not None and policy.is_small(value):
            findings.append(Finding(name, "derived-count", (label(key),),
                                    f"a count the release implies is exactly 1..{policy.threshold - 1}"))
    unknown = set(region.hidden)
    seen: set[frozenset] = set()
    # Published totals first: their unknown children's sum is known at once.
    for equation in sorted(structure.equations, key=lambda e: e.total not in region.published):
        children = frozenset(c for c in equation.children if c in unknown)
        if len(children) < 2 or children in seen or children & structure.slack:
            continue  # a sum with a slack in it counts no persons
        seen.add(children)
        value = region.sum_under(equation)
        if value is not None and policy.is_small(value):
            findings.append(Finding(name, "A3", tuple(sorted(label(c) for c in children)),
                                    f"the unknown cells under {label(equation.total)!r} have a derivable sum of "
                                    f"1..{policy.threshold - 1}"))
    return findings


def _verification(release: Release, region: FeasibleRegion, record: dict, policy: Policy,
                  structure: Structure) -> list[Finding]:
    """A2 and A4 with the true values of the steward's record (and the truth's consistency)."""
    truth: dict[Key, int] = {}
    primary: set[Key] = set()
    for cell in record.get("cells", []):
        for raw in cell.get("keys", []):
            key = (str(raw[0]), tuple(sorted((str(c), str(v)) for c, v in raw[1].items())))
            truth[key] = int(cell["value"])
            if cell.get("primary"):
                primary.add(key)
    findings = []
    published = {k: v for k, v in region.published.items() if k in truth and truth[k] != v}
    if published:
        findings.append(Finding("release", "consistency", tuple(sorted(label(k) for k in published))[:10],
                                "published value differs from the steward's record"))
    missing = [k for k in region.hidden if k not in truth]
    if missing:
        findings.append(Finding("release", "verification", (label(missing[0]),),
                                f"the steward's record lacks {len(missing)} unknown cell(s) of the release"))
        return findings
    for equation in structure.equations:
        values = [truth.get(k, region.published.get(k)) for k in equation.cells]
        if None not in values and values[0] != sum(values[1:]):
            findings.append(Finding("release", "consistency", (label(equation.total),),
                                    "the true values break an equation (a margin computed from shown cells only?)"))
    primaries = {k: truth[k] for k in region.hidden
                 if k not in structure.slack and (k in primary or policy.is_small(truth[k]))}
    for key, value in sorted(primaries.items(), key=lambda kv: label(kv[0])):
        if not region.reaches(key, max(0, value - policy.protection(value)), value + policy.protection(value)):
            findings.append(Finding("release", "A2", (label(key),),
                                    f"primary's interval is narrower than the {policy.margin_percent} % margin"))
    pairs, programs = singleton_pairs(region, truth, primaries)
    region.milps += programs
    for singleton, key in pairs:
        findings.append(Finding("release", "A4", (label(singleton), label(key)),
                                "with the singleton fixed at 1 another primary is exactly determined"))
    return findings


def _attribute(findings: list[Finding], cells: Cells, structure: Structure) -> list[Finding]:
    """Give a region finding (table ``release``) the tables whose cells it names."""
    tables_of: dict[str, set[str]] = {label(k): v for k, v in cells.tables_of.items()}
    for eq in structure.equations:
        owners = set().union(*(cells.tables_of.get(k, set()) for k in eq.cells))
        for k in eq.cells:
            if k not in cells.tables_of:
                tables_of.setdefault(label(k), set()).update(owners)
    out = []
    for f in findings:
        if f.table != "release":
            out.append(f)
            continue
        owners = sorted(set().union(*(tables_of.get(c, set()) for c in f.cells))) or ["release"]
        out += [Finding(t, f.check, f.cells, f.message, f.advisory) for t in owners]
    return out


def _region(structure: Structure, cells: Cells) -> FeasibleRegion:
    unknown = (cells.hidden | structure.derived | structure.slack) - set(cells.published)
    return FeasibleRegion(structure.equations, cells.published, sorted(unknown, key=label))


def audit_release(folder: Path, *, ledger: Path | None = None, min_threshold: int = 10,
                  study: Path | None = None) -> Report:
    """Audit a release folder, alone or with its ledger (A5 and verification mode).

    ``study``: the study folder the release was made from; the magnitude rules are then re-checked
    on its per-cell statistics (verification mode; :mod:`audit.magnitudes`).

    Raises:
        ReleaseNotFoundError: the folder is not a release (pfl-audit exit 3).
        ReleaseFormatError: the manifest or a table cannot be read (exit 4).
        AuditError: a bound could not be computed (fail closed; exit 1).

    A ``ledger`` that is no ledger, holds an unreadable record of the release or lacks the copy
    of a release its index lists, or a ``study`` that is no study folder, is refused (exit 3 or
    4); a ledger without a record of the release fails the audit with a ``ledger`` finding: the
    audit never passes checking less than it was asked to (:mod:`audit.inputs`).
    """
    began = time.perf_counter()
    release = read_release(folder)
    # What was asked for must be there, before any check runs (fail closed: audit.inputs).
    record = ledger_record(ledger, release.release_id) if ledger is not None else None
    earlier = earlier_releases(ledger, release.release_id) if ledger is not None else []
    if study is not None:
        check_study(study)
    findings = list(release.findings) + missing_relations(release)
    if ledger is not None and record is None:
        findings.append(Finding("release", "ledger", (), NO_RECORD))
    policy, looser = audit_policy(release.manifest["policy"], min_threshold=min_threshold)
    findings += looser
    cells = release_cells(release)
    findings += cells.findings
    known = set(cells.published) | cells.hidden
    structure = instantiate([(release, "")], known)
    small = sorted(label(k) for k, v in cells.published.items() if policy.is_small(v))
    if small:
        findings.append(Finding("release", "visible-count", tuple(small), f"published count of 1..{policy.threshold - 1}"))
    findings += _ratio_checks(release, cells, policy) + _events(release, structure)
    findings += [Finding(*f) for f in structure.findings]
    for table in release.tables.values():
        findings += scan_identifiers(table.name, table.frame)
    findings += _scan_texts(release) + scan_channels(release)
    findings += magnitude_findings(release, policy, study=study)
    milps, mode, region = 0, "release" if study is None else "verification", None
    try:
        region = _region(structure, cells)
    except InconsistentTableError as error:
        findings.append(Finding("release", "consistency", (), str(error)))
    if region is not None:
        findings += _region_checks("release", region, structure, cells.hidden, policy)
        if record is not None:
            mode = "verification"
            findings += record_policy_findings(release.manifest["policy"], record.get("policy"))
            findings += _verification(release, region, record, policy, structure)
        milps += region.milps
    findings += ledger_findings(release, earlier)
    if earlier:
        a5, n = _ledger_checks(release, cells, structure, earlier, policy, findings,
                               ledger=ledger if record is not None else None)
        findings += a5
        milps += n
    findings = _attribute(findings, cells, structure)
    tables = _verdicts(release, findings)
    return Report(str(release.path), release.release_id, mode, policy, findings, tables, len(earlier), milps,
                  time.perf_counter() - began)


def _ledger_checks(release: Release, cells: Cells, structure: Structure, earlier: list[Release],
                   policy: Policy, alone: list[Finding], *, ledger: Path | None = None) -> tuple[list[Finding], int]:
    """A5: this release and every earlier one together; what the combination discloses.

    ``ledger`` (verification mode: the steward's records are at hand): the releases are related by
    who is counted too (:mod:`audit.persons`), and the implied cells of 1..T-1 persons are checked
    against the margin with their true sizes.
    """
    findings: list[Finding] = []
    union = Cells(dict(cells.published), set(cells.hidden), {k: set(v) for k, v in cells.tables_of.items()})
    parts = [(release, "")]
    for other in earlier:
        prefix = f"earlier {other.release_id}/"
        theirs = release_cells(other, prefix=prefix)
        parts.append((other, prefix))
        for key, value in theirs.published.items():
            if key in union.published and union.published[key] != value:
                findings.append(Finding("release", "A5", (label(key),),
                                        f"published in two versions (here and in {other.release_id})"))
            union.published.setdefault(key, value)
        union.hidden |= theirs.hidden
        for key, owners in theirs.tables_of.items():
            union.tables_of.setdefault(key, set()).update(owners)
    for key in sorted(cells.hidden & set(union.published), key=label):
        findings.append(Finding("release", "A5", (label(key),), "hidden here but published by an earlier release"))
    for key in sorted(cells.published.keys() & union.hidden, key=label):
        findings.append(Finding("release", "A5", (label(key),), "published here but hidden by an earlier release"))
    if any("two versions" in f.message for f in findings):
        return findings, 0  # contradictory equations: nothing more to bound (fail closed)
    union.hidden -= set(union.published)
    combined = instantiate(parts, set(union.published) | union.hidden)
    persons = None
    if ledger is not None:
        ids = [other.release_id for other in earlier] + [release.release_id]
        persons = person_relations(ledger, ids, threshold=policy.threshold)
        findings += persons.findings
        combined.equations += persons.equations
        combined.derived |= set(persons.implied) | {k for e in persons.equations for k in e.cells
                                                    if k not in union.published and k not in union.hidden}
    try:
        region = _region(combined, union)
    except InconsistentTableError as error:
        return [*findings, Finding("release", "A5", (), f"with earlier releases: {error}")], 0
    before = {(f.check, f.cells) for f in alone}
    for f in _region_checks("release", region, combined, union.hidden, policy):
        if (f.check, f.cells) not in before:
            findings.append(Finding("release", "A5", f.cells, f"{f.check} with earlier releases: {f.message}"))
    if persons is not None:
        findings += implied_margins(region, persons, union.hidden, policy)
    return findings, region.milps


def _verdicts(release: Release, findings: list[Finding]) -> dict[str, dict]:
    out = {}
    for name, table in release.tables.items():
        own = [f for f in findings if f.table == name]
        statuses = [c for c in table.frame.columns if c.endswith("_status")]
        hidden = sum(int((table.frame[c] != "").sum()) for c in statuses)
        shown = sum(int((table.frame[c] == "").sum()) for c in statuses)
        out[name] = {"verdict": "fail" if any(not f.advisory for f in own) else "pass", "shown": shown,
                     "hidden": hidden, "findings": [asdict(f) for f in own]}
    for name, why in release.withheld.items():
        out[name] = {"verdict": "withheld", "reason": why, "findings": []}
    general = [f for f in findings if f.table not in release.tables]
    if general:
        out["release"] = {"verdict": "fail" if any(not f.advisory for f in general) else "pass",
                          "findings": [asdict(f) for f in general]}
    return out
