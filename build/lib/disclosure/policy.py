"""The disclosure policy: set by the data steward, made stricter (never looser) by a study.

``shared/spec/disclosure.md``, "Policy": threshold T = 10 persons, protection margin 30 %
(P = max(1, ceil(0.3 v))), zeros published, rounding off; magnitudes by the p %-rule (p = 10)
and (n, k)-dominance (2, 90 %). Every released table records the policy it was released under
(:meth:`Policy.as_dict`).

A researcher's study configuration may only tighten the steward's policy. Which direction is
"stricter" is decided here, in code, for every key (:meth:`Policy.stricter`):

=================  ==========================================================
key                stricter means
=================  ==========================================================
``threshold``      higher (more persons needed before a count is shown)
``margin``         higher (wider protection intervals)
``publish_zeros``  ``False`` may replace ``True``, never the other way round
``rounding``       a base may be added or coarsened, never removed or refined
``p_percent``      higher
``dominance_n``    higher (more contributors may not dominate)
``dominance_k``    lower (a smaller share already counts as dominance)
=================  ==========================================================

The (n, k)-dominance pair is not totally ordered, so the steward's (n, k) is a floor on both
coordinates: a researcher's n must be at least the steward's and k at most the steward's.

Below every steward's policy lies the engine's hard floor, :data:`FLOOR`: the spec's defaults
(T = 10, margin 30 %, and the defaults of every other key). A release ledger cannot be created
with a looser policy, and no release is made under one (:func:`below_floor`), whatever its ledger
file says. :class:`Policy` objects with smaller thresholds remain valid for the disclosure
algorithms themselves (the spec's worked examples), never on a path that publishes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from fractions import Fraction
from typing import Any

from extracts.errors import ConfigError

__all__ = ["FLOOR", "Policy", "below_floor"]


@dataclass(frozen=True, slots=True)
class Policy:
    """A disclosure-control policy (disclosure.md, "Policy").

    Attributes:
        threshold: T; a count of 1..T-1 persons is suppressed.
        margin: protection margin; a primary with value v must be hidden within an interval at
            least P = max(1, ceil(margin * v)) either side of v.
        publish_zeros: whether zero cells are shown (they are never primaries or secondaries).
        rounding: base that published counts are rounded to afterwards, or ``None``.
        p_percent: p of the p %-rule for magnitudes.
        dominance_n: n of the (n, k)-dominance rule for magnitudes.
        dominance_k: k (a percentage) of the (n, k)-dominance rule.
    """

    threshold: int = 10
    margin: float = 0.30
    publish_zeros: bool = True
    rounding: int | None = None
    p_percent: float = 10.0
    dominance_n: int = 2
    dominance_k: float = 90.0

    def __post_init__(self) -> None:
        problems = _range_problems(self)
        if problems:
            msg = "disclosure policy: " + "; ".join(problems)
            raise ConfigError(msg)

    @classmethod
    def from_dict(cls, raw: object) -> Policy:
        """A policy from a plain mapping (a ledger's JSON), every key given and known.

        Raises:
            ConfigError: not a mapping, unknown or missing keys, or invalid values.
        """
        known = [f.name for f in fields(cls)]
        if not isinstance(raw, Mapping) or sorted(map(str, raw)) != sorted(known):
            msg = f"disclosure policy: expected a mapping of exactly the keys {sorted(known)}"
            raise ConfigError(msg)
        problems = [p for key, value in raw.items() for p in _type_problems(str(key), value)]
        if problems:
            msg = "disclosure policy: " + "; ".join(problems)
            raise ConfigError(msg)
        return cls(**{str(k): v for k, v in raw.items()})

    def protection(self, v: int) -> int:
        """The protection P = max(1, ceil(margin * v)) a primary of value ``v`` needs.

        The product is taken in exact rational arithmetic: in floating point 0.3 * 10 may round
        up to 3.0000000000000004, which would ask for P = 4 instead of 3.
        """
        return max(1, math.ceil(Fraction(repr(float(self.margin))) * int(v)))

    def as_dict(self) -> dict[str, Any]:
        """The policy as a plain mapping, for the manifest of a release."""
        return asdict(self)

    def stricter(self, other_overrides: Mapping[str, Any]) -> Policy:
        """Apply a researcher's overrides, refusing any that would loosen this policy.

        Args:
            other_overrides: keys of :class:`Policy` and their new values (a study's
                ``disclosure`` section); keys not given keep the steward's value.

        Returns:
            The stricter (or equal) policy.

        Raises:
            ConfigError: naming every unknown, invalid or looser key (all problems at once).
        """
        known = {f.name for f in fields(self)}
        unknown = sorted(str(k) for k in other_overrides if k not in known)
        if unknown:
            msg = f"disclosure policy: unknown keys {unknown}; expected keys from {sorted(known)}"
            raise ConfigError(msg)
        problems = [p for key, value in other_overrides.items() for p in _type_problems(key, value)]
        if problems:
            msg = "disclosure policy: " + "; ".join(problems)
            raise ConfigError(msg)
        candidate = replace(self, **dict(other_overrides))  # validates ranges
        looser = _looser_keys(self, candidate)
        if looser:
            msg = (
                "disclosure policy: a study may make the steward's policy stricter, never looser; "
                "refused: " + "; ".join(looser)
            )
            raise ConfigError(msg)
        return candidate


def _type_problems(key: str, value: Any) -> list[str]:
    integers = {"threshold", "dominance_n"}
    numbers = {"margin", "p_percent", "dominance_k"}
    if key in integers and (isinstance(value, bool) or not isinstance(value, int)):
        return [f"{key}: expected an integer"]
    if key in numbers and (isinstance(value, bool) or not isinstance(value, int | float)):
        return [f"{key}: expected a number"]
    if key == "publish_zeros" and not isinstance(value, bool):
        return [f"{key}: expected true or false"]
    if key == "rounding" and value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        return [f"{key}: expected an integer base or null"]
    return []


def _range_problems(policy: Policy) -> list[str]:
    problems = []
    for key in ("threshold", "margin", "publish_zeros", "rounding", "p_percent", "dominance_n", "dominance_k"):
        problems += _type_problems(key, getattr(policy, key))
    if problems:
        return problems
    if policy.threshold < 1:
        problems.append("threshold: expected an integer >= 1")
    if not 0 <= policy.margin <= 1:
        problems.append("margin: expected a fraction in [0, 1]")
    if policy.rounding is not None and policy.rounding < 1:
        problems.append("rounding: expected a base >= 1 or null")
    if not 0 < policy.p_percent <= 100:
        problems.append("p_percent: expected a percentage in (0, 100]")
    if policy.dominance_n < 1:
        problems.append("dominance_n: expected an integer >= 1")
    if not 0 < policy.dominance_k <= 100:
        problems.append("dominance_k: expected a percentage in (0, 100]")
    return problems


# The engine's hard floor (disclosure.md, "Policy": the defaults): no ledger and no release below it.
FLOOR = Policy()


def below_floor(policy: Policy) -> list[str]:
    """Every key on which ``policy`` is looser than the engine's :data:`FLOOR` (empty: at or above)."""
    return _looser_keys(FLOOR, policy, whose="the engine's floor")


def _looser_keys(steward: Policy, study: Policy, *, whose: str = "the steward's") -> list[str]:
    """Every key on which ``study`` is looser than ``steward``, with the rule it breaks."""
    looser = []
    if study.threshold < steward.threshold:
        looser.append(f"threshold: may not be lowered below {whose} {steward.threshold}")
    if study.margin < steward.margin:
        looser.append(f"margin: may not be lowered below {whose} {steward.margin}")
    if study.publish_zeros and not steward.publish_zeros:
        looser.append(f"publish_zeros: may not be turned on when {whose} has it off")
    if steward.rounding is not None:
        if study.rounding is None:
            looser.append(f"rounding: may not be removed ({whose} rounds to base {steward.rounding})")
        elif study.rounding < steward.rounding:
            looser.append(f"rounding: may not be finer than {whose} base {steward.rounding}")
    if study.p_percent < steward.p_percent:
        looser.append(f"p_percent: may not be lowered below {whose} {steward.p_percent}")
    # (n, k) is only partially ordered: the steward's pair is a floor on both coordinates.
    if study.dominance_n < steward.dominance_n:
        looser.append(f"dominance_n: may not be lowered below {whose} {steward.dominance_n}")
    if study.dominance_k > steward.dominance_k:
        looser.append(f"dominance_k: may not be raised above {whose} {steward.dominance_k}")
    return looser
