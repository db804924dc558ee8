"""The auditor's checks A1-A5 and the count and percentage rules (disclosure.md, "The auditor").

Two modes:

- **Release mode** (``truth=None``): only the release is known. Checked: consistency of the
  published cells with the equations, A1 (no hidden cell exactly determined), A3 (no derivable
  hidden sum in 1..T-1), visible counts, percentages, and an *advisory* A4 ("A4-possible"): for each
  hidden cell that could be a singleton, fixing it at 1 must not pin another hidden cell at a value
  in 1..T-1. The auditor cannot know which cell really is 1, so this flags patterns that are safe
  in the true table too (it flags the correct 2-D and 3-D patterns of disclosure.md); it is
  reported, never blocking.
- **Verification mode** (``truth`` maps every hidden cell to its true value, e.g. from the engine's
  working folder): additionally the true values must satisfy the equations with the published
  cells, and A2 and A4 are checked exactly for the true primaries (hidden cells with a true value in
  1..T-1, plus any marked primary).

A5 (:func:`audit_ledger`) runs the same checks over the union of a table and all earlier releases
over the same population (equations combined, equal keys are the same quantity) and reports what
the combination discloses beyond each table alone.

A finding names the table, the check and cell labels only: never a value, hidden or derived.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from audit.cells import CellKey, label
from audit.errors import InconsistentTableError
from audit.intervals import Equation, FeasibleRegion
from audit.tables import AuditTable

__all__ = [
    "Finding",
    "Policy",
    "audit_ledger",
    "audit_table",
    "blocking",
    "check_a1",
    "check_a2",
    "check_a3",
    "check_a4",
    "check_a4_possible",
    "check_percentages",
    "check_truth",
    "check_visible_counts",
]


@dataclass(frozen=True)
class Policy:
    """The disclosure policy a release is audited against (disclosure.md, "Policy").

    Attributes:
        threshold: T; counts of 1..T-1 persons are primaries.
        margin_percent: Protection margin in percent; P = max(1, ceil(margin_percent * v / 100)).
    """

    threshold: int = 10
    margin_percent: int = 30

    def __post_init__(self) -> None:
        if self.threshold < 1:
            msg = f"threshold must be >= 1; got {self.threshold}"
            raise ValueError(msg)
        if self.margin_percent < 0:
            msg = f"margin_percent must be >= 0; got {self.margin_percent}"
            raise ValueError(msg)

    def protection(self, value: int) -> int:
        """P for a primary of ``value``: ``max(1, ceil(margin * value))``.

        Integer arithmetic on purpose: ``math.ceil(0.3 * 10)`` is 4, not 3.
        """
        return max(1, -(-self.margin_percent * value // 100))

    def is_small(self, value: float) -> bool:
        """True for a count of 1..T-1 persons."""
        return 1 <= value < self.threshold


@dataclass(frozen=True)
class Finding:
    """One reason a table must not be released (or, if advisory, should be looked at).

    Attributes:
        table: Table name.
        check: Check id: ``A1``..``A5``, ``A4-possible``, ``consistency``, ``visible-count``,
            ``percentage``, ``complement``, ``point-change``, ``identifier``, ``magnitude``,
            ``magnitude-margin`` (claimed costs, :mod:`audit.magnitudes`), ``ledger`` (the ledger
            given holds no record of the release: no verification mode, :mod:`audit.inputs`).
        cells: Labels of the cells (or columns) concerned.
        message: What is wrong, without any value from the table.
        advisory: True when the finding does not block the release (A4-possible).
    """

    table: str
    check: str
    cells: tuple[str, ...]
    message: str
    advisory: bool = False


def blocking(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that block a release (all but the advisory ones)."""
    return [finding for finding in findings if not finding.advisory]


def _region(
    table_name: str,
    equations: Sequence[Equation],
    published: Mapping[CellKey, int],
    hidden: Iterable[CellKey],
) -> FeasibleRegion | Finding:
    try:
        # Sorted so that findings come in the same order on every run (frozensets do not).
        return FeasibleRegion(equations, published, sorted(hidden, key=label))
    except InconsistentTableError as error:
        return Finding(table_name, "consistency", (), str(error))


def check_truth(table: AuditTable, truth: Mapping[CellKey, int]) -> list[Finding]:
    """Verification mode: the true values agree with the published ones and the equations.

    Catches a margin computed from the visible cells only (disclosure.md, two-release example).
    """
    findings = []
    values = {**table.published, **{key: truth[key] for key in table.hidden}}
    differ = [key for key, value in table.published.items() if key in truth and truth[key] != value]
    if differ:
        findings.append(Finding(table.name, "consistency", tuple(label(k) for k in differ),
                                "published value differs from the engine's value"))
    for equation in table.equations:
        if any(key not in values for key in equation.cells):
            continue  # a malformed table; building its feasible region reports it
        if values[equation.total] != sum(values[child] for child in equation.children):
            findings.append(Finding(
                table.name, "consistency", (label(equation.total),),
                "total does not equal the sum of its children's true values "
                "(a margin computed from visible cells only?)",
            ))
    return findings


def check_a1(table_name: str, region: FeasibleRegion) -> list[Finding]:
    """A1: no hidden cell is exactly determined (hi - lo >= 1)."""
    return [
        Finding(table_name, "A1", (label(key),), "hidden cell is exactly determined by the release")
        for key in region.hidden
        if region.fixed((key,)) is not None
    ]


def check_a2(
    table_name: str,
    region: FeasibleRegion,
    primaries: Mapping[CellKey, int],
    *,
    policy: Policy,
) -> list[Finding]:
    """A2: each primary of true value v has lo <= max(0, v - P) and hi >= v + P.

    Args:
        table_name: Table name for the findings.
        region: Feasible region of the release.
        primaries: Primary cell to its true value (verification mode only).
        policy: T and the protection margin.
    """
    findings = []
    for key, value in primaries.items():
        margin = policy.protection(value)
        if not region.reaches(key, max(0, value - margin), value + margin):
            findings.append(Finding(
                table_name, "A2", (label(key),),
                f"primary's feasible interval is narrower than the {policy.margin_percent} % "
                "protection margin",
            ))
    return findings


def check_a3(
    table_name: str, region: FeasibleRegion, equations: Sequence[Equation], *, policy: Policy
) -> list[Finding]:
    """A3: a total's hidden children, when their sum is derivable, sum to 0 or >= T.

    Sums of one hidden child are A1's case. The sum's interval comes from the whole system, so a
    sum pinned by other equations (total itself hidden) is caught too.
    """
    findings = []
    seen: set[frozenset[CellKey]] = set()
    hidden = set(region.hidden)
    # Published totals first: their hidden children's sum is known at once.
    for equation in sorted(equations, key=lambda e: e.total not in region.published):
        children = frozenset(c for c in equation.children if c in hidden)
        if len(children) < 2 or children in seen:
            continue
        seen.add(children)
        value = region.sum_under(equation)
        if value is not None and policy.is_small(value):
            findings.append(Finding(
                table_name, "A3", tuple(sorted(label(c) for c in children)),
                f"the hidden cells under total {label(equation.total)!r} have a derivable sum "
                f"of 1..{policy.threshold - 1}",
            ))
    return findings


def check_a4(
    table_name: str,
    region: FeasibleRegion,
    primaries: Mapping[CellKey, int],
) -> list[Finding]:
    """A4: with a hidden singleton (true value 1) fixed at 1, no other primary is exact.

    The person in a cell of 1 knows its value; the release must still protect the others.
    """
    findings = []
    for singleton in (key for key, value in primaries.items() if value == 1):
        known = region.fix({singleton: 1})
        near = set(region.component(singleton))
        for key in primaries:
            # A primary that moves with the singleton (a margin over it and published zeros) is
            # the singleton's own cell: knowing it tells nothing about anyone else.
            if (key != singleton and key in near and known.fixed((key,)) is not None
                    and not region.difference_fixed(singleton, key)):
                findings.append(Finding(
                    table_name, "A4", (label(singleton), label(key)),
                    "with the singleton fixed at 1 the other primary is exactly determined",
                ))
    return findings


def check_a4_possible(
    table_name: str, region: FeasibleRegion, *, marked: frozenset[CellKey], policy: Policy
) -> list[Finding]:
    """Advisory A4 without true values: what if a hidden cell were a singleton.

    Candidates are the marked primaries, or every hidden cell when none are marked, whose interval
    contains 1. Fixing a candidate at 1 must not pin another hidden cell at 1..T-1 (or pin a marked
    primary). Advisory: the candidate is rarely really 1.
    """
    findings = []
    candidates = [key for key in (marked or region.hidden) if 1 in region.interval(key)]
    for candidate in candidates:
        known = region.fix({candidate: 1})
        for key in known.hidden:  # the candidate's component: nothing else moves with it
            value = known.fixed((key,))
            if value is not None and (policy.is_small(value) or key in marked):
                findings.append(Finding(
                    table_name, "A4-possible", (label(candidate), label(key)),
                    "if the first cell were 1, the second would be exactly determined and small",
                    advisory=True,
                ))
    return findings


def check_visible_counts(table: AuditTable, *, policy: Policy) -> list[Finding]:
    """No published count is 1..T-1 (or negative)."""
    small = [label(k) for k, v in table.published.items() if policy.is_small(v)]
    negative = [label(k) for k, v in table.published.items() if v < 0]
    findings = []
    if small:
        findings.append(Finding(table.name, "visible-count", tuple(small),
                                f"published count of 1..{policy.threshold - 1} persons"))
    if negative:
        findings.append(Finding(table.name, "consistency", tuple(negative),
                                "published count is negative"))
    return findings


def check_percentages(table: AuditTable, *, policy: Policy) -> list[Finding]:
    """Percentages shown only when numerator and denominator are published and >= T.

    Also: a shown percentage implies the complement N - n, which must not be 1..T-1; a
    percentage-point change is hidden when either of its percentages is.
    """
    findings = []
    shown = {}
    for pct in table.percentages:
        shown[pct.name] = pct.shown
        if not pct.shown:
            continue
        counts = [table.published.get(pct.numerator), table.published.get(pct.denominator)]
        if any(count is None for count in counts):
            findings.append(Finding(table.name, "percentage", (pct.name,),
                                    "percentage shown while its numerator or denominator is not "
                                    "published"))
        elif any(count < policy.threshold for count in counts):
            findings.append(Finding(table.name, "percentage", (pct.name,),
                                    f"percentage shown with numerator or denominator below "
                                    f"{policy.threshold}"))
        elif policy.is_small(counts[1] - counts[0]):
            findings.append(Finding(table.name, "complement", (pct.name,),
                                    f"the implied complement (denominator minus numerator) is "
                                    f"1..{policy.threshold - 1}"))
    for change in table.changes:
        if not change.shown:
            continue
        if change.first not in shown or change.second not in shown:
            findings.append(Finding(table.name, "point-change", (change.name,),
                                    "percentage-point change refers to an unknown percentage"))
        elif not (shown[change.first] and shown[change.second]):
            findings.append(Finding(table.name, "point-change", (change.name,),
                                    "percentage-point change shown while a percentage is hidden"))
    return findings


def _primaries(
    hidden: Iterable[CellKey], marked: frozenset[CellKey], truth: Mapping[CellKey, int],
    policy: Policy,
) -> dict[CellKey, int]:
    return {k: truth[k] for k in hidden if k in marked or policy.is_small(truth[k])}


def _check_truth_covers(name: str, hidden: Iterable[CellKey], truth: Mapping[CellKey, int]) -> None:
    missing = [key for key in hidden if key not in truth]
    if missing:
        msg = f"table {name!r}: truth has no value for {len(missing)} hidden cell(s)"
        raise ValueError(msg)


def _region_checks(
    name: str,
    region: FeasibleRegion,
    equations: Sequence[Equation],
    marked: frozenset[CellKey],
    truth: Mapping[CellKey, int] | None,
    policy: Policy,
) -> list[Finding]:
    findings = check_a1(name, region) + check_a3(name, region, equations, policy=policy)
    if truth is None:
        return findings + check_a4_possible(name, region, marked=marked, policy=policy)
    primaries = _primaries(region.hidden, marked, truth, policy)
    return (findings + check_a2(name, region, primaries, policy=policy)
            + check_a4(name, region, primaries))


def audit_table(
    table: AuditTable, *, policy: Policy = Policy(), truth: Mapping[CellKey, int] | None = None
) -> list[Finding]:
    """Every check of one table (A1-A4, counts, percentages); see the module docstring for modes.

    Args:
        table: The table as released.
        policy: The policy it was released under.
        truth: True values of (at least) the hidden cells: verification mode. None: release mode.

    Returns:
        The findings; the table passes when :func:`blocking` of them is empty.

    Raises:
        ValueError: ``truth`` lacks a hidden cell.
        AuditError: A bound could not be computed (fail closed).
    """
    findings = check_visible_counts(table, policy=policy) + check_percentages(table, policy=policy)
    if truth is not None:
        _check_truth_covers(table.name, table.hidden, truth)
        findings += check_truth(table, truth)
    region = _region(table.name, table.equations, table.published, table.hidden)
    if isinstance(region, Finding):
        return [*findings, region]
    return findings + _region_checks(table.name, region, table.equations, table.primary, truth,
                                     policy)


def audit_ledger(
    table: AuditTable,
    earlier: Sequence[AuditTable],
    *,
    policy: Policy = Policy(),
    truth: Mapping[CellKey, int] | None = None,
) -> list[Finding]:
    """A5: A1-A4 over ``table`` together with all earlier releases over the same population.

    Equal keys in two tables are the same quantity. Reported (check ``A5``): a cell published in
    two versions, a cell hidden in one release and published in another, and every A1-A4 finding
    of the combination that no table shows alone. Run :func:`audit_table` for the table itself.

    Args:
        table: The new table.
        earlier: Tables released before (or together with) it over the same population.
        policy: The policy.
        truth: True values of the hidden cells of all tables (verification mode), or None.

    Returns:
        The ledger findings, each with check ``A5``; the message says which check failed.
    """
    tables = [*earlier, table]
    findings = []
    versions: dict[CellKey, dict[int, str]] = {}
    for t in tables:
        for key, value in t.published.items():
            versions.setdefault(key, {}).setdefault(value, t.name)
    for key, by_value in versions.items():
        if len(by_value) > 1:
            findings.append(Finding(table.name, "A5", (label(key),),
                                    f"published in two versions (in {sorted(by_value.values())})"))
    if findings:
        # Two versions of one quantity: the combined equations are contradictory, fail closed.
        return findings
    hidden_in = {key: t.name for t in tables for key in t.hidden}
    for key, name in hidden_in.items():
        if key in versions:
            published_in = sorted(set(versions[key].values()))
            findings.append(Finding(table.name, "A5", (label(key),),
                                    f"hidden in {name!r} but published in {published_in}"))
    equations = tuple(e for t in tables for e in t.equations)
    published = {key: value for t in tables for key, value in t.published.items()}
    # A cell published anywhere is known to the attacker everywhere.
    hidden = frozenset(key for key in hidden_in if key not in published)
    marked = frozenset().union(*(t.primary for t in tables))
    if truth is not None:
        _check_truth_covers(table.name, hidden_in, truth)
    region = _region(table.name, equations, published, hidden)
    if isinstance(region, Finding):
        return [*findings,
                replace(region, check="A5", message=f"with earlier releases: {region.message}")]
    combined = _region_checks(table.name, region, equations, marked & hidden, truth, policy)
    alone = set()
    for t in tables:
        own = _region(t.name, t.equations, t.published, t.hidden)
        if not isinstance(own, Finding):
            alone |= {(f.check, f.cells)
                      for f in _region_checks(t.name, own, t.equations, t.primary, truth, policy)}
    return findings + [
        replace(f, check="A5", message=f"{f.check} with earlier releases: {f.message}")
        for f in combined
        if (f.check, f.cells) not in alone
    ]
