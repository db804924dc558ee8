"""An independent reference implementation of the patient-flow study, in DuckDB SQL.

It exists only to be compared with the engine (``cohort.study.run_study``) in a differential test:
the same linked layout and :class:`~cohort.config.StudyConfig` go in, the same six tables must come
out. It is written from ``shared/spec/method.md`` alone, without reading the engine's code, so the
two implementations share as little as possible.

Python only builds the SQL text, loads the configuration (years, code lists, thresholds) into small
tables and materialises the (small) aggregate results. Every rule is one SQL block below with a
comment citing the method section it implements.

Conventions taken by both implementations (see the differential test's brief):

* The unit of the base population is an EHR patient record (``patient_id``) with a registration
  overlapping Y; a person's care is found through ``patient_id`` for EHR tables and ``p2`` for claims.
* Age = Y - birth year. Practice sufficiency compares the ICPC share as a quotient (valid / all).
* Claims are netted per (p2, sector, service_date, care_type, specialism, diagnosis_code), nulls
  equal, and a key counts only when its summed cost is > 0; rows without ``p2`` are ignored.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from cohort.config import StudyConfig

__all__ = ["KEYS", "PERSON_RULES", "SCHEMAS", "STUDY_RULES", "OUTPUTS", "load_inputs", "run_reference"]

STEPS = ("base", "X1", "X2", "X3", "X4", "X5", "X6", "X7")
TOP_DISCIPLINES = ("HA", "HAP", "FT", "OT", "DT", "SEH")

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "attrition": {"year": pl.Int64, "condition": pl.String, "step": pl.String,
                  "before": pl.Int64, "excluded": pl.Int64, "after": pl.Int64},
    "prevalence": {"year": pl.Int64, "condition": pl.String, "numerator": pl.Int64, "denominator": pl.Int64},
    "care_use": {"year": pl.Int64, "condition": pl.String, "discipline": pl.String, "n": pl.Int64, "N": pl.Int64},
    "referrals": {"year": pl.Int64, "condition": pl.String, "n": pl.Int64, "N": pl.Int64},
    "top": {"year": pl.Int64, "discipline": pl.String, "rank": pl.Int64, "group": pl.String,
            "contacts": pl.Int64, "share": pl.Float64, "persons": pl.Int64, "total_contacts": pl.Int64},
    "acsc": {"year": pl.Int64, "admissions": pl.Int64, "persons": pl.Int64},
}
KEYS: dict[str, tuple[str, ...]] = {
    "attrition": ("year", "condition", "step"),
    "prevalence": ("year", "condition"),
    "care_use": ("year", "condition", "discipline"),
    "referrals": ("year", "condition"),
    "top": ("year", "discipline", "rank"),
    "acsc": ("year",),
}

_INPUTS = {
    "patients": "ehr/patients", "registrations": "ehr/registrations", "practices": "ehr/practices",
    "practice_years": "ehr/practice_years", "episodes": "ehr/episodes", "contacts": "ehr/contacts",
    "referrals": "ehr/referrals", "ooh_contacts": "ehr/ooh_contacts",
    "insured": "claims/insured", "claims": "claims/claims", "insurer_years": "claims/insurer_years",
}


# --- configuration as small tables ----------------------------------------------------------------

def _table(con: duckdb.DuckDBPyConnection, name: str, columns: str, rows: list[tuple]) -> None:
    con.execute(f"CREATE TABLE {name} ({columns})")
    if rows:
        marks = ", ".join("?" for _ in rows[0])
        con.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)


def _load_config(con: duckdb.DuckDBPyConnection, config: StudyConfig) -> None:
    conditions = config.catalogue.conditions
    suff = config.sufficiency
    _table(con, "params", "min_patients BIGINT, min_weeks BIGINT, min_icpc_share DOUBLE, "
                          "dietetics_all_cause BOOLEAN, top_n BIGINT",
           [(suff.min_patients, suff.min_weeks, float(suff.min_icpc_share), config.dietetics_all_cause, config.top_n)])
    _table(con, "ref_years", "year BIGINT", [(y,) for y in config.reference_years])
    _table(con, "cond", "condition VARCHAR, all_cause BOOLEAN, min_age BIGINT",
           [(c.name, c.all_cause, c.min_age) for c in conditions])
    _table(con, "cond_icpc", "condition VARCHAR, icpc VARCHAR",
           sorted({(c.name, code) for c in conditions for code in c.icpc}))
    _table(con, "cond_claims", "condition VARCHAR, sector VARCHAR, specialism VARCHAR, code VARCHAR, lookback BIGINT",
           [(c.name, cc.sector, cc.specialism, cc.code, s.lookback_years)
            for c in conditions for s in c.subconditions for cc in s.claims])
    _table(con, "cond_disc_raw", "condition VARCHAR, discipline VARCHAR",
           [(c, d) for c, ds in config.disciplines.items() for d in ds])
    _table(con, "acsc_years", "year BIGINT", [(y,) for y in config.acsc.years])
    _table(con, "acsc_codes", "specialism VARCHAR, code VARCHAR", list(config.acsc.codes))


# --- the rules, one SQL block each ----------------------------------------------------------------

PERSON_RULES: list[str] = [
    # method 9.8: an ICPC code (already normalised) is valid when chapter letter + 2 digits + at
    # most 2 sub-code digits; its base is the first three characters; invalid = no code.
    """
    CREATE MACRO icpc_base(c) AS
        CASE WHEN regexp_full_match(c, '[ABDFHKLNPRSTUWXYZ][0-9]{2}[0-9]{0,2}') THEN left(c, 3) END
    """,
    # method 9.4: claim lines netted per (person, sector, service_date, care_type, specialism,
    # diagnosis_code), nulls equal (GROUP BY groups nulls); a key counts once, only when sum > 0.
    # Claims without a project pseudonym cannot belong to anyone and are ignored.
    """
    CREATE TABLE net_claims AS
    SELECT p2, sector, service_date, care_type, specialism, diagnosis_code, sum(cost_eur) AS cost_eur
    FROM claims
    WHERE p2 IS NOT NULL
    GROUP BY p2, sector, service_date, care_type, specialism, diagnosis_code
    HAVING sum(cost_eur) > 0
    """,
    # method 1: base population = EHR patient records with a registration overlapping Y; with the
    # distinct practices of those registrations (X4) and the practice when there is only one.
    """
    CREATE TABLE base AS
    SELECT y.year, r.patient_id,
           count(DISTINCT r.practice_id) AS n_practices,
           min(r.practice_id) AS practice_id
    FROM ref_years y
    JOIN registrations r
      ON r.start_date <= make_date(y.year, 12, 31)
     AND (r.end_date IS NULL OR r.end_date >= make_date(y.year, 1, 1))
    GROUP BY y.year, r.patient_id
    """,
    # method 9.1: a pseudonym on several EHR patient records (anywhere in the extract): all X1.
    """
    CREATE TABLE shared_p2 AS
    SELECT p2 FROM patients WHERE p2 IS NOT NULL GROUP BY p2 HAVING count(*) > 1
    """,
    # method 9.1/9.2: the insured rows of (p2, Y); more than one = ambiguous link. The attribute
    # values are only used when there is exactly one row.
    """
    CREATE TABLE insured_year AS
    SELECT p2, year, count(*) AS n_rows,
           min(birth_date) AS birth_date, min(sex) AS sex, min(insurer) AS insurer,
           bool_or(coalesce(wlz_institution, false)) AS wlz_institution
    FROM insured
    WHERE p2 IS NOT NULL
    GROUP BY p2, year
    """,
    # method 9.2: death date from claims = earliest over every insured row of the person.
    """
    CREATE TABLE insured_death AS
    SELECT p2, min(death_date) AS death_date FROM insured WHERE p2 IS NOT NULL GROUP BY p2
    """,
    # method 1 X1 + 9.1 + 9.3: linkable = a pseudonym, not shared, exactly one insured row for Y,
    # no conflict where both sources know the value (sex differs; birth years differ by > 1).
    """
    CREATE TABLE person_link AS
    SELECT b.year, b.patient_id, b.n_practices, b.practice_id,
           p.p2, p.birth_date AS ehr_birth_date, p.death_date AS ehr_death_date,
           p.sex AS ehr_sex, iy.sex AS ins_sex,
           iy.n_rows, iy.birth_date AS ins_birth_date, iy.insurer, iy.wlz_institution,
           NOT (
                p.p2 IS NULL
             OR s.p2 IS NOT NULL
             OR iy.n_rows IS NULL
             OR iy.n_rows > 1
             OR (p.sex IS NOT NULL AND iy.sex IS NOT NULL AND p.sex <> iy.sex)
             OR (p.birth_date IS NOT NULL AND iy.birth_date IS NOT NULL
                 AND abs(year(p.birth_date) - year(iy.birth_date)) > 1)
           ) AS linked
    FROM base b
    LEFT JOIN patients p ON p.patient_id = b.patient_id
    LEFT JOIN shared_p2 s ON s.p2 = p.p2
    LEFT JOIN insured_year iy ON iy.p2 = p.p2 AND iy.year = b.year
    """,
    # method 9.2: attributes. Birth date: EHR, else the insured row of Y; death date: earliest of
    # EHR and every insured row. Claims attributes only for linked persons.
    """
    CREATE TABLE person AS
    SELECT pl.*,
           coalesce(ehr_birth_date, CASE WHEN linked THEN ins_birth_date END) AS birth_date,
           CASE WHEN linked THEN least(coalesce(ehr_death_date, d.death_date), coalesce(d.death_date, ehr_death_date))
                ELSE ehr_death_date END AS death_date
    FROM person_link pl
    LEFT JOIN insured_death d ON d.p2 = pl.p2
    """,
    # method 1 X5 + 9.5: all registrations clipped to [max(1 Jan, birth), min(31 Dec, death)],
    # merged (adjacent days join); the merged registrations must cover every day of the window.
    # An empty window is never covered. (A record only gets here with a known birth date.)
    """
    CREATE TABLE x5_covered AS
    WITH win AS (
        SELECT year, patient_id,
               greatest(make_date(year, 1, 1), birth_date) AS ws,
               least(make_date(year, 12, 31), coalesce(death_date, make_date(year, 12, 31))) AS we
        FROM person
        WHERE birth_date IS NOT NULL
    ), clipped AS (
        SELECT w.year, w.patient_id, w.ws, w.we,
               greatest(r.start_date, w.ws) AS s,
               least(coalesce(r.end_date, w.we), w.we) AS e
        FROM win w
        JOIN registrations r ON r.patient_id = w.patient_id
        WHERE w.ws <= w.we
          AND greatest(r.start_date, w.ws) <= least(coalesce(r.end_date, w.we), w.we)
    ), ordered AS (
        SELECT *, max(e) OVER (PARTITION BY year, patient_id ORDER BY s, e
                               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
        FROM clipped
    )
    SELECT year, patient_id
    FROM ordered
    GROUP BY year, patient_id, ws, we
    HAVING min(s) = ws AND max(e) = we AND bool_and(prev_end IS NULL OR s <= prev_end + 1)
    """,
    # method 4 + 9.6: practice sufficiency per (practice, Y): registered patients (registration
    # overlapping Y, before any exclusion) >= min_patients; distinct (ISO year, ISO week) of its
    # contacts dated in Y >= min_weeks; share of its contacts in Y with a valid ICPC >= min share.
    # A practice without contacts in Y is insufficient (inner join).
    """
    CREATE TABLE practice_sufficient AS
    WITH reg AS (
        SELECT y.year, r.practice_id, count(DISTINCT r.patient_id) AS n_patients
        FROM ref_years y
        JOIN registrations r
          ON r.start_date <= make_date(y.year, 12, 31)
         AND (r.end_date IS NULL OR r.end_date >= make_date(y.year, 1, 1))
        GROUP BY y.year, r.practice_id
    ), con AS (
        SELECT y.year, c.practice_id,
               count(DISTINCT isoyear(c.contact_date) * 100 + week(c.contact_date)) AS n_weeks,
               count(*) AS n_contacts,
               count(icpc_base(c.icpc)) AS n_valid
        FROM ref_years y
        JOIN contacts c ON year(c.contact_date) = y.year
        GROUP BY y.year, c.practice_id
    )
    SELECT reg.year, reg.practice_id
    FROM reg
    JOIN con ON con.year = reg.year AND con.practice_id = reg.practice_id
    CROSS JOIN params
    WHERE reg.n_patients >= params.min_patients
      AND con.n_weeks >= params.min_weeks
      AND con.n_valid::DOUBLE / con.n_contacts >= params.min_icpc_share
    """,
]

# The seed study's rules after the person-level ones (schema 2 replaces ``pop`` by its criteria).
# method 1 X1..X7 (+ 9.7: X7 by the insurer of the insured row of Y; no insurer_years row =
# incomplete). Each record is attributed to the first rule that excludes it; NULL = study pop.
POP_RULE = """
    CREATE TABLE pop AS
    SELECT p.year, p.patient_id, p.p2, p.linked, p.birth_date, p.practice_id,
           CASE
               WHEN NOT p.linked THEN 1
               WHEN p.birth_date IS NULL THEN 2
               WHEN p.wlz_institution THEN 3
               WHEN p.n_practices > 1 THEN 4
               WHEN c.patient_id IS NULL THEN 5
               WHEN ps.practice_id IS NULL THEN 6
               WHEN NOT coalesce(iy.complete, false) THEN 7
           END AS excl_step
    FROM person p
    LEFT JOIN x5_covered c ON c.year = p.year AND c.patient_id = p.patient_id
    LEFT JOIN practice_sufficient ps ON ps.year = p.year AND ps.practice_id = p.practice_id
    LEFT JOIN insurer_years iy ON iy.insurer = p.insurer AND iy.year = p.year
    """

STUDY_RULES: list[str] = [
    # method 2 + 9.9 + 9.15: condition membership of every base record. EHR: an episode with base
    # code in the list overlapping Y (always). Claims: a netted unit with a code of a sub-condition,
    # service year in [Y - lookback, Y], any care type, never SEH (only for linked records).
    # Age rule: age >= min_age on the known birth date.
    """
    CREATE TABLE member AS
    SELECT p.year, p.patient_id, ci.condition
    FROM pop p
    JOIN episodes e ON e.patient_id = p.patient_id
    JOIN cond_icpc ci ON ci.icpc = icpc_base(e.icpc)
    WHERE e.start_date <= make_date(p.year, 12, 31)
      AND (e.end_date IS NULL OR e.end_date >= make_date(p.year, 1, 1))
    UNION
    SELECT p.year, p.patient_id, cc.condition
    FROM pop p
    JOIN net_claims n ON n.p2 = p.p2
    JOIN cond_claims cc
      ON cc.sector = n.sector
     AND cc.code = n.diagnosis_code
     AND (cc.sector <> 'MSZ' OR cc.specialism = n.specialism)
    WHERE p.linked
      AND n.sector <> 'SEH'
      AND year(n.service_date) BETWEEN p.year - cc.lookback AND p.year
    UNION
    SELECT p.year, p.patient_id, c.condition
    FROM pop p
    JOIN cond c ON c.min_age IS NOT NULL
    WHERE p.birth_date IS NOT NULL AND p.year - year(p.birth_date) >= c.min_age
    """,
    # method 1: the study population; method 2: prevalent = study population x membership.
    """
    CREATE TABLE study AS SELECT * FROM pop WHERE excl_step IS NULL
    """,
    """
    CREATE TABLE prevalent AS
    SELECT s.year, s.patient_id, s.p2, s.practice_id, m.condition
    FROM study s JOIN member m ON m.year = s.year AND m.patient_id = s.patient_id
    """,
    # method 3 + 9.10: qualifying contacts (units) per discipline, before any condition filter.
    # EHR units belong to the patient record (any practice), claims units to p2.
    """
    CREATE TABLE ehr_units AS
    SELECT patient_id, 'HA' AS discipline, contact_date AS d, icpc_base(icpc) AS icpc
    FROM contacts
    WHERE provider = 'HA' AND contact_type IN ('consult', 'visite', 'telefonisch', 'email', 'vaccinatie')
    UNION ALL
    SELECT patient_id, 'POH-GGZ', contact_date, icpc_base(icpc)
    FROM contacts
    WHERE provider = 'POH-GGZ' AND contact_type IN ('consult', 'visite', 'telefonisch', 'email', 'groepsconsult')
    UNION ALL
    SELECT patient_id, 'HAP', contact_date, icpc_base(icpc)
    FROM ooh_contacts
    """,
    """
    CREATE TABLE claim_units AS
    SELECT p2, sector AS discipline, service_date AS d, specialism, diagnosis_code AS code
    FROM net_claims
    WHERE sector <> 'MSZ' OR care_type IN ('poli', 'opname')
    """,
    # method 3 + 9.10: all-cause disciplines: ET, HT, WV, ELV, HAP, SEH always; DT when
    # dietetics_all_cause; every discipline for an all-cause condition. GGZ_B/GGZ_S: every unit
    # is specific care for mental health, hence effectively all-cause wherever reported.
    """
    CREATE TABLE cond_disc AS
    SELECT d.condition, d.discipline,
           (d.discipline IN ('ET', 'HT', 'WV', 'ELV', 'HAP', 'SEH', 'GGZ_B', 'GGZ_S')
            OR (d.discipline = 'DT' AND params.dietetics_all_cause)
            OR c.all_cause) AS all_cause
    FROM cond_disc_raw d JOIN cond c ON c.condition = d.condition CROSS JOIN params
    """,
    # method 3: care use. n = prevalent study persons with >= 1 qualifying unit dated in Y
    # (condition-specific: HA/POH-GGZ by ICPC base, MSZ by (specialism, diagnosis), FT/OT/DT by
    # code of that sector); N = prevalent study persons.
    """
    CREATE TABLE care_users AS
    SELECT pr.year, pr.condition, u.discipline, pr.patient_id
    FROM prevalent pr
    JOIN cond_disc cd ON cd.condition = pr.condition
    JOIN ehr_units u ON u.patient_id = pr.patient_id AND u.discipline = cd.discipline AND year(u.d) = pr.year
    WHERE cd.all_cause
       OR EXISTS (SELECT 1 FROM cond_icpc ci WHERE ci.condition = pr.condition AND ci.icpc = u.icpc)
    UNION
    SELECT pr.year, pr.condition, u.discipline, pr.patient_id
    FROM prevalent pr
    JOIN cond_disc cd ON cd.condition = pr.condition
    JOIN claim_units u ON u.p2 = pr.p2 AND u.discipline = cd.discipline AND year(u.d) = pr.year
    WHERE cd.all_cause
       OR EXISTS (SELECT 1 FROM cond_claims cc
                  WHERE cc.condition = pr.condition AND cc.sector = u.discipline AND cc.code = u.code
                    AND (cc.sector <> 'MSZ' OR cc.specialism = u.specialism))
    """,
    # method 5 + 9.12: referrals. Denominator: prevalent study persons whose practice in Y has
    # referrals_delivered = true (missing row = false). Numerator: those of the denominator with a
    # referral dated in Y, specialism not null and not GGZ, ICPC base in the list (any referral
    # for an all-cause condition).
    """
    CREATE TABLE referral_denominator AS
    SELECT pr.*
    FROM prevalent pr
    WHERE EXISTS (SELECT 1 FROM practice_years py
                  WHERE py.practice_id = pr.practice_id AND py.year = pr.year AND py.referrals_delivered)
    """,
    """
    CREATE TABLE referral_numerator AS
    SELECT DISTINCT rd.year, rd.condition, rd.patient_id
    FROM referral_denominator rd
    JOIN cond c ON c.condition = rd.condition
    JOIN referrals r ON r.patient_id = rd.patient_id AND year(r.referral_date) = rd.year
    WHERE r.specialism IS NOT NULL AND r.specialism <> 'GGZ'
      AND (c.all_cause
           OR EXISTS (SELECT 1 FROM cond_icpc ci WHERE ci.condition = rd.condition AND ci.icpc = icpc_base(r.icpc)))
    """,
    # method 6 + 9.13: top groups per discipline over the study population's all-cause qualifying
    # units dated in Y. HA/HAP: ICPC base (null = uncoded); FT/OT: DCSPH with the 2nd digit -> X;
    # DT: diagnosis code; SEH: ICD-10 three characters.
    """
    CREATE TABLE top_units AS
    SELECT s.year, u.discipline, s.patient_id AS person, u.icpc AS grp
    FROM study s
    JOIN ehr_units u ON u.patient_id = s.patient_id AND year(u.d) = s.year
    WHERE u.discipline IN ('HA', 'HAP')
    UNION ALL
    SELECT s.year, u.discipline, s.patient_id,
           CASE u.discipline
               WHEN 'FT' THEN left(u.code, 1) || 'X' || substr(u.code, 3)
               WHEN 'OT' THEN left(u.code, 1) || 'X' || substr(u.code, 3)
               WHEN 'DT' THEN u.code
               WHEN 'SEH' THEN left(u.code, 3)
           END
    FROM study s
    JOIN claim_units u ON u.p2 = s.p2 AND year(u.d) = s.year
    WHERE u.discipline IN ('FT', 'OT', 'DT', 'SEH')
    """,
]


# --- the output tables ----------------------------------------------------------------------------

OUTPUTS: dict[str, str] = {
    # method 1 + 9.15: attrition for the whole base population ('all') and per condition; each
    # record counts at the step that excluded it first; base: before = after = base size.
    "attrition": """
    WITH groups AS (
        SELECT year, 'all' AS condition, excl_step FROM pop
        UNION ALL
        SELECT p.year, m.condition, p.excl_step
        FROM pop p JOIN member m ON m.year = p.year AND m.patient_id = p.patient_id
    ), keys AS (
        SELECT y.year, c.condition
        FROM ref_years y CROSS JOIN (SELECT 'all' AS condition UNION ALL SELECT condition FROM cond) c
    ), steps AS (
        SELECT * FROM (VALUES (0, 'base'), (1, 'X1'), (2, 'X2'), (3, 'X3'), (4, 'X4'),
                              (5, 'X5'), (6, 'X6'), (7, 'X7')) AS t(k, step)
    ), counted AS (
        SELECT k.year, k.condition, s.step,
               count(g.year) FILTER (WHERE s.k = 0 OR g.excl_step IS NULL OR g.excl_step >= s.k) AS before,
               count(g.year) FILTER (WHERE s.k > 0 AND g.excl_step = s.k) AS excluded
        FROM keys k
        CROSS JOIN steps s
        LEFT JOIN groups g ON g.year = k.year AND g.condition = k.condition
        GROUP BY k.year, k.condition, s.step
    )
    SELECT year, condition, step, before, excluded, before - excluded AS after
    FROM counted
    ORDER BY year, condition, step
    """,
    # method 2: prevalence numerator and study-population denominator.
    "prevalence": """
    SELECT y.year, c.condition,
           (SELECT count(*) FROM prevalent pr WHERE pr.year = y.year AND pr.condition = c.condition) AS numerator,
           (SELECT count(*) FROM study s WHERE s.year = y.year) AS denominator
    FROM ref_years y CROSS JOIN cond c
    ORDER BY y.year, c.condition
    """,
    # method 3: care use per configured (condition, discipline).
    "care_use": """
    SELECT y.year, cd.condition, cd.discipline,
           (SELECT count(DISTINCT cu.patient_id) FROM care_users cu
            WHERE cu.year = y.year AND cu.condition = cd.condition AND cu.discipline = cd.discipline) AS n_users,
           (SELECT count(*) FROM prevalent pr WHERE pr.year = y.year AND pr.condition = cd.condition) AS n_total
    FROM ref_years y CROSS JOIN cond_disc cd
    ORDER BY y.year, cd.condition, cd.discipline
    """,
    # method 5: referrals.
    "referrals": """
    SELECT y.year, c.condition,
           (SELECT count(*) FROM referral_numerator rn WHERE rn.year = y.year AND rn.condition = c.condition) AS n_ref,
           (SELECT count(*) FROM referral_denominator rd WHERE rd.year = y.year AND rd.condition = c.condition) AS n_total
    FROM ref_years y CROSS JOIN cond c
    ORDER BY y.year, c.condition
    """,
    # method 6 + 9.13: share of all qualifying units (uncoded included); ties by group ascending.
    "top": """
    WITH totals AS (
        SELECT year, discipline, count(*) AS total_contacts FROM top_units GROUP BY year, discipline
    ), grouped AS (
        SELECT year, discipline, grp, count(*) AS contacts, count(DISTINCT person) AS persons
        FROM top_units WHERE grp IS NOT NULL
        GROUP BY year, discipline, grp
    ), ranked AS (
        SELECT *, row_number() OVER (PARTITION BY year, discipline ORDER BY contacts DESC, grp ASC) AS rnk
        FROM grouped
    )
    SELECT r.year, r.discipline, r.rnk, r.grp, r.contacts,
           r.contacts::DOUBLE / t.total_contacts AS share, r.persons, t.total_contacts
    FROM ranked r
    JOIN totals t ON t.year = r.year AND t.discipline = r.discipline
    CROSS JOIN params
    WHERE r.rnk <= params.top_n
    ORDER BY r.year, r.discipline, r.rnk
    """,
    # method 7 + 9.14: netted MSZ admissions with an ACSC (specialism, diagnosis) dated in the
    # year, whose person has an insured row of that year with wlz_institution = false.
    "acsc": """
    WITH units AS (
        SELECT year(n.service_date) AS year, n.p2
        FROM net_claims n
        JOIN acsc_codes a ON a.specialism = n.specialism AND a.code = n.diagnosis_code
        WHERE n.sector = 'MSZ' AND n.care_type = 'opname'
          AND EXISTS (SELECT 1 FROM insured i
                      WHERE i.p2 = n.p2 AND i.year = year(n.service_date) AND i.wlz_institution = false)
    )
    SELECT ay.year, count(u.p2) AS admissions, count(DISTINCT u.p2) AS persons
    FROM acsc_years ay LEFT JOIN units u ON u.year = ay.year
    GROUP BY ay.year
    ORDER BY ay.year
    """,
}


def load_inputs(con: duckdb.DuckDBPyConnection, linked: Path) -> None:
    """One view per table of the linked layout."""
    for view, rel in _INPUTS.items():
        path = str(linked / f"{rel}.parquet").replace("'", "''")
        con.execute(f"CREATE VIEW {view} AS SELECT * FROM read_parquet('{path}')")


def _fetch(con: duckdb.DuckDBPyConnection, sql: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Materialise a small aggregate result with the exact column names and types."""
    return pl.DataFrame(con.execute(sql).fetchall(), schema=schema, orient="row")


def run_reference(linked: Path, config: StudyConfig) -> dict[str, pl.DataFrame]:
    """Compute the study's six tables from a linked layout, in DuckDB SQL.

    Args:
        linked: the linked layout folder (``ehr/*.parquet``, ``claims/*.parquet``).
        config: the validated study configuration.

    Returns:
        ``attrition``, ``prevalence``, ``care_use``, ``referrals``, ``top`` and ``acsc``, each
        sorted by its key columns (:data:`KEYS`) with the columns of :data:`SCHEMAS`.
    """
    con = duckdb.connect()
    try:
        load_inputs(con, Path(linked))
        _load_config(con, config)
        for sql in [*PERSON_RULES, POP_RULE, *STUDY_RULES]:
            con.execute(sql)
        return {name: _fetch(con, sql, SCHEMAS[name]) for name, sql in OUTPUTS.items()}
    finally:
        con.close()
