"""The equations of a release, rebuilt from its manifest's relations (``docs/release-format.md``).

Relations are templates over quantities; each is instantiated over every known cell key (the
cells the release's tables show, and, for A5, those of earlier releases too). A key a relation
needs that no table shows is a *derived* cell: an unknown non-negative integer (a complement
``N - n``, the remainder of a top list, a quantity of a withheld table). The auditor's own
reading of the format; it shares no code with the engine.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from audit.cells import quantity_key
from audit.errors import ReleaseFormatError
from audit.intervals import Equation
from audit.release import Key, Release

__all__ = ["Structure", "instantiate"]


@dataclass
class Structure:
    """Equations over cell keys, and the derived keys they introduced (with their tables)."""

    equations: list[Equation] = field(default_factory=list)
    derived: set[Key] = field(default_factory=set)
    slack: set[Key] = field(default_factory=set)  # derived differences that count no persons
    findings: list[tuple[str, str, tuple[str, ...], str]] = field(default_factory=list)  # table, check, cells, why
    events: list[tuple[str, str, str, str]] = field(default_factory=list)  # (table, events, persons, prefix)
    _seen: set = field(default_factory=set)

    def add(self, total: Key, children: Iterable[Key], known: set[Key], *, slack: Key | None = None) -> None:
        children = tuple(children)
        if slack is not None and slack not in known:
            self.slack.add(slack)
        signature = (total, tuple(sorted(children)))
        if signature in self._seen or children == (total,):
            return
        self._seen.add(signature)
        for k in (total, *children):
            if k not in known:
                self.derived.add(k)
        self.equations.append(Equation(total, children))


def _by_quantity(keys: Iterable[Key]) -> dict[str, list[Key]]:
    out: dict[str, list[Key]] = {}
    for key in keys:
        out.setdefault(key[0], []).append(key)
    return out


def _with(key_coords: tuple, **changes: str) -> dict[str, str]:
    return {**dict(key_coords), **changes}


def _matches(coords: dict[str, str], where: dict) -> bool:
    """True when coordinates match ``where``: a value, or a list of values, per coordinate."""
    for c, v in where.items():
        wanted = [str(x) for x in v] if isinstance(v, list) else [str(v)]
        if coords.get(str(c)) not in wanted:
            return False
    return True


def _field(rel: dict, name: str, kind: type) -> object:
    value = rel.get(name)
    if not isinstance(value, kind):
        msg = f"manifest: a {rel.get('type')!r} relation lacks {name!r} (or it is not a {kind.__name__})"
        raise ReleaseFormatError(msg)
    return value


def instantiate(releases: list[tuple[Release, str]], known: set[Key]) -> Structure:
    """Every equation of the relations of ``releases`` over the ``known`` keys.

    Args:
        releases: each release with the prefix its tables carry in findings.
        known: the keys of every cell the releases' tables show.
    """
    out = Structure()
    for release, prefix in releases:
        for rel in release.relations:
            # Relations are read in order, over the known keys and the derived ones so far: a
            # margin of complements (listed after the relation that derives them) adds them up.
            quantity = _by_quantity(known | out.derived | out.slack)
            kind = rel.get("type") if isinstance(rel, dict) else None
            if kind == "margin":
                _margin(rel, quantity, known, out)
            elif kind == "part_of":
                _part_of(rel, quantity, known, out)
            elif kind == "chain":
                _chain(rel, quantity, known, out)
            elif kind == "equal":
                _equal(rel, quantity, known, out)
            elif kind == "remainder":
                _remainder(rel, release, known, out)
            elif kind == "events_of":
                out.events.append((str(_field(rel, "table", str)), str(_field(rel, "events", str)),
                                   str(_field(rel, "persons", str)), prefix))
            else:
                msg = f"{release.path}: the manifest has a relation of unknown type {kind!r}"
                raise ReleaseFormatError(msg)
        _age_rule(release, _by_quantity(known | out.derived), known, out, prefix)
        _complement_margins(release.relations, known, out)
    return out


def _complement_margins(relations: list, known: set, out: Structure) -> None:
    """Margins of complements, inferred: when a part and its whole both add up over a stratum's
    levels, so does their difference (N - n of Total = the sum of the levels' N - n).

    The auditor adds them whether or not the manifest declares them, so that A3 sees a sum of
    hidden complements under a complement that the release determines (issue 11, item 6).
    """
    margins = {(r.get("quantity"), r.get("dimension")): r.get("levels") for r in relations
               if isinstance(r, dict) and r.get("type") == "margin"}
    for rel in relations:
        if not isinstance(rel, dict) or rel.get("type") != "part_of" or rel.get("protect", True) is False:
            continue
        for (q, dim), levels in list(margins.items()):
            where = rel.get("where", {})
            if (q != rel.get("part") or (rel.get("whole"), dim) not in margins or not isinstance(levels, list)
                    or (isinstance(where, dict) and dim in where) or dim in rel.get("drop", [])):
                continue
            _margin({"type": "margin", "quantity": rel.get("complement"), "dimension": dim, "levels": levels},
                     _by_quantity(known | out.derived), known, out)


def _age_rule(release: Release, quantity: dict, known: set, out: Structure, prefix: str) -> None:
    """The age rule, rebuilt from the manifest's ``definitions`` with the auditor's own reading.

    A condition with ``min_age`` holds everyone aged that or more (method.md section 2: the frail
    elderly), so in an age band wholly at or above it, its prevalent persons are the band's
    population, whatever relations the manifest declares. A release without ``definitions``
    cannot be checked for what its counts mean: a blocking finding.
    """
    definitions = release.manifest.get("definitions")
    if not isinstance(definitions, dict):
        out.findings.append((f"{prefix}release", "definitions", ("definitions",),
                             "the manifest does not say what the counts mean (no 'definitions'): relations "
                             "implied by the study's definitions (age rules, conditions that contain others) "
                             "cannot be rebuilt"))
        return
    bands = definitions.get("age_bands", {})
    conditions = definitions.get("conditions", {})
    if not isinstance(bands, dict) or not isinstance(conditions, dict):
        msg = "manifest: 'definitions' lacks 'age_bands' or 'conditions' as objects"
        raise ReleaseFormatError(msg)
    for key in quantity.get("prevalent", []):
        coords = dict(key[1])
        rule = conditions.get(coords.get("condition"), {})
        band = bands.get(coords.get("age_band"))
        if not isinstance(rule, dict) or rule.get("min_age") is None or not isinstance(band, list) or not band:
            continue
        if int(band[0]) >= int(rule["min_age"]):
            population = quantity_key("population", {c: v for c, v in coords.items() if c != "condition"})
            out.add(key, [population], known)


def _margin(rel: dict, quantity: dict, known: set, out: Structure) -> None:
    q, dim = _field(rel, "quantity", str), _field(rel, "dimension", str)
    levels = [str(v) for v in _field(rel, "levels", list)]
    bases = {tuple(p for p in key[1] if p[0] != dim) for key in quantity.get(q, [])}
    for base in sorted(bases):
        out.add((q, base), [quantity_key(q, _with(base, **{dim: lvl})) for lvl in levels], known)


def _part_of(rel: dict, quantity: dict, known: set, out: Structure) -> None:
    part, whole, complement = (_field(rel, k, str) for k in ("part", "whole", "complement"))
    drop, fixed = _field(rel, "drop", list), _field(rel, "set", dict)
    where = rel.get("where", {})
    if not isinstance(where, dict):
        msg = "manifest: a 'part_of' relation has a 'where' that is not an object"
        raise ReleaseFormatError(msg)
    protect = rel.get("protect", True) is not False
    for key in quantity.get(part, []):
        if not _matches(dict(key[1]), where):
            continue
        coords = {c: v for c, v in key[1] if c not in drop} | {str(c): str(v) for c, v in fixed.items()}
        total = quantity_key(whole, coords)
        if total != key:
            rest = (complement, key[1])
            out.add(total, [key, rest], known, slack=None if protect else rest)
            if not protect:
                out.derived.discard(rest)


def _chain(rel: dict, quantity: dict, known: set, out: Structure) -> None:
    before, excluded, after, along = (_field(rel, k, str) for k in ("before", "excluded", "after", "along"))
    order = [str(s) for s in _field(rel, "order", list)]
    bases = {tuple(p for p in key[1] if p[0] != along) for q in (before, excluded, after) for key in quantity.get(q, [])}
    for base in sorted(bases):
        def at(q: str, step: str, base: tuple = base) -> Key:
            return quantity_key(q, _with(base, **{along: step}))

        for step in order:
            out.add(at(before, step), [at(excluded, step), at(after, step)], known)
        for step, following in itertools.pairwise(order):
            out.add(at(before, following), [at(after, step)], known)


def _equal(rel: dict, quantity: dict, known: set, out: Structure) -> None:
    left, right = _field(rel, "left", str), _field(rel, "right", str)
    where, unless, drop = _field(rel, "where", dict), _field(rel, "except", dict), _field(rel, "drop", list)
    for key in quantity.get(left, []):
        coords = dict(key[1])
        if not _matches(coords, where):
            continue
        if unless and all(coords.get(c) == str(v) for c, v in unless.items()):
            continue
        out.add(key, [quantity_key(right, {c: v for c, v in coords.items() if c not in drop})], known)


def _remainder(rel: dict, release: Release, known: set, out: Structure) -> None:
    name = _field(rel, "table", str)
    table = release.tables.get(name)
    if table is None:
        return  # withheld: nothing of it is shown
    total, parts, over, remainder = (_field(rel, k, str) for k in ("total", "parts", "over", "remainder"))
    group_by = [str(c) for c in _field(rel, "group_by", list)]
    counts = table.spec.get("counts", {})
    if total not in counts or parts not in counts:
        msg = f"manifest: the remainder relation of {name!r} names columns that are not counts"
        raise ReleaseFormatError(msg)
    t_spec, p_spec = counts[total], counts[parts]
    groups: dict[tuple, list[dict]] = {}
    for row in table.frame.iter_rows(named=True):
        groups.setdefault(tuple(row[c] for c in group_by), []).append(row)
    # A rank gap, or a count of withheld rows, tells that a row of 1..T-1 persons exists: its
    # contacts would be bounded by the remainder and its persons by T-1 (issue 11, item 5).
    withheld = table.spec.get("withheld_rows", {})
    announced: list[str] = []
    for values, rows in groups.items():
        ranks = sorted(int(row["rank"]) for row in rows if row.get("rank") is not None)
        listed = " ".join(str(v) for v in values)
        if ranks != list(range(1, len(ranks) + 1)) or (isinstance(withheld, dict) and withheld.get(listed)):
            announced.append(listed)
    if isinstance(withheld, dict):
        announced += [str(lst) for lst, n in withheld.items() if n and str(lst) not in announced]
    out.findings += [(name, "withheld-row", (lst,), "the list shows that a row of 1..T-1 persons was withheld (a "
                      "rank gap or a count of withheld rows): its contacts and persons are bounded")
                     for lst in announced]
    for values, rows in groups.items():
        coords = dict(zip(group_by, values, strict=True))
        t_key = quantity_key(t_spec["quantity"], {c: rows[0][c] for c in t_spec["by"]})
        p_keys = [quantity_key(p_spec["quantity"], {c: row[c] for c in p_spec["by"]}) for row in rows]
        listed = hashlib.sha256("\n".join(sorted(str(row[over]) for row in rows)).encode()).hexdigest()[:12]
        out.add(t_key, [*p_keys, quantity_key(remainder, {**coords, "listed": listed})], known)
