"""The policy floor: the least protection any release must have, whatever its manifest says.

``shared/spec/disclosure.md``, "Policy": a steward's policy may be made stricter, never looser than
the defaults T = 10 persons and a protection margin of 30 %. A release states its policy in its
manifest, but the manifest is written by whoever ran the release (``policy.margin=0`` on a command
line, or an edited file): the auditor therefore

- fails a release whose manifest states a looser policy (finding ``policy``), and
- runs every check under the stricter of the manifest's policy and the floor: visible counts and
  percentages against max(T, 10), A2's intervals against max(margin, 30 %). A release protected
  at margin 0 thus fails A2 in verification mode even when its manifest claims 30 %.

With the ledger, the steward's record of the release states the policy it was made under; a
manifest that differs from it is a finding too.
"""

from __future__ import annotations

import math
from fractions import Fraction

from audit.checks import Finding, Policy

__all__ = ["FLOOR", "audit_policy", "record_policy_findings"]

FLOOR = Policy(threshold=10, margin_percent=30)


def _threshold(raw: object) -> int | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) or raw != int(raw):
        return None
    return int(raw)


def _margin(raw: object) -> Fraction | None:
    """The margin as an exact fraction (0.3 is 3/10, not 0.29999...), or None if not one."""
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        return None
    value = Fraction(repr(float(raw)))
    return value if 0 <= value <= 1 else None


def audit_policy(raw: object, *, min_threshold: int = FLOOR.threshold) -> tuple[Policy, list[Finding]]:
    """The policy to audit against, and what is wrong with the stated one.

    Args:
        raw: the manifest's ``policy`` (a mapping with ``threshold`` and ``margin``, a fraction).
        min_threshold: the auditor's threshold floor; never below :data:`FLOOR`'s.

    Returns:
        The policy the checks use (the stated one raised to the floor) and the findings: a policy
        that is missing, malformed, or looser than the floor.
    """
    min_threshold = max(min_threshold, FLOOR.threshold)
    findings = []
    stated = raw if isinstance(raw, dict) else {}
    threshold, margin = _threshold(stated.get("threshold")), _margin(stated.get("margin"))
    if threshold is None or margin is None:
        findings.append(Finding("release", "policy", ("policy",),
                                "the manifest's policy has no whole-number threshold or no margin between 0 and 1"))
    if threshold is not None and threshold < min_threshold:
        findings.append(Finding("release", "policy", ("threshold",),
                                f"released under a threshold below the auditor's floor of {min_threshold}"))
    if margin is not None and margin * 100 < FLOOR.margin_percent:
        findings.append(Finding("release", "policy", ("margin",),
                                f"released under a protection margin below the auditor's floor of "
                                f"{FLOOR.margin_percent} %"))
    percent = math.ceil(margin * 100) if margin is not None else FLOOR.margin_percent
    return Policy(threshold=max(threshold or 0, min_threshold),
                  margin_percent=max(percent, FLOOR.margin_percent)), findings


def record_policy_findings(manifest_policy: object, record_policy: object) -> list[Finding]:
    """Verification mode: the manifest states the policy the steward's record says it was made under."""
    if not isinstance(record_policy, dict):
        return []  # an older record without its policy: the floor still holds
    stated = manifest_policy if isinstance(manifest_policy, dict) else {}
    differ = sorted(k for k in ("threshold", "margin") if k in record_policy and stated.get(k) != record_policy[k])
    if not differ:
        return []
    _, looser = audit_policy(record_policy)
    return [Finding("release", "policy", tuple(differ),
                    "the manifest's policy differs from the steward's record of the release"
                    + ("; the record's is below the auditor's floor" if looser else ""))]
