"""An independent reference implementation of study schema 2, in DuckDB SQL.

It exists only to be compared with the engine (``cohort.compile.run_compiled``) in a differential
test: the same linked layout and checked :class:`~cohort.schema.Study` go in, the same tables must
come out. It is written from ``docs/study-schema.md`` and ``shared/spec/method.md`` alone, not by
reading or translating the engine's polars code. The person-level rules (linkage, attributes, X5
coverage, practice sufficiency) and the seed study's rules are those of ``duckdb_study``; the
criteria and the entry step are in ``duckdb_criteria``, the tables in ``duckdb_outcomes``.

Python only loads the study (years, code lists, parameters) into small tables, builds SQL text per
criterion and outcome, and materialises the small aggregate results.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from cohort.config import Sufficiency
from cohort.schema import Study
from cohort.windows import Window
from extracts.codelists import Condition

from reference import duckdb_outcomes as out
from reference.duckdb_criteria import entry_sql, excluded_sql, records_sql
from reference.duckdb_study import OUTPUTS, PERSON_RULES, STUDY_RULES, load_inputs

__all__ = ["COHORT_TABLE", "KEYS_V2", "run_reference_v2"]

COHORT_TABLE = {"prevalence": "prevalence", "incidence": "incidence", "index": "index_cohort"}
_AGE_BANDS = (("0-17", 0, 17), ("18-64", 18, 64), ("65-79", 65, 79), ("80+", 80, None))
_CLAIMS_SPECIFIC_CAUSE = ("ET", "HT", "WV", "ELV", "HAP", "SEH", "GGZ_B", "GGZ_S")  # all-cause always (method 3, 9.10)

# The key columns of each table (strata are added after them); every other column is a value.
KEYS_V2: dict[str, tuple[str, ...]] = {
    "attrition": ("year", "condition", "step"),
    "prevalence": ("year", "condition"),
    "incidence": ("year", "condition"),
    "index_cohort": ("year", "condition"),
    "care_use": ("year", "condition", "discipline"),
    "care_use_change": ("condition", "discipline", "year_from", "year_to"),
    "contact_bands": ("year", "condition", "discipline", "band"),
    "costs": ("year", "condition"),
    "referrals": ("year", "condition"),
    "top": ("year", "discipline", "rank"),
    "acsc": ("year",),
}


def _table(con: duckdb.DuckDBPyConnection, name: str, columns: str, rows: list[tuple]) -> None:
    con.execute(f"CREATE TABLE {name} ({columns})")
    if rows:
        con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' for _ in rows[0])})", rows)


def _code_rows(key: str, icpc: tuple[str, ...], claims: list[tuple[str, str]]) -> tuple[list, list]:
    return [(key, c) for c in icpc], [(key, s, c) for s, c in claims]


def _catalogue_claims(c: Condition) -> list[tuple[str, str]]:
    return [(cc.sector, f"{cc.specialism}:{cc.code}" if cc.specialism else cc.code) for cc in c.claims]


def _load(con: duckdb.DuckDBPyConnection, study: Study) -> None:
    """The study as small tables: years, parameters, conditions and every code list."""
    x6 = next((c.sufficiency for c in study.criteria if c.rule == "X6"), None) or Sufficiency()
    contacts, top, acsc = study.outcome("contacts"), study.outcome("top"), study.outcome("acsc")
    dietetics = contacts.dietetics_all_cause if contacts else True
    _table(con, "params", "min_patients BIGINT, min_weeks BIGINT, min_icpc_share DOUBLE, "
                          "dietetics_all_cause BOOLEAN, top_n BIGINT",
           [(x6.min_patients, x6.min_weeks, float(x6.min_icpc_share), dietetics, top.n if top else 15)])
    _table(con, "ref_years", "year BIGINT", [(y,) for y in study.years])
    cond, cond_icpc, cond_claims, list_icpc, list_claims = [], [], [], [], []
    for c in study.conditions:
        if c.codes is None:  # a catalogue condition: its prevalence rules are method section 2
            cat = study.catalogue[c.name]
            cond.append((c.name, cat.all_cause, cat.min_age))
            cond_icpc += [(c.name, code) for code in cat.icpc]
            cond_claims += [(c.name, cc.sector, cc.specialism, cc.code, s.lookback_years)
                            for s in cat.subconditions for cc in s.claims]
            icpc, claims = cat.icpc, _catalogue_claims(cat)
        else:  # ad-hoc: no chronicity, claims in Y - lookback_years .. Y, never all-cause
            cond.append((c.name, False, None))
            cond_icpc += [(c.name, code) for code in c.codes.icpc]
            for sector, code in c.codes.claims:
                spec, _, diag = code.partition(":") if sector == "MSZ" else (None, "", code)
                cond_claims.append((c.name, sector, spec, diag, c.lookback_years))
            icpc, claims = c.codes.icpc, list(c.codes.claims)
        rows = _code_rows(f"cond:{c.name}", icpc, claims)
        list_icpc += rows[0]
        list_claims += rows[1]
    for k in study.criteria:
        if k.rule in ("has", "has_not"):
            codes = k.codes
            rows = (_code_rows(f"crit:{k.name}", study.catalogue[k.condition].icpc,
                               _catalogue_claims(study.catalogue[k.condition]))
                    if codes is None else _code_rows(f"crit:{k.name}", codes.icpc, list(codes.claims)))
            list_icpc += rows[0]
            list_claims += rows[1]
    _table(con, "cond", "condition VARCHAR, all_cause BOOLEAN, min_age BIGINT", cond)
    _table(con, "cond_icpc", "condition VARCHAR, icpc VARCHAR", sorted(set(cond_icpc)))
    _table(con, "cond_claims", "condition VARCHAR, sector VARCHAR, specialism VARCHAR, code VARCHAR, lookback BIGINT",
           cond_claims)
    _table(con, "list_icpc", "key VARCHAR, icpc VARCHAR", sorted(set(list_icpc)))
    _table(con, "list_claims", "key VARCHAR, sector VARCHAR, code VARCHAR", sorted(set(list_claims)))
    _table(con, "cond_disc_raw", "condition VARCHAR, discipline VARCHAR",
           [(c, d) for c, ds in (contacts.disciplines.items() if contacts else ()) for d in ds])
    _table(con, "acsc_years", "year BIGINT", [(y,) for y in (acsc.years if acsc else ())])
    _table(con, "acsc_codes", "specialism VARCHAR, code VARCHAR", list(acsc.codes) if acsc else [])


# The base records of each year with the attributes of method 9.2 (claims values only for a usable
# link), the age reached in Y, its band, the practice's region and the insurer's completeness.
_PERSON_V2 = """
CREATE TABLE v2_person AS
SELECT p.year, p.patient_id, CASE WHEN p.linked THEN p.p2 END AS p2, p.linked, p.n_practices, p.practice_id,
       p.birth_date, coalesce(p.ehr_sex, CASE WHEN p.linked THEN p.ins_sex END) AS sex,
       CASE WHEN p.linked THEN p.wlz_institution END AS wlz_institution,
       CASE WHEN p.linked THEN iy.complete END AS complete,
       pr.region, p.year - year(p.birth_date) AS age,
       CASE {bands} END AS age_band
FROM person p
LEFT JOIN insurer_years iy ON iy.insurer = p.insurer AND iy.year = p.year
LEFT JOIN practices pr ON pr.practice_id = p.practice_id
""".format(bands=" ".join(
    f"WHEN p.year - year(p.birth_date) >= {lo}" + (f" AND p.year - year(p.birth_date) <= {hi}" if hi else "")
    + f" THEN '{label}'" for label, lo, hi in _AGE_BANDS))

# population: insured (docs/study-schema.md, "Population (base)"): every person with an insured
# row for Y. One whose pseudonym is that of a base record with a usable link is that record; any
# other is a row of its own, with no EHR record or practice (region 'no_practice'): the values of its insured row
# (when it has one row for Y), its insurer's completeness, and a record id no EHR table holds.
_INSURED_V2 = """
CREATE TABLE v2_insured AS
SELECT * FROM v2_person WHERE linked
UNION ALL BY NAME
SELECT iy.year, '~insured:' || iy.p2 AS patient_id, iy.p2, false AS linked,
       NULL::BIGINT AS n_practices, NULL::VARCHAR AS practice_id,
       CASE WHEN iy.n_rows = 1 THEN iy.birth_date END AS birth_date,
       CASE WHEN iy.n_rows = 1 THEN iy.sex END AS sex,
       CASE WHEN iy.n_rows = 1 THEN iy.wlz_institution END AS wlz_institution,
       CASE WHEN iy.n_rows = 1 THEN c.complete END AS complete,
       'no_practice' AS region,
       CASE WHEN iy.n_rows = 1 THEN iy.year - year(iy.birth_date) END AS age,
       CASE {bands} END AS age_band
FROM insured_year iy
JOIN ref_years y ON y.year = iy.year
LEFT JOIN insurer_years c ON c.insurer = iy.insurer AND c.year = iy.year
WHERE NOT EXISTS (SELECT 1 FROM v2_person v WHERE v.year = iy.year AND v.linked AND v.p2 = iy.p2)
""".format(bands=" ".join(
    f"WHEN iy.n_rows = 1 AND iy.year - year(iy.birth_date) >= {lo}"
    + (f" AND iy.year - year(iy.birth_date) <= {hi}" if hi else "") + f" THEN '{label}'"
    for label, lo, hi in _AGE_BANDS))


def _excluded(study: Study, criteria: list, first: int, rows: str, *, on_index: bool, link_method: bool) -> str:
    keys = "year, patient_id, condition" if on_index else "year, patient_id"
    parts = [f"SELECT {keys}, {first + i} AS k FROM ({excluded_sql(c, rows, on_index=on_index, link_method=link_method)})"
             for i, c in enumerate(criteria)]
    none = f"SELECT {keys}, 0 AS k FROM ({rows}) WHERE false"
    return f"SELECT {keys}, min(k) AS k FROM ({' UNION ALL '.join(parts) or none}) GROUP BY ALL"


def _bounds(window: Window) -> tuple[str, str]:
    if window.unit == "years":
        return f"make_date(k.year + {window.start}, 1, 1)", f"make_date(k.year + {window.end}, 12, 31)"
    return f"(k.d + {window.start})", f"(k.d + {window.end})"


def _fetch(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    """A small result as a polars frame (SQL names columns case-insensitively: ``n_all`` is ``N``)."""
    rel = con.sql(sql)
    frame = pl.DataFrame(rel.fetchall(), schema=rel.columns, orient="row")
    return frame.rename({"n_all": "N"}) if "n_all" in frame.columns else frame


# An insured person without an EHR record is not linked, but its claims are its own (population:
# insured): they make it a member of a condition as a linked record's do (method 2, claims rule).
_INSURED_MEMBERS = """
INSERT INTO member
SELECT DISTINCT p.year, p.patient_id, cc.condition
FROM pop p
JOIN net_claims n ON n.p2 = p.p2
JOIN cond_claims cc ON cc.sector = n.sector AND cc.code = n.diagnosis_code
                   AND (cc.sector <> 'MSZ' OR cc.specialism = n.specialism)
WHERE NOT p.linked AND p.p2 IS NOT NULL AND n.sector <> 'SEH'
  AND year(n.service_date) BETWEEN p.year - cc.lookback AND p.year
  AND NOT EXISTS (SELECT 1 FROM member m WHERE m.year = p.year AND m.patient_id = p.patient_id
                                          AND m.condition = cc.condition)
"""


def _prevalence(con: duckdb.DuckDBPyConnection, study: Study, strata: list[str]) -> dict[str, pl.DataFrame]:
    for sql in STUDY_RULES:
        con.execute(sql)
        if "CREATE TABLE member AS" in sql and study.population == "insured":
            con.execute(_INSURED_MEMBERS)
    groups = ("SELECT year, 'all' AS condition, excl_step FROM pop UNION ALL "
              "SELECT p.year, m.condition, p.excl_step FROM pop p JOIN member m USING (year, patient_id)")
    tables = {
        "attrition": _fetch(con, out.chain(groups, [c.name for c in study.criteria], ["all", *study.condition_names])),
        "prevalence": _fetch(con, out.prevalence_table(strata)),
    }
    # The cohort of the outcomes: the prevalent records of the final population, per condition; a
    # window {years: [a, b]} runs from 1 Jan (Y + a) to 31 Dec (Y + b) (no index date: d is null).
    con.execute(f"""
        CREATE TABLE cohort AS
        SELECT pr.year, pr.patient_id, pr.condition, NULL::DATE AS d, p.p2, p.practice_id{''.join(', p.' + s for s in strata)}
        FROM prevalent pr JOIN pop p USING (year, patient_id)
    """)
    contacts = study.outcome("contacts")
    if contacts is not None and (contacts.window.start, contacts.window.end, contacts.cause) == (0, 0, "method"):
        # method section 3 in the reference year: the seed study's own rules (duckdb_study)
        con.execute(f"CREATE TABLE care_use_out AS {out.prevalence_care_use(strata)}")
        tables["care_use"] = _fetch(con, "SELECT * FROM care_use_out")
        tables |= _windowed(con, study, strata, with_contacts=False)
    else:
        tables |= _windowed(con, study, strata)
    for kind in ("referrals", "top", "acsc"):
        if study.outcome(kind) is not None:
            tables[kind] = _fetch(con, OUTPUTS[kind])
    _rename(tables)
    return tables


def _index(con: duckdb.DuckDBPyConnection, study: Study, strata: list[str], link_method: bool) -> dict[str, pl.DataFrame]:
    pre = [c for c in study.criteria if not c.uses_index]
    post = [c for c in study.criteria if c.uses_index]
    con.execute(f"CREATE TABLE cond_records AS {records_sql(_keys('cond', study))}")
    washout = study.washout_days if study.cohort_type == "incidence" else None
    con.execute(f"CREATE TABLE entry AS {entry_sql(washout)}")
    rows = "SELECT p.*, e.condition, e.d FROM v2_person p JOIN entry e USING (year, patient_id)"
    con.execute(f"CREATE TABLE post_excl AS "
                f"{_excluded(study, post, len(pre) + 2, rows, on_index=True, link_method=link_method)}")
    entry_k = len(pre) + 1
    con.execute(f"""
        CREATE TABLE chain_rows AS
        SELECT e.year, e.patient_id, e.condition, e.d,
               coalesce(p.excl_step, CASE WHEN NOT e.entered THEN {entry_k} END, x.k) AS excl_step
        FROM entry e
        JOIN pop p USING (year, patient_id)
        LEFT JOIN post_excl x USING (year, patient_id, condition)
    """)
    con.execute(f"""
        CREATE TABLE cohort AS
        SELECT c.year, c.patient_id, c.condition, c.d, p.p2, p.practice_id{''.join(', p.' + s for s in strata)}
        FROM chain_rows c JOIN pop p USING (year, patient_id) WHERE c.excl_step IS NULL
    """)
    # An incidence/index study has one condition (parse_study_v2): "all" is its whole base
    # population along the cohort's chain; a record without an index date leaves it at entry.
    steps = [*(c.name for c in pre), "entry", *(c.name for c in post)]
    everyone = (f"SELECT p.year, 'all' AS condition, CASE WHEN c.patient_id IS NULL "
                f"THEN coalesce(p.excl_step, {entry_k}) ELSE c.excl_step END AS excl_step "
                "FROM pop p LEFT JOIN chain_rows c USING (year, patient_id)")
    all_chain = out.chain(everyone, steps, ["all"])
    cond_chain = out.chain("SELECT year, condition, excl_step FROM chain_rows", steps, list(study.condition_names))
    tables = {
        "attrition": pl.concat([_fetch(con, all_chain), _fetch(con, cond_chain)]),
        COHORT_TABLE[study.cohort_type]: _fetch(con, out.cohort_table(strata)),
    }
    for sql in STUDY_RULES:  # ehr_units, claim_units (qualifying contacts); the rest is not used here
        if "ehr_units AS" in sql or "claim_units AS" in sql:
            con.execute(sql)
    tables |= _windowed(con, study, strata)
    for kind, sql in (("referrals", out.referrals_windowed), ("acsc", out.acsc_windowed)):
        outcome = study.outcome(kind)
        if outcome is not None:
            tables[kind] = _fetch(con, sql(*_bounds(outcome.window)))
    top = study.outcome("top")
    if top is not None:
        tables["top"] = _fetch(con, out.top_windowed(*_bounds(top.window), top.n))
    _rename(tables)
    return tables


def _windowed(con: duckdb.DuckDBPyConnection, study: Study, strata: list[str], *,
              with_contacts: bool = True) -> dict[str, pl.DataFrame]:
    """contacts (unless told not to), contact_bands and costs of the rows of ``cohort`` in their windows."""
    tables = {}
    contacts = study.outcome("contacts") if with_contacts else None
    if contacts is not None:
        all_cause = {c.name: c.codes is None and study.catalogue[c.name].all_cause for c in study.conditions}
        plan = [(c, d, contacts.cause == "all" or all_cause[c] or d in _CLAIMS_SPECIFIC_CAUSE
                 or (d == "DT" and contacts.dietetics_all_cause))
                for c, ds in contacts.disciplines.items() for d in ds]
        _table(con, "out_plan", "condition VARCHAR, discipline VARCHAR, all_cause BOOLEAN", plan)
        con.execute(f"CREATE TABLE care_use_out AS {out.contacts_windowed(strata, *_bounds(contacts.window))}")
        tables["care_use"] = _fetch(con, "SELECT * FROM care_use_out")
    bands = study.outcome("contact_bands")
    if bands is not None:
        _table(con, "band_plan", "condition VARCHAR, discipline VARCHAR",
               [(c, d) for c, ds in bands.disciplines.items() for d in ds])
        _table(con, "band_table", "k BIGINT, label VARCHAR, low BIGINT, high BIGINT", out.bands(bands.bands))
        tables["contact_bands"] = _fetch(con, out.contact_bands(*_bounds(bands.window)))
    costs = study.outcome("costs")
    if costs is not None:
        _table(con, "cost_sectors", "condition VARCHAR, sector VARCHAR",
               [(c, d) for c, ds in costs.disciplines.items() for d in ds])
        tables["costs"] = _fetch(con, out.costs_windowed(strata, *_bounds(costs.window)))
    return tables


def _rename(tables: dict[str, pl.DataFrame]) -> None:
    """The SQL names of the method's tables (``rank`` and ``group`` are keywords) as the study writes them."""
    if "top" in tables:
        tables["top"] = tables["top"].rename({"rnk": "rank", "grp": "group"})
    if "referrals" in tables:
        tables["referrals"] = tables["referrals"].rename({"n_ref": "n", "n_total": "N"})


def _keys(prefix: str, study: Study) -> str:
    names = study.condition_names if prefix == "cond" else [c.name for c in study.criteria if c.rule in ("has", "has_not")]
    return "(" + ", ".join(f"'{prefix}:{n}'" for n in names) + ")" if names else "('')"


def run_reference_v2(linked: Path, study: Study) -> dict[str, pl.DataFrame]:
    """Compute a schema 2 study's tables from a linked layout, in DuckDB SQL.

    Returns:
        ``attrition``, the cohort table (``prevalence``, ``incidence`` or ``index_cohort``) and one
        table per outcome (``care_use`` with ``care_use_change`` over >= 2 years, ``contact_bands``,
        ``costs``, ``referrals``, ``top``, ``acsc``), unsorted, with strata after the keys; and
        ``fallback_links`` when the layout has ``link_method``.
    """
    con = duckdb.connect()
    try:
        load_inputs(con, Path(linked))
        _load(con, study)
        for sql in PERSON_RULES:
            con.execute(sql)
        con.execute(_PERSON_V2)
        if study.population == "insured":
            con.execute(_INSURED_V2)
            con.execute("DROP TABLE v2_person")
            con.execute("ALTER TABLE v2_insured RENAME TO v2_person")
        link_method = "link_method" in {r[0] for r in con.execute("DESCRIBE patients").fetchall()}
        con.execute(f"CREATE TABLE crit_records AS {records_sql(_keys('crit', study))}")
        pre = [c for c in study.criteria if not c.uses_index]
        con.execute(f"CREATE TABLE pre_excl AS "
                    f"{_excluded(study, pre, 1, 'SELECT * FROM v2_person', on_index=False, link_method=link_method)}")
        con.execute("CREATE TABLE pop AS SELECT p.*, x.k AS excl_step "
                    "FROM v2_person p LEFT JOIN pre_excl x USING (year, patient_id)")
        strata = list(study.strata)
        tables = (_prevalence(con, study, strata) if study.cohort_type == "prevalence"
                  else _index(con, study, strata, link_method))
        if "care_use" in tables and len(study.years) >= 2:
            tables["care_use_change"] = _fetch(con, out.care_use_change(strata, study.years))
        if link_method:  # issue 13: persons of the population (after the criteria before entry) linked without BSN
            tables["fallback_links"] = _fetch(con, """
                SELECT y.year, count(DISTINCT f.p2) AS persons
                FROM (SELECT DISTINCT year FROM pop) y
                LEFT JOIN (SELECT p.year, p.p2 FROM pop p JOIN patients pt USING (patient_id)
                           WHERE p.excl_step IS NULL AND p.p2 IS NOT NULL
                             AND CAST(pt.link_method AS VARCHAR) IN ('insurance_number', 'probabilistic')) f
                USING (year)
                GROUP BY y.year""")
        return tables
    finally:
        con.close()
