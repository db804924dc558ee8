"""Study schema 2 in DuckDB SQL: the cohort tables, the attrition chain and the outcomes.

Written from ``docs/study-schema.md`` ("Cohort", "Attrition and criteria", "Outcomes") and
``shared/spec/method.md`` sections 2, 3 and 9, not from the engine's code. Every function returns
the SQL text of one output table; ``duckdb_v2`` runs them. Strata are columns of ``pop`` (age band
from Y - birth year, sex, the practice's region); rows of two strata tables match with ``IS NOT
DISTINCT FROM`` so that an unknown value is a stratum of its own.

Tables read: ``pop`` (base records of each year with ``excl_step``: the first step of the criteria
before entry that excludes it, null = kept), ``chain_rows`` (incidence/index: one row per record
and condition with a record of the condition in Y, ``d`` its index date, ``excl_step`` over the
whole chain), ``member`` and ``prevalent`` (prevalence, ``duckdb_study.STUDY_RULES``), ``ehr_units``
and ``claim_units`` (qualifying contacts), ``net_claims``, ``list_icpc`` and ``list_claims``.
"""

from __future__ import annotations

__all__ = ["acsc_windowed", "bands", "care_use_change", "chain", "cohort_table", "contact_bands",
           "contacts_windowed", "costs_windowed", "prevalence_care_use", "prevalence_table", "referrals_windowed",
           "top_windowed"]


def _sel(strata: list[str], alias: str) -> str:
    return "".join(f", {alias}.{s}" for s in strata)


def _match(strata: list[str], a: str, b: str) -> str:
    return "".join(f" AND {a}.{s} IS NOT DISTINCT FROM {b}.{s}" for s in strata)


def _cells(strata: list[str]) -> str:
    """The cells of a stratified table: every reference year; with strata, each stratum of its final population."""
    if not strata:
        return "SELECT year FROM ref_years"
    return f"SELECT DISTINCT year, {', '.join(strata)} FROM pop WHERE excl_step IS NULL"


def chain(groups: str, steps: list[str], conditions: list[str]) -> str:
    """Attrition: ``groups`` (year, condition, excl_step) counted along ``steps`` (k = 1..), base first.

    Each row counts as excluded at the step that excluded it first; ``after`` of a step is the
    ``before`` of the next. Every (year, condition) of the list gets every step, 0 where empty.
    """
    values = ", ".join(f"({k}, '{s}')" for k, s in enumerate(["base", *steps]))
    conds = " UNION ALL ".join(f"SELECT '{c}' AS condition" for c in conditions)
    return f"""
    WITH steps AS (SELECT * FROM (VALUES {values}) AS t(k, step)),
    keys AS (SELECT y.year, c.condition FROM ref_years y CROSS JOIN ({conds}) c),
    counted AS (
        SELECT k.year, k.condition, s.k, s.step,
               count(g.year) FILTER (WHERE s.k = 0 OR g.excl_step IS NULL OR g.excl_step >= s.k) AS before,
               count(g.year) FILTER (WHERE s.k > 0 AND g.excl_step = s.k) AS excluded
        FROM keys k CROSS JOIN steps s
        LEFT JOIN ({groups}) g ON g.year = k.year AND g.condition = k.condition
        GROUP BY k.year, k.condition, s.k, s.step
    )
    SELECT year, condition, step, before, excluded, before - excluded AS after
    FROM counted ORDER BY year, condition, k
    """


def prevalence_table(strata: list[str]) -> str:
    """prevalence: per year, condition and stratum of the final population: prevalent records / population."""
    cells = _cells(strata)
    return f"""
    WITH cells AS ({cells})
    SELECT x.year, c.condition{_sel(strata, 'x')},
           (SELECT count(*) FROM prevalent pr JOIN pop p ON p.year = pr.year AND p.patient_id = pr.patient_id
            WHERE pr.year = x.year AND pr.condition = c.condition{_match(strata, 'p', 'x')}) AS numerator,
           (SELECT count(*) FROM pop p WHERE p.excl_step IS NULL AND p.year = x.year{_match(strata, 'p', 'x')})
               AS denominator
    FROM cells x CROSS JOIN cond c
    """


def prevalence_care_use(strata: list[str]) -> str:
    """care_use of a prevalence cohort: per (condition, discipline) and stratum of the final population."""
    cells = _cells(strata)
    return f"""
    WITH cells AS ({cells}),
    prev AS (SELECT pr.year, pr.condition, pr.patient_id{_sel(strata, 'p')}
             FROM prevalent pr JOIN pop p ON p.year = pr.year AND p.patient_id = pr.patient_id)
    SELECT x.year, cd.condition, cd.discipline{_sel(strata, 'x')},
           (SELECT count(DISTINCT cu.patient_id) FROM care_users cu JOIN prev v
              ON v.year = cu.year AND v.condition = cu.condition AND v.patient_id = cu.patient_id
            WHERE cu.year = x.year AND cu.condition = cd.condition AND cu.discipline = cd.discipline
                  {_match(strata, 'v', 'x')}) AS n,
           (SELECT count(*) FROM prev v WHERE v.year = x.year AND v.condition = cd.condition
                  {_match(strata, 'v', 'x')}) AS n_all
    FROM cells x CROSS JOIN cond_disc cd
    """


def care_use_change(strata: list[str], years: tuple[int, ...]) -> str:
    """Percentage-point change of the share n/N between consecutive reference years (method 9.11)."""
    pairs = " UNION ALL ".join(f"SELECT {a} AS y0, {b} AS y1" for a, b in zip(years, years[1:]))
    keys = "".join(f" AND b.{k} IS NOT DISTINCT FROM a.{k}" for k in ["condition", "discipline", *strata])
    return f"""
    WITH pairs AS ({pairs}), shares AS (SELECT *, n::DOUBLE / n_all AS share FROM care_use_out)
    SELECT a.condition, a.discipline{_sel(strata, 'a')}, p.y0 AS year_from, p.y1 AS year_to,
           a.share AS share_from, b.share AS share_to, (b.share - a.share) * 100 AS change_pp
    FROM pairs p JOIN shares a ON a.year = p.y0 JOIN shares b ON b.year = p.y1{keys}
    """


def cohort_table(strata: list[str]) -> str:
    """incidence / index_cohort: per condition and stratum of the records left before entry.

    numerator: records left after every criterion; denominator: records left after the criteria
    before the entry step (the population the cases arose in).
    """
    cells = _cells(strata)
    return f"""
    WITH cells AS ({cells})
    SELECT x.year, c.condition{_sel(strata, 'x')},
           (SELECT count(*) FROM cohort k WHERE k.year = x.year AND k.condition = c.condition
                  {_match(strata, 'k', 'x')}) AS numerator,
           (SELECT count(*) FROM pop p WHERE p.excl_step IS NULL AND p.year = x.year{_match(strata, 'p', 'x')})
               AS denominator
    FROM cells x CROSS JOIN cond c
    """


def _in_window(lo: str, hi: str) -> str:
    """Qualifying contacts (method 3 + 9.10) of each cohort row dated in its window [lo, hi] (SQL over ``k``).

    With the code the condition-specific rules look at: the ICPC base for HA/POH-GGZ/HAP,
    ``specialism:diagnosis`` for MSZ, the diagnosis code otherwise. One row per contact / unit.
    """
    return f"""
    SELECT k.year, k.patient_id, k.condition, u.discipline, u.icpc AS code, 'icpc' AS kind
    FROM cohort k JOIN ehr_units u ON u.patient_id = k.patient_id
    WHERE u.d BETWEEN {lo} AND {hi}
    UNION ALL
    SELECT k.year, k.patient_id, k.condition, u.discipline,
           CASE WHEN u.discipline = 'MSZ' THEN u.specialism || ':' || u.code ELSE u.code END, 'claim'
    FROM cohort k JOIN claim_units u ON u.p2 = k.p2
    WHERE u.d BETWEEN {lo} AND {hi}
    """


def contacts_windowed(strata: list[str], lo: str, hi: str) -> str:
    """care_use of an incidence/index cohort: n = cohort records with >= 1 qualifying contact in the window.

    Specific care (``cause: method``, discipline not all-cause in ``out_plan``): HA/POH-GGZ by the
    condition's ICPC codes, claims disciplines by the condition's codes of that sector.
    """
    return f"""
    WITH hits AS (
        SELECT DISTINCT w.year, w.patient_id, w.condition, w.discipline
        FROM ({_in_window(lo, hi)}) w
        JOIN out_plan op ON op.condition = w.condition AND op.discipline = w.discipline
        WHERE op.all_cause
           OR (w.kind = 'icpc' AND w.discipline IN ('HA', 'POH-GGZ') AND EXISTS (
                SELECT 1 FROM list_icpc li WHERE li.key = 'cond:' || w.condition AND li.icpc = w.code))
           OR (w.kind = 'claim' AND EXISTS (
                SELECT 1 FROM list_claims lc WHERE lc.key = 'cond:' || w.condition
                                               AND lc.sector = w.discipline AND lc.code = w.code))
    ), cells AS ({_cells(strata)})
    SELECT x.year, op.condition, op.discipline{_sel(strata, 'x')},
           (SELECT count(*) FROM hits h JOIN cohort k USING (year, patient_id, condition)
            WHERE h.year = x.year AND h.condition = op.condition AND h.discipline = op.discipline
                  {_match(strata, 'k', 'x')}) AS n,
           (SELECT count(*) FROM cohort k WHERE k.year = x.year AND k.condition = op.condition
                  {_match(strata, 'k', 'x')}) AS n_all
    FROM cells x CROSS JOIN out_plan op
    """


def bands(bounds: tuple[int, ...]) -> list[tuple[int, str, int, int | None]]:
    """(order, label, lowest, highest or None): ``0``, then one band per lower bound (``2-4``, ``10+``)."""
    out: list[tuple[int, str, int, int | None]] = [(0, "0", 0, 0)]
    for i, low in enumerate(bounds):
        high = bounds[i + 1] - 1 if i + 1 < len(bounds) else None
        label = f"{low}+" if high is None else str(low) if high == low else f"{low}-{high}"
        out.append((i + 1, label, low, high))
    return out


def contact_bands(lo: str, hi: str) -> str:  # disciplines: band_plan(condition, discipline)
    """contact_bands: cohort records per band of their number of qualifying contacts (all-cause) in the window."""
    return f"""
    WITH events AS (
        SELECT year, patient_id, condition, discipline, count(*) AS n
        FROM ({_in_window(lo, hi)}) GROUP BY ALL
    ), counts AS (
        SELECT k.year, k.patient_id, k.condition, op.discipline, coalesce(e.n, 0) AS n
        FROM cohort k JOIN band_plan op ON op.condition = k.condition
        LEFT JOIN events e ON e.year = k.year AND e.patient_id = k.patient_id AND e.condition = k.condition
                          AND e.discipline = op.discipline
    )
    SELECT y.year, op.condition, op.discipline, b.label AS band,
           (SELECT count(*) FROM counts c WHERE c.year = y.year AND c.condition = op.condition
              AND c.discipline = op.discipline AND c.n >= b.low AND (b.high IS NULL OR c.n <= b.high)) AS persons,
           (SELECT count(*) FROM cohort k WHERE k.year = y.year AND k.condition = op.condition) AS "N"
    FROM ref_years y CROSS JOIN band_plan op CROSS JOIN band_table b
    """


def costs_windowed(strata: list[str], lo: str, hi: str) -> str:
    """costs: per cell of the cohort (year, condition, strata) and sector: the netted units' euros in the window.

    persons: cohort records with a unit of the sector in the window (every unit costs > 0);
    total_cents and mean (euros per such person); largest/second: the two largest per-person sums.
    """
    cell = ["year", "condition", *strata]
    cols = ", ".join(f"k.{c}" for c in cell)
    return f"""
    WITH per_person AS (
        SELECT {cols}, n.sector, k.patient_id, sum(CAST(round(n.cost_eur * 100) AS BIGINT)) AS cents
        FROM cohort k JOIN net_claims n ON n.p2 = k.p2
        JOIN cost_sectors cs ON cs.condition = k.condition AND cs.sector = n.sector
        WHERE n.service_date BETWEEN {lo} AND {hi}
        GROUP BY ALL
    ), ranked AS (
        SELECT *, row_number() OVER (PARTITION BY {', '.join(cell)}, sector ORDER BY cents DESC) AS r FROM per_person
    ), cells AS (SELECT DISTINCT {cols} FROM cohort k)
    SELECT {', '.join('x.' + c for c in cell)}, cs.sector,
           count(rk.patient_id) AS persons, coalesce(sum(rk.cents), 0) AS total_cents,
           sum(rk.cents) / count(rk.patient_id) / 100 AS mean,
           coalesce(max(rk.cents) FILTER (WHERE rk.r = 1), 0) AS largest_cents,
           coalesce(max(rk.cents) FILTER (WHERE rk.r = 2), 0) AS second_cents
    FROM cells x JOIN cost_sectors cs ON cs.condition = x.condition
    LEFT JOIN ranked rk ON rk.sector = cs.sector {''.join(f" AND rk.{c} IS NOT DISTINCT FROM x.{c}" for c in cell)}
    GROUP BY ALL
    """


def referrals_windowed(lo: str, hi: str) -> str:
    """referrals of an incidence/index cohort (method 5 + 9.12 with the outcome's window for the year Y).

    Denominator: cohort records whose practice has ``referrals_delivered`` for the reference year;
    numerator: those with a referral dated in their window, specialism known and not GGZ, for the
    condition (an ICPC base code of its list; any referral when the condition is all-cause).
    """
    return f"""
    WITH base AS (
        SELECT k.* FROM cohort k
        WHERE EXISTS (SELECT 1 FROM practice_years py
                      WHERE py.practice_id = k.practice_id AND py.year = k.year AND py.referrals_delivered)
    ), hit AS (
        SELECT DISTINCT k.year, k.patient_id, k.condition
        FROM base k JOIN referrals r ON r.patient_id = k.patient_id JOIN cond c ON c.condition = k.condition
        WHERE r.referral_date BETWEEN {lo} AND {hi} AND r.specialism IS NOT NULL AND r.specialism <> 'GGZ'
          AND (c.all_cause OR EXISTS (SELECT 1 FROM list_icpc li
                                      WHERE li.key = 'cond:' || k.condition AND li.icpc = icpc_base(r.icpc)))
    )
    SELECT y.year, c.condition,
           (SELECT count(*) FROM hit h WHERE h.year = y.year AND h.condition = c.condition) AS n_ref,
           (SELECT count(*) FROM base b WHERE b.year = y.year AND b.condition = c.condition) AS n_total
    FROM ref_years y CROSS JOIN cond c
    """


def top_windowed(lo: str, hi: str, n: int) -> str:
    """top of an incidence/index cohort: method 6 + 9.13 over the cohort's qualifying contacts in the window."""
    return f"""
    WITH units AS (
        SELECT k.year, k.patient_id AS person, u.discipline, u.icpc AS grp
        FROM cohort k JOIN ehr_units u ON u.patient_id = k.patient_id
        WHERE u.discipline IN ('HA', 'HAP') AND u.d BETWEEN {lo} AND {hi}
        UNION ALL
        SELECT k.year, k.patient_id, u.discipline,
               CASE WHEN u.discipline IN ('FT', 'OT') AND length(u.code) = 4
                        THEN left(u.code, 1) || 'X' || substr(u.code, 3)
                    WHEN u.discipline = 'DT' THEN u.code
                    WHEN u.discipline = 'SEH' THEN left(u.code, 3) END
        FROM cohort k JOIN claim_units u ON u.p2 = k.p2
        WHERE u.discipline IN ('FT', 'OT', 'DT', 'SEH') AND u.d BETWEEN {lo} AND {hi}
    ), totals AS (SELECT year, discipline, count(*) AS total_contacts FROM units GROUP BY ALL),
    grouped AS (
        SELECT year, discipline, grp, count(*) AS contacts, count(DISTINCT person) AS persons
        FROM units WHERE grp IS NOT NULL GROUP BY ALL
    ), ranked AS (
        SELECT *, row_number() OVER (PARTITION BY year, discipline ORDER BY contacts DESC, grp ASC) AS rnk
        FROM grouped
    )
    SELECT r.year, r.discipline, r.rnk, r.grp, r.contacts, r.contacts::DOUBLE / t.total_contacts AS share,
           r.persons, t.total_contacts
    FROM ranked r JOIN totals t USING (year, discipline)
    WHERE r.rnk <= {n}
    """


def acsc_windowed(lo: str, hi: str) -> str:
    """acsc of an incidence/index cohort: netted MSZ admissions with an ACSC code of cohort records in the window."""
    return f"""
    WITH adm AS (
        SELECT k.year, k.patient_id
        FROM cohort k JOIN net_claims n ON n.p2 = k.p2
        JOIN acsc_codes a ON a.specialism = n.specialism AND a.code = n.diagnosis_code
        WHERE n.sector = 'MSZ' AND n.care_type = 'opname' AND n.service_date BETWEEN {lo} AND {hi}
    )
    SELECT y.year, count(a.patient_id) AS admissions, count(DISTINCT a.patient_id) AS persons
    FROM ref_years y LEFT JOIN adm a ON a.year = y.year
    GROUP BY y.year
    """
