"""Study schema 2 in DuckDB SQL: records of a code list, the criteria and the entry step.

Written from ``docs/study-schema.md`` ("Records of a condition", "Attrition and criteria",
"Windows", "type: incidence / index") and ``shared/spec/method.md`` section 1 and 9, not from the
engine's code. Each criterion is one SELECT that lists the rows it *excludes*: ``(year,
patient_id)`` for the criteria on the reference year, ``(year, patient_id, condition)`` for those on
the index date; the chain then attributes every row to the first step that lists it.

Tables read (made by ``duckdb_study.PERSON_RULES`` and ``duckdb_v2``): ``v2_person`` (one row per
base record and year with its attributes), ``x5_covered``, ``practice_sufficient``, ``net_claims``,
``episodes``, ``registrations``, ``patients``, ``list_icpc(key, icpc)`` and ``list_claims(key,
sector, code)`` (MSZ codes as ``specialism:diagnosis``).
"""

from __future__ import annotations

from cohort.criteria import Criterion
from cohort.windows import Window

__all__ = ["coverage", "entry_sql", "excluded_sql", "records_sql"]


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def records_sql(keys: str) -> str:
    """Records of code lists: (key, year, patient_id, start, end) for base records of each year.

    An EHR episode with a listed ICPC base code is a record on every day from its start to its end
    (open: to 9999-12-31); a netted claim unit (any care type) with a listed (sector, code) is a
    record on its service date, only for rows with a person (``p2``: a record whose link is usable in
    the year, or an insured person of ``population: insured``).
    ``keys``: a SQL list of the code-list keys wanted, e.g. ``('cond:diabetes')``.
    """
    return f"""
    SELECT li.key, p.year, p.patient_id, e.start_date AS s, coalesce(e.end_date, DATE '9999-12-31') AS e
    FROM v2_person p
    JOIN episodes e ON e.patient_id = p.patient_id
    JOIN list_icpc li ON li.icpc = icpc_base(e.icpc)
    WHERE li.key IN {keys}
    UNION ALL
    SELECT lc.key, p.year, p.patient_id, n.service_date, n.service_date
    FROM v2_person p
    JOIN net_claims n ON n.p2 = p.p2
    JOIN list_claims lc
      ON lc.sector = n.sector
     AND lc.code = CASE WHEN n.sector = 'MSZ' THEN n.specialism || ':' || n.diagnosis_code ELSE n.diagnosis_code END
    WHERE p.p2 IS NOT NULL AND lc.key IN {keys}
    """


def coverage(windows: str, keys: str) -> str:
    """The rows of ``windows`` (columns ``keys``, ``patient_id``, ``lo``, ``hi``) registered on every day of [lo, hi].

    Registrations at any practice, clipped to the window and merged (a registration ending on day d
    and the next starting on d + 1 join: method 9.5). An empty window is never covered.
    """
    qualified = ", ".join(f"w.{k.strip()}" for k in keys.split(","))
    return f"""
    WITH w AS ({windows}), clipped AS (
        SELECT {qualified}, w.lo, w.hi,
               greatest(r.start_date, w.lo) AS s, least(coalesce(r.end_date, w.hi), w.hi) AS e
        FROM w JOIN registrations r ON r.patient_id = w.patient_id
        WHERE w.lo <= w.hi AND greatest(r.start_date, w.lo) <= least(coalesce(r.end_date, w.hi), w.hi)
    ), ordered AS (
        SELECT *, max(e) OVER (PARTITION BY {keys} ORDER BY s, e
                               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
        FROM clipped
    )
    SELECT {keys} FROM ordered
    GROUP BY {keys}, lo, hi
    HAVING min(s) = lo AND max(e) = hi AND bool_and(prev_end IS NULL OR s <= prev_end + 1)
    """


def _window(w: Window) -> tuple[str, str]:
    """The window's first and last day as SQL over ``r.year`` (years) or ``r.d`` (the index date)."""
    if w.unit == "years":
        return f"make_date(r.year + {w.start}, 1, 1)", f"make_date(r.year + {w.end}, 12, 31)"
    return f"(r.d + {w.start})", f"(r.d + {w.end})"


def _keys(on_index: bool) -> str:
    return "r.year, r.patient_id, r.condition" if on_index else "r.year, r.patient_id"


def _has(c: Criterion, rows: str, on_index: bool) -> str:
    """has / has_not: a record of the list on at least one day of the window."""
    lo, hi = _window(c.window)  # type: ignore[arg-type]
    hits = f"""
        SELECT DISTINCT {_keys(on_index)} FROM ({rows}) r
        JOIN crit_records cr ON cr.key = {_q('crit:' + c.name)} AND cr.year = r.year AND cr.patient_id = r.patient_id
        WHERE cr.s <= {hi} AND cr.e >= {lo}
    """
    if c.rule == "has_not":
        return hits
    return f"SELECT {_keys(on_index)} FROM ({rows}) r EXCEPT {hits}"


def _age(c: Criterion, on_index: bool) -> str:
    if c.at == "index":
        age = ("(year(r.d) - year(r.birth_date) - CASE WHEN month(r.d) * 100 + day(r.d) "
               "< month(r.birth_date) * 100 + day(r.birth_date) THEN 1 ELSE 0 END)")
    else:
        age = "(r.year - year(r.birth_date))"
    tests = ["r.birth_date IS NULL"]
    if c.min_age is not None:
        tests.append(f"{age} < {c.min_age}")
    if c.max_age is not None:
        tests.append(f"{age} > {c.max_age}")
    return " OR ".join(tests)


def _registered(c: Criterion, rows: str, on_index: bool) -> str:
    anchor = "r.d" if c.relative_to == "index" else "make_date(r.year, 1, 1)"
    keys = "year, patient_id, condition" if on_index else "year, patient_id"
    windows = f"SELECT {_keys(on_index)}, {anchor} - {c.days} AS lo, {anchor} - 1 AS hi FROM ({rows}) r"
    return f"SELECT {keys} FROM ({rows}) r EXCEPT SELECT * FROM ({coverage(windows, keys)})"


def _where(c: Criterion, link_method: bool) -> str | None:
    """The test of a rule on the record's own attributes (true: excluded), or None for a joined rule."""
    simple = {
        "X1": "NOT r.linked",
        "X2": "r.birth_date IS NULL",
        # The Wlz stay of the row's insured row: null through an unusable link (v2_person)
        "X3": "coalesce(r.wlz_institution, false)",
        "X4": "r.n_practices > 1",
        "X5": "NOT EXISTS (SELECT 1 FROM x5_covered x WHERE x.year = r.year AND x.patient_id = r.patient_id)",
        "X6": "NOT EXISTS (SELECT 1 FROM practice_sufficient ps WHERE ps.year = r.year AND ps.practice_id = r.practice_id)",
        "X7": "NOT coalesce(r.complete, false)",
        "sex": "r.sex IS NULL OR r.sex NOT IN ({})".format(", ".join(_q(v) for v in c.values)),
        "not_wlz": "coalesce(r.wlz_institution, false)",
    }
    if c.rule in simple:
        return simple[c.rule]
    if c.rule == "insured":
        return "NOT r.linked OR NOT coalesce(r.complete, false)" if c.complete_insurer else "NOT r.linked"
    if c.rule == "linked":
        if c.method == "bsn" and link_method:
            return ("NOT r.linked OR NOT EXISTS (SELECT 1 FROM patients pt "
                    "WHERE pt.patient_id = r.patient_id AND pt.link_method = 'bsn')")
        return "NOT r.linked"
    return None


def excluded_sql(c: Criterion, rows: str, *, on_index: bool, link_method: bool) -> str:
    """The rows of ``rows`` (a SELECT with ``r`` columns) that criterion ``c`` excludes.

    ``rows`` has year, patient_id and the attributes of ``v2_person``; with ``on_index`` also
    condition and ``d`` (the index date). ``link_method``: the linked layout has ``link_method``.
    """
    if c.rule in ("has", "has_not"):
        return _has(c, rows, on_index)
    if c.rule == "registered":
        return _registered(c, rows, on_index)
    test = _age(c, on_index) if c.rule == "age" else _where(c, link_method)
    return f"SELECT {_keys(on_index)} FROM ({rows}) r WHERE {test}"


def entry_sql(washout_days: int | None) -> str:
    """(year, patient_id, condition, d, entered) per base record with a record of the condition in Y.

    d = the first day in Y with a record of the condition (an episode overlapping Y counts from
    max(start, 1 Jan Y)). An index cohort enters every such record; an incidence cohort only those
    with no record on any day of [d - W, d - 1] and registered on every day of it.
    """
    index = """
        SELECT cr.year, cr.patient_id, substr(cr.key, 6) AS condition,
               min(greatest(cr.s, make_date(cr.year, 1, 1))) AS d
        FROM cond_records cr
        WHERE cr.s <= make_date(cr.year, 12, 31) AND cr.e >= make_date(cr.year, 1, 1)
        GROUP BY cr.year, cr.patient_id, cr.key
    """
    if washout_days is None:
        return f"SELECT *, true AS entered FROM ({index})"
    w = washout_days
    windows = f"SELECT year, patient_id, condition, d - {w} AS lo, d - 1 AS hi FROM ({index})"
    return f"""
    WITH idx AS ({index}),
    earlier AS (
        SELECT DISTINCT i.year, i.patient_id, i.condition
        FROM idx i JOIN cond_records cr
          ON cr.key = 'cond:' || i.condition AND cr.year = i.year AND cr.patient_id = i.patient_id
        WHERE cr.s <= i.d - 1 AND cr.e >= i.d - {w}
    ),
    covered AS ({coverage(windows, "year, patient_id, condition")})
    SELECT i.*,
           NOT EXISTS (SELECT 1 FROM earlier x WHERE x.year = i.year AND x.patient_id = i.patient_id
                                                  AND x.condition = i.condition)
           AND EXISTS (SELECT 1 FROM covered c WHERE c.year = i.year AND c.patient_id = i.patient_id
                                                 AND c.condition = i.condition) AS entered
    FROM idx i
    """
